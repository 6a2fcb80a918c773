"""The journal file's state, shared by the layers of its storage, and its durability.

The storage is one object in layers, each a module: this state and the fsync policy; writing
(:mod:`sp404d.journal._write`); what a writer repairs (:mod:`sp404d.journal._mend`); reading
(:mod:`sp404d.journal._read`); opening and locking (:mod:`sp404d.journal._open`); TinyDB's
Storage interface on top (:mod:`sp404d.journal._file`). A layer calls those below it; the two
calls that go up (the file lock, the decoded table) are declared here.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tinydb.storages import Storage

from sp404d.journal._index import Index
from sp404d.journal._lines import (
    Record,
)
from sp404d.journal._repair import (
    Damage,
    reason,
)

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
_fdatasync: Final[Callable[[int], None]] = getattr(os, "fdatasync", os.fsync)


def _no_notice(level: str, event: str, **fields: Any) -> None:
    pass


@dataclass(frozen=True)
class _Orphan:
    """The file a writer had when it found it deleted, replaced or cut short: its descriptor
    (still readable unless it was cut short in place), identity, and what we had read of it."""

    fd: int | None
    ident: tuple[int, int] | None
    how: str
    start: int
    end: int
    total: int


class _FileState(Storage):
    """Everything a process knows about its journal file, and the fsync policy."""

    def __init__(
        self,
        path: Path,
        *,
        readonly: bool,
        sync_interval: float,
        notice: Notice = _no_notice,
    ) -> None:
        super().__init__()
        if sync_interval < 0:
            raise ValueError(f"sync_interval must be >= 0, not {sync_interval}")
        self.path = path
        self.readonly = readonly
        #: Bumped whenever the records change, so tables know their query cache is stale.
        self.generation = 0
        #: Guards everything below against this process's other threads (flock cannot).
        self.mutex = threading.RLock()
        self._index = Index()
        self._table: dict[str, Record] | None = None  # decoded, once TinyDB's API asked
        self._foreign: dict[str, Record] | None = None  # a reader's stock TinyDB database
        self._session: deque[tuple[int, str]] = deque()  # (doc_id, JSON) this process wrote
        self._session_bytes = 0
        self._skipped = 0  # lines passed over while reading (and in a snapshot loaded)
        self._notice = notice
        self._sync_interval = sync_interval
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._start = 0  # where the records start: just after the header line
        self._offset = 0  # bytes of the file taken in; always just after a newline
        self._lines = 0  # complete lines before ``_offset`` (for damage reports)
        self._saved = 0  # records in the index when its snapshot was written or loaded
        self._header_last_id = 0
        # A writer's findings, handled before the lock is let go: damaged lines to keep aside;
        # the file we had when it was found gone, replaced or cut short; a rewrite owed.
        self._damage: list[Damage] = []
        self._orphan: _Orphan | None = None
        self._rebuild: str | None = None
        self._header_replaces: Any = None  # the "replaces" of the header: who rewrote it
        self._found_empty = False  # opened an existing file of 0 bytes
        self._sync_failing = False
        self._depth = 0  # nesting of ``locked()``
        self._dirty = False  # appended since the last fsync
        self._last_sync = -float("inf")
        self._timer: threading.Timer | None = None
        self._sync_error: OSError | None = None
        self._closing = False  # close() has begun: start no more timers
        self._closed = False

    def locked(self) -> AbstractContextManager[None]:
        """Hold the file lock (:mod:`sp404d.journal._open`)."""
        raise NotImplementedError

    def table(self) -> dict[str, Record]:
        """Every record, decoded (:mod:`sp404d.journal._file`)."""
        raise NotImplementedError

    def _after_append(self) -> None:
        self._dirty = True
        since = time.monotonic() - self._last_sync
        if since >= self._sync_interval:
            try:
                self._sync_now()
            except OSError as exc:  # the line is written; only its fsync is late
                self._sync_failed(exc)
        elif self._timer is None and not self._closing:
            self._timer = threading.Timer(self._sync_interval - since, self._timer_fired)
            self._timer.name = f"sp404d-journal-sync {self.path.name}"
            self._timer.daemon = True
            self._timer.start()

    def _timer_fired(self) -> None:
        with self.mutex:
            self._timer = None
            if self._dirty and self._fd is not None:
                try:
                    self._sync_now()
                except OSError as exc:  # nobody to raise to here: the next sync() raises it
                    self._sync_failed(exc)

    def _sync_failed(self, exc: OSError) -> None:
        """Keep a failed fsync for the next ``sync()`` to raise, owe a full rewrite (see
        :meth:`sync`), and say so once."""
        self._sync_error = exc
        self._rebuild = self._rebuild or "an fsync failed: every record written anew"
        if not self._sync_failing:
            self._sync_failing = True
            self._notice(
                "warning",
                "journal_sync_failed",
                journal=str(self.path),
                reason=reason(exc),
                note="records are written but may not be on the disk; the journal is written "
                "anew once it can be, and sources are not moved or deleted before",
            )

    def _sync_now(self) -> None:
        _fdatasync(self._require_fd())
        self._dirty = False
        self._last_sync = time.monotonic()
        if self._sync_failing:
            self._sync_failing = False
            self._notice("info", "journal_synced", journal=str(self.path))

    def _reset(self) -> None:
        self._index, self._table, self._foreign = Index(), None, None
        self._start = self._offset = self._lines = self._saved = 0
        self._header_replaces, self._header_last_id = None, 0
        self.generation += 1

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self._ident = None, None

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"journal {self.path} is closed")

    @property
    def closed(self) -> bool:
        return self._closed

    def check_writable(self) -> None:
        """Raise unless this journal is open for writing (``PermissionError``: read-only)."""
        self._check_writable()

    def _check_writable(self) -> None:
        self._check_open()
        if self.readonly:
            raise PermissionError(f"journal {self.path} was opened read-only")

    def _require_fd(self) -> int:
        self._check_open()
        if self._fd is None:
            raise ValueError(f"journal {self.path} is not open")
        return self._fd


def orphan_last(known: Mapping[str, Record]) -> int:
    return max((int(k) for k in known), default=0)
