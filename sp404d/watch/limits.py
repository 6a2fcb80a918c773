"""Which folders inotify really watches, read from the kernel, and which it does not.

inotify needs one watch per folder, and a user may hold at most ``fs.inotify.max_user_watches``
of them; a big sample library reaches that. watchdog (7.x) raises only when the inbox *root*
cannot be watched: a subfolder it fails to watch is dropped silently, and files dropped there
would wait for the next rescan. So sp404d does not take watchdog's word for it: the kernel lists
every watch of an inotify descriptor in ``/proc/self/fdinfo/FD`` (one ``inotify wd:N ino:I
sdev:D`` line each), and a folder whose inode is not on that list is not watched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

_WATCH_LINE = re.compile(r"^inotify wd:[0-9a-f]+ ino:([0-9a-f]+) sdev:([0-9a-f]+)", re.MULTILINE)
_PROC_FD = "/proc/self/fd"

WATCH_LIMIT_ADVICE = (
    "raise the limit: `sudo sysctl fs.inotify.max_user_watches=524288` (to keep it, put "
    "`fs.inotify.max_user_watches=524288` in /etc/sysctl.d/90-sp404d.conf)"
)


def watched_folders() -> set[tuple[int, int]] | None:
    """``(st_dev, st_ino)`` of every folder this process's inotify descriptors watch.

    None where the kernel does not say (not Linux, no /proc): then nothing can be checked.
    """
    try:
        fds = os.listdir(_PROC_FD)
    except OSError:
        return None
    found: set[tuple[int, int]] = set()
    for fd in fds:
        try:
            if os.readlink(f"{_PROC_FD}/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
                text = f.read()
        except OSError:
            continue  # closed meanwhile
        for ino, sdev in _WATCH_LINE.findall(text):
            kdev = int(sdev, 16)  # the kernel's own dev_t: major << 20 | minor
            found.add((os.makedev(kdev >> 20, kdev & 0xFFFFF), int(ino, 16)))
    return found


def unwatched(roots: Iterable[Path], skip: Iterable[Path] = ()) -> list[Path] | None:
    """The topmost folders below ``roots`` (roots included) that no inotify watch covers.

    Walks folders the way watchdog adds its watches (symlinked folders not followed); below an
    unwatched folder nothing is looked at, since whoever covers it covers its subtree. ``skip``:
    folders never taken as input (the outbox), not worth a poll. None: cannot tell here.
    """
    watched = watched_folders()
    if watched is None:
        return None
    skipped = {os.path.abspath(p) for p in skip}
    missing: list[Path] = []
    for root in roots:
        for dirpath, dirs, _files in os.walk(root):
            here = Path(dirpath)
            if not _is_watched(here, watched):
                missing.append(here)
                dirs.clear()
                continue
            dirs[:] = [
                d
                for d in dirs
                if not os.path.islink(here / d) and os.path.abspath(here / d) not in skipped
            ]
    return missing


def _is_watched(folder: Path, watched: set[tuple[int, int]]) -> bool:
    try:
        st = folder.stat()
    except OSError:
        return True  # gone meanwhile: nothing to cover
    return (st.st_dev, st.st_ino) in watched
