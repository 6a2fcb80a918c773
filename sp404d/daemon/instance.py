"""One daemon per journal and per inbox, held by ``flock``ed lock files.

Two daemons on one config would both convert every drop (two ``done`` records each), and a
one-shot ``convert`` of a watched inbox would race the daemon for the same files. A daemon holds
an exclusive lock on ``JOURNAL.run.lock`` beside its journal and on one lock file per inbox in
the per-user state folder (named by a digest of the inbox's path, so daemons with different
journals still meet there). The kernel drops a lock when its process dies, however it dies, so
a stale lock from a killed daemon is simply taken over. Each lock file holds its owner's pid,
for the message that names it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from sp404d.config import default_state_dir
from sp404d.errors import ConfigError, Sp404dError


class AlreadyRunningError(Sp404dError):
    """Another ``sp404d run`` holds the journal or an inbox."""


def journal_lock(journal: Path) -> Path:
    return journal.with_name(journal.name + ".run.lock")


def inbox_lock(inbox: Path) -> Path:
    digest = hashlib.sha256(os.fsencode(os.path.abspath(inbox))).hexdigest()[:16]
    return default_state_dir() / "running" / f"inbox-{digest}.lock"


class Claim:
    """The locks of a running daemon; released on :meth:`release` or when the process ends."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def take(self, lock: Path, what: str, key: str) -> None:
        """Hold ``lock`` (already held by us: nothing to do), or raise naming its owner. A lock
        that cannot be made (a read-only file system, a folder not allowed) is a ConfigError
        naming ``what`` and the setting ``key``: the daemon cannot start there."""
        if lock in self._fds:
            return
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            why = (
                "its file system is read-only"
                if exc.errno == errno.EROFS
                else (exc.strerror or str(exc)).lower()
            )
            raise ConfigError(
                key, f"{what}: cannot write beside it ({why}: {lock}); give a writable place"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            owner = f"pid {pid}" if pid else "another process"
            raise AlreadyRunningError(
                f"sp404d is already running ({owner}) on {what}; stop it first, or give this "
                "one its own journal and inboxes"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fds[lock] = fd

    def keep_only(self, locks: Sequence[Path]) -> None:
        """Let go of every lock not in ``locks`` (inboxes dropped by a reload)."""
        for lock in [held for held in self._fds if held not in locks]:
            self._drop(lock)

    def release(self) -> None:
        for lock in list(self._fds):
            self._drop(lock)

    def _drop(self, lock: Path) -> None:
        fd = self._fds.pop(lock)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def claim(journal: Path, inboxes: Sequence[Path], held: Claim | None = None) -> Claim:
    """Lock the journal and every inbox for this daemon, or raise naming the one that runs.

    ``held``: the claim of a running daemon whose config is reloaded; new inboxes are added to
    it and dropped ones released, all or nothing.
    """
    result = held or Claim()
    wanted = [journal_lock(journal), *(inbox_lock(i) for i in inboxes)]
    fresh = [w for w in wanted if held is None or w not in held._fds]
    try:
        result.take(wanted[0], f"the journal {journal}", "journal")
        for inbox, lock in zip(inboxes, wanted[1:], strict=True):
            result.take(lock, f"the inbox {inbox}", "inbox")
    except BaseException:
        for lock in fresh:
            if lock in result._fds:
                result._drop(lock)
        raise
    result.keep_only(wanted)
    return result


def running_on(inbox: Path) -> int | None:
    """The pid of the daemon watching ``inbox``, or None when none does."""
    lock = inbox_lock(inbox)
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _pid_in(fd) or -1
    finally:
        os.close(fd)
    return None


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def watched_by_daemons(folders: Sequence[Path]) -> dict[Path, int]:
    """Of ``folders`` and every folder above them, those a running daemon watches, with its
    pid: ``convert`` leaves their files to it instead of racing it for them."""
    found: dict[Path, int] = {}
    for folder in folders:
        for candidate in (folder, *folder.parents):
            if candidate not in found and (pid := running_on(candidate)) is not None:
                found[candidate] = pid
    return found
