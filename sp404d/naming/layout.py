"""Where a sample goes inside the outbox: a pure function of its metadata and the layout.

``flat``  -> NAME.wav
``genre`` -> GENRE/NAME.wav (``unknown_genre``)
``bpm``   -> RANGE/NAME.wav (``slow``, ``70-90`` ... ``fast``, ``unknown_bpm``)
``kit``   -> KIT/bank_X/pad_NN_NAME.wav, so that name order is pad order on the unit.

BPM (and in kits the pad) go in front of the name: the unit shows 23 characters, and a cut
should take the end of the title, not the numbers a musician sorts by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePosixPath

from sp404d.metadata import Metadata, strip_bpm
from sp404d.naming.names import safe_component, sample_stem

# (lower bound inclusive, upper bound exclusive, folder name): data, so it reads as a table.
BPM_RANGES: tuple[tuple[float, float, str], ...] = (
    (0, 70, "slow"),
    (70, 90, "70-90"),
    (90, 110, "90-110"),
    (110, 130, "110-130"),
    (130, 150, "130-150"),
    (150, math.inf, "fast"),
)
UNKNOWN_GENRE = "unknown_genre"
UNKNOWN_BPM = "unknown_bpm"
DEFAULT_KIT = "kit"


@dataclass(frozen=True)
class Placement:
    """A sample's folder (relative to the outbox) and file name stem, before uniqueness."""

    folder: PurePosixPath
    stem: str


def bpm_folder(bpm: float | None) -> str:
    if bpm is None:
        return UNKNOWN_BPM
    for low, high, name in BPM_RANGES:
        if low <= bpm < high:
            return name
    return UNKNOWN_BPM


def kit_folder(kit: str | None) -> str:
    return safe_component(kit or DEFAULT_KIT, fallback=DEFAULT_KIT)


def _bpm_text(bpm: float) -> str:
    return f"{bpm:.1f}".rstrip("0").rstrip(".")


def place(
    meta: Metadata, layout: str, *, name_length: int, slot: tuple[str, int] | None = None
) -> Placement:
    """The placement of ``meta`` under ``layout``; kits need their (bank, pad) ``slot``."""
    if layout == "kit":
        if slot is None:
            raise ValueError("kit layout needs a bank and pad")
        bank, pad = slot
        folder = PurePosixPath(kit_folder(meta.kit), f"bank_{bank}")
        return Placement(
            folder, sample_stem(meta.title, prefix=f"pad_{pad:02d}_", max_len=name_length)
        )
    title, prefix = meta.title, ""
    if meta.bpm is not None:
        prefix = f"{_bpm_text(meta.bpm)}bpm_"
        title = strip_bpm(title).strip() or title
    stem = sample_stem(title, prefix=prefix, max_len=name_length)
    if layout == "genre":
        folder = PurePosixPath(safe_component(meta.genre or UNKNOWN_GENRE, fallback=UNKNOWN_GENRE))
    elif layout == "bpm":
        folder = PurePosixPath(bpm_folder(meta.bpm))
    else:
        folder = PurePosixPath()
    return Placement(folder, stem)
