"""``SP404D.TXT``: a card found in a drawer explains itself.

With ``outbox_removable: true`` (and ``card_manifest`` on, the default) sp404d keeps a plain-text
list in the card's root of every sample it put on the card and the file it came from. The card's
root is the folder holding the outbox when the outbox is the unit's ``IMPORT`` folder (as it
should be), otherwise the outbox itself. It is the one file sp404d writes outside the outbox, and
it is written whole (a temp file renamed over it), like any output, and only when what it lists
changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sp404d import __version__
from sp404d.card.model import on_card
from sp404d.durable import replace_whole
from sp404d.journal import Journal
from sp404d.pathtext import printable

MANIFEST_NAME = "SP404D.TXT"


def card_root(outbox: Path) -> Path:
    return outbox.parent if outbox.name.upper() == "IMPORT" else outbox


def manifest_lines(outbox: Path, journal: Journal) -> list[str]:
    """One line per sample on the card: its path from the card's root, and its source."""
    root = card_root(outbox)
    lines = []
    for output in on_card(journal, outbox).outputs:
        source = printable(output.source) if output.source else "(not converted by sp404d)"
        lines.append(f"{output.path.relative_to(root).as_posix()}  <-  {source}")
    return lines


def write_manifest(outbox: Path, journal: Journal) -> Path | None:
    """Write the manifest if what it lists changed; return its path, or None if unchanged.

    Raises OSError when the card cannot be written (the caller logs it and goes on).
    """
    path = card_root(outbox) / MANIFEST_NAME
    body = manifest_lines(outbox, journal)
    try:
        old = path.read_text(encoding="utf-8").splitlines()[4:]
    except (OSError, ValueError):
        old = None
    if old == body:
        return None
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        f"Samples put on this card by sp404d {__version__} (last change {stamp}).",
        f"{len(body)} file{'s' if len(body) != 1 else ''}: where each is on the card, and the "
        "file it was converted from.",
        "See what happened to each: sp404d status --source PATH",
        "",
    ]
    replace_whole(path, ("\n".join(head + body) + "\n").encode("utf-8"), durable=True)
    return path
