"""The job journal: TinyDB's API and records, on a file that survives kill -9 and grows cheaply.

TinyDB's own ``JSONStorage`` rewrites the whole file, in place, on every insert: the cost grows
with the journal (1.3 s per insert at 100,000 records) and a crash mid-write tears the file.
Here TinyDB keeps its API and documents, and this module owns how they reach the disk::

    {"format":"sp404d-journal","version":1}              <- header: says what the file is
    [1,"done",{"source":"/in/kick.wav","status":"done"}]  <- [doc_id, status, record] a line
    [2,"failed",{"source":"/in/snare.aif","status":"failed","reason":"..."}]

- **Append** is one ``os.write`` of whole lines on an ``O_APPEND`` descriptor, under ``flock``:
  the cost does not depend on the journal's size, and a kill -9 can leave at most a torn last
  line (no newline). Readers ignore it; the next writer truncates it, under the lock, before it
  appends. A corrupt line elsewhere is skipped and counted: the journal always loads.
- **update / remove / truncate** through TinyDB rewrite the whole file atomically (temp file,
  fsync, rename, fsync of the folder): O(n) like TinyDB's, but they never tear the file.
- **Several processes** (the daemon and a one-shot ``sp404d convert``) may write at once. Under
  the lock a writer first reads what the others appended, so doc ids stay unique and the
  indexes current. A read-only opener (``sp404d status``) takes no lock, writes and creates
  nothing, and reads complete lines only: it never sees a torn file.
- **Durability**: every append reaches the OS before ``append`` returns, which is all a kill -9
  needs. ``fsync`` (for power loss) is grouped: at most one every ``sync_interval`` seconds,
  done by the first append after a quiet spell and by a timer after a burst, so an isolated
  record is on disk at once, a burst costs a few fsyncs instead of one per record, and a power
  cut loses at most the last ``sync_interval`` seconds. ``sync_interval=0`` fsyncs every append.
- **Loading**: a process keeps the journal's index, not its records (about 70 bytes a job;
  :mod:`sp404d.journal._index`): counts by status, and where the latest record of each source,
  job key and output is. A lookup reads that one line again; ``newest(n)`` reads the end of
  the file; TinyDB's own API decodes the whole table on first use. The index is kept beside
  the journal as a snapshot (``JOURNAL.index``, a cache checked against the journal's bytes),
  so an opener reads only the lines written since: ``sp404d status`` or a ``convert`` cost the
  same with 100,000 records as with a hundred.

- **Damage is reported, never silently lost**: a writer that finds damaged lines copies them
  to ``JOURNAL.damaged`` (one JSON object a line: kind, line number, offset, the exact text),
  then drops them from the journal with a rewrite, and logs ``journal_damaged`` once with the
  count; a torn last line is kept there too and logged at info (``journal_torn_tail``: a crash
  leaves one). A journal deleted, replaced or cut short under a writer is noticed on its next append
  or :meth:`Journal.check` and rebuilt from the file it had open (or, cut short in place, from
  the records it appended itself)
  (``journal_missing`` / ``journal_replaced``); a file that is not a journal is renamed to
  ``JOURNAL.replaced`` first.
- **Owed records**: :meth:`Journal.append_or_owe` never fails for the file's sake. When the
  journal cannot be appended to (disk full, read-only, gone) the record waits in memory, in
  order, and is written, oldest first, by the next append or :meth:`Journal.write_owed` that
  the file takes; lookups (``latest_by_*``) see it meanwhile. An fsync that fails does not make
  an append fail (its line is written); ``sync()`` raises it, and it is logged once.

``Journal`` methods may be called from several threads; TinyDB's own API on ``Journal.db``
should stay in one thread, as TinyDB advises.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from tinydb import TinyDB
from tinydb.table import Document, Table

from sp404d.errors import ConfigError
from sp404d.journal._file import JournalStorage
from sp404d.journal._index import matches, placed
from sp404d.journal._lines import TABLE
from sp404d.journal._repair import damaged_path, reason
from sp404d.logs import get_logger

__all__ = ["Journal", "damaged_path"]

#: Called once an owed record is written: ``late`` is False when it was written at once.
Written = Callable[[bool], None]


class Journal:
    """One record per finished job, in a crash-safe JSON-lines file, behind TinyDB's API.

    ``db`` is a real :class:`tinydb.TinyDB` (records in its default table), so
    ``journal.db.search(Query().status == "done")`` works. What it holds is what this process
    has read: call :meth:`refresh` to see records other processes appended since (a writer
    also takes them in whenever it appends).

    Opening for writing creates the file and its folders. Opening read-only never creates or
    writes anything; a missing journal is simply empty. A path that cannot be a journal (a
    folder, unreadable, some other file) raises :class:`~sp404d.errors.ConfigError`.
    """

    def __init__(self, path: Path, *, readonly: bool = False, sync_interval: float = 0.2) -> None:
        self.path = Path(path)
        self._owed: deque[tuple[dict[str, Any], Written | None]] = deque()
        self._owed_reason: str | None = None
        self.db: TinyDB = _JournalDB(
            self.path,
            readonly=readonly,
            sync_interval=sync_interval,
            notice=self._notice,
            storage=JournalStorage,
        )
        self._storage = cast(JournalStorage, self.db.storage)

    @staticmethod
    def _notice(level: str, event: str, **fields: Any) -> None:
        getattr(get_logger(), level)(event, **fields)

    def append(self, record: Mapping[str, Any]) -> int:
        """Add one record (a JSON-serialisable mapping); return its doc id.

        When this returns the record is in the OS's hands: a kill -9 cannot lose it. Owed
        records are written first; if the file cannot take them, this raises the ``OSError``
        (or ``ConfigError``) and appends nothing, so the order holds.
        """
        with self._storage.mutex:
            if self._owed and not self.write_owed():
                raise OSError(f"journal {self.path} cannot be written: {self._owed_reason}")
            doc_id: int = self.db.insert(record)
            return doc_id

    def append_or_owe(self, record: Mapping[str, Any], then: Written | None = None) -> bool:
        """Append a record, or, when the file cannot take it, keep it owed; True if written now.

        An owed record waits in memory behind those owed before it, and is written by the next
        append or :meth:`write_owed` the file takes. ``then(late)`` is called once the record is
        written (``late``: it was owed first). A closed or read-only journal still raises.
        """
        with self._storage.mutex:
            self._storage.check_writable()
            if not self._owed or self.write_owed():
                try:
                    self._storage.append([record])
                except (OSError, ConfigError) as exc:
                    self._owed_reason = _why(exc)
                else:
                    if then is not None:
                        then(False)
                    return True
            self._owed.append((dict(record), then))
            return False

    def write_owed(self) -> bool:
        """Write the owed records, oldest first, as far as the file takes them (one write for
        all, or one each if all at once do not fit). True when none is left owed. Never raises
        for the file's sake."""
        with self._storage.mutex:
            written: list[Written | None] = []
            if self._owed:
                try:
                    self._storage.append([rec for rec, _ in self._owed])
                    written = [then for _, then in self._owed]
                    self._owed.clear()
                except (OSError, ConfigError) as exc:
                    self._owed_reason = _why(exc)
                    while len(self._owed) > 1 or (written and self._owed):  # as many as fit
                        try:
                            self._storage.append([self._owed[0][0]])
                        except (OSError, ConfigError) as one:
                            self._owed_reason = _why(one)
                            break
                        written.append(self._owed.popleft()[1])
            for then in written:
                if then is not None:
                    then(True)
            return not self._owed

    @property
    def owed(self) -> int:
        """How many records wait to be written."""
        return len(self._owed)

    @property
    def owed_reason(self) -> str | None:
        """Why the owed records could not be written (the last error), while some are owed."""
        return self._owed_reason if self._owed else None

    def owes(self, source: str) -> bool:
        """Whether a record of ``source`` waits to be written."""
        with self._storage.mutex:
            return any(rec.get("source") == source for rec, _ in self._owed)

    def drop_owed(self) -> list[dict[str, Any]]:
        """Give up on the owed records (the last try failed): return them, oldest first."""
        with self._storage.mutex:
            lost = [rec for rec, _ in self._owed]
            self._owed.clear()
            return lost

    def check(self) -> bool:
        """A writer's cheap look (one stat) for its file deleted, replaced or cut short behind
        its back; such a file is rebuilt from the records held here. True when it was (or a
        rebuild is still owed). Never raises for the file's sake."""
        try:
            return self._storage.check()
        except (OSError, ConfigError) as exc:
            if self._owed:
                self._owed_reason = _why(exc)
            return True

    def sync(self) -> None:
        """Force what was appended so far onto the disk (fsync) now."""
        self._storage.sync()

    def close(self) -> None:
        """Write owed records if the file takes them, sync and close; later calls raise
        ``ValueError``. Closing twice is harmless. Records still owed are logged as lost
        (``journal_records_lost``); a caller that reports them itself takes them first with
        :meth:`drop_owed`."""
        with self._storage.mutex:
            if not self._storage.readonly and not self._storage.closed:
                self.check()  # a file deleted or replaced since: what we hold goes back in it
            if self._owed and not self._storage.closed and not self.write_owed():
                lost = self.drop_owed()
                self._notice(
                    "error",
                    "journal_records_lost",
                    journal=str(self.path),
                    reason=self._owed_reason,
                    records=len(lost),
                    sources=[rec.get("source") for rec in lost],
                )
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
        """Read records other processes appended since; a stat or two when there are none."""
        self._storage.refresh()

    @property
    def skipped_lines(self) -> int:
        """How many corrupt lines were ignored while reading the file."""
        return self._storage.skipped_lines()

    def __len__(self) -> int:
        return self._storage.total()

    @property
    def last_id(self) -> int:
        """The doc id of the last record written (0 for none): later records have larger ids."""
        return self._storage.last_id()

    def all(self) -> list[dict[str, Any]]:
        """Every record written, in append order (each a ``tinydb.table.Document`` with
        ``doc_id``); records still owed are not among them. Decodes the whole journal (and
        keeps it): for tools and tests, not for a path that runs per job."""
        with self._storage.mutex:
            return [Document(doc, int(key)) for key, doc in self._storage.table().items()]

    def newest(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The ``limit`` most recently appended records, newest first (all when ``None``),
        read from the end of the file."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        return self._storage.newest(limit)

    def iter_newest(self) -> Iterator[dict[str, Any]]:
        """Every record written, newest first, read a block at a time: memory stays flat
        however long the journal is."""
        return self._storage.iter_newest()

    def latest_by_key(self, key: str) -> dict[str, Any] | None:
        """The last record appended (or owed) for a job ``key``, or ``None``."""
        return self._latest("key", key)

    def latest_by_source(self, source: str) -> dict[str, Any] | None:
        """The last record appended (or owed) for a ``source`` path, or ``None``."""
        return self._latest("source", source)

    def latest_done_by_source(self, source: str) -> dict[str, Any] | None:
        """The last ``done`` record with an output for a ``source`` path, or ``None``."""
        return self._latest("done", source)

    def latest_done_in(self, source: str, outbox: str) -> dict[str, Any] | None:
        """The last ``done`` record of a ``source`` path written below ``outbox``, or ``None``
        (a source converted into two outboxes has a standing job in each)."""
        return self._latest("placed", placed(source, outbox))

    def latest_by_output(self, output: str) -> dict[str, Any] | None:
        """The last ``done`` record appended (or owed) that wrote ``output``, or ``None`` (a
        ``skipped`` record names an output another job wrote)."""
        return self._latest("output", output)

    def _latest(self, name: str, value: str) -> dict[str, Any] | None:
        with self._storage.mutex:
            for rec, _ in reversed(self._owed):  # owed: newer than any written one
                if matches(name, value, rec):
                    return dict(rec)
            return self._storage.latest(name, value)

    def counts(self) -> dict[str, int]:
        """How many records have each ``status`` (records without one count as ``"unknown"``)."""
        return self._storage.counts()


class _JournalTable(Table):
    """TinyDB's ``Table`` with O(1) inserts: one appended line, not a rewritten file.

    Stock ``insert`` goes through ``_update_table``, which copies the whole table and writes it
    all back. The rest stays stock; ``_update_table`` only gains the file lock, so a rewrite
    includes whatever other processes appended just before it.
    """

    _seen_generation = -1

    @property
    def _journal(self) -> JournalStorage:
        return cast(JournalStorage, self._storage)

    def insert(self, document: Mapping[Any, Any]) -> int:
        return self.insert_multiple([document])[0]

    def insert_multiple(self, documents: Iterable[Mapping[Any, Any]]) -> list[int]:
        if self.name != TABLE:
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
                # The updater may have changed cached records in place before it failed.
                self._journal.reload()
                raise


class _JournalDB(TinyDB):
    """TinyDB with the journal's table class; dropping tables holds the file lock too."""

    table_class = _JournalTable
    default_table_name = TABLE

    def drop_tables(self) -> None:
        with cast(JournalStorage, self.storage).locked():
            super().drop_tables()

    def drop_table(self, name: str) -> None:
        with cast(JournalStorage, self.storage).locked():
            super().drop_table(name)


def _why(exc: Exception) -> str:
    if isinstance(exc, ConfigError):
        return exc.message
    return reason(exc) if isinstance(exc, OSError) else str(exc)
