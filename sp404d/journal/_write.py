"""Writing the journal file: its header, appended lines, a whole rewrite, the index snapshot."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, suppress
from typing import Any

from sp404d.durable import fsync_dir, rename
from sp404d.errors import ConfigError
from sp404d.journal import _index as snapshot
from sp404d.journal._index import Index, index_path
from sp404d.journal._lines import FORMAT, HEADER, VERSION, Record, dumps, record_line
from sp404d.journal._state import (
    SESSION_BYTES,
    SNAPSHOT_EVERY,
    SNAPSHOT_MIN,
    Durability,
    FileState,
    fdatasync,
)


class Writer:
    """Writes the log file: its header, appended lines, a whole rewrite, the index snapshot;
    keeps the records this process wrote, for a rebuild. ``locked`` takes the file lock
    (:class:`~sp404d.journal._open.Opener`), for a snapshot written outside it."""

    def __init__(
        self,
        s: FileState,
        durability: Durability,
        locked: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self.s, self.durability, self.locked = s, durability, locked

    def start_file(self) -> None:
        """Give an empty (or torn-at-birth) file its header, durably, folder entry included."""
        fd = self.s.require_fd()
        os.ftruncate(fd, 0)
        self.s.offset = self.s.lines = 0
        self.append_bytes(HEADER)
        self.s.start = self.s.offset
        fdatasync(fd)
        fsync_dir(self.s.path.parent)

    def append_bytes(self, payload: bytes) -> None:
        fd = self.s.require_fd()
        view, written = memoryview(payload), 0
        try:
            while written < len(payload):  # one write, unless the OS takes only part of it
                written += os.write(fd, view[written:])
        except BaseException:
            if written:  # leave no partial line behind us (disk full, a signal)
                with suppress(OSError):
                    os.ftruncate(fd, self.s.offset)
            raise
        self.s.offset += len(payload)
        self.s.lines += payload.count(b"\n")

    def remember(self, doc_id: int, body: str) -> None:
        self.s.session.append((doc_id, body))
        self.s.session_bytes += len(body)
        while self.s.session_bytes > SESSION_BYTES and self.s.session:
            self.s.session_bytes -= len(self.s.session.popleft()[1])

    def rewrite(self, table: Mapping[Any, Mapping[str, Any]], *, keep_table: bool) -> None:
        """Replace the file with ``table``: temp file, fsync, rename, fsync the folder; index
        it as it is written, and snapshot that index. ``keep_table``: keep the records decoded
        (TinyDB's API is in use), else only the index."""
        index = Index()
        lines: list[bytes] = []
        docs: dict[str, Record] = {}
        for key, doc in table.items():
            lines.append(record_line(int(key), doc).encode())
            docs[str(int(key))] = dict(doc)
        last_id = max([self.s.index.last_id, *(int(k) for k in docs)])
        header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "last_id": last_id}
        if self.s.ident is not None:  # so that other writers know the file they had was ours
            header["replaces"] = list(self.s.ident)
        head = (dumps(header) + "\n").encode()
        at = len(head)
        for line, (key, doc) in zip(lines, docs.items(), strict=True):
            index.add(at, int(key), doc)
            at += len(line)
        index.last_id = last_id
        payload = head + b"".join(lines)
        tmp = self.s.path.with_name(f".{self.s.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            # Locked before it has its name: whoever opens the new file waits until we are done.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self.s.fd is not None:
                os.fchmod(fd, stat.S_IMODE(os.fstat(self.s.fd).st_mode))
            view, written = memoryview(payload), 0
            while written < len(payload):
                written += os.write(fd, view[written:])
            os.fsync(fd)
            rename(tmp, self.s.path)
        except BaseException:
            os.close(fd)
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        st = os.fstat(fd)
        self.s.close_fd()  # also drops the old file's lock: its waiters will follow the path
        self.s.fd, self.s.ident = fd, (st.st_dev, st.st_ino)
        self.s.index, self.s.foreign = index, None
        self.s.table = docs if keep_table else None
        self.s.start, self.s.offset = len(head), len(payload)
        self.durability.dirty = False
        self.s.lines = len(lines) + 1
        self.s.header_last_id, self.s.header_replaces = last_id, header.get("replaces")
        self.s.generation += 1
        fsync_dir(self.s.path.parent)
        self.s.saved = 0  # the snapshot on disk describes the file just replaced
        if index.total >= SNAPSHOT_MIN:
            self.save_snapshot()
        else:
            with suppress(OSError):
                os.unlink(index_path(self.s.path))

    def save_snapshot_if(self, lag: int, *, locked: bool = False) -> None:
        """Snapshot the index when at least ``lag`` of its records are not in the last one (and
        the journal is big enough for reading it to be worth sparing). ``locked``: the caller
        holds the file lock already."""
        if (
            self.s.closed
            or self.s.fd is None
            or self.s.index.total < SNAPSHOT_MIN
            or self.s.index.total - self.s.saved < max(lag, SNAPSHOT_EVERY * self.s.readonly)
        ):
            return
        if self.s.readonly:
            # A reader that read many lines (a journal restored without its index, a deleted
            # snapshot) leaves the snapshot it built, so the next one does not pay again. It
            # takes no lock: the snapshot says which bytes it covers, and is a cache.
            with suppress(OSError):
                self.save_snapshot()
            return
        if locked or self.s.depth:
            self.save_snapshot()
            return
        with suppress(OSError, ConfigError), self.locked():  # a cache: never worth failing for
            self.save_snapshot()

    def save_snapshot(self) -> None:
        if self.s.fd is None or self.s.foreign is not None:
            return
        where = snapshot.covered(self.s.fd, self.s.offset, self.s.lines, self.s.start)
        snapshot.save(index_path(self.s.path), self.s.index, where)
        self.s.saved = self.s.index.total
