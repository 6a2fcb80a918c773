"""The journal's file: the TinyDB storage that reads, indexes and appends it.

Everything about the file on disk lives here, with the line format in
:mod:`sp404d._journal_lines`, the index in :mod:`sp404d._journal_index` and what a writer does
about damage in :mod:`sp404d._journal_repair` (see :mod:`sp404d.journal` for the guarantees);
``journal`` keeps the public :class:`~sp404d.journal.Journal` and the TinyDB glue.

A process keeps the index of the lines it has read, not their records: a lookup reads its one
line again (``pread``), ``newest`` reads the end of the file, and the whole table is decoded
only when TinyDB's own API (or :meth:`table`) asks for it.

What a writer finds wrong with the file it is told through ``notice(level, event, **fields)``
(the journal logs it): damaged lines, kept aside in ``JOURNAL.damaged`` before they are dropped;
a torn last line; a file that vanished, was replaced or was cut short under this process,
rebuilt from the old file (still open here) or, when cut short in place, from the records this
process appended itself; an fsync that failed.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Final

from tinydb.storages import Storage
from tinydb.table import Document

from sp404d import _journal_index as snapshot
from sp404d._journal_index import Index, index_path, matches
from sp404d._journal_lines import (
    FORMAT,
    HEADER,
    HEADER_PREFIX,
    TABLE,
    VERSION,
    Record,
    decode_region,
    dumps,
    is_record_item,
    line_starts,
    pread_region,
    read_line,
    record_line,
    records_backwards,
    status_of,
    stock_tinydb_table,
)
from sp404d._journal_repair import (
    Damage,
    as_table,
    damaged_path,
    fsync_dir,
    keep_aside,
    merge,
    reason,
)
from sp404d.errors import ConfigError

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


class _JournalStorage(Storage):
    """A TinyDB storage on the JSON-lines file: the file's owner and its index.

    ``read()`` hands TinyDB the decoded table (decoded once, then kept current); ``append``
    adds lines; ``write()``, which TinyDB calls for anything but inserts, rewrites the file
    atomically.
    """

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
        try:
            if readonly:
                self._open_reader()
            else:
                self._open_writer()
                with self.locked():
                    self._remove_stale_temps()
        except OSError as exc:
            self._close_fd()
            raise ConfigError("journal", f"cannot open {path}: {reason(exc)}") from exc
        except BaseException:
            self._close_fd()
            raise

    # -- TinyDB's Storage interface ------------------------------------------------------------

    def read(self) -> dict[str, dict[str, Any]] | None:
        table = self.table()
        return {TABLE: table} if table else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        others = sorted(name for name, table in data.items() if name != TABLE and table)
        if others:
            raise ValueError(f"the journal keeps only TinyDB's default table, not {others}")
        with self.locked():
            self._rewrite(data.get(TABLE, {}), keep_table=True)

    def close(self) -> None:
        with self.mutex:
            timer, self._timer = self._timer, None
            self._closing = True
        if timer is not None:  # outside the mutex: a timer that already fired waits for it
            timer.cancel()
            timer.join(timeout=5)
        with self.mutex:
            try:
                self._save_snapshot_if(1)
                self.sync()
            except OSError as exc:  # said once already (journal_sync_failed); closing goes on
                if not self._sync_failing:
                    self._notice(
                        "warning", "journal_sync_failed", journal=str(self.path), reason=reason(exc)
                    )
            finally:
                self._close_fd()
                self._closed = True

    # -- what Journal and the table call -------------------------------------------------------

    def table(self) -> dict[str, Record]:
        """Every record, ``str(doc_id)`` -> record, in file order: decoded on first use."""
        with self.mutex:
            if self._foreign is not None:
                return self._foreign
            if self._table is None:
                self._table = self._decode_all()
            return self._table

    def counts(self) -> dict[str, int]:
        with self.mutex:
            return dict(self._index.counts)

    def total(self) -> int:
        with self.mutex:
            return self._index.total

    def last_id(self) -> int:
        with self.mutex:
            return self._index.last_id

    def skipped_lines(self) -> int:
        with self.mutex:
            return self._skipped

    def newest(self, limit: int | None) -> list[Record]:
        return [] if limit == 0 else list(islice(self.iter_newest(), limit))

    def iter_newest(self) -> Iterator[Record]:
        """Every record, newest first, read from the end of the file a block at a time."""
        with self.mutex:
            if self._foreign is not None:
                docs = [Document(doc, int(k)) for k, doc in reversed(self._foreign.items())]
                fd, start, end = None, 0, 0
            else:
                docs = []
                fd = None if self._fd is None else os.dup(self._fd)
                start, end = self._start, self._offset
        yield from docs
        if fd is None:
            return
        try:
            for doc_id, doc in records_backwards(fd, start, end):
                yield Document(doc, doc_id)
        finally:
            os.close(fd)

    def latest(self, name: str, value: str) -> Record | None:
        """The latest record for ``value`` in the index's map ``name`` (see ``_journal_index``)."""
        with self.mutex:
            if self._foreign is not None:
                for key, doc in reversed(self._foreign.items()):
                    if matches(name, value, doc):
                        return Document(doc, int(key))
                return None
            offset = self._index.find(name, value)
            if offset is None or self._fd is None:
                return None
            item = read_line(self._fd, offset)
        if not is_record_item(item) or not matches(name, value, item[2]):
            return None  # two values that share a fingerprint: a miss, never a wrong record
        return Document(item[2], item[0])

    def append(self, documents: Sequence[Mapping[Any, Any]]) -> list[int]:
        """Append documents as lines with one write; return their doc ids."""
        self._check_writable()
        encoded: list[tuple[int | None, str, str]] = []
        for document in documents:  # serialise before taking the lock
            if not isinstance(document, Mapping):
                raise ValueError("Document is not a Mapping")
            explicit = int(document.doc_id) if isinstance(document, Document) else None
            encoded.append((explicit, dumps(status_of(document)), dumps(dict(document))))
        if not encoded:
            return []
        with self.locked():
            next_id, ids = self._index.last_id, []
            for explicit, _, _ in encoded:
                if explicit is None:
                    next_id += 1
                    ids.append(next_id)
                elif explicit in ids or str(explicit) in self.table():  # TinyDB's API only
                    raise ValueError(f"Document with ID {explicit} already exists")
                else:
                    ids.append(explicit)
                    next_id = max(next_id, explicit)
            lines = [
                f"[{i},{s},{body}]\n".encode() for i, (_, s, body) in zip(ids, encoded, strict=True)
            ]
            at = self._offset
            self._append_bytes(b"".join(lines))
            for doc_id, line, document, (_, _, body) in zip(
                ids, lines, documents, encoded, strict=True
            ):
                self._index.add(at, doc_id, document)
                if self._table is not None:  # what a reload would read, not the caller's object
                    self._table[str(doc_id)] = json.loads(body)
                self._remember(doc_id, body)
                at += len(line)
            self.generation += 1
            self._after_append()
        return ids

    def sync(self) -> None:
        """fsync now if anything was appended since the last one.

        An append never raises for its fsync (its line is written, only its durability is
        late). After an fsync failed, what was written since the last good one may be lost from
        the disk even if a later fsync succeeds, so the whole file is then written anew (temp
        file, fsync, rename) by this call or the next append. Raises the ``OSError`` while the
        records are not all durable.
        """
        with self.mutex:
            if self._rebuild is not None and not self.readonly:
                with self.locked():  # the rewrite, fsynced, makes every record durable
                    pass
                self._sync_error = None
                return
            error, self._sync_error = self._sync_error, None
            if self._dirty and self._fd is not None:
                try:
                    self._sync_now()
                except OSError as exc:
                    self._sync_failed(exc)
                    raise
            if error is not None:
                raise error

    def refresh(self) -> None:
        if not self.readonly:
            with self.locked():
                return
        with self.mutex:
            self._check_open()
            if self._fd is None:
                self._open_reader()
                return
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                self._close_fd()
                self._reset()
                return
            if (st.st_dev, st.st_ino) != self._ident:
                self._close_fd()
                self._open_reader()
            elif st.st_size != self._offset:
                self._catch_up(locked=False)

    def check(self) -> bool:
        """A writer's cheap look (one stat) for a journal deleted, replaced or cut short behind
        its back; if so, take the lock, which rebuilds it. True when it was."""
        with self.mutex:
            self._check_writable()
            try:
                st = os.stat(self.path)
                same = (st.st_dev, st.st_ino) == self._ident and st.st_size >= self._offset
            except FileNotFoundError:
                same = False
            if same and self._fd is not None and self._rebuild is None:
                return False
            with self.locked():
                return True

    def reload(self) -> None:
        """Forget what is in memory and read the file again (after a failed update)."""
        with self.mutex:
            self._reset()
            if self._fd is not None:
                self._catch_up(locked=self._depth > 0)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file lock, with every record other processes appended already read."""
        self._check_writable()
        with self.mutex:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- opening and locking -------------------------------------------------------------------

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            try:
                fd, existed = os.open(self.path, flags), True
            except FileNotFoundError:
                fd, existed = os.open(self.path, flags | os.O_CREAT, 0o666), False
        except IsADirectoryError:
            raise ConfigError("journal", f"{self.path} is a folder; give a file path") from None
        self._adopt(fd)
        self._found_empty = existed and os.fstat(fd).st_size == 0

    def _open_reader(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._reset()
            return  # nothing was ever journaled: an empty journal, and nothing created
        self._adopt(fd)
        self._catch_up(locked=False)

    def _adopt(self, fd: int) -> None:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise ConfigError("journal", f"{self.path} is {kind}; give a file path")
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self._reset()

    def _acquire(self) -> None:
        while True:
            if self._fd is None:  # lost with the file, and opening its successor failed
                self._check_open()
                self._open_writer()
            fd = self._require_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.stat(self.path)
                current = (st.st_dev, st.st_ino) == self._ident
                how = "replaced"
            except FileNotFoundError:
                current, how = False, "missing"
            if current:
                break
            # Another process replaced the file (a full rewrite) or it was deleted: our
            # descriptor holds a file nobody reads any more. Keep it to read what we had,
            # follow the path, read it anew (``_after_locked_read`` compares the two).
            if self._orphan is None:
                self._orphan = _Orphan(
                    fd, self._ident, how, self._start, self._offset, self._index.total
                )
                fcntl.flock(fd, fcntl.LOCK_UN)
                self._fd, self._ident = None, None
            else:
                self._close_fd()
            self._open_writer()
        try:
            try:
                self._catch_up(locked=True)
            except ConfigError:
                if self._orphan is None:
                    raise
                # What replaced our journal is no journal: keep it, untouched, and start anew.
                self._set_aside_foreign()
                self._catch_up(locked=True)
        except BaseException:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            raise

    def _set_aside_foreign(self) -> None:
        """Rename a file that replaced the journal but is not one to ``JOURNAL.replaced[.N]``,
        and open a new journal in its place."""
        aside = self.path.with_name(self.path.name + ".replaced")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.replaced.{n}")
        os.rename(self.path, aside)
        fsync_dir(self.path.parent)
        self._notice(
            "warning",
            "journal_replaced",
            journal=str(self.path),
            how="replaced by a file that is not a journal",
            kept_in=str(aside),
        )
        self._close_fd()
        self._open_writer()
        fcntl.flock(self._require_fd(), fcntl.LOCK_EX)

    def _remove_stale_temps(self) -> None:
        """Delete temp files of rewrites (and index snapshots) that died before their rename.

        Safe under the lock: a rewrite in progress holds it until its rename is done.
        """
        prefix, suffix = f".{self.path.name}.", ".tmp"
        for name in os.listdir(self.path.parent):
            if name.startswith(prefix) and name.endswith(suffix):
                with suppress(FileNotFoundError):
                    os.unlink(self.path.parent / name)

    # -- reading -------------------------------------------------------------------------------

    def _catch_up(self, *, locked: bool) -> None:
        """Take in the complete lines past ``_offset``; if ``locked``, cut off a torn tail.

        A writer (``locked``) then settles what it found: damage kept aside, a journal that was
        lost or replaced under it rebuilt from what it had.
        """
        self._read_new(locked=locked)
        if locked and not self.readonly:
            self._after_locked_read()

    def _read_new(self, *, locked: bool) -> None:
        fd = self._require_fd()
        size = os.fstat(fd).st_size
        if size < self._offset:
            # Shrunk: cut short or rewritten in place by something else; start again. sp404d
            # itself never shortens a journal below a line another writer has read.
            self._forget("cut short", locked=locked)
        if self._offset == 0:
            if size == 0:
                if locked:
                    if self._found_empty and self._orphan is None:
                        self._notice(
                            "warning",
                            "journal_empty",
                            journal=str(self.path),
                            note="the journal file was empty (0 bytes): the records it held, "
                            "if any, are lost; a new journal starts here",
                        )
                    self._found_empty = False
                    self._start_file()
                return
            self._found_empty = False
            start = self._read_start(size, locked=locked)
            if start is None:
                return
            self._start = self._offset = start
            self._use_snapshot(size)
        if size <= self._offset:
            return
        # From the newline before the new lines: it becomes the "[" of one JSON array.
        base = self._offset - 1
        region = pread_region(fd, base, size)
        if region[:1] != b"\n":  # changed in place by something else: start again
            self._forget("changed in place", locked=locked)
            self._read_new(locked=locked)
            return
        end = region.rfind(b"\n") + 1
        torn = bytes(region[end:])
        del region[end:]
        if end > 1:
            self._offset += end - 1
            self._take(region, base)
        if locked and torn and not self.readonly:
            # Writers only write under this lock, so an unfinished last line is a crashed
            # writer's: cut it off (once it is kept aside), or our append would glue a record
            # onto it.
            self._damage.append(("torn", self._lines + 1, self._offset, torn))

    def _forget(self, how: str, *, locked: bool) -> None:
        """Start reading the file again from its first byte; a writer keeps what it had, to
        check against what the file holds now."""
        if locked and not self.readonly and self._orphan is None:
            self._orphan = _Orphan(
                None, self._ident, how, self._start, self._offset, self._index.total
            )
        self._reset()

    def _read_start(self, size: int, *, locked: bool) -> int | None:
        """Check the header; return where the records start, or ``None`` when none can."""
        fd = self._require_fd()
        head = os.pread(fd, min(size, 1 << 16), 0)
        newline = head.find(b"\n")
        if not head.startswith(HEADER_PREFIX) and not HEADER.startswith(head):
            self._read_foreign(pread_region(fd, 0, size), locked=locked)
            return None
        if newline < 0:
            if size > len(head):
                raise ConfigError("journal", f"{self.path} has a damaged header")
            if locked:  # the header was torn by a crash while the file was being created
                self._start_file()
            return None
        try:
            header = json.loads(head[:newline])
        except ValueError:
            header = None
        self._lines = 1
        if not isinstance(header, dict):
            self._skipped += 1  # a damaged header; the records may well be fine
            if locked and not self.readonly:
                self._damage.append(("damaged header", 1, 0, bytes(head[:newline])))
            return newline + 1
        self._header_replaces = header.get("replaces")
        version = header.get("version")
        if isinstance(version, int) and version > VERSION:
            raise ConfigError(
                "journal", f"{self.path} was written by a newer sp404d (format {version})"
            )
        last_id = header.get("last_id")
        if isinstance(last_id, int):
            self._header_last_id = last_id
            self._index.last_id = max(self._index.last_id, last_id)
        return newline + 1

    def _use_snapshot(self, size: int) -> None:
        """Start from the index's snapshot, if it describes this file's bytes so far."""
        loaded = snapshot.load(index_path(self.path), self._require_fd(), size, self._start)
        if loaded is None:
            return
        index, where = loaded
        index.last_id = max(index.last_id, self._header_last_id)
        self._index, self._saved = index, index.total
        self._offset, self._lines = where.end, where.lines
        self._skipped += index.skipped

    def _read_foreign(self, data: bytearray, *, locked: bool) -> None:
        """Take in a database written by stock TinyDB; a writer converts the file at once."""
        table = stock_tinydb_table(bytes(data), self.path)
        if locked:
            self._rewrite(table, keep_table=False)
            return
        self._foreign = table
        for key, doc in table.items():
            self._index.add(0, int(key), doc)
        self._offset = len(data)
        self.generation += 1

    def _take(self, region: bytearray, base: int) -> None:
        """Take in complete lines: ``region`` is the newline at ``base`` and the lines after."""
        items = decode_region(region)
        starts = line_starts(region, base)
        self._index.add_many(starts, items)
        if self._table is not None:
            self._table.update(as_table(items))
        first_line = self._lines + 1
        self._lines += len(items)
        self.generation += 1
        bad = [i for i, item in enumerate(items) if not is_record_item(item)]
        self._skipped += len(bad)
        if not bad or self.readonly:
            return
        ends = [*(s - 1 for s in starts[1:]), base + len(region) - 1]
        for i in bad:
            raw = bytes(region[starts[i] - base : ends[i] - base])
            self._damage.append(("damaged", first_line + i, starts[i], raw))

    def _decode_all(self) -> dict[str, Record]:
        if self._fd is None or self._offset <= self._start:
            return {}
        return as_table(decode_region(pread_region(self._fd, self._start - 1, self._offset)))

    # -- writing -------------------------------------------------------------------------------

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
            os.replace(tmp, self.path)
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
            self.readonly
            or self._closed
            or self._fd is None
            or self._index.total < SNAPSHOT_MIN
            or self._index.total - self._saved < lag
        ):
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

    # -- what a writer found ---------------------------------------------------------------------

    def _after_locked_read(self) -> None:
        """Keep damage aside, check what we had against a file that changed under us, rewrite
        the file if that is owed (the rewrite's ``OSError`` leaves it owed), and keep the
        index's snapshot current."""
        decoded = self._table is not None
        if self._damage:
            self._keep_aside()
        if self._orphan is not None:
            self._adopt_orphan()
        if self._rebuild is not None:
            why = self._rebuild
            self._rewrite(self.table(), keep_table=decoded)
            self._rebuild, self._sync_error = None, None
            if self._sync_failing:
                self._sync_failing = False
                self._notice("info", "journal_synced", journal=str(self.path))
            self._notice(
                "info",
                "journal_rebuilt",
                journal=str(self.path),
                why=why,
                records=self._index.total,
            )
            return
        self._save_snapshot_if(SNAPSHOT_EVERY, locked=True)

    def _keep_aside(self) -> None:
        """Append the damaged lines to ``JOURNAL.damaged`` (fsynced), then drop them: a torn
        tail is cut off, damaged lines go with a rewrite. What cannot be kept stays put, except
        a torn tail: it is cut off regardless (an append must not glue onto it; it is the
        unfinished line of a writer that died, whose record it never reported written)."""
        found, self._damage = self._damage, []
        error = keep_aside(self.path, found)
        aside = damaged_path(self.path)
        torn = [f for f in found if f[0] == "torn"]
        damaged = [f for f in found if f[0] != "torn"]
        where: dict[str, Any] = {"kept_in": str(aside)} if error is None else {"not_kept": error}
        if torn:
            os.ftruncate(self._require_fd(), self._offset)
            self._notice(
                "info",
                "journal_torn_tail",
                journal=str(self.path),
                bytes=len(torn[0][3]),
                line=torn[0][1],
                **where,
                note="the last line was cut off, as a crash (kill -9, power cut) leaves it; "
                "its job had not been reported written and is redone",
            )
        if damaged:
            if error is None:
                self._rebuild = self._rebuild or "damaged lines dropped (kept aside)"
            self._notice(
                "warning",
                "journal_damaged",
                journal=str(self.path),
                lines=len(damaged),
                line_numbers=[f[1] for f in damaged[:20]],
                **where,
                note="these lines are not records; every other record loads",
            )

    def _adopt_orphan(self) -> None:
        """The file we had was deleted, replaced or cut short: add back what it held.

        A rewrite by another sp404d names the file it replaced (``replaces``): if that is the
        one we had, its content is the truth (it holds every record we had, updated or removed
        through TinyDB on purpose). Anything else is merged record by record
        (:func:`~sp404d._journal_repair.merge`).
        """
        assert self._orphan is not None
        orphan, self._orphan = self._orphan, None
        try:
            followed = orphan.how == "replaced" and orphan.ident is not None
            if followed and self._header_replaces == list(orphan.ident or ()):
                return
            known, lost = self._orphan_records(orphan)
        finally:
            if orphan.fd is not None:
                os.close(orphan.fd)
        decoded = self._table is not None
        merged = merge(known, self.table(), max(self._index.last_id, orphan_last(known)))
        event = "journal_missing" if orphan.how == "missing" else "journal_replaced"
        fields: dict[str, Any] = {"journal": str(self.path), "records_held": orphan.total}
        if orphan.how != "missing":
            fields.update(how=orphan.how, records_in_file=self._index.total)
        if lost:
            fields["lost"] = lost  # cut short in place: older records than this process wrote
        if not merged.missing:  # nothing we knew is lost: what is there now stands
            self._table = self._table if decoded else None
            self._notice("info", event, **fields, restored=0)
            return
        self._table = merged.table
        self._index.last_id = max(self._index.last_id, merged.last_id)
        self.generation += 1
        self._rebuild = f"{orphan.how}: {merged.missing} records restored"
        self._notice(
            "warning",
            event,
            **fields,
            restored=merged.missing,
            kept_from_file=merged.theirs,
            action="rebuilding it from the records this process had",
        )

    def _orphan_records(self, orphan: _Orphan) -> tuple[dict[str, Record], int]:
        """The records of the file we had, and how many of them are gone for good: read from
        its descriptor (a deleted or replaced file lives on while it is open), or, when it was
        cut short in place, the records this process appended itself."""
        if orphan.fd is not None and orphan.end > orphan.start:
            with suppress(OSError):
                region = pread_region(orphan.fd, orphan.start - 1, orphan.end)
                if region[:1] == b"\n" and region[-1:] == b"\n":
                    return as_table(decode_region(region)), 0
        mine = {str(doc_id): json.loads(body) for doc_id, body in self._session}
        return mine, max(0, orphan.total - len(mine))

    # -- durability ----------------------------------------------------------------------------

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

    # -- small helpers -------------------------------------------------------------------------

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
