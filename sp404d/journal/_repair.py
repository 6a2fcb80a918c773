"""What a journal writer does with what it finds wrong: pure decisions and the side file.

Damaged lines are kept aside in ``JOURNAL.damaged`` (one JSON object a line: kind, line number,
offset, the exact text) before they are dropped; the records of a journal deleted, replaced or
cut short under a writer are merged with what the file holds now.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sp404d.durable import fsync_dir
from sp404d.journal._lines import Record, dumps

#: (kind, line number, file offset, the line's bytes) of a line that is not a record.
Damage = tuple[str, int, int, bytes]


def damaged_path(journal: Path) -> Path:
    """Where a writer keeps the damaged lines it finds, one JSON object a line, appended."""
    return journal.with_name(journal.name + ".damaged")


def keep_aside(journal: Path, found: list[Damage]) -> str | None:
    """Append ``found`` to ``JOURNAL.damaged``, durably; the reason it could not be, or None."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    payload = "".join(
        dumps(
            {
                "found_at": at,
                "journal": str(journal),
                "kind": kind,
                "line": line,
                "offset": offset,
                # The exact bytes: text.encode("utf-8", "surrogateescape").
                "text": raw.decode("utf-8", "surrogateescape"),
            }
        )
        + "\n"
        for kind, line, offset, raw in found
    ).encode()
    try:
        append_durably(damaged_path(journal), payload)
    except OSError as exc:
        return reason(exc)
    return None


@dataclass(frozen=True)
class Merged:
    """The records to write back after the file we had was lost: ``table`` (what we held,
    then what the file holds that we did not), ``missing``: ours the file lacked,
    ``theirs``: the file's we did not hold, ``last_id``: the highest id given."""

    table: dict[str, Record]
    missing: int
    theirs: int
    last_id: int


def merge(known: Mapping[str, Record], current: Mapping[str, Record], last_id: int) -> Merged:
    """What we held, checked record by record against what the file holds now: records it
    lacks are written back with their ids (or new ones, if it reused an id for another
    record), and whatever it holds that we did not is kept too."""
    merged: dict[str, Record] = {}
    missing = 0
    for key, doc in known.items():
        merged[key] = doc
        if current.get(key) != doc:
            missing += 1
    next_id = max([last_id, *(int(k) for k in known), *(int(k) for k in current)])
    theirs = 0
    for key, doc in current.items():
        mine = known.get(key)
        if mine == doc:
            continue
        theirs += 1
        if mine is None:
            merged[key] = doc
        else:  # the same id for another record: a new id for it
            next_id += 1
            merged[str(next_id)] = doc
    return Merged(merged, missing, theirs, next_id)


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def append_durably(path: Path, payload: bytes) -> None:
    """Append ``payload`` to ``path`` (created if need be) and fsync it, and a new entry."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        new = False
    except FileNotFoundError:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        new = True
    try:
        size = os.fstat(fd).st_size
        view, written = memoryview(payload), 0
        try:
            while written < len(payload):
                written += os.write(fd, view[written:])
        except BaseException:
            with suppress(OSError):
                os.ftruncate(fd, size)
            raise
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(path.parent)


def as_table(items: list[Any]) -> dict[str, Record]:
    """``{str(doc_id): record}`` of decoded lines (those that are records)."""
    from sp404d.journal._lines import is_record_item

    return {str(item[0]): item[2] for item in items if is_record_item(item)}
