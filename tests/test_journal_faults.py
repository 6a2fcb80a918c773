"""The journal's file system fails under a running sp404d: full, read-only, fsync errors.

Real file systems only: a small tmpfs filled to the last page, a journal file made immutable
(``chattr +i``: root is not stopped by ``chmod``), an ext4 image on a loop device whose backing
store runs out (the disk says yes to the write and no to the fsync). Each needs root and is
skipped, with the reason, where it cannot be set up.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from sp404d.journal.journal import Journal
from tests.conftest import SP404D, run_env, write_audio
from tests.daemon_harness import DaemonFactory, DaemonProc, wait_for

PAGE = os.sysconf("SC_PAGE_SIZE")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip() or 'not root'})")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of its own, for the journal."""
    where = tmp_path / "small"
    _mount_tmpfs(where, "256k")
    yield where
    _run("umount", "-l", str(where))


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last page; return the filler (delete it to
    give the space back)."""
    filler = folder / "filler"
    block = b"\0" * PAGE
    with filler.open("wb", buffering=0) as f:
        try:
            while f.write(block):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def pad_to_page(path: Path) -> None:
    """A new journal whose header ends on a page boundary: its next append needs a new page
    (an append into the slack of the last page would succeed on a full disk)."""
    bare = b'{"format":"sp404d-journal","version":1,"pad":""}\n'
    pad = (-len(bare)) % PAGE
    path.write_bytes(bare[:-3] + b"x" * pad + b'"}\n')
    assert path.stat().st_size % PAGE == 0


def chattr(flag: str, path: Path) -> None:
    done = _run("chattr", flag, str(path))
    if done.returncode:
        pytest.skip(f"chattr {flag} not possible here: {done.stderr.strip()}")


def drop(d: DaemonProc, tmp_path: Path, names: list[str], first_freq: int = 300) -> None:
    """Write files outside the inbox, then rename them in (as sync clients do)."""
    staging = tmp_path / "staging"
    for i, name in enumerate(names):
        write_audio(staging / name, 44100, seconds=0.3, freq=first_freq + 37 * i)
    for name in names:
        os.rename(staging / name, d.inbox / name)


def status_text(journal: Path, home: Path) -> str:
    done = subprocess.run(
        [*SP404D, "status", "--journal", str(journal)],
        capture_output=True,
        text=True,
        env=run_env(home),
        timeout=60,
        check=True,
    )
    return done.stdout


def done_outputs(d: DaemonProc) -> set[str]:
    return {r["output"] for r in d.by_status("done")}


class TestJournalDiskFull:
    def test_daemon_owes_records_and_writes_them_when_space_returns(
        self, small_fs: Path, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """15 files converted while the journal's disk is full: no internal error, one
        journal_unwritable, no source moved before its record; once space returns every output
        has its record, without a restart."""
        archive = tmp_path / "archive"
        d = daemon(journal=str(small_fs / "journal.jsonl"), on_done="move", archive=str(archive))
        d.journal = small_fs / "journal.jsonl"
        d.start()
        drop(d, tmp_path, ["first.wav"], 200)
        d.wait_done(1)
        assert d.proc is not None
        pid = d.proc.pid
        filler = fill(small_fs)
        names = [f"take_{i:02d}.wav" for i in range(15)]
        drop(d, tmp_path, names)
        wait_for(lambda: len(d.outputs()) == 16, f"16 outputs (log: {d.log_path})")
        (unwritable,) = wait_for(lambda: d.events("journal_unwritable"), "journal_unwritable")
        assert unwritable["reason"] == "No space left on device"
        assert unwritable["owed"] >= 1
        moved = {n for n in names if not (d.inbox / n).exists()}
        recorded = {Path(r["source"]).name for r in d.records()}
        assert len(recorded) < 16, "the full disk took every record: fill it better"
        assert moved <= recorded, "a source was moved before its record was written"
        assert "journal: its file system is full" in status_text(d.journal, tmp_path / "home")

        filler.unlink()
        wait_for(lambda: d.events("journal_writable"), f"journal_writable (log: {d.log_path})")
        wait_for(lambda: len(d.by_status("done")) == 16, "16 done records")
        expected = {str(d.outbox / name) for name in d.outputs()}
        assert done_outputs(d) == expected
        wait_for(lambda: len(list(archive.rglob("*.wav"))) == 16, "every source archived")
        assert d.proc.poll() is None and d.proc.pid == pid
        assert len(d.events("journal_unwritable")) == 1
        assert not d.events("internal_error") and not d.events("aftercare_failed")
        assert d.stop() == 0
        (stopped,) = d.events("stopped")
        assert stopped["left_for_next_start"] == 0
        assert not d.events("journal_records_lost")
        intents = (small_fs / "journal.jsonl.intents").read_text().splitlines()
        notes = []
        for line in intents:
            with contextlib.suppress(ValueError):  # a note cut off by the full disk, redone
                notes.append(json.loads(line))
        added = {n["output"] for n in notes if not n.get("resolved")}
        assert added == {n["output"] for n in notes if n.get("resolved")} == expected

    def test_convert_reports_lost_records_and_a_rerun_adopts_the_outputs(
        self, small_fs: Path, tmp_path: Path
    ) -> None:
        """convert on a full journal disk: exit 1, one line saying how many records were lost,
        the log listing their outputs; run again with space, the outputs are adopted (same
        bytes, since conversion is deterministic), not converted beside themselves."""
        journal, inbox, outbox = small_fs / "journal.jsonl", tmp_path / "in", tmp_path / "out"
        for i in range(4):
            write_audio(inbox / f"loop {i}.wav", 44100, seconds=0.3, freq=300 + 50 * i)
        pad_to_page(journal)
        filler = fill(small_fs)
        cmd = [*SP404D, "convert", str(inbox), "--outbox", str(outbox), "--journal", str(journal)]
        env = run_env(tmp_path / "home")
        lost_run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert lost_run.returncode == 1, lost_run.stderr
        said = [line for line in lost_run.stderr.splitlines() if line.startswith("sp404d:")]
        assert len(said) == 1 and "4 records lost" in said[0], lost_run.stderr
        logged = [json.loads(line) for line in lost_run.stderr.splitlines() if line[:1] == "{"]
        (lost,) = [e for e in logged if e["event"] == "journal_records_lost"]
        outputs = sorted(p for p in outbox.iterdir())
        assert sorted(lost["outputs"]) == [str(p) for p in outputs] and len(outputs) == 4
        assert "Traceback" not in lost_run.stderr
        before = {p.name: p.read_bytes() for p in outputs}

        filler.unlink()
        rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert {p.name: p.read_bytes() for p in outbox.iterdir()} == before
        with Journal(journal, readonly=True) as reader:
            records = reader.all()
        assert sorted(r["output"] for r in records) == [str(p) for p in outputs]
        assert all(r["status"] == "done" and r["render"]["adopted"] for r in records)

    def test_kit_rerun_adopts_through_the_intents_file(
        self, small_fs: Path, tmp_path: Path
    ) -> None:
        """Kit pads are not found by name: the intent notes (written while the journal could not
        be) are what lets the re-run put each sample back on its own pad, not a new one."""
        journal, inbox, outbox = small_fs / "journal.jsonl", tmp_path / "in", tmp_path / "out"
        for i in range(3):
            write_audio(inbox / "Boom" / f"s{i}.wav", 44100, seconds=0.3, freq=300 + 100 * i)
        pad_to_page(journal)
        # The notes file gets a page before the disk fills: room for a few notes, none for
        # records (the intents file may well be luckier than the journal on a full disk).
        (small_fs / "journal.jsonl.intents").write_bytes(b"\n")
        filler = fill(small_fs)
        cmd = [
            *SP404D, "convert", str(inbox), "--outbox", str(outbox), "--journal", str(journal),
            "--layout", "kit",
        ]  # fmt: skip
        env = run_env(tmp_path / "home")
        lost_run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert lost_run.returncode == 1 and "3 records lost" in lost_run.stderr
        pads = sorted(p.relative_to(outbox).as_posix() for p in outbox.rglob("*.wav"))
        assert pads == [f"Boom/bank_A/pad_0{i + 1}_s{i}.wav" for i in range(3)]
        filler.unlink()
        rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert sorted(p.relative_to(outbox).as_posix() for p in outbox.rglob("*.wav")) == pads


class TestJournalReadOnly:
    def test_immutable_journal_file(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """The journal file refuses writes (chattr +i): records wait, status says why and how
        many; once it takes writes again they are written, in order, without a restart."""
        d = daemon().start()
        drop(d, tmp_path, ["a.wav"], 200)
        d.wait_done(1)
        chattr("+i", d.journal)
        try:
            drop(d, tmp_path, ["b.wav", "c.wav", "d.wav"])
            wait_for(lambda: len(d.outputs()) == 4, "4 outputs")
            wait_for(lambda: d.events("journal_unwritable"), "journal_unwritable")

            def says_owed() -> bool:
                text = status_text(d.journal, tmp_path / "home")
                return "journal: cannot be written (Operation not permitted): 3 records" in text

            wait_for(says_owed, "status to show 3 records owed")
            assert len(d.records()) == 1
        finally:
            chattr("-i", d.journal)
        wait_for(lambda: len(d.by_status("done")) == 4, "4 done records")
        sources = [Path(r["source"]).name for r in d.records()]
        assert sources[0] == "a.wav" and sorted(sources) == ["a.wav", "b.wav", "c.wav", "d.wav"]
        wait_for(lambda: d.events("journal_writable"), "journal_writable")
        wait_for(
            lambda: "journal:" not in status_text(d.journal, tmp_path / "home"),
            "status without a journal problem",
        )
        assert not d.events("internal_error")

    def test_stop_says_what_was_lost(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """Stopped while records are owed: the last try fails, the log lists the outputs, and
        the stop counts their sources as left for the next start, which records them."""
        d = daemon().start()
        drop(d, tmp_path, ["a.wav"], 200)
        d.wait_done(1)
        chattr("+i", d.journal)
        try:
            drop(d, tmp_path, ["b.wav", "c.wav"])
            wait_for(lambda: len(d.outputs()) == 3, "3 outputs")
            wait_for(lambda: d.events("journal_unwritable"), "journal_unwritable")
            assert d.stop() == 0
        finally:
            chattr("-i", d.journal)
        (lost,) = d.events("journal_records_lost")
        assert sorted(lost["outputs"]) == [str(d.outbox / n) for n in ("b.wav", "c.wav")]
        assert d.events("stopped")[-1]["left_for_next_start"] == 2
        d.start()
        wait_for(lambda: len(d.by_status("done")) == 3, "the next start records them")
        assert d.outputs() == ["a.wav", "b.wav", "c.wav"]


class TestJournalGoneWhileRunning:
    def test_deleted_journal_is_rebuilt_and_appending_goes_on(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """Deleted under a running daemon, then a file dropped: the log says so, and the new
        journal holds the old records and the new one."""
        d = daemon().start()
        drop(d, tmp_path, ["a.wav", "b.wav"], 200)
        d.wait_done(2)
        d.journal.unlink()
        drop(d, tmp_path, ["c.wav"], 500)
        wait_for(lambda: d.events("journal_missing"), f"journal_missing (log: {d.log_path})")
        d.wait_done(3)
        assert sorted(Path(r["source"]).name for r in d.records()) == ["a.wav", "b.wav", "c.wav"]
        assert d.events("journal_missing")[0]["restored"] == 2
        assert not d.events("internal_error")

    def test_replaced_journal_is_noticed_without_an_append(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """Replaced by an older copy (a restored backup) while idle: the health check notices
        within seconds and writes back the records the copy lacks."""
        d = daemon().start()
        drop(d, tmp_path, ["a.wav"], 200)
        d.wait_done(1)
        backup = tmp_path / "backup.jsonl"
        shutil.copy(d.journal, backup)
        drop(d, tmp_path, ["b.wav", "c.wav"], 400)
        d.wait_done(3)
        os.replace(backup, d.journal)
        (replaced,) = wait_for(lambda: d.events("journal_replaced"), "journal_replaced")
        assert replaced["restored"] == 2
        wait_for(lambda: len(d.by_status("done")) == 3, "the records back in the file")
        assert not d.events("internal_error")


# -- fsync ------------------------------------------------------------------------------------


@pytest.fixture
def thin_disk(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """An ext4 file system whose disk runs out under it: an image on a 4 MiB tmpfs, on a loop
    device. Writes land in the page cache; when the tmpfs is full, the fsync fails. Yields
    (mount point, the tmpfs, the loop device)."""
    for tool in ("losetup", "mkfs.ext4"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    back, mnt = tmp_path / "back", tmp_path / "ext4"
    _mount_tmpfs(back, "4m")
    mnt.mkdir()
    image = back / "disk.img"
    loop = ""
    try:
        with image.open("wb") as f:
            f.truncate(32 << 20)
        made = _run("mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-E", "nodiscard", str(image))
        if made.returncode:
            pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
        attached = _run("losetup", "-f", "--show", str(image))
        if attached.returncode:
            pytest.skip(f"no loop device: {attached.stderr.strip()}")
        loop = attached.stdout.strip()
        mounted = _run("mount", "-o", "errors=continue", loop, str(mnt))
        if mounted.returncode:
            pytest.skip(f"cannot mount ext4 on {loop}: {mounted.stderr.strip()}")
        yield mnt, back, loop
    finally:
        _run("umount", str(mnt))
        if loop:
            _run("losetup", "-d", loop)
        _run("umount", "-l", str(back))


def test_fsync_failure_is_reported_and_repaired(thin_disk: tuple[Path, Path, str]) -> None:
    """The disk says no to fsync (ENOSPC) after the write was taken: the append does not fail,
    sync() says so, the log says it once; once space returns the journal is written anew, and
    after a remount every record is on the disk."""
    mnt, back, loop = thin_disk
    path = mnt / "journal.jsonl"
    journal = Journal(path, sync_interval=0)  # every append fsyncs
    try:
        for i in range(3):
            journal.append({"source": f"/in/{i}.wav", "status": "done", "n": i})
        filler = fill(back)
        with capture_logs() as logs:
            # Big enough to need blocks the image never had: the tmpfs must find pages for them.
            big = {"source": "/in/3.wav", "status": "done", "n": 3, "pad": "x" * 200_000}
            written = journal.append_or_owe(big)
            assert written, "the line was written; only its fsync failed"
            with pytest.raises(OSError):
                journal.sync()
            owed = journal.append_or_owe({"source": "/in/4.wav", "status": "done", "n": 4})
        assert [e["event"] for e in logs].count("journal_sync_failed") == 1
        assert not owed and journal.owed == 1  # not durable: owed until the rewrite works
        filler.unlink()
        with capture_logs() as logs:
            assert journal.write_owed()
            journal.sync()
        assert {"journal_synced", "journal_rebuilt"} <= {e["event"] for e in logs}
    finally:
        journal.close()
    with contextlib.suppress(OSError):
        (back / "filler").unlink()
    assert _run("umount", str(mnt)).returncode == 0
    assert _run("mount", loop, str(mnt)).returncode == 0
    with Journal(path, readonly=True) as reader:
        assert [r["n"] for r in reader.all()] == [0, 1, 2, 3, 4]
