"""``sp404d retry``: files put back in the queue after the user fixed something outside them
(a sidecar, the card, a permission), which a watch folder would not notice by itself.

The files are chosen from the journal (the latest record of each source: failed, refused, or
any under the paths given). When a daemon runs it takes them: they are appended to
``JOURNAL.retry`` and the daemon, woken by SIGUSR1, plans each again even though nothing about
the file changed. Otherwise the command runs them itself. Either way each gets a new record.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sp404d.journal.journal import Journal
from sp404d.report.jobfilter import latest_per_source


def retry_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".retry")


def choose(
    journal: Journal, statuses: frozenset[str], paths: Sequence[str]
) -> list[Mapping[str, Any]]:
    """The latest record of each source to retry, oldest first: under ``paths`` (files or
    folders, absolute) if any are given, and with one of ``statuses`` if any are given."""
    chosen: list[Mapping[str, Any]] = []
    for rec in latest_per_source(journal.iter_newest()):
        source = str(rec.get("source"))
        if statuses and rec.get("status") not in statuses:
            continue
        if paths and not any(source == p or source.startswith(p.rstrip("/") + "/") for p in paths):
            continue
        chosen.append(rec)
    chosen.reverse()
    return chosen


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
        os.replace(path, taking)
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
