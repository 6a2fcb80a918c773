"""What is known of one file (:class:`Metadata`), from its sidecars and folder files
(:mod:`~sp404d.metadata.files`), its path (:mod:`~sp404d.metadata.path`) and the config,
merged by :func:`read_metadata`."""

from __future__ import annotations

from sp404d.metadata.base import FOLDER_FILE, METADATA_SUFFIXES, SIDECAR_FORMS, Metadata
from sp404d.metadata.files import (
    MetadataScope,
    audio_for_metadata_file,
    is_metadata_file,
    sidecar_candidates,
)
from sp404d.metadata.path import bpm_from_length, infer_from_path, strip_bpm
from sp404d.metadata.read import read_metadata

__all__ = [
    "FOLDER_FILE",
    "METADATA_SUFFIXES",
    "SIDECAR_FORMS",
    "Metadata",
    "MetadataScope",
    "audio_for_metadata_file",
    "bpm_from_length",
    "infer_from_path",
    "is_metadata_file",
    "read_metadata",
    "sidecar_candidates",
    "strip_bpm",
]
