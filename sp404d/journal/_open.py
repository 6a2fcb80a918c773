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
from sp404d.journal._read import Reader
from sp404d.journal._state import FileState, Orphan


class Opener:
    """Opens the journal file, holds its lock, and follows the path to the current file (what
    it had is kept as the orphan, to be checked against what is there now)."""

    def __init__(self, s: FileState, reader: Reader) -> None:
        self.s, self.reader = s, reader

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file lock, with every record other processes appended already read."""
        self.s.check_writable()
        with self.s.mutex:
            if self.s.depth == 0:
                self.acquire()
            self.s.depth += 1
            try:
                yield
            finally:
                self.s.depth -= 1
                if self.s.depth == 0 and self.s.fd is not None:
                    fcntl.flock(self.s.fd, fcntl.LOCK_UN)

    def open_writer(self) -> None:
        self.s.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            try:
                fd, existed = os.open(self.s.path, flags), True
            except FileNotFoundError:
                fd, existed = os.open(self.s.path, flags | os.O_CREAT, 0o666), False
        except IsADirectoryError:
            raise ConfigError("journal", f"{self.s.path} is a folder; give a file path") from None
        self.adopt(fd)
        self.s.found_empty = existed and os.fstat(fd).st_size == 0

    def open_reader(self) -> None:
        try:
            fd = os.open(self.s.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.s.reset()
            return  # nothing was ever journaled: an empty journal, and nothing created
        self.adopt(fd)
        self.reader.catch_up(locked=False)

    def adopt(self, fd: int) -> None:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise ConfigError("journal", f"{self.s.path} is {kind}; give a file path")
        except BaseException:
            os.close(fd)
            raise
        self.s.fd, self.s.ident = fd, (st.st_dev, st.st_ino)
        self.s.reset()

    def acquire(self) -> None:
        while True:
            if self.s.fd is None:  # lost with the file, and opening its successor failed
                self.s.check_open()
                self.open_writer()
            fd = self.s.require_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.stat(self.s.path)
                current = (st.st_dev, st.st_ino) == self.s.ident
                how = "replaced"
            except FileNotFoundError:
                current, how = False, "missing"
            if current:
                break
            # Another process replaced the file (a full rewrite) or it was deleted: our
            # descriptor holds a file nobody reads any more. Keep it to read what we had,
            # follow the path, read it anew (``_after_locked_read`` compares the two).
            if self.s.orphan is None:
                self.s.orphan = Orphan(
                    fd, self.s.ident, how, self.s.start, self.s.offset, self.s.index.total
                )
                fcntl.flock(fd, fcntl.LOCK_UN)
                self.s.fd, self.s.ident = None, None
            else:
                self.s.close_fd()
            self.open_writer()
        try:
            try:
                self.reader.catch_up(locked=True)
            except ConfigError:
                if self.s.orphan is None:
                    raise
                # What replaced our journal is no journal: keep it, untouched, and start anew.
                self.set_aside_foreign()
                self.reader.catch_up(locked=True)
        except BaseException:
            if self.s.fd is not None:
                fcntl.flock(self.s.fd, fcntl.LOCK_UN)
            raise

    def set_aside_foreign(self) -> None:
        """Rename a file that replaced the journal but is not one to ``JOURNAL.replaced[.N]``,
        and open a new journal in its place."""
        aside = self.s.path.with_name(self.s.path.name + ".replaced")
        n = 1
        while aside.exists():
            n += 1
            aside = self.s.path.with_name(f"{self.s.path.name}.replaced.{n}")
        rename(self.s.path, aside)
        fsync_dir(self.s.path.parent)
        self.s.notice(
            "warning",
            "journal_replaced",
            journal=str(self.s.path),
            how="replaced by a file that is not a journal",
            kept_in=str(aside),
        )
        self.s.close_fd()
        self.open_writer()
        fcntl.flock(self.s.require_fd(), fcntl.LOCK_EX)

    def remove_stale_temps(self) -> None:
        """Delete temp files of rewrites (and index snapshots) that died before their rename.

        Safe under the lock: a rewrite in progress holds it until its rename is done.
        """
        prefix, suffix = f".{self.s.path.name}.", ".tmp"
        for name in os.listdir(self.s.path.parent):
            if name.startswith(prefix) and name.endswith(suffix):
                with suppress(FileNotFoundError):
                    os.unlink(self.s.path.parent / name)
