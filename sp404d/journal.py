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
- **Loading**: a writer decodes every record once, with one ``json.loads`` over the whole file;
  TinyDB then queries memory only. A read-only journal keeps the lines undecoded until
  something needs the records: ``counts()`` and ``len()`` read the status column of each line
  with one regular expression and ``newest(n)`` decodes n lines, so ``sp404d status`` stays
  well under a second at 100,000 records. (They trust a line that has the shape of a record; a
  line damaged inside its braces is counted there, and skipped once records are decoded.)

``Journal`` methods may be called from several threads; TinyDB's own API on ``Journal.db``
should stay in one thread, as TinyDB advises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from tinydb import TinyDB
from tinydb.table import Document, Table

from sp404d._journal_file import _TABLE, _JournalStorage

__all__ = ["Journal"]


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
        self.db: TinyDB = _JournalDB(
            self.path, readonly=readonly, sync_interval=sync_interval, storage=_JournalStorage
        )
        self._storage = cast(_JournalStorage, self.db.storage)

    def append(self, record: Mapping[str, Any]) -> int:
        """Add one record (a JSON-serialisable mapping); return its doc id.

        When this returns the record is in the OS's hands: a kill -9 cannot lose it.
        """
        doc_id: int = self.db.insert(record)
        return doc_id

    def sync(self) -> None:
        """Force what was appended so far onto the disk (fsync) now."""
        self._storage.sync()

    def close(self) -> None:
        """Sync and close; later calls raise ``ValueError``. Closing twice is harmless."""
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

    def all(self) -> list[dict[str, Any]]:
        """Every record, in append order (each a ``tinydb.table.Document`` with ``doc_id``)."""
        with self._storage.mutex:
            return [Document(doc, int(key)) for key, doc in self._storage.records.table.items()]

    def newest(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The ``limit`` most recently appended records, newest first (all when ``None``)."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        return self._storage.newest(limit)

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
        return self._storage.counts()


class _JournalTable(Table):
    """TinyDB's ``Table`` with O(1) inserts: one appended line, not a rewritten file.

    Stock ``insert`` goes through ``_update_table``, which copies the whole table and writes it
    all back. The rest stays stock; ``_update_table`` only gains the file lock, so a rewrite
    includes whatever other processes appended just before it.
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
                # The updater may have changed cached records in place before it failed.
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
