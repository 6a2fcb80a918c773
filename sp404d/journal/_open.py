"""Opening the journal file and holding its lock, following a file replaced or deleted under
this process (what it had is kept, to be checked against what is there now)."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sp404d.durable import fsync_dir, rename
from sp404d.errors import ConfigError
from sp404d.journal._read import _Reading
from sp404d.journal._state import (
    _Orphan,
)


class _Opening(_Reading):
    """Opens, locks, and follows the path to the current file."""

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file lock, with every record other processes appended already read."""
        self._check_writable()
        with self.mutex:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            try:
                fd, existed = os.open(self.path, flags), True
            except FileNotFoundError:
                fd, existed = os.open(self.path, flags | os.O_CREAT, 0o666), False
        except IsADirectoryError:
            raise ConfigError("journal", f"{self.path} is a folder; give a file path") from None
        self._adopt(fd)
        self._found_empty = existed and os.fstat(fd).st_size == 0

    def _open_reader(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._reset()
            return  # nothing was ever journaled: an empty journal, and nothing created
        self._adopt(fd)
        self._catch_up(locked=False)

    def _adopt(self, fd: int) -> None:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise ConfigError("journal", f"{self.path} is {kind}; give a file path")
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self._reset()

    def _acquire(self) -> None:
        while True:
            if self._fd is None:  # lost with the file, and opening its successor failed
                self._check_open()
                self._open_writer()
            fd = self._require_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.stat(self.path)
                current = (st.st_dev, st.st_ino) == self._ident
                how = "replaced"
            except FileNotFoundError:
                current, how = False, "missing"
            if current:
                break
            # Another process replaced the file (a full rewrite) or it was deleted: our
            # descriptor holds a file nobody reads any more. Keep it to read what we had,
            # follow the path, read it anew (``_after_locked_read`` compares the two).
            if self._orphan is None:
                self._orphan = _Orphan(
                    fd, self._ident, how, self._start, self._offset, self._index.total
                )
                fcntl.flock(fd, fcntl.LOCK_UN)
                self._fd, self._ident = None, None
            else:
                self._close_fd()
            self._open_writer()
        try:
            try:
                self._catch_up(locked=True)
            except ConfigError:
                if self._orphan is None:
                    raise
                # What replaced our journal is no journal: keep it, untouched, and start anew.
                self._set_aside_foreign()
                self._catch_up(locked=True)
        except BaseException:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            raise

    def _set_aside_foreign(self) -> None:
        """Rename a file that replaced the journal but is not one to ``JOURNAL.replaced[.N]``,
        and open a new journal in its place."""
        aside = self.path.with_name(self.path.name + ".replaced")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.replaced.{n}")
        rename(self.path, aside)
        fsync_dir(self.path.parent)
        self._notice(
            "warning",
            "journal_replaced",
            journal=str(self.path),
            how="replaced by a file that is not a journal",
            kept_in=str(aside),
        )
        self._close_fd()
        self._open_writer()
        fcntl.flock(self._require_fd(), fcntl.LOCK_EX)

    def _remove_stale_temps(self) -> None:
        """Delete temp files of rewrites (and index snapshots) that died before their rename.

        Safe under the lock: a rewrite in progress holds it until its rename is done.
        """
        prefix, suffix = f".{self.path.name}.", ".tmp"
        for name in os.listdir(self.path.parent):
            if name.startswith(prefix) and name.endswith(suffix):
                with suppress(FileNotFoundError):
                    os.unlink(self.path.parent / name)
