"""Reading the journal file: the header, the lines past what was read, into the index.

A process keeps the index of the lines it has read, not their records: a lookup reads its one
line again (``pread``), ``newest`` reads the end of the file, and the whole table is decoded
only when TinyDB's own API asks for it."""

from __future__ import annotations

import json
import os

from sp404d.errors import ConfigError
from sp404d.journal import _index as snapshot
from sp404d.journal._index import index_path
from sp404d.journal._lines import (
    HEADER,
    HEADER_PREFIX,
    VERSION,
    Record,
    decode_region,
    is_record_item,
    line_starts,
    pread_region,
    stock_tinydb_table,
)
from sp404d.journal._mend import Mender
from sp404d.journal._repair import as_table
from sp404d.journal._state import FileState, Orphan
from sp404d.journal._write import Writer

#: How much of the journal is decoded at once when reading it (about 6,000 records).
READ_CHUNK = 8 << 20


class Reader:
    """Takes in the lines other processes (and this one) appended: into the index, and into
    the decoded records once TinyDB's API asked for them (:meth:`table`). A writer's locked
    read hands what it found to the mender."""

    def __init__(self, s: FileState, writer: Writer) -> None:
        self.s, self.writer = s, writer
        self.mender = Mender(s, writer.durability, writer, self.table)

    def table(self) -> dict[str, Record]:
        """Every record, ``str(doc_id)`` -> record, in file order: decoded on first use."""
        with self.s.mutex:
            if self.s.foreign is not None:
                return self.s.foreign
            if self.s.table is None:
                self.s.table = self.decode_all()
            return self.s.table

    def catch_up(self, *, locked: bool) -> None:
        """Take in the complete lines past ``_offset``; if ``locked``, cut off a torn tail.

        A writer (``locked``) then settles what it found: damage kept aside, a journal that was
        lost or replaced under it rebuilt from what it had.
        """
        self.read_new(locked=locked)
        if locked and not self.s.readonly:
            self.mender.after_locked_read()

    def read_new(self, *, locked: bool) -> None:
        fd = self.s.require_fd()
        size = os.fstat(fd).st_size
        if size < self.s.offset:
            # Shrunk: cut short or rewritten in place by something else; start again. sp404d
            # itself never shortens a journal below a line another writer has read.
            self.forget("cut short", locked=locked)
        if self.s.offset == 0:
            if size == 0:
                if locked:
                    if self.s.found_empty and self.s.orphan is None:
                        self.s.notice(
                            "warning",
                            "journal_empty",
                            journal=str(self.s.path),
                            note="the journal file was empty (0 bytes): the records it held, "
                            "if any, are lost; a new journal starts here",
                        )
                    self.s.found_empty = False
                    self.writer.start_file()
                return
            self.s.found_empty = False
            start = self.read_start(size, locked=locked)
            if start is None:
                return
            self.s.start = self.s.offset = start
            self.use_snapshot(size)
        torn = b""
        while size > self.s.offset:
            # From the newline before the new lines: it becomes the "[" of one JSON array. A
            # chunk at a time, so a journal read whole (no snapshot) costs the memory of one
            # chunk's records, not of all of them.
            base = self.s.offset - 1
            stop = min(size, base + READ_CHUNK)
            region = pread_region(fd, base, stop)
            if region[:1] != b"\n":  # changed in place by something else: start again
                self.forget("changed in place", locked=locked)
                self.read_new(locked=locked)
                return
            end = region.rfind(b"\n") + 1
            if end <= 1 and stop < size:  # one line longer than a chunk: take it whole
                stop = size
                region = pread_region(fd, base, stop)
                end = region.rfind(b"\n") + 1
            last = stop >= size or len(region) < stop - base
            if last:
                torn = bytes(region[end:])
            del region[end:]
            if end > 1:
                self.s.offset += end - 1
                self.take(region, base)
            if last:
                break
        if locked and torn and not self.s.readonly:
            # Writers only write under this lock, so an unfinished last line is a crashed
            # writer's: cut it off (once it is kept aside), or our append would glue a record
            # onto it.
            self.s.damage.append(("torn", self.s.lines + 1, self.s.offset, torn))

    def forget(self, how: str, *, locked: bool) -> None:
        """Start reading the file again from its first byte; a writer keeps what it had, to
        check against what the file holds now."""
        if locked and not self.s.readonly and self.s.orphan is None:
            self.s.orphan = Orphan(
                None, self.s.ident, how, self.s.start, self.s.offset, self.s.index.total
            )
        self.s.reset()

    def read_start(self, size: int, *, locked: bool) -> int | None:
        """Check the header; return where the records start, or ``None`` when none can."""
        fd = self.s.require_fd()
        head = os.pread(fd, min(size, 1 << 16), 0)
        newline = head.find(b"\n")
        if not head.startswith(HEADER_PREFIX) and not HEADER.startswith(head):
            self.read_foreign(pread_region(fd, 0, size), locked=locked)
            return None
        if newline < 0:
            if size > len(head):
                raise ConfigError("journal", f"{self.s.path} has a damaged header")
            if locked:  # the header was torn by a crash while the file was being created
                self.writer.start_file()
            return None
        try:
            header = json.loads(head[:newline])
        except ValueError:
            header = None
        self.s.lines = 1
        if not isinstance(header, dict):
            self.s.skipped += 1  # a damaged header; the records may well be fine
            if locked and not self.s.readonly:
                self.s.damage.append(("damaged header", 1, 0, bytes(head[:newline])))
            return newline + 1
        self.s.header_replaces = header.get("replaces")
        version = header.get("version")
        if isinstance(version, int) and version > VERSION:
            raise ConfigError(
                "journal", f"{self.s.path} was written by a newer sp404d (format {version})"
            )
        last_id = header.get("last_id")
        if isinstance(last_id, int):
            self.s.header_last_id = last_id
            self.s.index.last_id = max(self.s.index.last_id, last_id)
        return newline + 1

    def use_snapshot(self, size: int) -> None:
        """Start from the index's snapshot, if it describes this file's bytes so far."""
        loaded = snapshot.load(index_path(self.s.path), self.s.require_fd(), size, self.s.start)
        if loaded is None:
            return
        index, where = loaded
        index.last_id = max(index.last_id, self.s.header_last_id)
        self.s.index, self.s.saved = index, index.total
        self.s.offset, self.s.lines = where.end, where.lines
        self.s.skipped += index.skipped

    def read_foreign(self, data: bytearray, *, locked: bool) -> None:
        """Take in a database written by stock TinyDB; a writer converts the file at once."""
        table = stock_tinydb_table(bytes(data), self.s.path)
        if locked:
            self.writer.rewrite(table, keep_table=False)
            return
        self.s.foreign = table
        for key, doc in table.items():
            self.s.index.add(0, int(key), doc)
        self.s.offset = len(data)
        self.s.generation += 1

    def take(self, region: bytearray, base: int) -> None:
        """Take in complete lines: ``region`` is the newline at ``base`` and the lines after."""
        items = decode_region(region)
        starts = line_starts(region, base)
        self.s.index.add_many(starts, items)
        if self.s.table is not None:
            self.s.table.update(as_table(items))
        first_line = self.s.lines + 1
        self.s.lines += len(items)
        self.s.generation += 1
        bad = [i for i, item in enumerate(items) if not is_record_item(item)]
        self.s.skipped += len(bad)
        if not bad or self.s.readonly:
            return
        ends = [*(s - 1 for s in starts[1:]), base + len(region) - 1]
        for i in bad:
            raw = bytes(region[starts[i] - base : ends[i] - base])
            self.s.damage.append(("damaged", first_line + i, starts[i], raw))

    def decode_all(self) -> dict[str, Record]:
        if self.s.fd is None or self.s.offset <= self.s.start:
            return {}
        return as_table(decode_region(pread_region(self.s.fd, self.s.start - 1, self.s.offset)))
