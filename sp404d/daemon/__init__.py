"""``sp404d run``: the daemon's lifecycle (:mod:`~sp404d.daemon.arbiter`) and what it runs:
the intake of events, the dispatch of work, the aftercare of sources, what it tells
(systemd, the desktop, its state file) and the service files that start it."""

from __future__ import annotations

from sp404d.daemon.arbiter import run
from sp404d.daemon.desktop import reason_kind
from sp404d.daemon.instance import watched_by_daemons
from sp404d.daemon.mailbox import hand_over
from sp404d.daemon.service import install_service
from sp404d.daemon.state import read_state, state_path

__all__ = [
    "hand_over",
    "install_service",
    "read_state",
    "reason_kind",
    "run",
    "state_path",
    "watched_by_daemons",
]
