"""The last field failures: a read-only journal or card, a missing inbox, an empty file, a
broken config under a running daemon, an index to rebuild, Ctrl-C, and the terminal.

Read-only file systems are real ones (a tmpfs remounted read-only), which needs root: those
tests are skipped, with the reason, where it cannot be set up.
"""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sp404d.commands.convert import Progress
from sp404d.journal.journal import Journal
from sp404d.pipeline.outbox import CARD_MARKER
from tests.conftest import SP404D, run_env, write_audio
from tests.daemon_harness import DaemonFactory, wait_for


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own; ``remount(ro=True)`` makes it read-only (a locked SD card)."""
    where = tmp_path / "ro"
    where.mkdir()
    done = _run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where))
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs ({done.stderr.strip() or 'not root'})")
    yield where
    _run("umount", "-l", str(where))


def remount(where: Path, *, ro: bool) -> None:
    done = _run("mount", "-o", f"remount,{'ro' if ro else 'rw'}", str(where))
    assert done.returncode == 0, done.stderr


def sp404d(tmp_path: Path, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SP404D, *args], capture_output=True, text=True, env=run_env(tmp_path / "home")
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if code is not None:
        assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def test_a_journal_on_a_read_only_file_system_is_one_line(read_only: Path, tmp_path: Path) -> None:
    journal = read_only / "journal.jsonl"
    with Journal(journal) as j:
        j.append({"source": "/in/a.wav", "status": "done"})
    remount(read_only, ro=True)
    config = tmp_path / "c.yaml"
    config.write_text(f"inbox: {tmp_path / 'in'}\noutbox: {tmp_path / 'out'}\njournal: {journal}\n")
    (tmp_path / "in").mkdir()
    proc = sp404d(tmp_path, "run", "--config", str(config), code=2)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"the journal {journal}" in proc.stderr and "read-only" in proc.stderr


def test_a_configured_inbox_that_is_not_there_is_waited_for(
    daemon: DaemonFactory, tmp_path: Path
) -> None:
    late = tmp_path / "Dropbox" / "sp404"
    d = daemon(inbox=str(late), rescan_interval=0).start()
    assert not late.exists()  # not made in its place: a typo or an unmounted sync folder
    assert d.events("inbox_missing")[0]["inbox"] == str(late)
    status = subprocess.run(
        [*SP404D, "status", "--config", str(d.config)], capture_output=True, text=True, env=d.env
    ).stdout
    assert f"inbox {late} does not exist; waiting for it" in status
    staged = tmp_path / "staged"
    write_audio(staged / "kick.wav", 44100)
    late.parent.mkdir()
    os.rename(staged, late)  # the sync folder appears, with a file in it
    d.wait_done(1)
    wait_for(lambda: not (d.state() or {}).get("inboxes_missing"), "the inbox no longer missing")


def test_the_default_inbox_is_made_and_said(tmp_path: Path) -> None:
    env = run_env(tmp_path / "home")
    proc = subprocess.Popen(
        [*SP404D, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        inbox = tmp_path / "home" / "sp404d" / "inbox"
        wait_for(inbox.is_dir, "the default inbox")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert str(inbox) in out and "inbox_missing" not in out


def test_an_empty_file_is_refused_once_it_stays_empty_and_converted_once_filled(
    daemon: DaemonFactory,
) -> None:
    d = daemon(settle_seconds=0.3).start()
    empty = d.inbox / "placeholder.wav"
    empty.write_bytes(b"")
    rec = wait_for(lambda: d.by_status("rejected"), "the empty file's record")[0]
    assert rec["source"] == str(empty) and rec["reason"] == "empty: the file has 0 bytes"
    write_audio(d.inbox / "staged" / "full.wav", 44100)
    os.replace(d.inbox / "staged" / "full.wav", empty)
    d.wait_done(1)


def test_status_and_kits_read_on_when_the_config_breaks_under_the_daemon(
    daemon: DaemonFactory,
) -> None:
    d = daemon().start()
    write_audio(d.inbox / "kick.wav", 44100)
    d.wait_done(1)
    d.config.write_text(d.config.read_text() + "layout: grid\n")
    status = subprocess.run(
        [*SP404D, "status", "--config", str(d.config)], capture_output=True, text=True, env=d.env
    )
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert "the config on disk is broken" in status.stderr and "layout" in status.stderr
    assert "done 1" in status.stdout and "daemon: running" in status.stdout
    kits = subprocess.run(
        [*SP404D, "kits", "--config", str(d.config)], capture_output=True, text=True, env=d.env
    )
    assert kits.returncode == 0 and kits.stdout.startswith("no kits yet")


def test_a_locked_card_is_not_ready(daemon: DaemonFactory, read_only: Path, tmp_path: Path) -> None:
    (read_only / "IMPORT").mkdir()
    (read_only / CARD_MARKER).touch()
    remount(read_only, ro=True)
    d = daemon(outbox=str(read_only / "IMPORT"), outbox_removable=True).start()
    write_audio(d.inbox / "kick.wav", 44100)
    state = d.wait_state("the card judged", outbox_state="away")
    assert "the card is locked" in state["outbox_reason"]
    status = subprocess.run(
        [*SP404D, "status", "--config", str(d.config)], capture_output=True, text=True, env=d.env
    ).stdout
    assert "outbox ready" not in status and "the card is locked" in status
    remount(read_only, ro=False)  # unlocked: the file waits no more
    d.wait_done(1, timeout=30)
    d.stop()


class TestIndexRebuild:
    def test_a_reader_keeps_the_index_it_built(self, tmp_path: Path) -> None:
        journal = tmp_path / "j.jsonl"
        with Journal(journal) as j:
            j.db.insert_multiple(
                {"source": f"/in/s{i}.wav", "status": "done", "output": f"/out/s{i}.wav"}
                for i in range(3000)
            )
        index = journal.with_name("j.jsonl.index")
        index.unlink()  # restored from a backup without it
        first = sp404d(tmp_path, "status", "--journal", str(journal)).stdout
        assert index.exists()  # built once, kept for the next reader
        stamp = index.stat().st_mtime_ns
        assert sp404d(tmp_path, "status", "--journal", str(journal)).stdout == first
        assert index.stat().st_mtime_ns == stamp  # not built again
        with Journal(journal, readonly=True) as j:
            assert len(j) == 3000 and j.latest_by_source("/in/s7.wav") is not None

    def test_reading_in_chunks_finds_every_record_and_the_torn_tail(self, tmp_path: Path) -> None:
        from sp404d.journal import _read as _journal_read

        journal = tmp_path / "j.jsonl"
        with Journal(journal) as j:
            j.db.insert_multiple({"source": f"/in/{i}", "status": "done"} for i in range(500))
        with journal.open("ab") as f:
            f.write(b'[501,"done",{"source":"/in/torn"')  # a crash mid-line
        old = _journal_read.READ_CHUNK
        _journal_read.READ_CHUNK = 1000  # a few lines a chunk
        try:
            with Journal(journal, readonly=True) as j:
                assert len(j) == 500 and j.latest_by_source("/in/499") is not None
        finally:
            _journal_read.READ_CHUNK = old


def test_ctrl_c_during_convert_leaves_no_temp_file(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):  # long enough to be caught mid-write
        sf.write(str(inbox / f"take{i}.wav"), rng.uniform(-0.5, 0.5, (44100 * 120, 2)), 44100)
    proc = subprocess.Popen(
        [*SP404D, "convert", str(inbox), "--outbox", str(outbox), "--journal",
         str(tmp_path / "j.jsonl"), "--workers", "2"],
        env=run_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    wait_for(lambda: list(outbox.rglob("~S*.TMP")), "a temp file being written")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at a terminal reaches the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"Traceback" not in err
    assert not list(outbox.rglob("~S*.TMP"))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgress:
    def test_the_line_fits_the_terminal(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("COLUMNS", "60")
        out = _Tty()
        progress = Progress(3, out)
        progress({"source": "/in/" + "a_very_long_sample_name_" * 4 + ".wav", "status": "done"})
        drawn = out.getvalue().rsplit("\r\x1b[K", 1)[-1]
        assert 0 < len(drawn) <= 59

    def test_a_warning_clears_the_line_first(self) -> None:
        out = _Tty()
        progress = Progress(3, out)
        progress({"source": "/in/a.wav", "status": "done"})
        progress.stream.write("warning: something\n")
        assert out.getvalue().endswith("\r\x1b[Kwarning: something\n")

    def test_skipped_files_do_not_count_as_work(self) -> None:
        out = _Tty()
        progress = Progress(1000, out)
        for i in range(900):  # a resumed run: 900 known already, in no time
            progress.last = 0.0
            progress({"source": f"/in/{i}.wav", "status": "skipped"})
        progress.work_start = time.monotonic() - 10.0  # then 10 files in 10 s
        progress.worked = 9
        progress.last = 0.0
        progress({"source": "/in/x.wav", "status": "done", "elapsed_s": 0})
        line = out.getvalue().rsplit("\r\x1b[K", 1)[-1]
        assert line.startswith("[901/1000] 1 files/s, ETA 1:")  # 99 left at 1/s, not 0:01


def test_a_terminal_starts_with_where_to_drop_files(tmp_path: Path) -> None:
    """``sp404d run`` at a terminal: two plain lines first, the inbox and the outbox."""
    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f"inbox: {inbox}\noutbox: {outbox}\njournal: {tmp_path / 'j.jsonl'}\n")
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [*SP404D, "run", "--config", str(config)],
        env=run_env(tmp_path / "home"),
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"and writes to" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                seen += os.read(main, 4096)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.close(main)
    lines = seen.decode(errors="replace").splitlines()
    assert lines[0] == f"sp404d is watching {inbox}", lines
    assert lines[1] == f"and writes to {outbox}  (made it)  (Ctrl-C stops it)", lines


def test_status_json_names_the_missing_inboxes(daemon: DaemonFactory, tmp_path: Path) -> None:
    d = daemon(inbox=str(tmp_path / "nowhere")).start()
    data = json.loads(
        subprocess.run(
            [*SP404D, "status", "--json", "--config", str(d.config)],
            capture_output=True,
            text=True,
            env=d.env,
        ).stdout
    )
    assert data["daemon"]["inboxes_missing"] == [str(tmp_path / "nowhere")]
