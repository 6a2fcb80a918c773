"""Kits as the SP-404MK2 shows them: banks A-J of 4x4 pads, read from the journal.

A kit is what the outbox holds under ``KIT/bank_X/pad_NN_NAME.wav``; the journal says where
each sample came from, how long it is and its BPM. Only the newest ``done`` job of each source
whose output is still there counts, so the view is the card as it is. Rendering is pure: the
same kits give the same text, with box drawing and colour only when asked (a terminal).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BANKS = "ABCDEFGHIJ"
PADS_PER_BANK = 16
PADS_PER_KIT = len(BANKS) * PADS_PER_BANK
#: The MK2's pads as they sit on the unit: 13-16 on the top row, 1-4 at the bottom.
GRID_ROWS = ((13, 14, 15, 16), (9, 10, 11, 12), (5, 6, 7, 8), (1, 2, 3, 4))
CELL = 14  # characters inside a cell
_PAD_FILE = re.compile(r"^pad_(\d{2})_(.*)$", re.IGNORECASE)
_BANK_DIR = re.compile(r"^bank_([A-J])$", re.IGNORECASE)


@dataclass(frozen=True)
class Pad:
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
    name: str
    folder: Path
    pads: dict[tuple[str, int], list[Pad]] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return len(self.pads)

    @property
    def length_s(self) -> float:
        return sum(p[0].length_s or 0.0 for p in self.pads.values())

    @property
    def size(self) -> int:
        return sum(p.size for pads in self.pads.values() for p in pads)

    def doubles(self) -> list[tuple[str, int]]:
        """Pads claimed by more than one sample (on the card, two files for one pad)."""
        return sorted(slot for slot, pads in self.pads.items() if len(pads) > 1)


def _pad_of(rec: Mapping[str, Any], output: Path) -> Pad | None:
    bank_dir, pad_file = _BANK_DIR.match(output.parent.name), _PAD_FILE.match(output.stem)
    if bank_dir is None or pad_file is None:
        return None
    meta = rec.get("metadata") or {}
    info = rec.get("input") or {}
    try:
        size = output.stat().st_size
    except OSError:
        return None
    return Pad(
        bank=bank_dir.group(1).upper(),
        pad=int(pad_file.group(1)),
        name=pad_file.group(2),
        length_s=info.get("duration_s"),
        bpm=meta.get("bpm"),
        key=meta.get("key"),
        source=str(rec.get("source")),
        output=str(output),
        size=size,
    )


def read_kits(newest_first: Iterable[Mapping[str, Any]]) -> dict[str, Kit]:
    """The kits on the card, by name, from the journal's records (newest first)."""
    kits: dict[str, Kit] = {}
    looked: set[str] = set()
    for rec in newest_first:
        source = str(rec.get("source"))
        if source in looked:
            continue
        looked.add(source)
        if rec.get("status") != "done" or not rec.get("output"):
            continue
        output = Path(str(rec["output"]))
        pad = _pad_of(rec, output)
        if pad is None:
            continue
        folder = output.parent.parent
        kit = kits.setdefault(folder.name, Kit(folder.name, folder))
        kit.pads.setdefault((pad.bank, pad.pad), []).append(pad)
    return dict(sorted(kits.items(), key=lambda item: item[0].casefold()))


def find(kits: Mapping[str, Kit], name: str) -> Kit | None:
    return next((k for n, k in kits.items() if n.casefold() == name.casefold()), None)


def _mmss(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def summary_lines(kits: Mapping[str, Kit]) -> list[str]:
    """One line per kit: pads used, total length, size on the card."""
    return [
        f"{k.name:<24} {k.used:>3}/{PADS_PER_KIT} pads  {_mmss(k.length_s):>6}  "
        f"{k.size / 1e6:7.1f} MB" + ("  (full)" if k.used >= PADS_PER_KIT else "")
        for k in kits.values()
    ]


def _cells(kit: Kit, bank: str, row: tuple[int, ...]) -> tuple[list[str], list[str]]:
    names, details = [], []
    for number in row:
        pads = kit.pads.get((bank, number))
        if not pads:
            names.append(f"{number:>2} .")
            details.append("")
            continue
        pad = pads[0]
        names.append(f"{number:>2} {pad.name}"[:CELL] + ("!" if len(pads) > 1 else ""))
        bits = [f"{pad.length_s:.1f}s" if pad.length_s is not None else ""]
        if pad.bpm:
            bits.append(f"{pad.bpm:g}bpm")
        details.append("   " + " ".join(b for b in bits if b))
    return names, details


def _paint(text: str, colour: bool, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour and text.strip() else text


def grid_lines(kit: Kit, *, box: bool = False, colour: bool = False) -> list[str]:
    """The kit's banks as the unit lays out its pads; empty banks folded into one line."""
    v, h, cross = ("│", "─", "┼") if box else ("|", "-", "+")
    rule = cross + cross.join([h * (CELL + 2)] * 4) + cross
    lines = [f"kit {kit.name}: {kit.used}/{PADS_PER_KIT} pads, {_mmss(kit.length_s)}"]
    empty: list[str] = []
    for bank in BANKS:
        if not any(b == bank for b, _ in kit.pads):
            empty.append(bank)
            continue
        if empty:
            lines.append(_empty_banks(empty))
            empty = []
        lines += ["", f"bank {bank}", rule]
        for row in GRID_ROWS:
            names, details = _cells(kit, bank, row)
            for texts, code in ((names, "1"), (details, "2")):
                cells = [_paint(f" {t:<{CELL + 1}}", colour, code) for t in texts]
                lines.append(v + v.join(cells) + v)
            lines.append(rule)
    if empty:
        lines.append(_empty_banks(empty))
    for bank, number in kit.doubles():
        claims = ", ".join(p.name for p in kit.pads[(bank, number)])
        lines.append(f"! pad {bank}{number:02d} is claimed twice: {claims}")
    if kit.used >= PADS_PER_KIT:
        lines.append(f"! the kit is full: {PADS_PER_KIT} pads; a new sample needs a new kit")
    return lines


def _empty_banks(banks: list[str]) -> str:
    span = banks[0] if len(banks) == 1 else f"{banks[0]}-{banks[-1]}"
    return f"bank{'s' if len(banks) > 1 else ''} {span}: empty"


def as_json(kits: Mapping[str, Kit]) -> dict[str, Any]:
    """``{"kits": [{"name", "folder", "pads_used", "length_s", "size", "banks": {"A": [pad,
    ...]}}]}``, pads in pad order, every sample of a doubly claimed pad listed."""
    return {
        "kits": [
            {
                "name": k.name,
                "folder": str(k.folder),
                "pads_used": k.used,
                "length_s": round(k.length_s, 3),
                "size": k.size,
                "banks": {
                    bank: _bank_pads(k, bank) for bank in BANKS if any(b == bank for b, _ in k.pads)
                },
            }
            for k in kits.values()
        ]
    }


def _bank_pads(kit: Kit, bank: str) -> list[dict[str, Any]]:
    return [p.as_dict() for (b, _), pads in sorted(kit.pads.items()) if b == bank for p in pads]
