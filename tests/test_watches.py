"""Running out of inotify watches, at any depth, and an inbox replaced under the daemon.

The limit is real: the daemon runs in a user namespace of its own, whose inotify watch limit
(``/proc/sys/user/max_inotify_watches``, per namespace since Linux 5.11) the test lowers.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from sp404d.watch.limits import unwatched, watched_folders
from tests.conftest import SP404D, write_audio
from tests.daemon_harness import DaemonFactory, DaemonProc, wait_for

LIMIT_FILE = "/proc/sys/user/max_inotify_watches"


@functools.cache
def _can_limit() -> str | None:
    """Why the limit cannot be lowered here, or None when it can."""
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = ["unshare", "--user", "--map-root-user", "sh", "-c", f"echo 5 > {LIMIT_FILE}"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return str(exc)
    return None if done.returncode == 0 else f"cannot lower the limit: {done.stderr.strip()}"


def _limited(watches: int) -> list[str]:
    """A command prefix running sp404d with at most ``watches`` inotify watches."""
    reason = _can_limit()
    if reason:
        pytest.skip(f"needs a user namespace with its own inotify limit: {reason}")
    script = f'echo {watches} > {LIMIT_FILE} && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "sh", "-c", script, "sh", *SP404D]


class TestWatchedFolders:
    def test_every_folder_watched_by_a_real_observer(self, tmp_path: Path) -> None:
        for i in range(5):
            (tmp_path / f"f{i}" / "sub").mkdir(parents=True)
        observer = Observer()
        observer.schedule(FileSystemEventHandler(), str(tmp_path), recursive=True)
        observer.start()
        try:
            assert watched_folders() is not None
            assert unwatched([tmp_path]) == []
            later = tmp_path / "not_yet"
            assert unwatched([later.parent / "f0"]) == []
        finally:
            observer.stop()
            observer.join()
        assert unwatched([tmp_path]) == [tmp_path]  # the topmost one only: it covers the rest


def _library(d: DaemonProc, folders: int) -> None:
    for i in range(folders):
        (d.inbox / f"pack{i:02d}" / "loops").mkdir(parents=True)


class TestWatchLimit:
    def test_folders_past_the_limit_are_polled(self, daemon: DaemonFactory) -> None:
        """With the limit reached part-way down the tree, a drop deep in an unwatched folder
        is converted within the settle and poll times, not at the next rescan; the limit is
        logged once with the remedy and shown by status."""
        d = daemon(poll_interval=0.3)
        _library(d, 20)
        d.start(prefix=_limited(8))
        write_audio(d.inbox / "pack19" / "loops" / "deep.wav")
        write_audio(d.inbox / "top.wav")
        d.wait_done(2, timeout=15)
        [event] = d.events("watch_limit")
        assert "max_user_watches" in event["message"]
        status = subprocess.run(
            [*SP404D, "status", "--config", str(d.config)],
            capture_output=True,
            text=True,
            env=d.env,
            timeout=60,
            check=False,
        )
        assert "ran out of inotify watches" in status.stdout

    def test_a_new_folder_past_the_limit_is_polled(self, daemon: DaemonFactory) -> None:
        d = daemon(poll_interval=0.3)
        _library(d, 3)
        d.start(prefix=_limited(7))  # the root and the six folders: full
        assert not d.events("watch_limit")
        (d.inbox / "new_pack").mkdir()
        write_audio(d.inbox / "new_pack" / "late.wav")
        d.wait_done(1, timeout=15)
        assert len(d.events("watch_limit")) == 1

    def test_even_the_root_unwatchable(self, daemon: DaemonFactory) -> None:
        d = daemon(poll_interval=0.3)
        _library(d, 2)
        d.start(prefix=_limited(0))
        write_audio(d.inbox / "pack01" / "loops" / "deep.wav")
        d.wait_done(1, timeout=15)
        assert d.events("watch_limit")


class TestInboxReplaced:
    def test_deleted_and_made_again_within_a_second(self, daemon: DaemonFactory) -> None:
        """An inbox deleted and re-created (a sync client resetting its folder) is watched
        again at once: a drop there converts without waiting for a rescan."""
        d = daemon().start()
        shutil.rmtree(d.inbox)
        d.inbox.mkdir()
        write_audio(d.inbox / "after.wav")
        d.wait_done(1, timeout=15)
        assert d.events("inbox_away") or d.events("inbox_replaced")
        wait_for(lambda: d.events("rescan"), "a rescan after watching again")
