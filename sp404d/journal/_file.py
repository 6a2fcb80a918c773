"""The journal's storage: TinyDB's Storage interface over the parts that own the file.

The parts (see :mod:`sp404d.journal._state`): the state they share, when it reaches the disk,
writing, reading into the index, what a writer mends, opening and the lock; the line format is
in :mod:`sp404d.journal._lines`, the index in :mod:`sp404d.journal._index`, damage kept aside
by :mod:`sp404d.journal._repair` (see :mod:`sp404d.journal.journal` for the guarantees).

A process keeps the index of the lines it has read, not their records: a lookup reads its one
line again (``pread``), ``newest`` reads the end of the file, and the whole table is decoded
only when TinyDB's own API (or :meth:`JournalStorage.table`) asks for it.

What a writer finds wrong with the file it is told through ``notice(level, event, **fields)``
(the journal logs it): damaged lines, kept aside in ``JOURNAL.damaged`` before they are dropped;
a torn last line; a file that vanished, was replaced or was cut short under this process,
rebuilt from the old file (still open here) or, when cut short in place, from the records this
process appended itself; an fsync that failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from itertools import islice
from pathlib import Path
from typing import Any

from tinydb.storages import Storage
from tinydb.table import Document

from sp404d.errors import ConfigError
from sp404d.journal._index import matches
from sp404d.journal._lines import (
    TABLE,
    Record,
    dumps,
    is_record_item,
    read_line,
    records_backwards,
    status_of,
)
from sp404d.journal._open import Opener
from sp404d.journal._read import Reader
from sp404d.journal._repair import reason
from sp404d.journal._state import Durability, FileState
from sp404d.journal._write import Writer


class JournalStorage(Storage):
    """A TinyDB storage on the JSON-lines file: the file's owner and its index.

    ``read()`` hands TinyDB the decoded table (decoded once, then kept current); ``append``
    adds lines; ``write()``, which TinyDB calls for anything but inserts, rewrites the file
    atomically.
    """

    def __init__(self, path: Path, **options: Any) -> None:
        """``readonly``, ``sync_interval``, ``notice``: see :class:`FileState`; then open."""
        super().__init__()
        self.s = s = FileState(path, **options)
        self.path, self.readonly, self.mutex = s.path, s.readonly, s.mutex
        self.durability = Durability(s)
        self.writer = Writer(s, self.durability, lambda: self.opener.locked())
        self.reader = Reader(s, self.writer)
        self.opener = Opener(s, self.reader)
        try:
            if self.s.readonly:
                self.opener.open_reader()
            else:
                self.opener.open_writer()
                with self.opener.locked():
                    self.opener.remove_stale_temps()
        except OSError as exc:
            self.s.close_fd()
            raise ConfigError("journal", f"cannot open {path}: {reason(exc)}") from exc
        except BaseException:
            self.s.close_fd()
            raise

    def read(self) -> dict[str, dict[str, Any]] | None:
        table = self.reader.table()
        return {TABLE: table} if table else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        others = sorted(name for name, table in data.items() if name != TABLE and table)
        if others:
            raise ValueError(f"the journal keeps only TinyDB's default table, not {others}")
        with self.opener.locked():
            self.writer.rewrite(data.get(TABLE, {}), keep_table=True)

    @property
    def generation(self) -> int:
        """Bumped whenever the records change, so tables know their query cache is stale."""
        return self.s.generation

    @property
    def closed(self) -> bool:
        return self.s.closed

    def check_writable(self) -> None:
        self.s.check_writable()

    def locked(self) -> AbstractContextManager[None]:
        """Hold the file lock, with every record other processes appended already read."""
        return self.opener.locked()

    def close(self) -> None:
        self.durability.stop_timer()
        with self.s.mutex:
            try:
                self.writer.save_snapshot_if(1)
                self.sync()
            except OSError as exc:  # said once already (journal_sync_failed); closing goes on
                if not self.durability.failing:
                    self.s.notice(
                        "warning",
                        "journal_sync_failed",
                        journal=str(self.s.path),
                        reason=reason(exc),
                    )
            finally:
                self.s.close_fd()
                self.s.closed = True

    def table(self) -> dict[str, Record]:
        """Every record, ``str(doc_id)`` -> record, in file order: decoded on first use."""
        return self.reader.table()

    def counts(self) -> dict[str, int]:
        with self.s.mutex:
            return dict(self.s.index.counts)

    def total(self) -> int:
        with self.s.mutex:
            return self.s.index.total

    def last_id(self) -> int:
        with self.s.mutex:
            return self.s.index.last_id

    def skipped_lines(self) -> int:
        with self.s.mutex:
            return self.s.skipped

    def newest(self, limit: int | None) -> list[Record]:
        return [] if limit == 0 else list(islice(self.iter_newest(), limit))

    def iter_newest(self) -> Iterator[Record]:
        """Every record, newest first, read from the end of the file a block at a time."""
        with self.s.mutex:
            if self.s.foreign is not None:
                docs = [Document(doc, int(k)) for k, doc in reversed(self.s.foreign.items())]
                fd, start, end = None, 0, 0
            else:
                docs = []
                fd = None if self.s.fd is None else os.dup(self.s.fd)
                start, end = self.s.start, self.s.offset
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
        with self.s.mutex:
            if self.s.foreign is not None:
                for key, doc in reversed(self.s.foreign.items()):
                    if matches(name, value, doc):
                        return Document(doc, int(key))
                return None
            offset = self.s.index.find(name, value)
            if offset is None or self.s.fd is None:
                return None
            item = read_line(self.s.fd, offset)
        if not is_record_item(item) or not matches(name, value, item[2]):
            return None  # two values that share a fingerprint: a miss, never a wrong record
        return Document(item[2], item[0])

    def append(self, documents: Sequence[Mapping[Any, Any]]) -> list[int]:
        """Append documents as lines with one write; return their doc ids."""
        self.s.check_writable()
        encoded: list[tuple[int | None, str, str]] = []
        for document in documents:  # serialise before taking the lock
            if not isinstance(document, Mapping):
                raise ValueError("Document is not a Mapping")
            explicit = int(document.doc_id) if isinstance(document, Document) else None
            encoded.append((explicit, dumps(status_of(document)), dumps(dict(document))))
        if not encoded:
            return []
        with self.opener.locked():
            next_id, ids = self.s.index.last_id, []
            for explicit, _, _ in encoded:
                if explicit is None:
                    next_id += 1
                    ids.append(next_id)
                elif explicit in ids or str(explicit) in self.reader.table():  # TinyDB's API only
                    raise ValueError(f"Document with ID {explicit} already exists")
                else:
                    ids.append(explicit)
                    next_id = max(next_id, explicit)
            lines = [
                f"[{i},{s},{body}]\n".encode() for i, (_, s, body) in zip(ids, encoded, strict=True)
            ]
            at = self.s.offset
            self.writer.append_bytes(b"".join(lines))
            for doc_id, line, document, (_, _, body) in zip(
                ids, lines, documents, encoded, strict=True
            ):
                self.s.index.add(at, doc_id, document)
                if self.s.table is not None:  # what a reload would read, not the caller's object
                    self.s.table[str(doc_id)] = json.loads(body)
                self.writer.remember(doc_id, body)
                at += len(line)
            self.s.generation += 1
            self.durability.after_append()
        return ids

    def sync(self) -> None:
        """fsync now if anything was appended since the last one.

        An append never raises for its fsync (its line is written, only its durability is
        late). After an fsync failed, what was written since the last good one may be lost from
        the disk even if a later fsync succeeds, so the whole file is then written anew (temp
        file, fsync, rename) by this call or the next append. Raises the ``OSError`` while the
        records are not all durable.
        """
        with self.s.mutex:
            if self.s.rebuild is not None and not self.s.readonly:
                with self.opener.locked():  # the rewrite, fsynced, makes every record durable
                    pass
                self.durability.error = None
                return
            error, self.durability.error = self.durability.error, None
            if self.durability.dirty and self.s.fd is not None:
                try:
                    self.durability.sync_now()
                except OSError as exc:
                    self.durability.failed(exc)
                    raise
            if error is not None:
                raise error

    def refresh(self) -> None:
        if not self.s.readonly:
            with self.opener.locked():
                return
        with self.s.mutex:
            self.s.check_open()
            if self.s.fd is None:
                self.opener.open_reader()
                return
            try:
                st = os.stat(self.s.path)
            except FileNotFoundError:
                self.s.close_fd()
                self.s.reset()
                return
            if (st.st_dev, st.st_ino) != self.s.ident:
                self.s.close_fd()
                self.opener.open_reader()
            elif st.st_size != self.s.offset:
                self.reader.catch_up(locked=False)

    def check(self) -> bool:
        """A writer's cheap look (one stat) for a journal deleted, replaced or cut short behind
        its back; if so, take the lock, which rebuilds it. True when it was."""
        with self.s.mutex:
            self.s.check_writable()
            try:
                st = os.stat(self.s.path)
                same = (st.st_dev, st.st_ino) == self.s.ident and st.st_size >= self.s.offset
            except FileNotFoundError:
                same = False
            if same and self.s.fd is not None and self.s.rebuild is None:
                return False
            with self.opener.locked():
                return True

    def reload(self) -> None:
        """Forget what is in memory and read the file again (after a failed update)."""
        with self.s.mutex:
            self.s.reset()
            if self.s.fd is not None:
                self.reader.catch_up(locked=self.s.depth > 0)
