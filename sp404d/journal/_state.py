"""What a process knows of its journal file (:class:`FileState`), shared by the parts of the
storage, and when it reaches the disk (:class:`Durability`).

The storage is parts composed, each a module with one job and this state in common: the log
file's writing (:mod:`~sp404d.journal._write`), its reading into the index
(:mod:`~sp404d.journal._read`), opening and the file lock (:mod:`~sp404d.journal._open`), what
a writer repairs once it holds the lock (:mod:`~sp404d.journal._mend`), and TinyDB's Storage
interface over them all (:mod:`~sp404d.journal._file`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sp404d.journal._index import Index
from sp404d.journal._lines import Record
from sp404d.journal._repair import Damage, reason

#: ``notice(level, event, **fields)``: how the storage reports what it found and did.
Notice = Callable[..., None]

#: A writer keeps the index's snapshot beside a journal of at least this many records...
SNAPSHOT_MIN: Final = 1000
#: ...and writes it anew once this many records are not in it.
SNAPSHOT_EVERY: Final = 500
#: The records this process appended are remembered up to this many bytes, to rebuild a
#: journal cut short in place under it (the old bytes are gone then).
SESSION_BYTES: Final = 4 << 20

# fdatasync skips metadata that does not matter for reading the data back; macOS lacks it.
fdatasync: Final[Callable[[int], None]] = getattr(os, "fdatasync", os.fsync)


def no_notice(level: str, event: str, **fields: Any) -> None:
    pass


@dataclass(frozen=True)
class Orphan:
    """The file a writer had when it found it deleted, replaced or cut short: its descriptor
    (still readable unless it was cut short in place), identity, and what we had read of it."""

    fd: int | None
    ident: tuple[int, int] | None
    how: str
    start: int
    end: int
    total: int


class FileState:
    """Everything a process knows about its journal file: the descriptor and what has been
    read of it, the index, the records decoded (only once TinyDB's API asks), and a writer's
    findings waiting to be mended before its lock is let go."""

    def __init__(
        self, path: Path, *, readonly: bool, sync_interval: float, notice: Notice = no_notice
    ) -> None:
        if sync_interval < 0:
            raise ValueError(f"sync_interval must be >= 0, not {sync_interval}")
        self.path = path
        self.readonly = readonly
        self.notice = notice
        self.sync_interval = sync_interval
        #: Bumped whenever the records change, so tables know their query cache is stale.
        self.generation = 0
        #: Guards everything here against this process's other threads (flock cannot).
        self.mutex = threading.RLock()
        self.index = Index()
        self.table: dict[str, Record] | None = None  # decoded, once TinyDB's API asked
        self.foreign: dict[str, Record] | None = None  # a reader's stock TinyDB database
        self.session: deque[tuple[int, str]] = deque()  # (doc_id, JSON) this process wrote
        self.session_bytes = 0
        self.skipped = 0  # lines passed over while reading (and in a snapshot loaded)
        self.fd: int | None = None
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self.start = 0  # where the records start: just after the header line
        self.offset = 0  # bytes of the file taken in; always just after a newline
        self.lines = 0  # complete lines before ``offset`` (for damage reports)
        self.saved = 0  # records in the index when its snapshot was written or loaded
        self.header_last_id = 0
        self.header_replaces: Any = None  # the "replaces" of the header: who rewrote it
        self.found_empty = False  # opened an existing file of 0 bytes
        # A writer's findings, handled before the lock is let go: damaged lines to keep aside;
        # the file we had when it was found gone, replaced or cut short; a rewrite owed.
        self.damage: list[Damage] = []
        self.orphan: Orphan | None = None
        self.rebuild: str | None = None
        self.depth = 0  # nesting of the file lock
        self.closing = False  # close() has begun: start no more timers
        self.closed = False

    def reset(self) -> None:
        """Forget what was read: the file is to be read from its first byte."""
        self.index, self.table, self.foreign = Index(), None, None
        self.start = self.offset = self.lines = self.saved = 0
        self.header_replaces, self.header_last_id = None, 0
        self.generation += 1

    def close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd, self.ident = None, None

    def check_open(self) -> None:
        if self.closed:
            raise ValueError(f"journal {self.path} is closed")

    def check_writable(self) -> None:
        """Raise unless this journal is open for writing (``PermissionError``: read-only)."""
        self.check_open()
        if self.readonly:
            raise PermissionError(f"journal {self.path} was opened read-only")

    def require_fd(self) -> int:
        self.check_open()
        if self.fd is None:
            raise ValueError(f"journal {self.path} is not open")
        return self.fd


class Durability:
    """When appended lines reach the disk: at most one fsync every ``sync_interval``, done by
    the first append after a quiet spell and by a timer after a burst. A failed fsync is kept
    for the next :meth:`take_error` and owes a full rewrite (what was written since the last
    good fsync may be lost from the disk even if a later one succeeds)."""

    def __init__(self, s: FileState) -> None:
        self.s = s
        self.dirty = False  # appended since the last fsync
        self.last_sync = -float("inf")
        self.timer: threading.Timer | None = None
        self.error: OSError | None = None
        self.failing = False  # said journal_sync_failed, not yet journal_synced

    def after_append(self) -> None:
        self.dirty = True
        since = time.monotonic() - self.last_sync
        if since >= self.s.sync_interval:
            try:
                self.sync_now()
            except OSError as exc:  # the line is written; only its fsync is late
                self.failed(exc)
        elif self.timer is None and not self.s.closing:
            self.timer = threading.Timer(self.s.sync_interval - since, self._timer_fired)
            self.timer.name = f"sp404d-journal-sync {self.s.path.name}"
            self.timer.daemon = True
            self.timer.start()

    def _timer_fired(self) -> None:
        with self.s.mutex:
            self.timer = None
            if self.dirty and self.s.fd is not None:
                try:
                    self.sync_now()
                except OSError as exc:  # nobody to raise to here: the next sync() raises it
                    self.failed(exc)

    def failed(self, exc: OSError) -> None:
        """Keep a failed fsync for the next ``sync()`` to raise, owe a full rewrite, and say
        so once."""
        self.error = exc
        self.s.rebuild = self.s.rebuild or "an fsync failed: every record written anew"
        if not self.failing:
            self.failing = True
            self.s.notice(
                "warning",
                "journal_sync_failed",
                journal=str(self.s.path),
                reason=reason(exc),
                note="records are written but may not be on the disk; the journal is written "
                "anew once it can be, and sources are not moved or deleted before",
            )

    def synced(self) -> None:
        """Everything is on the disk (an fsync, or a rewrite fsynced): say so if it was not."""
        self.dirty = False
        self.last_sync = time.monotonic()
        if self.failing:
            self.failing = False
            self.s.notice("info", "journal_synced", journal=str(self.s.path))

    def sync_now(self) -> None:
        fdatasync(self.s.require_fd())
        self.synced()

    def stop_timer(self) -> None:
        """No more timers (closing); one that already fired is waited for."""
        with self.s.mutex:
            timer, self.timer = self.timer, None
            self.s.closing = True
        if timer is not None:  # outside the mutex: a timer that already fired waits for it
            timer.cancel()
            timer.join(timeout=5)


def orphan_last(known: Mapping[str, Record]) -> int:
    return max((int(k) for k in known), default=0)
