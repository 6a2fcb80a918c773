"""The journal's bytes: a header line, then one ``[doc_id,"status",{record}]`` line a record.

Pure functions over bytes (and ``pread`` on a descriptor): encoding a line, decoding many lines
at once, reading lines backwards from the end, reading a database stock TinyDB wrote. The
storage (:mod:`sp404d.journal._file`) decides when; this module only knows the format.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sp404d.errors import ConfigError

Record = dict[str, Any]

TABLE: Final = "_default"
FORMAT: Final = "sp404d-journal"
VERSION: Final = 1
#: Every journal starts with these bytes; a file that does not is never truncated or appended to.
HEADER_PREFIX: Final = b'{"format":"sp404d-journal"'
#: The header a writer gives a new file (a full rewrite adds ``last_id`` and ``replaces``).
HEADER: Final = b'{"format":"sp404d-journal","version":1}\n'
#: When the one-shot decode meets a bad line, lines are retried in chunks of this many.
CHUNK_LINES: Final = 1024

dumps: Final[Callable[[Any], str]] = json.JSONEncoder(separators=(",", ":")).encode


def status_of(doc: Mapping[str, Any]) -> str:
    status = doc.get("status")
    return status if isinstance(status, str) else "unknown"


def is_record_item(item: Any) -> bool:
    """A decoded line that is a record: ``[doc_id, status, {record}]``."""
    return type(item) is list and len(item) == 3 and type(item[0]) is int and type(item[2]) is dict


def record_line(doc_id: int, doc: Mapping[str, Any]) -> str:
    return f"[{doc_id},{dumps(status_of(doc))},{dumps(doc)}]\n"


def decode_region(region: bytes | bytearray) -> list[Any]:
    """Decode the lines of ``region`` (newline, lines, newline): one item a line, ``None`` for
    a line that is not JSON (the caller counts it with the items that are not records).

    One ``json.loads`` over the lines turned into one JSON array is several times faster than
    one call per line; doing it in place (the newlines become the commas and brackets) spares
    copies of a region that may be 100 MB. A bad line spoils the array, so then chunks of lines
    are tried, and single lines only inside a chunk that fails.
    """
    expected = region.count(b"\n") - 1
    if expected <= 0:
        return []
    array = region.replace(b"\n", b",")
    array = bytearray(array) if isinstance(array, bytes) else array
    array[0], array[-1] = ord("["), ord("]")
    with _gc_paused():
        items = loads_list(array, expected)
        if items is not None:
            return items
        lines = bytes(region[1:-1]).split(b"\n")
        decoded: list[Any] = []
        for first in range(0, len(lines), CHUNK_LINES):
            chunk = lines[first : first + CHUNK_LINES]
            chunk_items = loads_list(b"[" + b",".join(chunk) + b"]", len(chunk))
            if chunk_items is None:
                chunk_items = []
                for line in chunk:
                    one = loads_list(b"[" + line + b"]", 1)
                    # Blank lines too are bad.
                    chunk_items.append(None if one is None else one[0])
            decoded.extend(chunk_items)
    return decoded


def loads_list(array: bytes | bytearray, expected: int) -> list[Any] | None:
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


def line_starts(region: bytes | bytearray, base: int) -> list[int]:
    """The file offset of each line of ``region`` (newline, lines, newline), which starts at
    file offset ``base``."""
    starts: list[int] = []
    at = region.find(b"\n")
    end = len(region) - 1
    while at < end:
        starts.append(base + at + 1)
        at = region.find(b"\n", at + 1)
    return starts


def pread_region(fd: int, start: int, stop: int) -> bytearray:
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


def read_line(fd: int, offset: int) -> Any:
    """Decode the one line that starts at ``offset``; ``None`` if it is not JSON."""
    size = 4096
    while True:
        data = os.pread(fd, size, offset)
        end = data.find(b"\n")
        if end >= 0 or len(data) < size:
            line = data if end < 0 else data[:end]
            found = loads_list(b"[" + line + b"]", 1)
            return None if found is None else found[0]
        size *= 4


def records_backwards(fd: int, start: int, stop: int) -> Iterator[tuple[int, Record]]:
    """``(doc_id, record)`` of the complete lines in ``start:stop``, last line first; lines
    that are not records are passed over. Reads a block at a time, so the first few cost
    one small read however long the journal is."""
    block = 1 << 16
    end, rest = stop, b""  # rest: the end of a line that started before ``end``
    while end > start:
        begin = max(start, end - block)
        data = os.pread(fd, end - begin, begin) + rest
        end = begin
        if begin > start:
            cut = data.find(b"\n") + 1
            if cut == 0:  # one line longer than the block: read further back
                rest = data
                block *= 4
                continue
            rest, data = data[:cut], data[cut:]
        else:
            rest = b""
        for item in reversed(decode_region(b"\n" + data)):
            if is_record_item(item):
                yield item[0], item[2]
        block = min(block * 4, 1 << 22)


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


def stock_tinydb_table(data: bytes, path: Path) -> dict[str, Record]:
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
    others = sorted(name for name, table in tables.items() if name != TABLE and table)
    if others:
        raise ConfigError("journal", f"{path} has TinyDB tables the journal cannot keep: {others}")
    table: dict[str, Any] = tables.get(TABLE, {})
    if not all(key.isdigit() and isinstance(doc, dict) for key, doc in table.items()):
        raise not_journal
    return table
