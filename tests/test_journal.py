"""Tests for sp404d.journal: real TinyDB on real files in tmp_path, real processes, real kills."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from tinydb import Query, TinyDB

from sp404d.errors import ConfigError
from sp404d.journal.journal import Journal

ROOT = Path(__file__).resolve().parent.parent
HEADER = b'{"format":"sp404d-journal","version":1}\n'


def record(i: int, status: str = "done", **extra: Any) -> dict[str, Any]:
    """A journal record of the shape sp404d writes (the journal only needs a few fields)."""
    return {
        "source": f"/in/kit/{i:03d}_hit.wav",
        "key": f"key-{i}",
        "status": status,
        "reason": None if status == "done" else "too short",
        "output": f"/sd/IMPORT/{i:03d}.wav" if status == "done" else None,
        "finished_at": f"2026-11-24T12:00:{i % 60:02d}Z",
        "metadata": {"bpm": 92.0, "tags": ["drums", "café"], "pad": i % 16 + 1},
        **extra,
    }


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.005)


def python(script: str, *args: str) -> subprocess.Popen[bytes]:
    """Start ``script`` in a fresh interpreter that imports this source tree."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env)


class TestRoundtrip:
    def test_records_come_back_as_appended(self, tmp_path: Path) -> None:
        """Every field (nested, non-ASCII) survives a close and reopen, with its doc id."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            ids = [journal.append(record(i)) for i in range(5)]
        assert ids == [1, 2, 3, 4, 5]
        with Journal(path) as journal:
            assert journal.all() == [record(i) for i in range(5)]
            assert [doc.doc_id for doc in journal.all()] == ids  # type: ignore[attr-defined]
            assert journal.skipped_lines == 0

    def test_file_is_a_header_then_one_line_per_record(self, tmp_path: Path) -> None:
        """The format other tools may read: a header, then [doc_id, status, record] lines."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
            journal.append(record(1, "failed"))
        lines = lines_of(path)
        assert lines[0] + b"\n" == HEADER
        assert [json.loads(line) for line in lines[1:-1]] == [
            [1, "done", record(0)],
            [2, "failed", record(1, "failed")],
        ]
        assert lines[-1] == b""

    def test_appending_does_not_rewrite_the_file(self, tmp_path: Path) -> None:
        """An append adds one line to the same file (same inode): its cost ignores the size."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
            inode, size = path.stat().st_ino, path.stat().st_size
            journal.db.insert(record(1))
            assert path.stat().st_ino == inode
            assert path.read_bytes()[size:].count(b"\n") == 1

    def test_creates_parent_folders(self, tmp_path: Path) -> None:
        """A writer creates the folders down to the journal."""
        path = tmp_path / "state" / "sp404d" / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
        assert path.is_file()

    def test_the_caller_keeps_its_own_record(self, tmp_path: Path) -> None:
        """Changing a dict after appending it does not change what the journal holds."""
        rec = record(0)
        with Journal(tmp_path / "journal.jsonl") as journal:
            journal.append(rec)
            rec["metadata"]["bpm"] = 1.0
            assert journal.all()[0]["metadata"]["bpm"] == 92.0

    def test_closed_journal_refuses_appends(self, tmp_path: Path) -> None:
        """After close() an append raises, and closing again is harmless."""
        journal = Journal(tmp_path / "journal.jsonl")
        journal.close()
        journal.close()
        with pytest.raises(ValueError, match="closed"):
            journal.append(record(0))


class TestTinyDBAPI:
    def test_search_and_get(self, tmp_path: Path) -> None:
        """Queries and lookups by doc id work as with any TinyDB."""
        with Journal(tmp_path / "journal.jsonl") as journal:
            for i in range(6):
                journal.append(record(i, "done" if i % 3 else "failed"))
            failed = journal.db.search(Query().status == "failed")
            assert [doc["key"] for doc in failed] == ["key-0", "key-3"]
            assert journal.db.count(Query().status == "done") == 4
            doc = journal.db.get(doc_id=2)
            assert doc is not None and doc["key"] == "key-1"
            assert journal.db.contains(Query().metadata.pad == 3)
            assert len(journal.db) == 6

    def test_query_cache_sees_new_records(self, tmp_path: Path) -> None:
        """A cached search result is not served after records arrive from another process."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as writer, Journal(path, readonly=True) as reader:
            writer.append(record(0))
            reader.refresh()
            assert len(reader.db.search(Query().status == "done")) == 1
            writer.append(record(1))
            reader.refresh()
            assert len(reader.db.search(Query().status == "done")) == 2

    def test_update_and_remove_persist(self, tmp_path: Path) -> None:
        """update() and remove() rewrite the file; doc ids and the other records survive."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            for i in range(4):
                journal.append(record(i))
            with path.open("rb") as before:  # held open, so its inode number is not reused
                assert journal.db.update({"status": "failed"}, Query().key == "key-1") == [2]
                assert journal.db.remove(doc_ids=[3]) == [3]
                # Replaced whole, never rewritten in place.
                assert path.stat().st_ino != os.fstat(before.fileno()).st_ino
            assert journal.counts() == {"done": 2, "failed": 1}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.jsonl"]  # no temp left
        for readonly in (False, True):
            with Journal(path, readonly=readonly) as journal:
                assert [doc.doc_id for doc in journal.db] == [1, 2, 4]
                assert journal.db.get(doc_id=2)["status"] == "failed"
                assert journal.counts() == {"done": 2, "failed": 1}

    def test_removed_ids_are_not_reused(self, tmp_path: Path) -> None:
        """After the newest record is removed, the next one still gets a new id."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
            journal.append(record(1))
            journal.db.remove(doc_ids=[2])
        with Journal(path) as journal:
            assert journal.append(record(2)) == 3

    def test_truncate_and_upsert(self, tmp_path: Path) -> None:
        """truncate() empties the journal; upsert() updates or appends."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
            journal.db.truncate()
            assert len(journal) == 0
            journal.db.upsert(record(1), Query().key == "key-1")
            journal.db.upsert({"status": "skipped"}, Query().key == "key-1")
        with Journal(path, readonly=True) as journal:
            assert [doc["status"] for doc in journal.all()] == ["skipped"]

    def test_failed_update_leaves_memory_as_the_file(self, tmp_path: Path) -> None:
        """An update whose callback raises half-way leaves no change in memory or on disk."""
        path = tmp_path / "journal.jsonl"

        def half_way(doc: dict[str, Any]) -> None:
            doc["status"] = "failed"
            if doc["key"] == "key-1":
                raise RuntimeError("boom")

        with Journal(path) as journal:
            journal.append(record(0))
            journal.append(record(1))
            with pytest.raises(RuntimeError):
                journal.db.update(half_way)
            assert journal.counts() == {"done": 2}

    def test_drop_tables_empties_the_file(self, tmp_path: Path) -> None:
        """drop_tables() goes through the same atomic rewrite."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
            journal.db.drop_tables()
            assert len(journal) == 0
        with Journal(path, readonly=True) as journal:
            assert journal.all() == []

    def test_only_the_default_table(self, tmp_path: Path) -> None:
        """Other tables are refused rather than silently not kept."""
        with (
            Journal(tmp_path / "journal.jsonl") as journal,
            pytest.raises(ValueError, match="default table"),
        ):
            journal.db.table("other").insert({"a": 1})

    def test_read_only_refuses_writes(self, tmp_path: Path) -> None:
        """A read-only journal raises on any write and leaves the file alone."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
        before = path.read_bytes()
        with Journal(path, readonly=True) as journal:
            with pytest.raises(PermissionError):
                journal.append(record(1))
            with pytest.raises(PermissionError):
                journal.db.update({"status": "failed"})
        assert path.read_bytes() == before


class TestTornTail:
    def test_reader_ignores_a_torn_last_line(self, tmp_path: Path) -> None:
        """Half a line (a writer killed mid-write) is not a record and not an error."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            for i in range(3):
                journal.append(record(i))
        with path.open("ab") as f:
            f.write(b'[4,"done",{"source":"/in/ha')
        with Journal(path, readonly=True) as journal:
            assert len(journal) == 3
            assert journal.all() == [record(i) for i in range(3)]
            assert journal.skipped_lines == 0

    def test_next_writer_cuts_the_tail_and_appends(self, tmp_path: Path) -> None:
        """The next writer truncates the torn line under the lock, then appends cleanly."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            for i in range(3):
                journal.append(record(i))
        clean = path.read_bytes()
        with path.open("ab") as f:
            f.write(b'[4,"done",{"source":"/in/ha')
        with Journal(path) as journal:
            assert path.read_bytes() == clean
            assert journal.append(record(3)) == 4
        with Journal(path, readonly=True) as journal:
            assert journal.all() == [record(i) for i in range(4)]
            assert journal.skipped_lines == 0

    def test_torn_header_is_rewritten(self, tmp_path: Path) -> None:
        """A crash while creating the journal leaves part of a header: a writer starts over."""
        path = tmp_path / "journal.jsonl"
        path.write_bytes(HEADER[:20])
        with Journal(path, readonly=True) as journal:
            assert len(journal) == 0
        with Journal(path) as journal:
            journal.append(record(0))
        assert lines_of(path)[0] + b"\n" == HEADER

    def test_reader_sees_a_line_only_once_it_is_complete(self, tmp_path: Path) -> None:
        """A line being written is invisible to refresh() until its newline lands."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0))
        line = b'[2,"done",' + json.dumps(record(1), separators=(",", ":")).encode() + b"]\n"
        with Journal(path, readonly=True) as reader, path.open("ab", buffering=0) as f:
            f.write(line[:30])
            reader.refresh()
            assert len(reader) == 1
            f.write(line[30:])
            reader.refresh()
            assert reader.newest(1) == [record(1)]


class TestCorruptLines:
    def test_corrupt_middle_line_is_skipped_and_counted(self, tmp_path: Path) -> None:
        """A damaged line in the middle costs that record only; the journal still loads."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            for i in range(5):
                journal.append(record(i))
        lines = lines_of(path)
        lines[2] = lines[2][:25] + b"\x00\x00garbage"
        lines.insert(4, b"")  # a blank line is not a record either
        path.write_bytes(b"\n".join(lines))
        with Journal(path, readonly=True) as journal:
            assert len(journal) == 4
            assert journal.skipped_lines == 2
            assert journal.counts() == {"done": 4}
            assert journal.newest(5) == [record(i) for i in (4, 3, 2, 0)]
        with Journal(path) as journal:
            assert [doc["key"] for doc in journal.all()] == ["key-0", "key-2", "key-3", "key-4"]
            assert journal.skipped_lines == 2
            assert journal.append(record(5)) == 6

    def test_many_lines_around_a_bad_one(self, tmp_path: Path) -> None:
        """The fast one-pass decode falls back without losing the good lines near a bad one."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.db.insert_multiple(record(i) for i in range(3000))
        lines = lines_of(path)
        lines[1500] = b"1,2"  # decodes as two values inside an array: must still be caught
        path.write_bytes(b"\n".join(lines))
        with Journal(path) as journal:
            assert len(journal) == 2999
            assert journal.skipped_lines == 1
            assert journal.db.get(doc_id=1500) is None
            assert journal.db.get(doc_id=1501) is not None


KILL_WRITER = """
import hashlib, sys
from pathlib import Path
from sp404d.journal.journal import Journal
journal = Journal(Path(sys.argv[1]))
run, n = sys.argv[2], 0
while True:
    body = "x" * (n * 7919 % 20000)
    journal.append({"run": run, "n": n, "source": f"/in/{run}/{n}", "status": "done",
                    "body": body, "check": hashlib.sha256(body.encode()).hexdigest()})
    n += 1
"""


class TestKill:
    def test_kill_9_at_any_point_loses_no_completed_record(self, tmp_path: Path) -> None:
        """Writers killed mid-loop, one after another: every record left is whole, ids unique."""
        path = tmp_path / "journal.jsonl"
        for run, more in enumerate((1, 40, 150, 400)):
            before = path.read_bytes().count(b"\n") if path.exists() else 0

            def written(n: int = before + more) -> bool:
                return path.exists() and path.read_bytes().count(b"\n") > n

            writer = python(KILL_WRITER, str(path), str(run))
            try:
                wait_for(written)
            finally:
                writer.send_signal(signal.SIGKILL)
                writer.wait(timeout=10)
            assert writer.returncode == -signal.SIGKILL
            with Journal(path, readonly=True) as journal:
                assert journal.skipped_lines == 0
                docs = journal.all()
            ids = [doc.doc_id for doc in docs]  # type: ignore[attr-defined]
            assert ids == sorted(set(ids))
            for doc in docs:
                assert doc["check"] == hashlib.sha256(doc["body"].encode()).hexdigest()
            for r in range(run + 1):
                ns = [doc["n"] for doc in docs if doc["run"] == str(r)]
                assert ns == list(range(len(ns))) and ns  # in order, none missing
        with Journal(path) as journal:
            assert journal.append(record(0)) == max(ids) + 1


CONCURRENT_WRITER = """
import sys, time
from pathlib import Path
from tinydb import Query
from sp404d.journal.journal import Journal
path, who, count, rewrite, folder = sys.argv[1:]
count = int(count)
with Journal(Path(path), sync_interval=0) as journal:
    Path(folder, "ready-" + who).touch()
    deadline = time.monotonic() + 10
    while not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.0005)
    for n in range(count):
        journal.append({"who": who, "n": n, "source": f"/in/{who}/{n}", "status": "done"})
        if rewrite == "1" and n == count // 2:
            journal.db.update({"touched": True}, Query().who == who)
"""


class TestConcurrentWriters:
    def test_two_processes_append_at_once(self, tmp_path: Path) -> None:
        """Two writers, one also rewriting the file mid-way: every record kept, ids unique."""
        path = tmp_path / "journal.jsonl"
        writers = [
            python(CONCURRENT_WRITER, str(path), "a", "300", "0", str(tmp_path)),
            python(CONCURRENT_WRITER, str(path), "b", "300", "1", str(tmp_path)),
        ]
        try:
            wait_for(lambda: all((tmp_path / f"ready-{who}").exists() for who in "ab"))
            (tmp_path / "go").touch()
        finally:
            for writer in writers:
                assert writer.wait(timeout=30) == 0
        with Journal(path, readonly=True) as journal:
            docs = journal.all()
            assert journal.skipped_lines == 0
        ids = [doc.doc_id for doc in docs]  # type: ignore[attr-defined]
        assert len(ids) == 600 and len(set(ids)) == 600
        for who in "ab":
            assert sorted(doc["n"] for doc in docs if doc["who"] == who) == list(range(300))
        touched = sorted(doc["n"] for doc in docs if doc.get("touched"))
        assert touched == list(range(151))  # b's records that existed at the update

    def test_threads_share_one_journal(self, tmp_path: Path) -> None:
        """Journal methods may be called from several threads at once."""
        with Journal(tmp_path / "journal.jsonl") as journal:

            def work(who: int) -> None:
                for n in range(100):
                    journal.append(record(n, who=who))
                    journal.latest_by_source(f"/in/kit/{n:03d}_hit.wav")

            threads = [threading.Thread(target=work, args=(who,)) for who in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=10)
            assert sorted(doc.doc_id for doc in journal.db) == list(range(1, 401))


class TestReadOnly:
    def test_missing_journal_is_empty_and_not_created(self, tmp_path: Path) -> None:
        """status on a fresh install: an empty journal, and nothing appears on disk."""
        path = tmp_path / "state" / "journal.jsonl"
        with Journal(path, readonly=True) as journal:
            assert len(journal) == 0
            assert journal.counts() == {}
            assert journal.newest(20) == []
            journal.refresh()
        assert list(tmp_path.iterdir()) == []

    def test_refresh_sees_a_writers_appends(self, tmp_path: Path) -> None:
        """A reader opened before the file existed sees what a writer appends, after refresh."""
        path = tmp_path / "journal.jsonl"
        with Journal(path, readonly=True) as reader:
            with Journal(path) as writer:
                writer.append(record(0))
                reader.refresh()
                assert reader.newest() == [record(0)]
                writer.append(record(1, "failed"))
                writer.db.update({"reason": "gone"}, doc_ids=[1])  # replaces the file
                writer.append(record(2))
            reader.refresh()
            assert [doc["key"] for doc in reader.all()] == ["key-0", "key-1", "key-2"]
            assert reader.all()[0]["reason"] == "gone"
            assert reader.counts() == {"done": 2, "failed": 1}

    def test_fast_counts_agree_with_decoded_records(self, tmp_path: Path) -> None:
        """counts() and len() read from undecoded lines match what decoding finds."""
        path = tmp_path / "journal.jsonl"
        statuses = ["done", "skipped", "rejected", "failed", 'we"ird\\']
        with Journal(path) as journal:
            for i in range(50):
                journal.append(record(i, statuses[i % len(statuses)]))
            journal.append({"source": "/in/x.wav"})  # no status at all
            expected = journal.counts()
        with Journal(path, readonly=True) as journal:
            fast = (journal.counts(), len(journal), journal.newest(3))
            journal.all()  # decodes every line
            assert fast == (journal.counts(), len(journal), journal.newest(3))
        assert expected["unknown"] == 1 and expected['we"ird\\'] == 10

    def test_a_folder_is_not_a_journal(self, tmp_path: Path) -> None:
        """A journal path that is a folder is a configuration error, in both modes."""
        for readonly in (False, True):
            with pytest.raises(ConfigError, match="is a folder; give a file path") as caught:
                Journal(tmp_path, readonly=readonly)
            assert caught.value.key == "journal"

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
    def test_unreadable_journal(self, tmp_path: Path) -> None:
        """A journal we may not read is a configuration error, not a crash."""
        path = tmp_path / "journal.jsonl"
        Journal(path).close()
        path.chmod(0)
        for readonly in (False, True):
            with pytest.raises(ConfigError, match="cannot open"):
                Journal(path, readonly=readonly)

    def test_other_files_are_refused_untouched(self, tmp_path: Path) -> None:
        """A file that is not a journal is never truncated or appended to."""
        path = tmp_path / "notes.txt"
        path.write_bytes(b"shopping list\nmilk")
        for readonly in (True, False):
            with pytest.raises(ConfigError, match="neither"):
                Journal(path, readonly=readonly)
        assert path.read_bytes() == b"shopping list\nmilk"

    def test_newer_format_is_refused(self, tmp_path: Path) -> None:
        """A journal written by a future sp404d is not misread."""
        path = tmp_path / "journal.jsonl"
        path.write_bytes(b'{"format":"sp404d-journal","version":2}\n')
        with pytest.raises(ConfigError, match="newer"):
            Journal(path, readonly=True)


class TestStockTinyDB:
    def test_stock_database_is_read_and_converted_by_a_writer(self, tmp_path: Path) -> None:
        """A journal written by plain TinyDB keeps its records; a writer converts the file."""
        path = tmp_path / "journal.json"
        with TinyDB(path) as db:
            db.insert(record(0))
            db.insert(record(1, "failed"))
        stock = path.read_bytes()
        with Journal(path, readonly=True) as journal:
            assert journal.all() == [record(0), record(1, "failed")]
        assert path.read_bytes() == stock
        with Journal(path) as journal:
            assert journal.append(record(2)) == 3
        assert path.read_bytes().startswith(b'{"format":"sp404d-journal"')
        with Journal(path, readonly=True) as journal:
            assert journal.counts() == {"done": 2, "failed": 1}


class TestIndexes:
    def test_latest_by_key_and_source(self, tmp_path: Path) -> None:
        """The last record per job key and per source, kept current as records arrive."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as journal:
            journal.append(record(0, "failed"))
            assert journal.latest_by_key("key-0") == record(0, "failed")
            journal.append(record(1))
            journal.append(record(0, "done", attempt=2))
            assert journal.latest_by_key("key-0") == record(0, "done", attempt=2)
            assert journal.latest_by_source("/in/kit/000_hit.wav") == record(0, attempt=2)
            assert journal.latest_by_key("nope") is None
            assert journal.latest_by_source("/nope") is None
        with Journal(path, readonly=True) as journal:
            assert journal.latest_by_key("key-0") == record(0, "done", attempt=2)
            assert journal.latest_by_key("key-1") == record(1)
            journal.refresh()
        with Journal(path) as journal:
            journal.append({"source": ["not", "a", "path"], "key": None, "status": "failed"})
            assert journal.latest_by_source("/in/kit/001_hit.wav") == record(1)

    def test_counts_and_newest(self, tmp_path: Path) -> None:
        """counts() by status; newest() newest first, limited or not."""
        with Journal(tmp_path / "journal.jsonl") as journal:
            assert journal.counts() == {}
            for i, status in enumerate(["done", "failed", "done", "rejected", "skipped"]):
                journal.append(record(i, status))
            assert journal.counts() == {"done": 2, "failed": 1, "rejected": 1, "skipped": 1}
            assert [doc["key"] for doc in journal.newest(2)] == ["key-4", "key-3"]
            assert len(journal.newest()) == len(journal) == 5
            assert journal.newest(0) == []
            journal.db.update({"status": "done"}, Query().status == "failed")
            assert journal.counts()["done"] == 3

    def test_a_writer_takes_in_other_writers_records(self, tmp_path: Path) -> None:
        """A writer's indexes include records another writer appended, once it appends too."""
        path = tmp_path / "journal.jsonl"
        with Journal(path) as first, Journal(path) as second:
            first.append(record(0))
            assert first.latest_by_key("key-1") is None
            second.append(record(1, "failed"))
            assert first.append(record(2)) == 3
            assert first.latest_by_key("key-1") == record(1, "failed")
            assert first.counts() == {"done": 2, "failed": 1}


class TestDurability:
    def test_group_commit_timer_finishes(self, tmp_path: Path) -> None:
        """The fsync timer of a burst fires and ends; sync() and close() need no timer."""
        with Journal(tmp_path / "journal.jsonl", sync_interval=0.05) as journal:
            for i in range(20):
                journal.append(record(i))
            wait_for(
                lambda: not any(t.name.startswith("sp404d-journal") for t in threading.enumerate())
            )
            journal.append(record(20))
            journal.sync()

    def test_negative_interval_is_refused(self, tmp_path: Path) -> None:
        """sync_interval must be zero (fsync each append) or more."""
        with pytest.raises(ValueError, match="sync_interval"):
            Journal(tmp_path / "journal.jsonl", sync_interval=-1)


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def kept_aside(path: Path) -> list[dict[str, Any]]:
    """The entries of JOURNAL.damaged, each with the exact bytes of its line."""
    aside = path.with_name(path.name + ".damaged")
    entries = [json.loads(line) for line in aside.read_bytes().splitlines()]
    for entry in entries:
        entry["bytes"] = entry["text"].encode("utf-8", "surrogateescape")
    return entries


def journal_of(path: Path, count: int) -> list[bytes]:
    """A journal of ``count`` records; return its lines (header first, no trailing empty)."""
    with Journal(path) as journal:
        for i in range(count):
            journal.append(record(i))
    return path.read_bytes().splitlines(keepends=True)


class TestDamageIsReported:
    """What a writer finds wrong on open is kept aside, logged once, and shown by status."""

    def test_garbage_line_in_the_middle(self, tmp_path: Path) -> None:
        """Kept aside with its line number and offset, logged as a warning with the count,
        dropped from the journal; every good record loads; a second open says nothing."""
        from sp404d.report.status import render_status, status_data

        path = tmp_path / "journal.jsonl"
        lines = journal_of(path, 6)
        garbage = b'[3,"done",{"source":"/in/kit/002_h\xff\x00t.wav"\n'
        lines[3] = garbage
        lines.insert(5, b"not json at all\n")
        damaged = b"".join(lines)
        path.write_bytes(damaged)
        with Journal(path, readonly=True) as reader:  # status before any writer opened it
            assert "journal: 2 damaged lines skipped in the file" in render_status(
                status_data(reader, 5)
            )
        with capture_logs() as logs, Journal(path) as journal:
            assert [doc["key"] for doc in journal.all()] == [
                "key-0", "key-1", "key-3", "key-4", "key-5",
            ]  # fmt: skip
            assert journal.skipped_lines == 2
            assert journal.append(record(6)) == 7
        (warning,) = events(logs, "journal_damaged")
        assert warning["log_level"] == "warning"
        assert warning["lines"] == 2
        assert warning["kept_in"] == str(tmp_path / "journal.jsonl.damaged")
        entries = kept_aside(path)
        assert [(e["kind"], e["line"]) for e in entries] == [("damaged", 4), ("damaged", 6)]
        for entry in entries:  # the exact bytes, where they were
            start = entry["offset"]
            assert damaged[start : start + len(entry["bytes"]) + 1] == entry["bytes"] + b"\n"
        assert entries[0]["bytes"] == garbage[:-1]
        assert b"\xff" not in path.read_bytes() and b"not json" not in path.read_bytes()
        with capture_logs() as again, Journal(path) as journal:
            assert journal.skipped_lines == 0 and len(journal) == 6
        assert not events(again, "journal_damaged")
        assert len(kept_aside(path)) == 2  # not copied twice
        with Journal(path, readonly=True) as reader:
            text = render_status(status_data(reader, 5))
        assert f"journal: 2 damaged lines kept aside in {path}.damaged" in text

    def test_truncated_last_line(self, tmp_path: Path) -> None:
        """A torn last line (a kill -9) is kept aside too, logged at info level, and cut off."""
        path = tmp_path / "journal.jsonl"
        lines = journal_of(path, 3)
        torn = b'[4,"done",{"source":"/in/ha'
        path.write_bytes(b"".join(lines) + torn)
        with capture_logs() as logs, Journal(path) as journal:
            assert journal.all() == [record(i) for i in range(3)]
            assert journal.skipped_lines == 0
        (info,) = events(logs, "journal_torn_tail")
        assert info["log_level"] == "info"
        assert info["kept_in"] == str(tmp_path / "journal.jsonl.damaged")
        assert not events(logs, "journal_damaged")
        (entry,) = kept_aside(path)
        assert (entry["kind"], entry["line"], entry["bytes"]) == ("torn", 5, torn)
        assert entry["offset"] == len(b"".join(lines))
        assert path.read_bytes() == b"".join(lines)

    def test_zero_byte_journal(self, tmp_path: Path) -> None:
        """An existing journal of 0 bytes: whatever it held is gone, and the log says so."""
        path = tmp_path / "journal.jsonl"
        path.write_bytes(b"")
        with capture_logs() as logs, Journal(path) as journal:
            assert len(journal) == 0
            journal.append(record(0))
        (warning,) = events(logs, "journal_empty")
        assert warning["log_level"] == "warning"
        with capture_logs() as fresh, Journal(tmp_path / "new.jsonl"):
            pass  # a journal created now is not damage
        assert fresh == []

    def test_header_only_journal_is_sound(self, tmp_path: Path) -> None:
        """A header and no records is an empty journal, not damage: no log, nothing kept
        aside, and status says the journal is sound."""
        from sp404d.report.status import render_status, status_data

        path = tmp_path / "journal.jsonl"
        path.write_bytes(HEADER)
        with capture_logs() as logs, Journal(path) as journal:
            assert len(journal) == 0 and journal.skipped_lines == 0
            assert journal.append(record(0)) == 1
        assert logs == []
        assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.jsonl"]
        with Journal(path, readonly=True) as reader:
            data = status_data(reader, 5)
        assert data["journal_health"] == {
            "skipped_lines": 0,
            "damaged_kept": 0,
            "torn_kept": 0,
            "kept_in": None,
            "file_system": None,
        }
        assert "journal:" not in render_status(data)

    def test_damaged_header(self, tmp_path: Path) -> None:
        """A header that is not JSON is kept aside and replaced; the records all load."""
        path = tmp_path / "journal.jsonl"
        lines = journal_of(path, 2)
        lines[0] = b'{"format":"sp404d-journal",\x00"version":1}\n'
        path.write_bytes(b"".join(lines))
        with capture_logs() as logs, Journal(path) as journal:
            assert journal.all() == [record(0), record(1)]
        assert events(logs, "journal_damaged")[0]["lines"] == 1
        assert [e["kind"] for e in kept_aside(path)] == ["damaged header"]
        assert path.read_bytes().startswith(b'{"format":"sp404d-journal","version":1,')


class TestLostUnderAWriter:
    """A journal deleted, replaced or cut short while a writer holds its records."""

    def test_deleted_journal_is_rebuilt_on_the_next_append(self, tmp_path: Path) -> None:
        path = tmp_path / "state" / "journal.jsonl"
        with capture_logs() as logs, Journal(path) as journal:
            for i in range(3):
                journal.append(record(i))
            path.unlink()
            assert journal.append(record(3)) == 4
        (warning,) = events(logs, "journal_missing")
        assert (warning["log_level"], warning["restored"]) == ("warning", 3)
        with Journal(path, readonly=True) as reader:
            assert reader.all() == [record(i) for i in range(4)]

    def test_check_notices_a_folder_deleted(self, tmp_path: Path) -> None:
        """One stat, no append needed: the file (and its folder) come back with the records."""
        path = tmp_path / "state" / "journal.jsonl"
        with capture_logs() as logs, Journal(path) as journal:
            journal.append(record(0))
            assert journal.check() is False
            for p in path.parent.iterdir():
                p.unlink()
            path.parent.rmdir()
            assert journal.check() is True
            with Journal(path, readonly=True) as reader:
                assert reader.all() == [record(0)]
        assert events(logs, "journal_missing")

    def test_stale_copy_put_in_its_place(self, tmp_path: Path) -> None:
        """A file with fewer records replaces the journal (a restored backup, a sync client):
        the records it lacks are written back, its own are kept."""
        path = tmp_path / "journal.jsonl"
        with capture_logs() as logs, Journal(path) as journal:
            journal.append(record(0))
            backup = path.read_bytes()
            journal.append(record(1))
            journal.append(record(2))
            stale = tmp_path / "stale"
            stale.write_bytes(backup + b'[2,"done",{"source":"/elsewhere","status":"done"}]\n')
            os.replace(stale, path)
            assert journal.append(record(3)) == 5
        (warning,) = events(logs, "journal_replaced")
        assert (warning["restored"], warning["kept_from_file"]) == (2, 1)
        with Journal(path, readonly=True) as reader:
            docs = reader.all()
        assert [d.get("key") for d in docs] == ["key-0", "key-1", "key-2", None, "key-3"]
        assert sorted(d.doc_id for d in docs) == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]

    def test_cut_short_in_place(self, tmp_path: Path) -> None:
        """Truncated in place (``: > journal.jsonl``): rebuilt from memory."""
        path = tmp_path / "journal.jsonl"
        with capture_logs() as logs, Journal(path) as journal:
            journal.append(record(0))
            journal.append(record(1))
            path.write_bytes(b"")
            assert journal.check() is True
        assert events(logs, "journal_replaced")[0]["how"] == "cut short"
        with Journal(path, readonly=True) as reader:
            assert reader.all() == [record(0), record(1)]

    def test_something_else_in_its_place_is_kept_aside(self, tmp_path: Path) -> None:
        """A file that is no journal replaces it: renamed to JOURNAL.replaced, untouched."""
        path = tmp_path / "journal.jsonl"
        with capture_logs() as logs, Journal(path) as journal:
            journal.append(record(0))
            path.unlink()
            path.write_bytes(b"shopping list\nmilk")
            journal.append(record(1))
        assert (tmp_path / "journal.jsonl.replaced").read_bytes() == b"shopping list\nmilk"
        assert events(logs, "journal_replaced")
        with Journal(path, readonly=True) as reader:
            assert reader.all() == [record(0), record(1)]

    def test_a_rewrite_by_another_writer_is_followed_silently(self, tmp_path: Path) -> None:
        """TinyDB's update/remove in another writer replace the file on purpose, and its header
        names the file it replaced: no warning, and a removed record does not come back."""
        path = tmp_path / "journal.jsonl"
        with capture_logs() as logs, Journal(path) as first, Journal(path) as second:
            first.append(record(0))
            first.append(record(1))
            second.append(record(2))
            st = path.stat()
            second.db.remove(doc_ids=[2])
            header = json.loads(lines_of(path)[0])
            assert header["replaces"] == [st.st_dev, st.st_ino]
            assert first.append(record(3)) == 4
            assert [d["key"] for d in first.all()] == ["key-0", "key-2", "key-3"]
        assert not [e for e in logs if e["event"].startswith("journal_")]


def big_journal(path: Path, count: int) -> None:
    """A journal of ``count`` records (sources, keys and outputs all distinct), in bulk."""
    with Journal(path) as journal:
        journal.db.insert_multiple(record(i, "done" if i % 4 else "rejected") for i in range(count))


def answers(journal: Journal, count: int) -> list[Any]:
    """What the index answers for a sample of the records, and the counts."""
    found: list[Any] = [journal.counts(), len(journal), [d["key"] for d in journal.newest(3)]]
    for i in range(0, count, max(1, count // 50)):
        found += [
            journal.latest_by_source(f"/in/kit/{i:03d}_hit.wav"),
            journal.latest_by_key(f"key-{i}"),
            journal.latest_done_by_source(f"/in/kit/{i:03d}_hit.wav"),
            journal.latest_by_output(f"/sd/IMPORT/{i:03d}.wav"),
        ]
    return found


def first_half(path: Path) -> bytes:
    """About the first half of a journal's lines."""
    data = path.read_bytes()
    return data[: len(data) // 2].rsplit(b"\n", 1)[0] + b"\n"


class TestIndexSnapshot:
    """The index kept beside a big journal: used when it matches the journal's bytes, ignored
    (and the lines read instead) when it does not; either way the same answers."""

    COUNT = 1500

    def test_written_beside_a_big_journal_and_used(self, tmp_path: Path) -> None:
        """A writer snapshots the index of a journal of 1,000 records or more; an opener
        starts from it and reads only the lines after it."""
        path = tmp_path / "journal.jsonl"
        big_journal(path, self.COUNT)
        snapshot = path.with_name("journal.jsonl.index")
        assert snapshot.is_file()
        with Journal(path, readonly=True) as reader:
            expected = answers(reader, self.COUNT)
        assert expected[3] == record(0, "rejected")
        assert expected[5] is None  # a rejected job has no done record
        assert expected[8] == record(30)
        with Journal(path) as writer:
            assert answers(writer, self.COUNT) == expected
            writer.append(record(0, "done", attempt=2))
        with Journal(path, readonly=True) as reader:
            assert reader.latest_by_source("/in/kit/000_hit.wav") == record(0, attempt=2)
            assert reader.latest_done_by_source("/in/kit/000_hit.wav") == record(0, attempt=2)
            assert len(reader) == self.COUNT + 1

    @pytest.mark.parametrize(
        "spoil",
        [
            pytest.param(lambda p, s: s.write_bytes(s.read_bytes()[:-9] + b"\x00" * 9), id="bytes"),
            pytest.param(lambda p, s: s.write_bytes(b"{}\n"), id="empty"),
            pytest.param(lambda p, s: p.write_bytes(first_half(p)), id="journal-cut-short"),
            pytest.param(
                lambda p, s: p.write_bytes(p.read_bytes().replace(b'key-7"', b'key-X"')),
                id="journal-edited",
            ),
        ],
    )
    def test_one_that_does_not_match_is_ignored(
        self, tmp_path: Path, spoil: Callable[[Path, Path], None]
    ) -> None:
        """A damaged snapshot, or a journal changed behind it, gives what the lines say."""
        path = tmp_path / "journal.jsonl"
        big_journal(path, self.COUNT)
        spoil(path, path.with_name("journal.jsonl.index"))
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        (fresh / "journal.jsonl").write_bytes(path.read_bytes())  # the same bytes, no snapshot
        with Journal(fresh / "journal.jsonl", readonly=True) as truth:
            expected = answers(truth, self.COUNT)
        with Journal(path, readonly=True) as reader:
            assert answers(reader, self.COUNT) == expected

    def test_another_journals_snapshot_is_ignored(self, tmp_path: Path) -> None:
        path, other = tmp_path / "journal.jsonl", tmp_path / "other" / "journal.jsonl"
        big_journal(path, self.COUNT)
        with Journal(other) as journal:
            journal.db.insert_multiple(record(i + 5000) for i in range(self.COUNT))
        os.replace(other.with_name("journal.jsonl.index"), path.with_name("journal.jsonl.index"))
        with Journal(path, readonly=True) as reader:
            assert reader.latest_by_source("/in/kit/5001_hit.wav") is None
            assert reader.latest_by_source("/in/kit/001_hit.wav") == record(1)

    def test_a_rewrite_snapshots_the_new_file(self, tmp_path: Path) -> None:
        """TinyDB's update rewrites the journal and its index: readers see the update."""
        path = tmp_path / "journal.jsonl"
        big_journal(path, self.COUNT)
        with Journal(path) as writer:
            writer.db.update({"status": "failed"}, Query().key == "key-1")
        with Journal(path, readonly=True) as reader:
            assert reader.latest_by_key("key-1") == {**record(1), "status": "failed"}
            assert reader.latest_done_by_source("/in/kit/001_hit.wav") is None
            assert reader.counts()["failed"] == 1

    def test_values_sharing_a_fingerprint_miss_and_never_mislead(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Were every value to share one fingerprint, lookups would find only the last one
        written: a miss for the others, never another value's record."""
        from sp404d.journal import _index as _journal_index

        monkeypatch.setattr(_journal_index, "fingerprint", lambda value: 7)
        with Journal(tmp_path / "journal.jsonl") as journal:
            for i in range(3):
                journal.append(record(i))
            assert journal.latest_by_source("/in/kit/002_hit.wav") == record(2)
            assert journal.latest_by_source("/in/kit/001_hit.wav") is None
            assert journal.latest_by_key("key-0") is None

    def test_memory_kept_per_record_is_small(self, tmp_path: Path) -> None:
        """An open journal keeps its index, not its records: well under 200 bytes a record,
        whether it read the snapshot or every line."""
        import tracemalloc

        path = tmp_path / "journal.jsonl"
        count = 20_000
        big_journal(path, count)
        for snapshot in (True, False):
            if not snapshot:
                path.with_name("journal.jsonl.index").unlink()
            import numpy  # noqa: F401  (imported before measuring: its import is not per record)

            tracemalloc.start()
            try:
                journal = Journal(path)
                assert journal.latest_by_key("key-5") == record(5)
                kept, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            journal.close()
            assert kept / count < 200, f"{kept / count:.0f} bytes a record (snapshot: {snapshot})"


class TestIntentsSharedLock:
    """Compacting the notes file never drops another process's note of a job in flight."""

    def test_a_big_file_is_compacted_only_while_nobody_else_holds_it(self, tmp_path: Path) -> None:
        from sp404d.pipeline.intents import COMPACT_BYTES, Intents

        journal = tmp_path / "journal.jsonl"
        notes = journal.with_name("journal.jsonl.intents")
        done = '{"source": "/in/a.wav", "output": "/out/a.wav"}\n'
        settled = done + done.replace("}", ', "resolved": true}')
        first = Intents(journal)
        first.add([(Path("/in/b.wav"), Path("/out/b.wav"))])  # under way in "another process"
        with notes.open("a") as history:  # and a long history of jobs that ended
            history.write(settled * (COMPACT_BYTES // len(settled) + 1))
        second = Intents(journal)  # its own descriptor: flock treats it as another process
        assert second.unresolved(lambda output: False) == {}
        assert notes.stat().st_size > COMPACT_BYTES  # not compacted: the first holds it
        first.close()
        third = Intents(journal)
        second.close()
        third.unresolved(lambda output: False)  # alone now: compacts
        assert notes.read_text() == '{"source": "/in/b.wav", "output": "/out/b.wav"}\n'
        third.close()
