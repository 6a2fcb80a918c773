"""The daemon's live state (``JOURNAL.state.json``): written by the daemon, read by ``status``.

Small and replaced whole (written under a temp name, then renamed), at most once a second, so a
reader never sees half of one; a state whose daemon is gone (killed, crashed) reads as none.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from sp404d.durable import replace_whole


def state_path(journal: Path) -> Path:
    """The daemon's small live-state file, kept beside its journal."""
    return journal.with_name(journal.name + ".state.json")


def read_state(journal: Path) -> dict[str, Any] | None:
    """The running daemon's state, or None when no daemon runs (or it died)."""
    try:
        state = json.loads(state_path(journal).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    pid = state.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return state


def write_state(journal: Path, state: dict[str, Any]) -> None:
    """Replace the state file; a failure only costs ``status`` a fresh view."""
    with contextlib.suppress(OSError):
        replace_whole(state_path(journal), json.dumps(state).encode())


def remove_state(journal: Path) -> None:
    """Remove the state file at a stop: only this process's own, never another daemon's."""
    if (read_state(journal) or {}).get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            state_path(journal).unlink()
