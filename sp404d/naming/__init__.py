"""Where a sample goes and what it is called: FAT32- and unit-safe names
(:mod:`~sp404d.naming.names`), a layout's place (:mod:`~sp404d.naming.layout`), the names
in an output folder (:mod:`~sp404d.naming.folder_names`) and the pads of a kit
(:mod:`~sp404d.naming.pads`)."""

from __future__ import annotations

from sp404d.naming.folder_names import FolderNames, chop_base, folders_in
from sp404d.naming.layout import Placement, kit_folder, place
from sp404d.naming.names import fold, safe_component, sample_stem, unique_filename
from sp404d.naming.pads import PadBook, slot_of

__all__ = [
    "FolderNames",
    "PadBook",
    "Placement",
    "chop_base",
    "fold",
    "folders_in",
    "kit_folder",
    "place",
    "safe_component",
    "sample_stem",
    "slot_of",
    "unique_filename",
]
