"""Kits as the SP-404MK2 holds them, read from the card: banks A-J of 16 pads.

A kit is what the outbox holds under ``KIT/bank_X/pad_NN_NAME.wav``: the samples of the card
model (:mod:`sp404d.card.model`), each with the job that wrote it, so the view knows where it came
from, its length as written and its BPM. A sample sp404d did not write sits on its pad too (the
unit loads it), with what its header says. Two files on one pad (possible only when the card
was changed behind sp404d's back) are kept, to be flagged.

Everything here is pure but for what the card model read; :mod:`sp404d.card.grid` draws it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sp404d.card.model import Card, Output

BANKS = "ABCDEFGHIJ"
PADS_PER_BANK = 16
PADS_PER_KIT = len(BANKS) * PADS_PER_BANK

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
    source: str | None  # None: a sample sp404d did not write
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


def _pad(output: Output) -> tuple[str, Pad] | None:
    slot = output.slot
    if slot is None or output.size is None:
        return None
    folder, bank, number, name = slot
    bpm = output.metadata("bpm")
    return folder, Pad(
        bank=bank,
        pad=number,
        name=name,
        length_s=output.length_s,
        bpm=bpm if isinstance(bpm, int | float) and not isinstance(bpm, bool) else None,
        key=output.metadata("key"),
        source=output.source,
        output=str(output.path),
        size=output.size,
    )


def read_kits(card: Card) -> list[Kit]:
    """The kits on the card, sorted by name."""
    kits: dict[str, Kit] = {}
    for output in card.present():
        found = _pad(output)
        if found is None:
            continue
        folder, pad = found
        kit = kits.setdefault(folder, Kit(folder, card.outbox / folder))
        kit.pads.setdefault((pad.bank, pad.pad), []).append(pad)
    for kit in kits.values():
        for pads in kit.pads.values():
            pads.sort(key=lambda p: p.name)
    return sorted(kits.values(), key=lambda k: (k.name.casefold(), str(k.folder)))


def find(kits: Iterable[Kit], name: str) -> list[Kit]:
    """The kits named ``name`` without regard to case (the card's file system has none); more
    than one only on a disk that tells case apart."""
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
