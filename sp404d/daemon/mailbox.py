"""The daemon's mailbox for ``sp404d retry``: sources to plan again even though nothing about
them changed (the user fixed something outside them: a sidecar, the card, a permission).

They are appended to ``JOURNAL.retry`` and the daemon, woken by SIGUSR1, takes the file away
whole and plans each again (:mod:`sp404d.report.retry` chooses them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from sp404d.durable import rename


def retry_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".retry")


def hand_over(journal: Path, sources: Iterable[str], pid: int) -> None:
    """Ask the daemon ``pid`` to retry ``sources``: appended in one write, then a signal.

    Raises OSError (or ProcessLookupError) when either cannot be done.
    """
    data = "".join(json.dumps({"source": s}) + "\n" for s in sources).encode()
    fd = os.open(retry_path(journal), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.kill(pid, signal.SIGUSR1)


def take_requests(journal: Path) -> list[Path]:
    """The daemon's side: the sources asked for since the last look, each once; the request
    file is taken away whole first, so a request appended meanwhile waits for the next signal."""
    path = retry_path(journal)
    taking = path.with_name(f"{path.name}.{os.getpid()}.taking")
    try:
        rename(path, taking)
    except FileNotFoundError:
        return []
    try:
        lines = taking.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    finally:
        with contextlib.suppress(OSError):
            taking.unlink()
    found: dict[Path, None] = {}
    for line in lines:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            found[Path(json.loads(line)["source"])] = None
    return list(found)
