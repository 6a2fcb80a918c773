"""The journal's parts on their own, on real files: the writer and the reader of the log file,
its durability, the lock's following of a file replaced, and the index snapshot."""

from __future__ import annotations

import json
import os
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from sp404d.journal._index import Index, index_path, load
from sp404d.journal._lines import HEADER
from sp404d.journal._open import Opener
from sp404d.journal._read import Reader
from sp404d.journal._state import Durability, FileState
from sp404d.journal._write import Writer


def _parts(path: Path, *, readonly: bool = False) -> tuple[FileState, Writer, Reader, Opener]:
    s = FileState(path, readonly=readonly, sync_interval=0.05)
    durability = Durability(s)
    opener: list[Opener] = []

    def locked() -> AbstractContextManager[None]:
        return opener[0].locked() if opener else nullcontext()

    writer = Writer(s, durability, locked)
    reader = Reader(s, writer)
    opener.append(Opener(s, reader))
    return s, writer, reader, opener[0]


def _line(doc_id: int, source: str) -> bytes:
    body = json.dumps({"source": source, "status": "done"}, separators=(",", ":"))
    return f'[{doc_id},"done",{body}]\n'.encode()


class TestWriterAndReader:
    def test_what_one_writes_another_reads_into_its_index(self, tmp_path: Path) -> None:
        path = tmp_path / "j.jsonl"
        s, writer, _, opener = _parts(path)
        opener.open_writer()
        with opener.locked():  # a new file gets its header under the lock
            writer.append_bytes(_line(1, "/in/a.wav") + _line(2, "/in/b.wav"))
        assert path.read_bytes().startswith(HEADER)
        r, _, reader, ropener = _parts(path, readonly=True)
        ropener.open_reader()
        assert r.index.total == 2 and r.index.find("source", "/in/b.wav") is not None
        with opener.locked():
            writer.append_bytes(_line(3, "/in/c.wav"))
        reader.catch_up(locked=False)
        assert r.index.total == 3 and r.index.last_id == 3
        s.close_fd()
        r.close_fd()

    def test_a_torn_last_line_is_left_to_the_next_writer(self, tmp_path: Path) -> None:
        path = tmp_path / "j.jsonl"
        path.write_bytes(HEADER + _line(1, "/in/a.wav") + b'[2,"done",{"sour')
        r, _, _, ropener = _parts(path, readonly=True)
        ropener.open_reader()
        assert r.index.total == 1 and r.damage == []  # a reader reads complete lines only
        s, _, _, opener = _parts(path)
        opener.open_writer()
        with opener.locked():  # the writer keeps it aside and cuts it off
            pass
        assert path.read_bytes().endswith(_line(1, "/in/a.wav"))
        assert (tmp_path / "j.jsonl.damaged").read_text().count('"kind":"torn"') == 1
        s.close_fd()
        r.close_fd()


class TestDurability:
    def test_a_burst_is_synced_once_by_the_timer(self, tmp_path: Path) -> None:
        s = FileState(tmp_path / "f", readonly=False, sync_interval=0.05)
        s.fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
        durability = Durability(s)

        def dirty() -> bool:  # read anew each time (an attribute the timer's thread changes)
            return durability.dirty

        durability.after_append()  # after a quiet spell: at once
        assert not dirty()
        durability.after_append()  # within the interval: the timer does it
        assert dirty() and durability.timer is not None
        deadline = time.monotonic() + 5
        while dirty() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not dirty()
        durability.stop_timer()
        s.close_fd()

    def test_a_failed_fsync_owes_a_rewrite_and_is_said_once(self, tmp_path: Path) -> None:
        said: list[str] = []
        s = FileState(
            tmp_path / "f",
            readonly=False,
            sync_interval=0,
            notice=lambda *a, **k: said.append(a[1]),
        )
        durability = Durability(s)
        for _ in range(2):
            durability.failed(OSError(5, "Input/output error"))
        assert said == ["journal_sync_failed"] and s.rebuild is not None
        durability.synced()
        assert said == ["journal_sync_failed", "journal_synced"]


class TestOpener:
    def test_a_file_replaced_under_a_writer_is_followed_and_merged(self, tmp_path: Path) -> None:
        path = tmp_path / "j.jsonl"
        s, writer, _, opener = _parts(path)
        opener.open_writer()
        with opener.locked():
            writer.append_bytes(_line(1, "/in/a.wav"))
        other = tmp_path / "other.jsonl"
        other.write_bytes(HEADER + _line(7, "/in/z.wav"))
        os.replace(other, path)  # a backup restored over it
        with opener.locked():  # follows the path; keeps what it had (a.wav) too
            pass
        assert s.index.find("source", "/in/a.wav") is not None
        assert s.index.find("source", "/in/z.wav") is not None
        s.close_fd()


class TestSnapshot:
    def test_a_snapshot_is_used_only_for_the_bytes_it_covers(self, tmp_path: Path) -> None:
        from sp404d.journal._index import covered, save

        path = tmp_path / "j.jsonl"
        path.write_bytes(HEADER + _line(1, "/in/a.wav"))
        index = Index()
        index.add(len(HEADER), 1, {"source": "/in/a.wav", "status": "done"})
        fd = os.open(path, os.O_RDONLY)
        size = path.stat().st_size
        save(index_path(path), index, covered(fd, size, 2, len(HEADER)))
        loaded = load(index_path(path), fd, size, len(HEADER))
        assert loaded is not None and loaded[0].total == 1
        os.close(fd)
        path.write_bytes(HEADER + _line(1, "/in/b.wav"))  # other bytes, same size
        fd = os.open(path, os.O_RDONLY)
        assert load(index_path(path), fd, path.stat().st_size, len(HEADER)) is None
        os.close(fd)


@pytest.mark.parametrize("chunk", [200, 1 << 20])
def test_reading_in_chunks_gives_the_same_index(tmp_path: Path, chunk: int) -> None:
    from sp404d.journal import _read

    path = tmp_path / "j.jsonl"
    path.write_bytes(HEADER + b"".join(_line(i, f"/in/{i}.wav") for i in range(1, 200)))
    old, _read.READ_CHUNK = _read.READ_CHUNK, chunk
    try:
        s, _, _, opener = _parts(path, readonly=True)
        opener.open_reader()
    finally:
        _read.READ_CHUNK = old
    assert s.index.total == 199 and s.index.find("source", "/in/150.wav") is not None
    s.close_fd()
