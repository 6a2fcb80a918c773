"""What a job is and how it ends, as the parent and the workers pass them: a :class:`Plan`
(everything decided before the audio is touched) in, an :class:`Outcome` (with what the
journal keeps) out. Frozen and picklable: they cross to worker processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sp404d.audio import AudioInfo
from sp404d.config import Rules
from sp404d.metadata import Metadata


@dataclass(frozen=True)
class Piece:
    """Where one slice of a chopped loop goes: its reserved name, its pad in a kit, and files
    already on disk that may be this very slice (a crash between rename and record)."""

    final: Path
    slot: tuple[str, int] | None = None
    adopt: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Everything decided before the audio is touched."""

    source: Path
    root: Path
    size: int
    mtime_ns: int
    meta: Metadata
    folder: PurePosixPath
    stem: str
    final: Path  # a fresh name reserved for this job, or `replaces`
    rules: Rules
    adopt: tuple[Path, ...] = ()  # existing files that may already be this job's output
    replaces: Path | None = None  # this source's own earlier output, superseded by this job
    slot: tuple[str, int] | None = None
    inputs: str | None = None  # planner.input_id: metadata and settings, as one digest
    # Asked for an earlier job of the same key (converted.py): only jobs recorded when this was
    # planned (up to doc id ``known_until``) count, so a run's outcome does not depend on the
    # order its workers happen to finish in.
    journal: Path | None = None
    known_until: int = 0
    # A chopped loop (``rules.chop``): one piece a slice, as many as it may give (``final`` is
    # the first's). ``earlier``: this source's other earlier outputs (its slices, or its one
    # output before it was chopped), removed once the new outputs are durable.
    pieces: tuple[Piece, ...] = ()
    earlier: tuple[Path, ...] = ()
    cuts: tuple[tuple[int, int, bool, bool], ...] = ()  # rebuild: where it was cut before


#: How a job ended, as the journal records it: converted; nothing to convert (the same content
#: is already in the outbox); refused for a reason in the file (a fact about the file, noted
#: beside it); failed for a reason outside it (retried).
Status = Literal["done", "skipped", "rejected", "failed"]


@dataclass(frozen=True)
class Outcome:
    """How a job ended, with what the journal needs to know about it."""

    status: Status
    reason: str | None = None
    sha256: str | None = None
    key: str | None = None
    output: Path | None = None
    info: AudioInfo | None = None
    render: dict[str, Any] = field(default_factory=dict)
    replaced: Path | None = None
    elapsed_s: float = 0.0
    slices: tuple[SliceDone, ...] = ()  # a chopped loop's outputs (``output`` is the first's)
    removed: tuple[Path, ...] = ()  # ``Plan.earlier`` files that were there and are gone


@dataclass(frozen=True)
class SliceDone:
    """One slice written: its file, which frames of the 48 kHz loop it holds, what rendering
    did."""

    output: Path
    start: int
    end: int
    render: dict[str, Any]
