"""``sp404d retry``: which files go back in the queue, chosen from the journal: the latest
record of each source, failed, refused, or any under the paths given. A running daemon takes
those of its own inboxes through its mailbox (:mod:`sp404d.daemon.mailbox`); the command runs
the rest itself. Either way each gets a new record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sp404d.journal import Journal
from sp404d.report.jobfilter import latest_per_source


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
