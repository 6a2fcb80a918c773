"""The journal's file: its line format, and the TinyDB storage that reads and appends it.

Everything about bytes on disk lives here (see :mod:`sp404d.journal` for the format and the
guarantees); ``journal`` keeps the public :class:`~sp404d.journal.Journal` and TinyDB glue.

What a writer finds wrong with the file it is told through ``notice(level, event, **fields)``
(the journal logs it): damaged lines, kept aside in ``JOURNAL.damaged`` before they are dropped;
a torn last line; a file that vanished, was replaced or was cut short while this process held
its records, rebuilt from them; an fsync that failed.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import json
import os
import re
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from itertools import islice
from pathlib import Path
from typing import Any, Final

from tinydb.storages import Storage
from tinydb.table import Document

from sp404d.errors import ConfigError

Record = dict[str, Any]
#: ``notice(level, event, **fields)``: how the storage reports what it found and did.
Notice = Callable[..., None]

_TABLE: Final = "_default"
_FORMAT: Final = "sp404d-journal"
_VERSION: Final = 1
#: Every journal starts with these bytes; a file that does not is never truncated or appended to.
_HEADER_PREFIX: Final = b'{"format":"sp404d-journal"'
#: The header a writer gives a new file (a full rewrite adds ``last_id``).
_HEADER: Final = b'{"format":"sp404d-journal","version":1}\n'
#: A line with the shape of a record; group 1 is its status column, still JSON-escaped.
_RECORD_LINE: Final = re.compile(rb'^\[\d+,"((?:[^"\\\n]|\\.)*)",\{.*\}\]$', re.MULTILINE)
#: When the one-shot decode meets a bad line, lines are retried in chunks of this many.
_CHUNK_LINES: Final = 1024

_dumps: Final = json.JSONEncoder(separators=(",", ":")).encode
# fdatasync skips metadata that does not matter for reading the data back; macOS lacks it.
_fdatasync: Final[Callable[[int], None]] = getattr(os, "fdatasync", os.fsync)


class _Records:
    """The decoded records, in append order, and the indexes built from them.

    ``table`` is exactly what TinyDB's ``Table`` reads from a storage (``str(doc_id)`` ->
    record). Each index is built on first use, in one pass, then kept current by :meth:`add`.
    """

    def __init__(self) -> None:
        self.table: dict[str, Record] = {}
        self.last_id = 0
        self._counts: dict[str, int] | None = None
        self._latest: dict[str, dict[str, str]] = {}  # field -> value -> key of the last record

    def add(self, doc_id: int, doc: Record) -> None:
        key = str(doc_id)
        self.table[key] = doc
        self.last_id = max(self.last_id, doc_id)
        if self._counts is not None:
            status = _status_of(doc)
            self._counts[status] = self._counts.get(status, 0) + 1
        for field, index in self._latest.items():
            value = doc.get(field)
            if isinstance(value, str):
                index[value] = key

    def add_items(self, items: list[Any]) -> list[int]:
        """Add decoded ``[doc_id, status, record]`` lines; return the indexes of the others."""
        indexed = self._counts is not None or bool(self._latest)
        table, last_id = self.table, self.last_id
        bad: list[int] = []
        for i, item in enumerate(items):
            if _is_record_item(item):
                doc_id, doc = item[0], item[2]
                if indexed:
                    self.add(doc_id, doc)
                else:  # the bulk of a load: nothing to keep current yet
                    table[str(doc_id)] = doc
                    last_id = max(last_id, doc_id)
            else:
                bad.append(i)
        self.last_id = max(self.last_id, last_id)
        return bad

    def counts(self) -> dict[str, int]:
        if self._counts is None:
            self._counts = dict(Counter(_status_of(doc) for doc in self.table.values()))
        return dict(self._counts)

    def latest(self, field: str, value: str) -> Record | None:
        index = self._latest.get(field)
        if index is None:
            index = {
                found: key
                for key, doc in self.table.items()
                if isinstance(found := doc.get(field), str)
            }
            self._latest[field] = index
        key = index.get(value)
        if key is None:
            return None
        doc: Record = Document(self.table[key], int(key))
        return doc


def damaged_path(journal: Path) -> Path:
    """Where a writer keeps the damaged lines it finds, one JSON object a line, appended."""
    return journal.with_name(journal.name + ".damaged")


def _no_notice(level: str, event: str, **fields: Any) -> None:
    pass


def _status_of(doc: Mapping[str, Any]) -> str:
    status = doc.get("status")
    return status if isinstance(status, str) else "unknown"


def _is_record_item(item: Any) -> bool:
    return type(item) is list and len(item) == 3 and type(item[0]) is int and type(item[2]) is dict


def _record_line(doc_id: int, doc: Mapping[str, Any]) -> str:
    return f"[{doc_id},{_dumps(_status_of(doc))},{_dumps(doc)}]\n"


class _JournalStorage(Storage):
    """A TinyDB storage on the JSON-lines file: the file's owner and the records' cache.

    ``read()`` hands TinyDB the cached table (no copy, no disk); ``append`` adds lines;
    ``write()``, which TinyDB calls for anything but inserts, rewrites the file atomically.
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
        self._records = _Records()
        # Read-only: complete lines not decoded yet, from the newline before the first one.
        self._pending: bytearray | None = None
        self._pending_counts: tuple[dict[str, int], int, int] | None = None
        self._skipped = 0
        self._notice = notice
        self._sync_interval = sync_interval
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._offset = 0  # bytes of the file taken in; always just after a newline
        self._lines = 0  # complete lines before ``_offset`` (a writer's, for damage reports)
        # A writer's findings, handled before the lock is let go: damaged lines to keep aside
        # as (kind, line number, offset, bytes); the records held when the file we had was
        # found gone, replaced or cut short (records, its identity, how); a rewrite still owed.
        self._damage: list[tuple[str, int, int, bytes]] = []
        self._orphan: tuple[_Records, tuple[int, int] | None, str] | None = None
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
            except OSError as exc:  # said once already (journal_sync_failed); closing goes on
                if not self._sync_failing:
                    self._notice(
                        "warning",
                        "journal_sync_failed",
                        journal=str(self.path),
                        reason=_reason(exc),
                    )
            finally:
                self._close_fd()
                self._closed = True

    # -- what Journal and the table call -------------------------------------------------------

    @property
    def records(self) -> _Records:
        """The decoded records (a read-only journal decodes its lines on first use)."""
        with self.mutex:
            pending, self._pending, self._pending_counts = self._pending, None, None
            if pending is not None:
                self._decode(pending)
            return self._records

    def counts(self) -> dict[str, int]:
        with self.mutex:
            if self._pending is None:
                return self._records.counts()
            return dict(self._scan_pending()[0])

    def total(self) -> int:
        with self.mutex:
            if self._pending is None:
                return len(self._records.table)
            return self._scan_pending()[1]

    def skipped_lines(self) -> int:
        with self.mutex:
            if self._pending is None:
                return self._skipped
            return self._skipped + self._scan_pending()[2]

    def newest(self, limit: int | None) -> list[Record]:
        with self.mutex:
            if self._pending is None or limit is None or limit > _CHUNK_LINES:
                items = reversed(self.records.table.items())
                return [Document(doc, int(key)) for key, doc in islice(items, limit)]
            return _newest_lines(self._pending, limit)

    def append(self, documents: Sequence[Mapping[Any, Any]]) -> list[int]:
        """Append documents as lines with one write; return their doc ids."""
        self._check_writable()
        encoded: list[tuple[int | None, str, str]] = []
        for document in documents:  # serialise before taking the lock
            if not isinstance(document, Mapping):
                raise ValueError("Document is not a Mapping")
            explicit = int(document.doc_id) if isinstance(document, Document) else None
            encoded.append((explicit, _dumps(_status_of(document)), _dumps(dict(document))))
        if not encoded:
            return []
        with self.locked():
            records = self.records
            next_id, ids = records.last_id, []
            for explicit, _, _ in encoded:
                if explicit is None:
                    next_id += 1
                    ids.append(next_id)
                elif str(explicit) in records.table or explicit in ids:
                    raise ValueError(f"Document with ID {explicit} already exists")
                else:
                    ids.append(explicit)
                    next_id = max(next_id, explicit)
            lines = zip(ids, encoded, strict=True)
            self._append_bytes("".join(f"[{i},{s},{body}]\n" for i, (_, s, body) in lines).encode())
            for doc_id, (_, _, body) in zip(ids, encoded, strict=True):
                # Keep what a reload would read, not the caller's mutable (maybe tuple-ish) object.
                records.add(doc_id, json.loads(body))
            self.generation += 1
            self._after_append()
        return ids

    def sync(self) -> None:
        """fsync now if anything was appended since the last one.

        An append never raises for its fsync (its line is written, only its durability is
        late). After an fsync failed, what was written since the last good one may be lost from
        the disk even if a later fsync succeeds, so the whole file is then written anew (temp
        file, fsync, rename) from the records in memory, by this call or the next append. Raises
        the ``OSError`` while the records are not all durable.
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
            else:
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
            # descriptor holds a file nobody reads any more. Follow the path, read it anew;
            # what we held is checked against it once it is read (``_after_locked_read``).
            if self._orphan is None:
                self._orphan = (self._records, self._ident, how)
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
        _fsync_dir(self.path.parent)
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
        """Delete temp files of rewrites that died before their rename.

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
        lost or replaced under it rebuilt from the records it held.
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
            self._offset = start
        if size <= self._offset:
            return
        # From the newline before the new lines: it becomes the "[" of one JSON array.
        base = self._offset - 1
        region = _pread_region(fd, base, size)
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
        """Start reading the file again from its first byte; a writer keeps what it held, to
        check against what the file holds now."""
        if locked and not self.readonly and self._orphan is None:
            self._orphan = (self._records, self._ident, how)
        self._reset()

    def _read_start(self, size: int, *, locked: bool) -> int | None:
        """Check the header; return where the records start, or ``None`` when none can."""
        fd = self._require_fd()
        head = os.pread(fd, min(size, 1 << 16), 0)
        newline = head.find(b"\n")
        if not head.startswith(_HEADER_PREFIX) and not _HEADER.startswith(head):
            self._read_foreign(_pread_region(fd, 0, size), locked=locked)
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
        if isinstance(version, int) and version > _VERSION:
            raise ConfigError(
                "journal", f"{self.path} was written by a newer sp404d (format {version})"
            )
        last_id = header.get("last_id")
        if isinstance(last_id, int):
            self._records.last_id = max(self._records.last_id, last_id)
        return newline + 1

    def _read_foreign(self, data: bytearray, *, locked: bool) -> None:
        """Take in a database written by stock TinyDB; a writer converts the file at once."""
        table = _stock_tinydb_table(bytes(data), self.path)
        if locked:
            self._rewrite(table)
            return
        for key, doc in table.items():
            self._records.add(int(key), doc)
        self._offset = len(data)
        self.generation += 1

    def _take(self, region: bytearray, base: int) -> None:
        """Take in complete lines: ``region`` is the newline at ``base`` and the lines after."""
        if self.readonly and (self._pending is not None or not self._records.table):
            # Nothing decoded yet: keep the bytes; status needs no more than a scan of them.
            if self._pending is None:
                self._pending = region
            else:
                self._pending += memoryview(region)[1:]
            self._pending_counts = None
        else:
            self._decode(region, None if self.readonly else base)
        self.generation += 1

    def _decode(self, region: bytearray, base: int | None = None) -> None:
        """Decode lines into records; ``base`` (a writer's): the file offset of ``region``, so
        that damaged lines can be kept aside with their line numbers and offsets."""
        with _gc_paused():
            items = _decode_region(region)
            bad = self._records.add_items(items)
        self._skipped += len(bad)
        first_line = self._lines + 1
        self._lines += len(items)
        if not bad or base is None:
            return
        lines = bytes(region[1:-1]).split(b"\n")
        offsets = [0] * len(lines)
        at = base + 1
        for i, line in enumerate(lines):
            offsets[i] = at
            at += len(line) + 1
        for i in bad:
            self._damage.append(("damaged", first_line + i, offsets[i], lines[i]))

    def _scan_pending(self) -> tuple[dict[str, int], int, int]:
        """(counts by status, records, bad lines) of the undecoded lines, from one regex scan."""
        if self._pending_counts is None:
            pending = self._pending if self._pending is not None else bytearray(b"\n")
            statuses = Counter(_RECORD_LINE.findall(pending))
            counts: dict[str, int] = {}
            for raw, n in statuses.items():
                status = json.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode()
                counts[status] = counts.get(status, 0) + n
            total = sum(statuses.values())
            self._pending_counts = counts, total, pending.count(b"\n") - 1 - total
        return self._pending_counts

    # -- writing -------------------------------------------------------------------------------

    def _start_file(self) -> None:
        """Give an empty (or torn-at-birth) file its header, durably, folder entry included."""
        fd = self._require_fd()
        os.ftruncate(fd, 0)
        self._offset = self._lines = 0
        self._append_bytes(_HEADER)
        _fdatasync(fd)
        _fsync_dir(self.path.parent)

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

    def _rewrite(self, table: Mapping[Any, Mapping[str, Any]]) -> None:
        """Replace the file with ``table``: temp file, fsync, rename, fsync the folder."""
        records = _Records()
        records.last_id = self._records.last_id
        lines: list[str] = []
        for key, doc in table.items():
            doc_id = int(key)
            lines.append(_record_line(doc_id, doc))
            records.add(doc_id, dict(doc))
        header: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "last_id": records.last_id,
        }
        if self._ident is not None:  # so that other writers know the file they had was ours
            header["replaces"] = list(self._ident)
        payload = (_dumps(header) + "\n" + "".join(lines)).encode()
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
        self._records, self._pending, self._pending_counts = records, None, None
        self._offset, self._dirty = len(payload), False
        self._lines = len(lines) + 1
        self.generation += 1
        _fsync_dir(self.path.parent)

    # -- what a writer found ---------------------------------------------------------------------

    def _after_locked_read(self) -> None:
        """Keep damage aside, check the records we held against a file that changed under us,
        and rewrite the file if that is owed (the rewrite's ``OSError`` leaves it owed)."""
        if self._damage:
            self._keep_aside()
        if self._orphan is not None:
            self._adopt_orphan()
        if self._rebuild is not None:
            why = self._rebuild
            self._rewrite(self._records.table)
            self._rebuild, self._sync_error = None, None
            if self._sync_failing:
                self._sync_failing = False
                self._notice("info", "journal_synced", journal=str(self.path))
            self._notice(
                "info",
                "journal_rebuilt",
                journal=str(self.path),
                why=why,
                records=len(self._records.table),
            )

    def _keep_aside(self) -> None:
        """Append the damaged lines to ``JOURNAL.damaged`` (fsynced), then drop them: a torn
        tail is cut off, damaged lines go with a rewrite. What cannot be kept stays put, except
        a torn tail: it is cut off regardless (an append must not glue onto it; it is the
        unfinished line of a writer that died, whose record it never reported written)."""
        found, self._damage = self._damage, []
        aside = damaged_path(self.path)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        payload = "".join(
            _dumps(
                {
                    "found_at": at,
                    "journal": str(self.path),
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
        error: str | None = None
        try:
            _append_durably(aside, payload)
        except OSError as exc:
            error = _reason(exc)
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
        """The file we had was deleted, replaced or cut short: add back what we held.

        A rewrite by another sp404d names the file it replaced (``replaces``): if that is the
        one we had, its content is the truth (it holds every record we held, updated or removed
        through TinyDB on purpose). Anything else is checked record by record: the records we
        held and it lacks are written back with their ids (or new ones, if it reused an id),
        and whatever it holds that we did not is kept too.
        """
        assert self._orphan is not None
        known, ident, how = self._orphan
        self._orphan = None
        if how == "replaced" and ident is not None and self._header_replaces == list(ident):
            return
        current = self._records
        merged = _Records()
        missing = 0
        for key, doc in known.table.items():
            merged.add(int(key), doc)
            if current.table.get(key) != doc:
                missing += 1
        next_id = max(known.last_id, current.last_id)
        theirs = 0
        for key, doc in current.table.items():
            mine = known.table.get(key)
            if mine == doc:
                continue
            theirs += 1
            if mine is None:
                merged.add(int(key), doc)
            else:  # the same id for another record: a new id for it
                next_id += 1
                merged.add(next_id, doc)
        merged.last_id = max(merged.last_id, next_id)
        event = "journal_missing" if how == "missing" else "journal_replaced"
        fields: dict[str, Any] = {"journal": str(self.path), "records_held": len(known.table)}
        if how != "missing":
            fields.update(how=how, records_in_file=len(current.table))
        if not missing:  # nothing we knew is lost: what is there now stands
            self._notice("info", event, **fields, restored=0)
            return
        self._records = merged
        self.generation += 1
        self._rebuild = f"{how}: {missing} records restored from memory"
        self._notice(
            "warning",
            event,
            **fields,
            restored=missing,
            kept_from_file=theirs,
            action="rebuilding it from the records this process holds",
        )

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
                reason=_reason(exc),
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
        self._records, self._pending, self._pending_counts = _Records(), None, None
        self._offset = self._lines = 0
        self._header_replaces = None
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


def _decode_region(region: bytearray) -> list[Any]:
    """Decode the lines of ``region`` (newline, lines, newline): one item a line, ``None`` for
    a line that is not JSON (the caller counts it with the items that are not records).

    One ``json.loads`` over the lines turned into one JSON array is several times faster than
    one call per line; doing it in place (the newlines become the commas and brackets) spares
    copies of a file that may be 100 MB. A bad line spoils the array, so then chunks of lines
    are tried, and single lines only inside a chunk that fails.
    """
    expected = region.count(b"\n") - 1
    array = region.replace(b"\n", b",")
    array[0], array[-1] = ord("["), ord("]")
    items = _loads_list(array, expected)
    if items is not None:
        return items
    lines = bytes(region[1:-1]).split(b"\n")
    decoded: list[Any] = []
    for first in range(0, len(lines), _CHUNK_LINES):
        chunk = lines[first : first + _CHUNK_LINES]
        chunk_items = _loads_list(b"[" + b",".join(chunk) + b"]", len(chunk))
        if chunk_items is None:
            chunk_items = []
            for line in chunk:
                one = _loads_list(b"[" + line + b"]", 1)
                # Blank lines too are bad: the fast scan of a read-only journal agrees.
                chunk_items.append(None if one is None else one[0])
        decoded.extend(chunk_items)
    return decoded


def _loads_list(array: bytes | bytearray, expected: int) -> list[Any] | None:
    """Decode a JSON array; ``None`` unless it holds exactly ``expected`` values.

    The count catches a damaged line that still decodes, like ``1,2``.
    """
    try:
        items = json.loads(array)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, absurd nesting
        return None
    if isinstance(items, list) and len(items) == expected:
        return items
    return None


def _newest_lines(region: bytearray, limit: int) -> list[Record]:
    """The last ``limit`` records of undecoded lines, newest first, decoding only those."""
    found: list[Record] = []
    end = len(region) - 1  # the newline that ends the last line
    while len(found) < limit and end > 0:
        start = region.rfind(b"\n", 0, end) + 1
        item = _loads_list(b"[" + region[start:end] + b"]", 1)
        if item is not None and _is_record_item(item[0]):
            found.append(Document(item[0][2], item[0][0]))
        end = start - 1
    return found


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while decoding: it would otherwise rescan the young records again and
    again as they pile up (a third of the load time at 100,000 records)."""
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


def _pread_region(fd: int, start: int, stop: int) -> bytearray:
    """Bytes ``start:stop`` of the file, straight into a buffer we may edit in place."""
    buffer = bytearray(stop - start)
    got = 0
    while got < len(buffer):
        n = os.preadv(fd, [memoryview(buffer)[got:]], start + got)
        if n == 0:  # the file shrank since we looked
            del buffer[got:]
            break
        got += n
    return buffer


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _append_durably(path: Path, payload: bytes) -> None:
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
        _fsync_dir(path.parent)


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
