"""The journal's file: the TinyDB storage that reads, indexes and appends it.

The top layer of the storage (see :mod:`sp404d.journal._state` for the layers: state and
durability, writing, mending, reading, opening and locking), with the line format in
:mod:`sp404d.journal._lines`, the index in :mod:`sp404d.journal._index` and damage kept aside by
:mod:`sp404d.journal._repair` (see :mod:`sp404d.journal.journal` for the guarantees);
``journal`` keeps the public :class:`~sp404d.journal.journal.Journal` and the TinyDB glue.

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

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

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
from sp404d.journal._open import _Opening
from sp404d.journal._repair import (
    reason,
)
from sp404d.journal._state import Notice, orphan_last


class _JournalStorage(_Opening):
    """A TinyDB storage on the JSON-lines file: the file's owner and its index.

    ``read()`` hands TinyDB the decoded table (decoded once, then kept current); ``append``
    adds lines; ``write()``, which TinyDB calls for anything but inserts, rewrites the file
    atomically.
    """

    def __init__(self, path: Path, **options: Any) -> None:
        """``readonly``, ``sync_interval``, ``notice``: see :class:`_FileState`; then open."""
        super().__init__(path, **options)
        try:
            if self.readonly:
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


__all__ = ["Notice", "_JournalStorage", "orphan_last"]
