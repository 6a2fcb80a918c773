"""Kits as the SP-404MK2 holds them, read from the journal: banks A-J of 16 pads.

A kit is what the outbox holds under ``KIT/bank_X/pad_NN_NAME.wav``. The journal says where each
sample came from, how long it is and its BPM, so the view is built from it rather than from a
scan of the card (a scan knows none of that). Only what stands counts: the newest job of each
source, if it is ``done`` (or ``skipped``, which says the earlier ``done`` output still stands),
its output still on disk where the kit layout puts a sample (a chopped loop: each slice). The
newest claim to an output path wins, so a pad taken over after a file was deleted is not seen
twice. Two different files on one pad
(possible only when the card was changed behind sp404d's back) are kept, to be flagged.

Everything here is pure but for ``stat`` of the outputs; :mod:`sp404d.kitgrid` draws the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sp404d.jobfilter import standing

BANKS = "ABCDEFGHIJ"
PADS_PER_BANK = 16
PADS_PER_KIT = len(BANKS) * PADS_PER_BANK
# A sample's place below the outbox, as layout.place makes it (a `.txt` note holds no pad).
_PAD_FILE = re.compile(r"^pad_(\d\d)_(.*)\.(wav|aif|aiff)$", re.IGNORECASE)
_BANK_DIR = re.compile(r"^bank_([A-J])$", re.IGNORECASE)

Slot = tuple[str, int]


@dataclass(frozen=True)
class Pad:
    """One sample on a pad, with what the journal knows of it."""

    bank: str
    pad: int
    name: str  # as the unit shows it: the file's stem without ``pad_NN_``
    length_s: float | None
    bpm: float | None
    key: str | None
    source: str
    output: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "pad": self.pad,
            "name": self.name,
            "length_s": self.length_s,
            "bpm": self.bpm,
            "key": self.key,
            "source": self.source,
            "output": self.output,
        }


@dataclass
class Kit:
    """One kit folder below one outbox; a slot lists every sample claiming it (normally one)."""

    name: str
    folder: Path
    pads: dict[Slot, list[Pad]] = field(default_factory=dict)

    @property
    def outbox(self) -> Path:
        return self.folder.parent

    @property
    def used(self) -> int:
        return len(self.pads)

    @property
    def full(self) -> bool:
        return self.used >= PADS_PER_KIT

    @property
    def length_s(self) -> float:
        return sum(p.length_s or 0.0 for pads in self.pads.values() for p in pads)

    @property
    def size(self) -> int:
        return sum(p.size for pads in self.pads.values() for p in pads)

    def banks_used(self) -> list[str]:
        return sorted({bank for bank, _ in self.pads})

    def bank_pads(self, bank: str) -> list[Pad]:
        """The bank's samples in pad order (both of a pad claimed twice)."""
        return [p for (b, _), pads in sorted(self.pads.items()) if b == bank for p in pads]

    def all_pads(self) -> list[Pad]:
        return [p for _, pads in sorted(self.pads.items()) for p in pads]

    def doubles(self) -> list[Slot]:
        """Pads claimed by more than one sample (on the card: two files for one pad)."""
        return sorted(slot for slot, pads in self.pads.items() if len(pads) > 1)


def _slot_of(rec: Mapping[str, Any], output: Path) -> tuple[Path, str, int, str] | None:
    """(kit folder, bank, pad, name) if ``output`` sits where the kit layout puts a sample."""
    bank_dir, pad_file = _BANK_DIR.match(output.parent.name), _PAD_FILE.match(output.name)
    if bank_dir is None or pad_file is None or not 1 <= int(pad_file.group(1)) <= PADS_PER_BANK:
        return None
    folder = output.parent.parent
    outbox = rec.get("outbox")  # older records and skips have none
    if outbox and Path(str(outbox)) != folder.parent:
        return None
    return folder, bank_dir.group(1).upper(), int(pad_file.group(1)), pad_file.group(2)


def _pad_of(rec: Mapping[str, Any]) -> tuple[Path, Pad] | None:
    meta = rec.get("metadata") or {}
    output = Path(str(rec["output"]))
    where = _slot_of(rec, output)
    if where is None:
        return None
    try:
        size = output.stat().st_size
    except OSError:  # deleted from the card since: not on the unit either
        return None
    folder, bank, number, name = where
    length = (rec.get("input") or {}).get("duration_s")
    if rec.get("slice"):  # a slice of a chopped loop: its own length, not the loop's
        length = (rec.get("render") or {}).get("duration_s", length)
    return folder, Pad(
        bank=bank,
        pad=number,
        name=name,
        length_s=round(float(length), 3) if length is not None else None,
        bpm=meta.get("bpm"),
        key=meta.get("key"),
        source=str(rec.get("source")),
        output=str(output),
        size=size,
    )


def read_kits(newest_first: Iterable[Mapping[str, Any]]) -> list[Kit]:
    """The kits on the card(s), sorted by name, from the journal's records (newest first)."""
    kits: dict[Path, Kit] = {}
    outputs: set[str] = set()
    for rec in standing(newest_first):
        if str(rec["output"]) in outputs:  # an older claim to a path a newer job wrote
            continue
        outputs.add(str(rec["output"]))
        found = _pad_of(rec)
        if found is None:
            continue
        folder, pad = found
        kit = kits.setdefault(folder, Kit(folder.name, folder))
        kit.pads.setdefault((pad.bank, pad.pad), []).append(pad)
    for kit in kits.values():
        for pads in kit.pads.values():
            pads.sort(key=lambda p: p.name)
    return sorted(kits.values(), key=lambda k: (k.name.casefold(), str(k.folder)))


def find(kits: Iterable[Kit], name: str) -> list[Kit]:
    """The kits named ``name`` without regard to case (the card's file system has none); more
    than one only when the journal knows several outboxes."""
    return [k for k in kits if k.name.casefold() == name.casefold()]


def as_json(kits: Iterable[Kit]) -> dict[str, Any]:
    """The stable shape of ``sp404d kits --json`` (fields are added, never renamed)::

        {"kits": [{"name", "folder", "outbox", "pads_used", "length_s", "size", "full",
                   "claimed_twice": ["A01", ...],
                   "banks": {"A": [{"bank", "pad", "name", "length_s", "bpm", "key",
                                    "source", "output"}, ...], ...}}]}

    Only banks with a pad used appear; pads in pad order, both samples of a pad claimed twice.
    """
    return {
        "kits": [
            {
                "name": k.name,
                "folder": str(k.folder),
                "outbox": str(k.outbox),
                "pads_used": k.used,
                "length_s": round(k.length_s, 3),
                "size": k.size,
                "full": k.full,
                "claimed_twice": [f"{b}{n:02d}" for b, n in k.doubles()],
                "banks": {b: [p.as_dict() for p in k.bank_pads(b)] for b in k.banks_used()},
            }
            for k in kits
        ]
    }
