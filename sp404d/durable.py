"""Writing files whole: a temp file beside the target, renamed onto it (``os.replace`` is
atomic on POSIX), so a reader sees the old file or the new one, never half of one; and, where it
must survive a power cut, fsynced with its folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


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


def rename(src: Path, dst: Path, *, durable: bool = False) -> None:
    """Put ``src`` in place of ``dst`` in one step (``os.replace``: atomic on POSIX, a reader
    sees the old file or the new one); ``durable``: fsync the folder, so the rename survives a
    power cut. Every file sp404d writes whole arrives by this rename."""
    os.replace(src, dst)
    if durable:
        fsync_dir(dst.parent)


@contextlib.contextmanager
def written_whole(
    path: Path, *, durable: bool = False, mode: int | None = None
) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: a hidden temp file beside it (ignored by the watcher
    and by a scan), renamed into place when the block ends without an error, removed when it
    does not; ``durable``: fsynced, with its folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        rename(tmp, path, durable=durable)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def replace_whole(
    path: Path, data: bytes, *, durable: bool = False, mode: int | None = None
) -> None:
    """Write ``data`` to ``path`` whole (see :func:`written_whole`).

    Raises OSError (the temp file removed) when it cannot be written.
    """
    with written_whole(path, durable=durable, mode=mode) as out:
        out.write(data)
