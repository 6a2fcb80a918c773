"""The daemon harness itself: what every daemon test leans on must not leak or mislead."""

from __future__ import annotations

from pathlib import Path

from sp404d.journal.journal import Journal
from tests.conftest import open_fds
from tests.daemon_harness import DaemonProc

POLLS = 300  # a 30 s wait_for polls about 1500 times; a leak of one fd each shows at 300


def test_polling_the_journal_leaks_no_file_descriptor(tmp_path: Path) -> None:
    """records(), by_status() and wait_done() open a reader on every poll and close it again:
    the process holds as many descriptors after hundreds of polls as before."""
    d = DaemonProc(tmp_path)
    with Journal(d.journal) as journal:
        for i in range(3):
            journal.append({"source": f"/in/{i}.wav", "status": "done" if i else "rejected"})
    assert len(d.records()) == 3  # anything opened once and kept (imports, caches) is kept now
    before = open_fds()
    for _ in range(POLLS):
        assert len(d.records()) == 3
        assert len(d.by_status("done")) == 2
    assert len(d.wait_done(2)) == 2
    assert open_fds() - before == 0, "a journal reader was left open"


def test_an_unclosed_reader_would_be_seen(tmp_path: Path) -> None:
    """The count above can fail: readers that are not closed keep one descriptor each."""
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append({"source": "/in/a.wav", "status": "done"})
    before = open_fds()
    readers = [Journal(path, readonly=True) for _ in range(5)]
    try:
        assert all(len(r.all()) == 1 for r in readers)
        assert open_fds() - before >= 5
    finally:
        for r in readers:
            r.close()
    assert open_fds() == before
