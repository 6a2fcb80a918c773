"""Everything that touches the outbox: safe folders, temp files, atomic commits, clean-up.

The recipe: write a temp file in the target folder, fsync it,
``os.replace`` it onto its final name, fsync the folder, and only then journal the job as done.
Temp names are 8.3-safe (``~SXXXXXX.TMP``) because the outbox is often a FAT32 card. Each temp
file is held under an ``flock`` while it is written, so a later run can tell the leftovers of a
killed run (lock free: delete) from a file another live process is still writing (lock held).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import time
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from sp404d.durable import fsync_dir, rename
from sp404d.errors import FailedError

TEMP_RE = re.compile(r"^~S[0-9A-F]{6}\.TMP$")
TEMP_MIN_AGE_S = 0.2


class OutboxAwayError(FailedError):
    """The outbox (an SD card) is not there: jobs wait until it returns."""


def check_outbox(outbox: Path, *, removable: bool) -> None:
    """Raise :class:`OutboxAwayError` unless it is safe to write into ``outbox`` now.

    A removable outbox is never created by us, and must sit on a mounted filesystem other than
    the one holding its mount point's parent: an unmounted card leaves an empty folder on the
    system disk, and writing there fills that disk while the card never sees the files.
    """
    if outbox.exists() and not outbox.is_dir():
        raise OutboxAwayError(f"outbox {outbox} is a file, not a folder")
    if _read_only(outbox):
        where = "the card is locked (its write-protect switch?)" if removable else "read-only"
        raise OutboxAwayError(f"outbox {outbox} cannot be written: {where}")
    if not removable:
        return
    if not outbox.is_dir():
        raise OutboxAwayError(f"outbox {outbox} is not there (SD card not inserted?)")
    if not _on_mounted_volume(outbox):
        raise OutboxAwayError(
            f"outbox {outbox} is on the system disk, not a mounted card (SD card not mounted? "
            f"if this is the right place, create {CARD_MARKER} in it)"
        )


CARD_MARKER = ".sp404d-card"


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` sits on a file system mounted read-only (an SD card's lock switch
    makes the kernel mount it so)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _mount_root(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _on_mounted_volume(path: Path) -> bool:
    """True when ``path`` is on a mounted volume, not on the system disk's ``/``.

    Where a card is not a separate mount (a card reader shared over the network, or a
    bind-mounted folder), a file named ``.sp404d-card`` in the outbox or any folder above it
    (up to its mount) marks the right place: it exists only while the real card is there.
    """
    root = _mount_root(path)
    system = set()
    for folder in (Path("/"), Path.home()):
        with contextlib.suppress(OSError):
            system.add(folder.stat().st_dev)
    # A card is a filesystem of its own: not the root's, and not the home folder's (an empty
    # mount point on a separate /home partition must not pass for the card).
    if root != Path("/") and path.stat().st_dev not in system:
        return True
    here = path.resolve()
    while True:
        if (here / CARD_MARKER).exists():
            return True
        if here == root or here == here.parent:
            return False
        here = here.parent


def ensure_folder(outbox: Path, rel: PurePosixPath, *, removable: bool) -> Path:
    """Create ``outbox/rel`` and return it, refusing anything that would land outside.

    ``rel`` comes from sanitised metadata already; this is the last line of defence against a
    symlink inside the outbox pointing elsewhere.
    """
    if rel.is_absolute() or ".." in rel.parts:
        raise FailedError(f"refusing output folder {rel}: outside the outbox")
    if not removable:
        outbox.mkdir(parents=True, exist_ok=True)
    check_outbox(outbox, removable=removable)
    folder = outbox
    try:
        # One level at a time, never with parents=True: if the card goes between the check
        # and here, mkdir fails instead of re-creating the outbox on the system disk.
        for part in rel.parts:
            folder = folder / part
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            fsync_dir(folder.parent)  # the new folder's entry: durable before a file in it
    except OSError as exc:
        raise FailedError(write_reason(exc, folder)) from None
    if not folder.resolve().is_relative_to(outbox.resolve()):
        raise FailedError(f"refusing output folder {folder}: it links outside the outbox")
    return folder


class TempFile:
    """A locked, exclusive temp file in a target folder; unlinked on close unless committed."""

    def __init__(self, folder: Path) -> None:
        for _ in range(100):
            path = folder / f"~S{secrets.token_hex(3).upper()}.TMP"
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            except OSError as exc:
                raise FailedError(write_reason(exc, folder)) from None
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.path, self.fd = path, fd
            self.committed = False
            return
        raise FailedError(f"cannot create a temp file in {folder}")

    def sync(self) -> None:
        os.fsync(self.fd)

    def commit(self, final: Path) -> None:
        """Make the temp file durable and rename it onto ``final`` (the folder's fsync is the
        caller's, once for all it commits there). Raises FailedError with the reason."""
        try:
            os.fsync(self.fd)
            rename(self.path, final)
        except OSError as exc:
            raise FailedError(write_reason(exc, final.parent)) from None
        self.committed = True

    def close(self) -> None:
        """Release the lock; a temp file that was not committed is removed."""
        if self.fd < 0:
            return
        if not self.committed:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> TempFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_reason(exc: OSError, folder: Path) -> str:
    """One-line reason for an OSError met while writing into ``folder``."""
    if exc.errno == errno.ENOSPC:
        return f"disk full writing to {folder}"
    if exc.errno in (errno.ENOENT, errno.EIO, errno.ENODEV, errno.ENXIO):
        return f"outbox folder {folder} vanished while writing (SD card pulled?)"
    return f"cannot write to {folder}: {exc.strerror or exc}"


class Cleaned(NamedTuple):
    removed: list[Path]
    left: int  # temp files left alone: locked by a live writer, or too young to judge


def clean_stale_temps(
    outbox: Path, *, min_age_s: float = TEMP_MIN_AGE_S, wait_young: bool = False
) -> Cleaned:
    """Remove temp files left by killed runs (their lock is free).

    A temp file younger than ``min_age_s`` may belong to a live writer between its create and
    its lock, so it is left alone; with ``wait_young`` (at start-up, just after a crash may have
    left some) those are looked at again once they are old enough, so none outlives the start.
    """
    removed: list[Path] = []
    if not outbox.is_dir():
        return Cleaned(removed, 0)
    left = 0
    young: list[tuple[float, Path]] = []
    now = time.time()
    for dirpath, _dirs, files in os.walk(outbox):
        for name in files:
            if not TEMP_RE.match(name):
                continue
            path = Path(dirpath, name)
            with contextlib.suppress(OSError):
                age = now - path.stat().st_mtime
                if age < min_age_s:
                    young.append((min_age_s - age, path))
                elif _remove_if_unlocked(path):
                    removed.append(path)
                else:
                    left += 1
    if wait_young and young:
        time.sleep(max(0.0, min(max(wait for wait, _ in young), min_age_s)))
        for _, path in young:
            if _remove_if_unlocked(path):
                removed.append(path)
            else:
                left += 1
    else:
        left += len(young)
    return Cleaned(removed, left)


def _remove_if_unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    else:
        try:
            os.unlink(path)
        except OSError:
            return False
        return True
    finally:
        os.close(fd)


def same_bytes(a: Path, b: Path, chunk: int = 1 << 20) -> bool:
    """True when two files have identical content (sizes compared first)."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            while True:
                ba, bb = fa.read(chunk), fb.read(chunk)
                if ba != bb:
                    return False
                if not ba:
                    return True
    except OSError:
        return False
