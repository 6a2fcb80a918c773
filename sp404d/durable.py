"""Writing files whole: a temp file beside the target, renamed onto it (``os.replace`` is
atomic on POSIX), so a reader sees the old file or the new one, never half of one; and, where it
must survive a power cut, fsynced with its folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable.

    Some filesystems (certain FUSE and network mounts) refuse fsync on a folder: that is no
    error, there is nothing more to be done there.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def replace_whole(
    path: Path, data: bytes, *, durable: bool = False, mode: int | None = None
) -> None:
    """Write ``data`` to ``path`` through a hidden temp file beside it (ignored by the watcher
    and by a scan), then rename it into place; ``durable``: fsync the file and the folder too.

    Raises OSError (the temp file removed) when it cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)
