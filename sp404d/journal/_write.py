"""Writing the journal file: its header, appended lines, a whole rewrite, the index snapshot."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from sp404d.durable import fsync_dir, rename
from sp404d.errors import ConfigError
from sp404d.journal import _index as snapshot
from sp404d.journal._index import Index, index_path
from sp404d.journal._lines import (
    FORMAT,
    HEADER,
    VERSION,
    Record,
    dumps,
    record_line,
)
from sp404d.journal._state import (
    SESSION_BYTES,
    SNAPSHOT_EVERY,
    SNAPSHOT_MIN,
    _fdatasync,
    _FileState,
)


class _Writing(_FileState):
    """Appends and rewrites; the records this process wrote, for a rebuild."""

    def _start_file(self) -> None:
        """Give an empty (or torn-at-birth) file its header, durably, folder entry included."""
        fd = self._require_fd()
        os.ftruncate(fd, 0)
        self._offset = self._lines = 0
        self._append_bytes(HEADER)
        self._start = self._offset
        _fdatasync(fd)
        fsync_dir(self.path.parent)

    def _append_bytes(self, payload: bytes) -> None:
        fd = self._require_fd()
        view, written = memoryview(payload), 0
        try:
            while written < len(payload):  # one write, unless the OS takes only part of it
                written += os.write(fd, view[written:])
        except BaseException:
            if written:  # leave no partial line behind us (disk full, a signal)
                with suppress(OSError):
                    os.ftruncate(fd, self._offset)
            raise
        self._offset += len(payload)
        self._lines += payload.count(b"\n")

    def _remember(self, doc_id: int, body: str) -> None:
        self._session.append((doc_id, body))
        self._session_bytes += len(body)
        while self._session_bytes > SESSION_BYTES and self._session:
            self._session_bytes -= len(self._session.popleft()[1])

    def _rewrite(self, table: Mapping[Any, Mapping[str, Any]], *, keep_table: bool) -> None:
        """Replace the file with ``table``: temp file, fsync, rename, fsync the folder; index
        it as it is written, and snapshot that index. ``keep_table``: keep the records decoded
        (TinyDB's API is in use), else only the index."""
        index = Index()
        lines: list[bytes] = []
        docs: dict[str, Record] = {}
        for key, doc in table.items():
            lines.append(record_line(int(key), doc).encode())
            docs[str(int(key))] = dict(doc)
        last_id = max([self._index.last_id, *(int(k) for k in docs)])
        header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "last_id": last_id}
        if self._ident is not None:  # so that other writers know the file they had was ours
            header["replaces"] = list(self._ident)
        head = (dumps(header) + "\n").encode()
        at = len(head)
        for line, (key, doc) in zip(lines, docs.items(), strict=True):
            index.add(at, int(key), doc)
            at += len(line)
        index.last_id = last_id
        payload = head + b"".join(lines)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            # Locked before it has its name: whoever opens the new file waits until we are done.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._fd is not None:
                os.fchmod(fd, stat.S_IMODE(os.fstat(self._fd).st_mode))
            view, written = memoryview(payload), 0
            while written < len(payload):
                written += os.write(fd, view[written:])
            os.fsync(fd)
            rename(tmp, self.path)
        except BaseException:
            os.close(fd)
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        st = os.fstat(fd)
        self._close_fd()  # also drops the old file's lock: its waiters will follow the path
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self._index, self._foreign = index, None
        self._table = docs if keep_table else None
        self._start, self._offset, self._dirty = len(head), len(payload), False
        self._lines = len(lines) + 1
        self._header_last_id, self._header_replaces = last_id, header.get("replaces")
        self.generation += 1
        fsync_dir(self.path.parent)
        self._saved = 0  # the snapshot on disk describes the file just replaced
        if index.total >= SNAPSHOT_MIN:
            self._save_snapshot()
        else:
            with suppress(OSError):
                os.unlink(index_path(self.path))

    def _save_snapshot_if(self, lag: int, *, locked: bool = False) -> None:
        """Snapshot the index when at least ``lag`` of its records are not in the last one (and
        the journal is big enough for reading it to be worth sparing). ``locked``: the caller
        holds the file lock already."""
        if (
            self._closed
            or self._fd is None
            or self._index.total < SNAPSHOT_MIN
            or self._index.total - self._saved < max(lag, SNAPSHOT_EVERY if self.readonly else 0)
        ):
            return
        if self.readonly:
            # A reader that read many lines (a journal restored without its index, a deleted
            # snapshot) leaves the snapshot it built, so the next one does not pay again. It
            # takes no lock: the snapshot says which bytes it covers, and is a cache.
            with suppress(OSError):
                self._save_snapshot()
            return
        if locked or self._depth:
            self._save_snapshot()
            return
        with suppress(OSError, ConfigError), self.locked():  # a cache: never worth failing for
            self._save_snapshot()

    def _save_snapshot(self) -> None:
        if self._fd is None or self._foreign is not None:
            return
        where = snapshot.covered(self._fd, self._offset, self._lines, self._start)
        snapshot.save(index_path(self.path), self._index, where)
        self._saved = self._index.total
