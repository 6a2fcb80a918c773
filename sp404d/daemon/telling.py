"""What the daemon tells of itself: two plain lines for a person at a terminal, and the live
state ``sp404d status`` reads (written by :func:`sp404d.daemon.state.write_state`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sp404d import __version__
from sp404d.config import Config
from sp404d.daemon.dispatch import Dispatcher
from sp404d.pipeline import now_iso
from sp404d.watch import InboxWatch


def greeting(config: Config, made: list[Path]) -> str:
    """Where to drop files and where they land (``made``: folders made for the user)."""

    def said(path: Path) -> str:
        missing = "  (does not exist yet: waiting for it)" if not path.exists() else ""
        return f"{path}{'  (made it)' if path in made else ''}{missing}"

    inboxes = ", ".join(said(p) for p in config.inbox_paths)
    return f"sp404d is watching {inboxes}\nand writes to {said(config.outbox)}  (Ctrl-C stops it)\n"


def live_state(config: Config, work: Dispatcher, inboxes: InboxWatch) -> dict[str, Any]:
    """The daemon's state as ``status`` shows it (the README's ``daemon`` object)."""
    return {
        "pid": os.getpid(),
        "version": __version__,
        "updated_at": now_iso(),
        **work.state(),
        "inboxes": [str(p) for p in config.inbox_paths],
        "inboxes_missing": inboxes.missing(),
        "mode": inboxes.mode,
        "watch_limit": inboxes.note,
    }
