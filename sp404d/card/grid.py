"""Kits drawn as text: the list of kits, and one kit's banks as the unit lays out its pads.

The MK2's pads sit 13-16 on the top row and 1-4 at the bottom, so the grid is drawn that way:
what a musician sees on screen is what their fingers find on the unit. Pure functions of the
kits: the same kits give the same text. Box drawing and colour only when asked (the command
asks on a terminal), plain ASCII otherwise, so a pipe, a log or a test reads plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sp404d.card.kits import BANKS, PADS_PER_KIT, Kit, Pad

#: The pads row by row as they sit on the unit, top row first.
GRID_ROWS = ((13, 14, 15, 16), (9, 10, 11, 12), (5, 6, 7, 8), (1, 2, 3, 4))
CELL = 16  # characters inside a cell: four cells and their borders fit 80 columns
_ASCII = {"v": "|", "h": "-", "top": "+++", "mid": "+++", "bottom": "+++"}
_BOX = {"v": "│", "h": "─", "top": "┌┬┐", "mid": "├┼┤", "bottom": "└┴┘"}
BOLD, DIM, RED = "1", "2", "31"


def mmss(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def size_text(size: int) -> str:
    """Bytes as a card's file browser would say them (1 KB = 1000 bytes, as on the card's box)."""
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"


def summary_lines(kits: Iterable[Kit]) -> list[str]:
    """One line per kit: pads used of 160, total length, size on the card, and any trouble."""
    kits = list(kits)
    names = [k.name for k in kits]
    lines = []
    for k in kits:
        # The same name below two outboxes: the folder tells them apart.
        name = k.name if names.count(k.name) == 1 else f"{k.name} ({k.folder})"
        line = f"{name:<24} {k.used:>3}/{PADS_PER_KIT} pads  {mmss(k.length_s):>6}  "
        line += f"{size_text(k.size):>9}"
        if k.full:
            line += "  full"
        if k.doubles():
            line += f"  {len(k.doubles())} pad(s) claimed twice"
        lines.append(line)
    return lines


_NUMBER = re.compile(r"_\d+$")


def fit(name: str, width: int) -> str:
    """A name cut to ``width``, keeping a slice's number (``loop_indus_01``, not
    ``loop_industri``: sixteen slices must not read the same)."""
    if len(name) <= width:
        return name
    number = _NUMBER.search(name)
    keep = number.group() if number and len(number.group()) < width else ""
    return name[: width - len(keep)] + keep


def _paint(text: str, code: str | None, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code and text.strip() else text


def _detail(pad: Pad) -> str:
    bits = [f"{pad.length_s:.1f}s" if pad.length_s is not None else "?s"]
    if pad.bpm:
        bits.append(f"{pad.bpm:g}bpm")
    text = "   " + " ".join(bits)
    # The key where it fits: length and BPM matter more when choosing a pad.
    return f"{text} {pad.key}" if pad.key and len(text) + 1 + len(pad.key) <= CELL else text


def _cell(kit: Kit, bank: str, number: int) -> tuple[tuple[str, str | None], tuple[str, str]]:
    """A pad's two lines, cut to the cell, each with its colour."""
    pads = kit.pads.get((bank, number))
    if not pads:
        return (f"{number:>2} .", DIM), ("", DIM)
    flag = "!" if len(pads) > 1 else ""
    name = f"{number:>2} " + fit(pads[0].name, CELL - 3 - len(flag)) + flag
    return (name, RED if flag else BOLD), (_detail(pads[0])[:CELL], DIM)


def _rule(style: dict[str, str], which: str) -> str:
    left, mid, right = style[which][0], style[which][1], style[which][2]
    return left + mid.join([style["h"] * (CELL + 2)] * 4) + right


def bank_lines(kit: Kit, bank: str, *, box: bool = False, colour: bool = False) -> list[str]:
    """One bank as a 4x4 grid of pads, in the unit's order."""
    style = _BOX if box else _ASCII
    lines = [_paint(f"bank {bank}", BOLD, colour), _rule(style, "top")]
    for i, row in enumerate(GRID_ROWS):
        cells = [_cell(kit, bank, number) for number in row]
        for line in (0, 1):
            texts = [_paint(f" {c[line][0]:<{CELL}} ", c[line][1], colour) for c in cells]
            lines.append(style["v"] + style["v"].join(texts) + style["v"])
        lines.append(_rule(style, "bottom" if i == len(GRID_ROWS) - 1 else "mid"))
    return lines


def _empty_banks(banks: list[str]) -> str:
    if len(banks) == 1:
        return f"bank {banks[0]}: empty"
    return f"banks {banks[0]}-{banks[-1]}: empty"


def grid_lines(kit: Kit, *, box: bool = False, colour: bool = False) -> list[str]:
    """The kit: a heading, each bank with a pad used as a grid, runs of empty banks as one line,
    then a line for each pad claimed twice and one if the kit is full."""
    head = f"kit {kit.name}: {kit.used}/{PADS_PER_KIT} pads, {mmss(kit.length_s)}"
    lines = [_paint(head, BOLD, colour), f"in {kit.folder}"]
    empty: list[str] = []
    for bank in BANKS:
        if bank not in kit.banks_used():
            empty.append(bank)
            continue
        if empty:
            lines.append(_empty_banks(empty))
            empty = []
        lines += ["", *bank_lines(kit, bank, box=box, colour=colour)]
    if empty:
        lines.append(_empty_banks(empty))
    for bank, number in kit.doubles():
        claims = ", ".join(p.name for p in kit.pads[(bank, number)])
        text = f"! pad {bank}{number:02d} is claimed twice: {claims}"
        lines.append(_paint(text, RED, colour))
    if kit.full:
        text = f"! the kit is full: {PADS_PER_KIT} pads; a new sample needs a new kit"
        lines.append(_paint(text, RED, colour))
    return lines
