"""The job journal: TinyDB's API and records, on a file that survives kill -9 and grows cheaply.

TinyDB's own ``JSONStorage`` rewrites the whole file, in place, on every insert: the cost grows
with the journal (1.3 s per insert at 100,000 records) and a crash mid-write tears the file.
Here TinyDB keeps its API and documents, and this module owns how they reach the disk::

    {"format":"sp404d-journal","version":1}        <- header: says what the file is
    [1,{"source":"/in/kick.wav","status":"done"}]   <- one line per record: [doc_id, record]
    [2,{"source":"/in/snare.aif","status":"failed"}]

- **Append** is one ``os.write`` of whole lines on an ``O_APPEND`` descriptor, under ``flock``:
  the cost does not depend on the journal's size, and a kill -9 can leave at most a torn last
  line (no newline). Readers ignore it; the next writer truncates it, under the lock, before it
  appends. A corrupt line elsewhere is skipped and counted: the journal always loads.
- **update / remove / truncate** through TinyDB rewrite the whole file atomically (temp file,
  fsync, rename, fsync of the folder): they stay O(n) like TinyDB's, but never tear the file.
- **Several processes** (the daemon and a one-shot ``sp404d convert``) may write at once. Under
  the lock a writer first reads what the others appended, so doc ids stay unique and indexes
  current. A read-only opener (``sp404d status``) takes no lock, writes and creates nothing, and
  reads only complete lines: it never sees a torn file.
- **Durability**: every append reaches the OS before ``append`` returns, which is all a kill -9
  needs. ``fsync`` (for power loss) is grouped: at most one every ``sync_interval`` seconds,
  started by the first append after a quiet spell and closed by a timer, so an isolated record
  is on disk at once and a burst of records costs a few fsyncs instead of one each; a power cut
  loses at most the last ``sync_interval`` seconds. ``sync_interval=0`` fsyncs every append.

The records live in memory (loading 100,000 of them takes about half a second: one ``json.loads``
over the whole file), so TinyDB queries never touch the disk. ``Journal`` methods may be called
from several threads; TinyDB's API on ``Journal.db`` should stay in one thread, as TinyDB advises.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from sp404d.errors import ConfigError

__all__ = ["Journal"]

Record = dict[str, Any]

_TABLE: Final = "_default"
_FORMAT: Final = "sp404d-journal"
_VERSION: Final = 1
#: Every journal starts with these bytes; anything else is not ours and is never truncated.
_HEADER_PREFIX: Final = b'{"format":"sp404d-journal"'
#: The header a writer puts in a new file (a full rewrite adds ``last_id``).
_HEADER: Final = b'{"format":"sp404d-journal","version":1}\n'
#: When the one-shot parse meets a bad line, lines are retried in chunks of this many.
_CHUNK_LINES: Final = 1024

_dumps: Final = json.JSONEncoder(separators=(",", ":")).encode
# fdatasync skips metadata that does not matter for reading the data back; macOS lacks it.
_fdatasync: Final[Callable[[int], None]] = getattr(os, "fdatasync", os.fsync)


class Journal:
    """One record per finished job, in a crash-safe JSON-lines file, behind TinyDB's API.

    ``db`` is a real :class:`tinydb.TinyDB` (records in its default table), so
    ``journal.db.search(Query().status == "done")`` works. What it holds is what this process
    has read: call :meth:`refresh` to see records other processes appended since (a writer
    also sees them whenever it appends).

    Opening for writing creates the file and its folders. Opening read-only never creates or
    writes anything; a missing journal is simply empty. A path that cannot be a journal (a
    folder, unreadable, another kind of file) raises :class:`~sp404d.errors.ConfigError`.
    """

    def __init__(self, path: Path, *, readonly: bool = False, sync_interval: float = 0.2) -> None:
        self.path = Path(path)
        self.db: TinyDB = _JournalDB(
            self.path, readonly=readonly, sync_interval=sync_interval, storage=_JournalStorage
        )
        self._storage = cast(_JournalStorage, self.db.storage)

    def append(self, record: Mapping[str, Any]) -> int:
        """Add one record (a JSON-serialisable mapping); return its doc id.

        When this returns, the record is in the OS's hands: a kill -9 cannot lose it.
        """
        doc_id: int = self.db.insert(record)
        return doc_id

    def sync(self) -> None:
        """Force what was appended so far onto the disk (fsync) now."""
        self._storage.sync()

    def close(self) -> None:
        """Sync and close; further appends raise ``ValueError``. Closing twice is harmless."""
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def refresh(self) -> None:
        """Read records other processes appended since; costs a stat or two when none were."""
        self._storage.refresh()

    @property
    def skipped_lines(self) -> int:
        """How many corrupt lines were ignored while reading the file."""
        return self._storage.skipped_lines

    def __len__(self) -> int:
        return len(self._storage.records.table)

    def all(self) -> list[dict[str, Any]]:
        """Every record, in append order (each a ``tinydb.table.Document`` with ``doc_id``)."""
        with self._storage.mutex:
            return [Document(doc, int(key)) for key, doc in self._storage.records.table.items()]

    def newest(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The ``limit`` most recently appended records, newest first (all when ``None``)."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        with self._storage.mutex:
            items = reversed(self._storage.records.table.items())
            return [Document(doc, int(key)) for key, doc in islice(items, limit)]

    def latest_by_key(self, key: str) -> dict[str, Any] | None:
        """The last record appended for a job ``key``, or ``None``."""
        with self._storage.mutex:
            return self._storage.records.latest("key", key)

    def latest_by_source(self, source: str) -> dict[str, Any] | None:
        """The last record appended for a ``source`` path, or ``None``."""
        with self._storage.mutex:
            return self._storage.records.latest("source", source)

    def counts(self) -> dict[str, int]:
        """How many records have each ``status`` (records without one count as ``"unknown"``)."""
        with self._storage.mutex:
            return self._storage.records.counts()


class _Records:
    """The records in memory, in append order, and the indexes built from them.

    ``table`` is exactly what TinyDB's ``Table`` reads from a storage (``str(doc_id)`` ->
    record). Each index is built on first use, in one pass, then kept current by :meth:`add`:
    ``status`` only needs the counts, so a reader never pays for the other two.
    """

    def __init__(self) -> None:
        self.table: dict[str, Record] = {}
        self.last_id = 0
        self._counts: dict[str, int] | None = None
        self._latest: dict[str, dict[Any, str]] = {}  # field -> value -> doc id of the last

    def add(self, doc_id: int, doc: Record) -> None:
        key = str(doc_id)
        self.table[key] = doc
        self.last_id = max(self.last_id, doc_id)
        if self._counts is not None:
            status = _status_of(doc)
            self._counts[status] = self._counts.get(status, 0) + 1
        for field, index in self._latest.items():
            index[doc.get(field)] = key

    def add_items(self, items: list[Any]) -> int:
        """Add decoded ``[doc_id, record]`` items; return how many were not records."""
        indexed = self._counts is not None or bool(self._latest)
        table, last_id, bad = self.table, self.last_id, 0
        for item in items:
            if type(item) is list and len(item) == 2:
                doc_id, doc = item
                if type(doc_id) is int and type(doc) is dict:
                    if indexed:
                        self.add(doc_id, doc)
                    else:  # the bulk of a load: nothing to keep current yet
                        table[str(doc_id)] = doc
                        last_id = max(last_id, doc_id)
                    continue
            bad += 1
        self.last_id = max(self.last_id, last_id)
        return bad

    def counts(self) -> dict[str, int]:
        if self._counts is None:
            counts: dict[str, int] = {}
            for doc in self.table.values():
                status = _status_of(doc)
                counts[status] = counts.get(status, 0) + 1
            self._counts = counts
        return dict(self._counts)

    def latest(self, field: str, value: str) -> Record | None:
        index = self._latest.get(field)
        if index is None:
            index = {doc.get(field): key for key, doc in self.table.items()}
            self._latest[field] = index
        key = index.get(value)
        if key is None:
            return None
        doc: Record = Document(self.table[key], int(key))
        return doc


def _status_of(doc: Record) -> str:
    status = doc.get("status")
    return status if isinstance(status, str) else "unknown"


class _JournalStorage(Storage):
    """A TinyDB storage on the JSON-lines file: the file's owner, and the records' cache.

    ``read()`` hands TinyDB the cached table (no copy, no disk); ``append`` adds lines;
    ``write()``, which TinyDB calls for anything but inserts, rewrites the file atomically.
    """

    def __init__(self, path: Path, *, readonly: bool, sync_interval: float) -> None:
        super().__init__()
        if sync_interval < 0:
            raise ValueError(f"sync_interval must be >= 0, not {sync_interval}")
        self.path = path
        self.readonly = readonly
        self.records = _Records()
        self.skipped_lines = 0
        #: Bumped whenever ``records`` changes, so tables know their query cache is stale.
        self.generation = 0
        #: Guards everything below against this process's other threads (flock does not).
        self.mutex = threading.RLock()
        self._sync_interval = sync_interval
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._offset = 0  # bytes of the file read into ``records``, always at a line end
        self._foreign = False  # a stock TinyDB file, read but not migrated (read-only)
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
            reason = exc.strerror or str(exc)
            raise ConfigError("journal", f"cannot open {path}: {reason}") from exc
        except BaseException:
            self._close_fd()
            raise

    # -- TinyDB's Storage interface ------------------------------------------------------------

    def read(self) -> dict[str, dict[str, Any]] | None:
        table = self.records.table
        return {_TABLE: table} if table else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        others = sorted(name for name, table in data.items() if name != _TABLE and table)
        if others:
            raise ValueError(f"the journal keeps only TinyDB's default table, not {others}")
        with self.locked():
            self._rewrite(data.get(_TABLE, {}))

    def close(self) -> None:
        with self.mutex:
            timer, self._timer = self._timer, None
            self._closing = True
        if timer is not None:  # outside the mutex: a timer that already fired waits for it
            timer.cancel()
            timer.join(timeout=5)
        with self.mutex:
            try:
                self.sync()
            finally:
                self._close_fd()
                self._closed = True

    # -- what Journal and the table call -------------------------------------------------------

    def append(self, documents: Sequence[Mapping[Any, Any]]) -> list[int]:
        """Append documents as lines with one write; return their doc ids."""
        self._check_writable()
        bodies: list[tuple[int | None, str]] = []
        for document in documents:
            if not isinstance(document, Mapping):
                raise ValueError("Document is not a Mapping")
            explicit = int(document.doc_id) if isinstance(document, Document) else None
            bodies.append((explicit, _dumps(dict(document))))  # serialise before locking
        with self.locked():
            table, next_id = self.records.table, self.records.last_id
            ids: list[int] = []
            for explicit, _ in bodies:
                if explicit is None:
                    next_id += 1
                    ids.append(next_id)
                elif str(explicit) in table or explicit in ids:
                    raise ValueError(f"Document with ID {explicit} already exists")
                else:
                    ids.append(explicit)
                    next_id = max(next_id, explicit)
            lines = [f"[{doc_id},{body}]\n" for doc_id, (_, body) in zip(ids, bodies, strict=True)]
            self._append_bytes("".join(lines).encode())
            for doc_id, (_, body) in zip(ids, bodies, strict=True):
                # Keep what a reload would read, not the caller's (mutable, maybe non-JSON) object.
                self.records.add(doc_id, json.loads(body))
            self.generation += 1
            self._after_append()
        return ids

    def sync(self) -> None:
        """fsync now if anything was appended since the last one."""
        with self.mutex:
            error, self._sync_error = self._sync_error, None
            if self._dirty and self._fd is not None:
                self._sync_now()
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
            else:
                self._catch_up(locked=False)

    def reload(self) -> None:
        """Forget the records in memory and read the file again (after a failed update)."""
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
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._adopt(os.open(self.path, flags, 0o666))

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
            fd = self._require_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.stat(self.path)
                current = (st.st_dev, st.st_ino) == self._ident
            except FileNotFoundError:
                current = False
            if current:
                break
            # Another process replaced the file (a full rewrite) or it was deleted: our
            # descriptor holds a file nobody reads any more. Follow the path and read it anew.
            self._close_fd()
            self._open_writer()
        try:
            self._catch_up(locked=True)
        except BaseException:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            raise

    def _remove_stale_temps(self) -> None:
        """Delete temp files of rewrites that died before their rename.

        Safe under the lock: a rewrite in progress holds the lock until its rename is done.
        """
        prefix, suffix = f".{self.path.name}.", ".tmp"
        for name in os.listdir(self.path.parent):
            if name.startswith(prefix) and name.endswith(suffix):
                with suppress(FileNotFoundError):
                    os.unlink(self.path.parent / name)

    # -- reading -------------------------------------------------------------------------------

    def _catch_up(self, *, locked: bool) -> None:
        """Read the complete lines past ``_offset``; if ``locked``, truncate a torn tail."""
        fd = self._require_fd()
        size = os.fstat(fd).st_size
        if size < self._offset or (self._foreign and size != self._offset):
            self._reset()  # rewritten in place by something else: start again
        if size == self._offset:
            if size == 0 and locked:
                self._start_file()
            return
        base = self._offset
        data = _pread_all(fd, size - base, base)
        start = 0
        if base == 0:
            header_end = self._read_header(data, locked=locked)
            if header_end is None:
                return
            start = header_end
        end = data.rfind(b"\n") + 1
        if end > start:
            with _gc_paused():
                items, bad = _decode_lines(data[start:end])
                bad += self.records.add_items(items)
            self.skipped_lines += bad
            self.generation += 1
        self._offset = base + max(start, end)
        if locked and self._offset < size:
            # Writers only write under this lock, so an unfinished last line is a crashed
            # writer's: cut it off, or our append would glue a record onto it.
            os.ftruncate(fd, self._offset)

    def _read_header(self, data: bytes, *, locked: bool) -> int | None:
        """Check the first line; return where the records start, ``None`` if none can."""
        if not data.startswith(_HEADER_PREFIX):
            if _HEADER.startswith(data):  # a header torn while the file was being created
                if locked:
                    self._start_file()
            else:
                self._read_foreign(data, locked=locked)
            return None
        newline = data.find(b"\n")
        if newline < 0:
            if locked:
                self._start_file()
            return None
        try:
            header = json.loads(data[:newline])
        except ValueError:
            header = None
        if not isinstance(header, dict):
            self.skipped_lines += 1  # a damaged header: the records may still be fine
            return newline + 1
        version = header.get("version")
        if isinstance(version, int) and version > _VERSION:
            raise ConfigError(
                "journal", f"{self.path} was written by a newer sp404d (format {version})"
            )
        last_id = header.get("last_id")
        if isinstance(last_id, int):
            self.records.last_id = max(self.records.last_id, last_id)
        return newline + 1

    def _read_foreign(self, data: bytes, *, locked: bool) -> None:
        """Take in a database written by stock TinyDB; a writer converts the file at once."""
        table = _stock_tinydb_table(data, self.path)
        if locked:
            self._rewrite(table)
            return
        for key, doc in table.items():
            self.records.add(int(key), doc)
        self._offset, self._foreign = len(data), True
        self.generation += 1

    # -- writing -------------------------------------------------------------------------------

    def _start_file(self) -> None:
        """Give an empty (or torn-at-birth) file its header, durably, folder entry included."""
        fd = self._require_fd()
        os.ftruncate(fd, 0)
        self._offset = 0
        self._append_bytes(_HEADER)
        _fdatasync(fd)
        _fsync_dir(self.path.parent)

    def _append_bytes(self, payload: bytes) -> None:
        fd = self._require_fd()
        view, written = memoryview(payload), 0
        try:
            while written < len(payload):  # one write, unless the OS takes part of it
                written += os.write(fd, view[written:])
        except BaseException:
            if written:  # leave no partial line behind us (disk full, signal)
                with suppress(OSError):
                    os.ftruncate(fd, self._offset)
            raise
        self._offset += len(payload)

    def _rewrite(self, table: Mapping[Any, Mapping[str, Any]]) -> None:
        """Replace the file with ``table``: temp file, fsync, rename, fsync the folder."""
        records = _Records()
        records.last_id = self.records.last_id
        lines: list[str] = []
        for key, doc in table.items():
            doc_id = int(key)
            lines.append(f"[{doc_id},{_dumps(doc)}]\n")
            records.add(doc_id, dict(doc))
        header = {"format": _FORMAT, "version": _VERSION, "last_id": records.last_id}
        payload = (_dumps(header) + "\n" + "".join(lines)).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            # Locked before it has a name: whoever opens the new file waits until we are done.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._fd is not None:
                os.fchmod(fd, stat.S_IMODE(os.fstat(self._fd).st_mode))
            view = memoryview(payload)
            written = 0
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
        self._close_fd()  # also releases the old file's lock: its waiters will follow the path
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self.records, self._offset, self._foreign = records, len(payload), False
        self._dirty = False
        self.generation += 1
        _fsync_dir(self.path.parent)

    # -- durability ----------------------------------------------------------------------------

    def _after_append(self) -> None:
        self._dirty = True
        since = time.monotonic() - self._last_sync
        if since >= self._sync_interval:
            self._sync_now()
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
                    self._sync_error = exc

    def _sync_now(self) -> None:
        _fdatasync(self._require_fd())
        self._dirty = False
        self._last_sync = time.monotonic()

    # -- small helpers -------------------------------------------------------------------------

    def _reset(self) -> None:
        self.records = _Records()
        self._offset, self._foreign = 0, False
        self.generation += 1

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd, self._ident = None, None

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"journal {self.path} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.readonly:
            raise PermissionError(f"journal {self.path} was opened read-only")

    def _require_fd(self) -> int:
        self._check_open()
        if self._fd is None:
            raise ValueError(f"journal {self.path} is not open")
        return self._fd


class _JournalTable(Table):
    """TinyDB's ``Table`` with O(1) inserts: one appended line, not a rewritten file.

    Stock ``insert`` goes through ``_update_table``, which copies the whole table and writes it
    all back. Everything else stays stock; ``_update_table`` only gains the file lock, so a
    rewrite includes whatever other processes appended just before it.
    """

    _seen_generation = -1

    @property
    def _journal(self) -> _JournalStorage:
        return cast(_JournalStorage, self._storage)

    def insert(self, document: Mapping[Any, Any]) -> int:
        return self.insert_multiple([document])[0]

    def insert_multiple(self, documents: Iterable[Mapping[Any, Any]]) -> list[int]:
        if self.name != _TABLE:
            raise ValueError(f"the journal keeps only TinyDB's default table, not {self.name!r}")
        return self._journal.append(list(documents))

    def search(self, cond: Any) -> list[Document]:
        # The query cache must not outlive records read from other processes.
        if self._seen_generation != self._journal.generation:
            self.clear_cache()
            self._seen_generation = self._journal.generation
        results: list[Document] = super().search(cond)
        return results

    def _update_table(self, updater: Callable[[dict[int, Mapping[Any, Any]]], None]) -> None:
        with self._journal.locked():
            try:
                super()._update_table(updater)
            except BaseException:
                # The updater may have changed cached records in place before failing.
                self._journal.reload()
                raise


class _JournalDB(TinyDB):
    """TinyDB with the journal's table class; dropping tables holds the file lock too."""

    table_class = _JournalTable
    default_table_name = _TABLE

    def drop_tables(self) -> None:
        with cast(_JournalStorage, self.storage).locked():
            super().drop_tables()

    def drop_table(self, name: str) -> None:
        with cast(_JournalStorage, self.storage).locked():
            super().drop_table(name)


# -- decoding ----------------------------------------------------------------------------------


def _decode_lines(blob: bytes) -> tuple[list[Any], int]:
    """Decode complete lines (``blob`` ends with a newline); return (items, undecodable lines).

    One ``json.loads`` over the lines joined into one JSON array is about four times faster
    than one call per line. A bad line spoils the whole array, so then chunks are tried, and
    single lines only inside a chunk that fails: one corrupt line costs little.
    """
    body = blob[:-1]
    items = _decode_array(body, blob.count(b"\n"))
    if items is not None:
        return items, 0
    lines = [line for line in body.split(b"\n") if line.strip()]
    decoded: list[Any] = []
    bad = 0
    for first in range(0, len(lines), _CHUNK_LINES):
        chunk = lines[first : first + _CHUNK_LINES]
        chunk_items = _decode_array(b"\n".join(chunk), len(chunk))
        if chunk_items is None:
            chunk_items = []
            for line in chunk:
                one = _decode_array(line, 1)
                if one is None:
                    bad += 1
                else:
                    chunk_items.extend(one)
        decoded.extend(chunk_items)
    return decoded, bad


def _decode_array(lines: bytes, expected: int) -> list[Any] | None:
    """Decode newline-separated JSON values; ``None`` unless exactly ``expected`` came out.

    The count guards against a damaged line that still parses, like ``1,2``.
    """
    try:
        items = json.loads(b"[" + lines.replace(b"\n", b",") + b"]")
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, absurd nesting
        return None
    if isinstance(items, list) and len(items) == expected:
        return items
    return None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while decoding: it would otherwise rescan the young records over and
    over as they pile up (a third of the load time at 100,000 records)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stock_tinydb_table(data: bytes, path: Path) -> dict[str, Record]:
    """The default table of a file written by TinyDB's ``JSONStorage``, checked."""
    not_journal = ConfigError(
        "journal", f"{path} is neither an sp404d journal nor a TinyDB database; not touching it"
    )
    try:
        tables = json.loads(data)
    except (ValueError, RecursionError):
        raise not_journal from None
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise not_journal
    others = sorted(name for name, table in tables.items() if name != _TABLE and table)
    if others:
        raise ConfigError("journal", f"{path} has TinyDB tables the journal cannot keep: {others}")
    table: dict[str, Any] = tables.get(_TABLE, {})
    if not all(key.isdigit() and isinstance(doc, dict) for key, doc in table.items()):
        raise not_journal
    return table


# -- file system helpers -----------------------------------------------------------------------


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:  # the file shrank since we looked
            break
        chunks.append(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _fsync_dir(folder: Path) -> None:
    """Make a new or renamed directory entry durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems that cannot
            raise
    finally:
        os.close(fd)
