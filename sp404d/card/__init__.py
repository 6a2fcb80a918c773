"""What is on a card: one model (:mod:`~sp404d.card.model`) every command reads; the kits on
it (:mod:`~sp404d.card.kits`, drawn by :mod:`~sp404d.card.grid`), one kit as a ZIP
(:mod:`~sp404d.card.bundle`) and the card's own ``SP404D.TXT`` (:mod:`~sp404d.card.manifest`)."""

from __future__ import annotations

from sp404d.card.bundle import write_bundle
from sp404d.card.grid import grid_lines, size_text, summary_lines
from sp404d.card.kits import Kit, Pad, as_json, find, read_kits
from sp404d.card.manifest import write_manifest
from sp404d.card.model import Card, Output, of_source, on_card, outboxes_with_kits, standing

__all__ = [
    "Card",
    "Kit",
    "Output",
    "Pad",
    "as_json",
    "find",
    "grid_lines",
    "of_source",
    "on_card",
    "outboxes_with_kits",
    "read_kits",
    "size_text",
    "standing",
    "summary_lines",
    "write_bundle",
    "write_manifest",
]
