"""Which jobs ``status`` (and ``retry``) look at: by status, since a time, by source or inbox.

Pure: a :class:`JobFilter` is built from the command line's words and tested against records as
they stream past, newest first, so a filter over a 100,000-job journal costs one pass and no
memory beyond the jobs it keeps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> str:
    """``2h``, ``30m``, ``3d``, ``1w`` ago, or a date (``2026-12-01``, local midnight) or a
    local date and time (``2026-12-01 18:30``), as the UTC ISO text records use.

    Raises ValueError with what is accepted.
    """
    now = now or datetime.now(UTC)
    if match := _AGO.match(text):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2).lower()]
        when = now - timedelta(seconds=seconds)
    else:
        try:
            parsed = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
        except ValueError:
            raise ValueError(
                f"not a time: {text!r}; give e.g. 2h, 30m, 3d, 1w, 2026-12-01 or '2026-12-01 18:30'"
            ) from None
        when = parsed if parsed.tzinfo else parsed.astimezone()  # local time, as people mean
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def absolute(path: str | Path) -> str:
    """A path as the journal records sources: absolute, with ``~`` expanded, not resolved
    beyond what the user typed (a symlinked inbox stays as spelled)."""
    return os.path.abspath(os.path.expanduser(str(path)))


@dataclass(frozen=True)
class JobFilter:
    statuses: frozenset[str] = frozenset()  # none: every status
    since: str | None = None  # UTC ISO text: jobs that finished at or after it
    source: str | None = None
    inbox: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.statuses or self.since or self.source or self.inbox)

    def matches(self, rec: Mapping[str, Any]) -> bool:
        if self.statuses and rec.get("status") not in self.statuses:
            return False
        if self.since and str(rec.get("finished_at") or "") < self.since:
            return False
        source = str(rec.get("source") or "")
        if self.source and source != self.source:
            return False
        return not self.inbox or source.startswith(self.inbox.rstrip("/") + "/")

    def select(self, newest_first: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """The matching records, newest first; stops at the first job older than ``since``
        (records are appended as jobs finish)."""
        for rec in newest_first:
            if self.since and str(rec.get("finished_at") or "") < self.since:
                return
            if self.matches(rec):
                yield rec


def latest_per_source(newest_first: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The newest record of each source, newest first, from records read newest first."""
    looked: set[str] = set()
    for rec in newest_first:
        source = str(rec.get("source"))
        if source not in looked:
            looked.add(source)
            yield rec
