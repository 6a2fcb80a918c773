"""Sidecars and folder files (``sp404.yaml``): where they are, which audio files each one
covers, and reading one safely (untrusted input: see :mod:`sp404d.metadata.read`)."""

from __future__ import annotations

import math
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sp404d.errors import FailedError, RejectedError
from sp404d.metadata.base import FOLDER_FILE, MAX_SIDECAR_BYTES, METADATA_SUFFIXES, SIDECAR_FORMS
from sp404d.values.fields import InvalidValueError, shown_value, validate_fields

# --------------------------------------------------------------------------------------------
# Metadata files on disk


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_source(path: Path, label: str, *, shared: str | None) -> dict[str, Any] | None:
    """Read and check one sidecar or folder file; None if it is not (or no longer) there.

    ``label`` ("sidecar kick.wav.yaml") starts every reason. A file that vanishes between the
    look and the read counts as absent; any other OS error is a FailedError (worth a retry).
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO named like a sidecar must not block us
            return None
        if info.st_size > MAX_SIDECAR_BYTES:
            raise RejectedError(_too_big(label, info.st_size))
        with path.open("rb") as handle:
            data = handle.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FailedError(_one_line(f"{label} cannot be read: {exc.strerror or exc}")) from None
    if len(data) > MAX_SIDECAR_BYTES:  # it grew after stat()
        raise RejectedError(_too_big(label, len(data)))
    from sp404d.values import safeyaml  # here, not at the top: PyYAML only when a sidecar exists

    try:
        try:
            raw = safeyaml.parse(data)
        except safeyaml.InvalidYamlError as exc:
            raise InvalidValueError(str(exc)) from None
        if raw is None:  # empty, or only comments
            return {}
        if not isinstance(raw, dict):
            raise InvalidValueError(
                f"must be a mapping of keys like 'bpm: 92', got {shown_value(raw)}"
            )
        return validate_fields(raw, shared=shared)
    except InvalidValueError as exc:
        raise RejectedError(_one_line(f"{label}: {exc}")) from None


def _too_big(label: str, size: int) -> str:
    return f"{label} is {math.ceil(size / 1024)} KB, limit {MAX_SIDECAR_BYTES // 1024} KB"


def sidecar_candidates(source: Path) -> tuple[Path, ...]:
    """``NAME.EXT.yaml``, ``NAME.EXT.yml``, ``NAME.yaml``, ``NAME.yml``, most specific first.

    Names are exact (case as in the audio file's name). ``sp404.yaml`` is never a sidecar: for
    ``sp404.wav`` it is still the folder file.
    """
    names = [form.format(name=source.name, stem=source.stem) for form in SIDECAR_FORMS]
    unique = dict.fromkeys(name for name in names if name != FOLDER_FILE)
    return tuple(source.parent / name for name in unique)


def is_metadata_file(path: Path) -> bool:
    """True for names ending ``.yaml``/``.yml`` (any case): sidecars, folder files, and YAML the
    user keeps nearby. The watcher must not treat them as audio."""
    return path.name.lower().endswith(METADATA_SUFFIXES)


@dataclass(frozen=True)
class MetadataScope:
    """The audio files one metadata file can change; the daemon re-does them when it appears,
    changes or goes away.

    A sidecar applies to files in its own folder whose ``sidecar_candidates`` include it
    (``kick.yaml`` -> ``kick.wav``, ``kick.aif``...); a folder file (``recursive``) applies to
    everything below its folder. Paths are compared as given: pass them in the same form
    (both absolute) as the metadata file.
    """

    metadata_file: Path
    folder: Path
    recursive: bool

    def matches(self, audio: Path) -> bool:
        """Whether ``audio`` (a file path, not necessarily existing) is in scope."""
        if is_metadata_file(audio):
            return False
        if self.recursive:
            return self.folder in audio.parents
        return audio.parent == self.folder and self.metadata_file in sidecar_candidates(audio)

    def audio_files(self) -> tuple[Path, ...]:
        """Existing files in scope, sorted. Apply your own audio-type and ignore rules on top."""
        try:
            found = self.folder.rglob("*") if self.recursive else self.folder.iterdir()
            return tuple(sorted(p for p in found if self.matches(p) and p.is_file()))
        except FileNotFoundError:
            return ()


def audio_for_metadata_file(path: Path) -> MetadataScope:
    """Which audio files ``path`` (a sidecar or ``sp404.yaml``) can change.

    Raises ValueError for a file that is not a metadata file (see ``is_metadata_file``).
    """
    if not is_metadata_file(path):
        raise ValueError(f"{path.name} is not a metadata file (.yaml or .yml)")
    return MetadataScope(metadata_file=path, folder=path.parent, recursive=path.name == FOLDER_FILE)
