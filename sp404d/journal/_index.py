"""Where each record is: the journal's index, small enough to keep for 100,000 jobs.

A process does not keep the journal's records; it keeps, per record it has read, only what
finding one again needs: the file offset of the latest record of each source, of each source's
latest ``done`` job with an output, of each job key and of each output, plus the counts by
status. A lookup is a 64-bit fingerprint of the value, a search in a sorted array, and one
``pread`` of the line found, whose value is then checked: two values that share a fingerprint
(about one chance in 10^10 in a journal of 100,000 jobs) make a lookup miss, never return
another value's record. About 70 bytes a job in all.

The index is kept beside the journal as a snapshot (``JOURNAL.index``) that says which bytes of
the journal it covers; an opener loads it, checks it against those bytes, and reads only the
lines after them. One that does not match (the journal was rewritten, cut short, replaced, or
the snapshot is damaged) is ignored, and the index is built again from the lines. The snapshot
is a cache: it is written without fsync, and losing it costs one full read of the journal.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sp404d.durable import written_whole

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Keys = npt.NDArray[np.uint64]
    Offsets = npt.NDArray[np.int64]

#: The lookups: latest record of a source, latest done job (with an output) of a source,
#: latest record of a job key, latest done job that wrote an output (a skip names an output
#: it did not write), latest done job of a source in one outbox (:func:`placed`).
MAPS: Final = ("source", "done", "key", "output", "placed")
_FORMAT: Final = "sp404d-journal-index"
_VERSION: Final = 2
#: How much of the journal before the covered end is checked when a snapshot is loaded.
_CHECKED_TAIL: Final = 4096
#: New entries are kept in a dict until there are this many, then merged into the arrays.
_MERGE_AT: Final = 4096


def index_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".index")


def fingerprint(value: str) -> int:
    """A stable 64-bit fingerprint of a value (a path, a key), the same in every process."""
    data = value.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class HashMap:
    """Fingerprint -> offset: sorted arrays, and a dict of the newest entries on top."""

    def __init__(self, raw: bytes | None = None, count: int = 0) -> None:
        self._raw, self._count = raw, count  # arrays not parsed yet (numpy imported on need)
        self._keys: Keys | None = None
        self._vals: Offsets | None = None
        self._new: dict[int, int] = {}

    def _arrays(self) -> tuple[Keys, Offsets]:
        if self._keys is None or self._vals is None:
            import numpy as np

            if self._raw is None:
                self._keys, self._vals = np.zeros(0, np.uint64), np.zeros(0, np.int64)
            else:
                n = self._count
                self._keys = np.frombuffer(self._raw, np.uint64, n, 0)
                self._vals = np.frombuffer(self._raw, np.int64, n, 8 * n)
                self._raw = None
        return self._keys, self._vals

    def get(self, key: int) -> int | None:
        found = self._new.get(key)
        if found is not None:
            return found
        import numpy as np

        keys, vals = self._arrays()
        i = int(keys.searchsorted(np.uint64(key)))
        return int(vals[i]) if i < len(keys) and int(keys[i]) == key else None

    def put(self, key: int, offset: int) -> None:
        self._new[key] = offset
        if len(self._new) >= _MERGE_AT:
            self.merge()

    def put_many(self, keys: Sequence[int], offsets: Sequence[int]) -> None:
        """Many at once, in append order (a later one wins), merged into the arrays."""
        self.merge()
        if keys:
            self._merge_arrays(list(keys), list(offsets))

    def merge(self) -> None:
        if self._new:
            new, self._new = self._new, {}
            self._merge_arrays(list(new), list(new.values()))

    def _merge_arrays(self, keys: list[int], offsets: list[int]) -> None:
        import numpy as np

        old_keys, old_vals = self._arrays()
        all_keys = np.concatenate([old_keys, np.array(keys, np.uint64)])
        all_vals = np.concatenate([old_vals, np.array(offsets, np.int64)])
        order = np.argsort(all_keys, kind="stable")  # equal keys keep their order: newest last
        all_keys, all_vals = all_keys[order], all_vals[order]
        last = np.ones(len(all_keys), bool)
        last[:-1] = all_keys[1:] != all_keys[:-1]
        self._keys, self._vals = all_keys[last], all_vals[last]

    def payload(self) -> bytes:
        self.merge()
        keys, vals = self._arrays()
        return keys.tobytes() + vals.tobytes()

    def __len__(self) -> int:
        if self._keys is None:
            return self._count + len(self._new)
        return len(self._keys) + len(self._new)


class Index:
    """The journal's index: counts, the last doc id, and the four lookups of :data:`MAPS`."""

    def __init__(self) -> None:
        self.total = 0
        self.counts: dict[str, int] = {}
        self.last_id = 0
        #: Lines in the covered bytes that are not records (kept aside and dropped by a writer,
        #: unless that failed).
        self.skipped = 0
        self.maps = {name: HashMap() for name in MAPS}

    def add(self, offset: int, doc_id: int, doc: Mapping[str, Any]) -> None:
        """A record line at ``offset``."""
        self._count(doc_id, doc)
        for name, value in _values(doc):
            self.maps[name].put(fingerprint(value), offset)

    def add_many(self, offsets: Sequence[int], items: Sequence[Any]) -> None:
        """Decoded lines at ``offsets``: ``[doc_id, status, record]`` items, or ``None`` and
        other items that are not records (counted in :attr:`skipped`)."""
        from sp404d.journal._lines import is_record_item

        found: dict[str, tuple[list[int], list[int]]] = {n: ([], []) for n in MAPS}
        for offset, item in zip(offsets, items, strict=True):
            if not is_record_item(item):
                self.skipped += 1
                continue
            doc_id, doc = item[0], item[2]
            self._count(doc_id, doc)
            for name, value in _values(doc):
                keys, offs = found[name]
                keys.append(fingerprint(value))
                offs.append(offset)
        for name, (keys, offs) in found.items():
            if len(keys) > 64:
                self.maps[name].put_many(keys, offs)
            else:
                for key, off in zip(keys, offs, strict=True):
                    self.maps[name].put(key, off)

    def _count(self, doc_id: int, doc: Mapping[str, Any]) -> None:
        status = doc.get("status")
        status = status if isinstance(status, str) else "unknown"
        self.counts[status] = self.counts.get(status, 0) + 1
        self.total += 1
        self.last_id = max(self.last_id, doc_id)

    def find(self, name: str, value: str) -> int | None:
        """The offset of the latest record for ``value`` in map ``name`` (to be checked)."""
        return self.maps[name].get(fingerprint(value))


def placed(source: str, outbox: str) -> str:
    """The value of map ``placed`` for a source's jobs in one outbox."""
    return f"{source}\0{outbox}"


def _wrote(doc: Mapping[str, Any]) -> bool:
    output = doc.get("output")
    return doc.get("status") == "done" and isinstance(output, str) and bool(output)


def _values(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    source, key, outbox = doc.get("source"), doc.get("key"), doc.get("outbox")
    found: list[tuple[str, str]] = []
    wrote = _wrote(doc)
    if isinstance(source, str):
        found.append(("source", source))
        if wrote:
            found.append(("done", source))
            if isinstance(outbox, str):
                found.append(("placed", placed(source, outbox)))
    if isinstance(key, str):
        found.append(("key", key))
    if wrote:
        found.append(("output", str(doc["output"])))
    return found


def matches(name: str, value: str, doc: Mapping[str, Any]) -> bool:
    """Whether ``doc`` is a record that map ``name`` may give for ``value``."""
    if name == "done":
        return doc.get("source") == value and _wrote(doc)
    if name == "output":
        return doc.get("output") == value and _wrote(doc)
    if name == "placed":
        return placed(str(doc.get("source")), str(doc.get("outbox"))) == value and _wrote(doc)
    return doc.get(name) == value


# -- the snapshot beside the journal -----------------------------------------------------------


@dataclass(frozen=True)
class Covered:
    """Which bytes of the journal an index describes: ``end`` (just after a newline), the
    ``lines`` before it, and checksums of the header line and of the bytes just before
    ``end``."""

    end: int
    lines: int
    head_crc: int
    tail_crc: int


def covered(fd: int, end: int, lines: int, header_end: int) -> Covered:
    return Covered(end, lines, _crc_at(fd, 0, header_end), _crc_at(fd, *_tail(end, header_end)))


def _tail(end: int, header_end: int) -> tuple[int, int]:
    start = max(header_end, end - _CHECKED_TAIL)
    return start, end


def _crc_at(fd: int, start: int, stop: int) -> int:
    return zlib.crc32(os.pread(fd, stop - start, start)) if stop > start else 0


def save(path: Path, index: Index, where: Covered) -> None:
    """Write the snapshot of ``index`` (temp file, rename; no fsync: it is a cache)."""
    payloads = [index.maps[name].payload() for name in MAPS]
    body = b"".join(payloads)
    header = {
        "format": _FORMAT,
        "version": _VERSION,
        "end": where.end,
        "lines": where.lines,
        "head_crc": where.head_crc,
        "tail_crc": where.tail_crc,
        "total": index.total,
        "counts": index.counts,
        "last_id": index.last_id,
        "skipped": index.skipped,
        "maps": [len(p) // 16 for p in payloads],
        "crc": zlib.crc32(body),
    }
    with suppress(OSError), written_whole(path) as out:  # a cache: else read the journal
        out.write(json.dumps(header).encode() + b"\n")
        out.write(body)


def load(path: Path, fd: int, size: int, header_end: int) -> tuple[Index, Covered] | None:
    """The snapshot beside the journal open on ``fd`` (``size`` bytes, its header line ending
    at ``header_end``), if it describes bytes the journal still holds; else ``None``."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    newline = data.find(b"\n")
    try:
        head = json.loads(data[:newline]) if newline > 0 else None
    except ValueError:
        return None
    if not isinstance(head, dict) or head.get("format") != _FORMAT:
        return None
    try:
        where = Covered(
            int(head["end"]), int(head["lines"]), int(head["head_crc"]), int(head["tail_crc"])
        )
        sizes = [int(n) for n in head["maps"]]
        body = memoryview(data)[newline + 1 :]
        if (
            head.get("version") != _VERSION
            or len(sizes) != len(MAPS)
            or not header_end <= where.end <= size
            or len(body) != 16 * sum(sizes)
            or zlib.crc32(body) != int(head["crc"])
            or covered(fd, where.end, where.lines, header_end) != where
        ):
            return None
        index = Index()
        index.total, index.last_id = int(head["total"]), int(head["last_id"])
        index.skipped = int(head["skipped"])
        index.counts = {str(k): int(v) for k, v in dict(head["counts"]).items()}
    except (KeyError, TypeError, ValueError, OSError):
        return None
    at = newline + 1
    for name, n in zip(MAPS, sizes, strict=True):
        index.maps[name] = HashMap(data[at : at + 16 * n], n)
        at += 16 * n
    return index, where
