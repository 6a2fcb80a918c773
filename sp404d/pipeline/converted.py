"""Same content already converted? Asked in the worker, once it has hashed the file.

A job's key (content, place and output settings: :func:`sp404d.pipeline.job.job_key`) is known
only once a worker has read the whole file. Each worker process keeps the journal open read-only
(its index, not its records: :mod:`sp404d.journal._index`) and asks it then, after a ``stat`` that
takes in what was appended since, so it sees every record written up to that moment. Nothing
about earlier jobs travels with a plan, however many share the file's size.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from sp404d.errors import Sp404dError
from sp404d.journal import Journal

#: This worker process's read-only journals, by path (a worker serves one journal at a time;
#: the dict is only ever read and filled here).
_open: dict[Path, Journal] = {}


def _reader(journal: Path) -> Journal | None:
    reader = _open.get(journal)
    try:
        if reader is None:
            reader = _open[journal] = Journal(journal, readonly=True)
        else:
            reader.refresh()
    except (OSError, Sp404dError, ValueError):
        return None  # no journal to ask: the job converts, as on a first run
    return reader


def converted(journal: Path, key: str, until: int) -> Path | None:
    """The output of an earlier job with this very key, recorded with a doc id up to ``until``,
    if it is still there."""
    reader = _reader(journal)
    rec = reader.latest_by_key(key) if reader is not None else None
    if rec is None or rec.get("status") not in ("done", "skipped") or not rec.get("output"):
        return None
    if getattr(rec, "doc_id", until + 1) > until:
        return None
    output = Path(str(rec["output"]))
    return output if output.is_file() else None


def prepare(journal: Path | None) -> int:
    """Open the journal now (the pool is warmed with this), so a first file does not wait for
    its index to load; returns the worker's pid."""
    if journal is not None:
        with suppress(Exception):
            _reader(journal)
    return os.getpid()
