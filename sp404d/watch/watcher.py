"""Noticing files: watchdog events in, ``Change`` records out, and when a file is complete.

Two parts, kept apart as watchdog itself keeps emitters from handlers:
- :class:`Watcher` runs the observers. Its handler only puts a ``Change`` on a queue: an
  exception inside a watchdog handler silently kills the observer thread (watchdog issues 663,
  829), and slow work there stalls every watch.
- :class:`Settler` decides when a file is complete. On Linux, inotify's IN_CLOSE_WRITE (a
  ``closed`` change) means the writer is done. A file that arrives any other way (a rename by a
  sync client, a move from outside, polling, macOS) is complete once its size and mtime have
  stood still for the settle time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from sp404d.logs import get_logger
from sp404d.watch.limits import WATCH_LIMIT_ADVICE as ADVICE
from sp404d.watch.limits import unwatched

# Opened and closed-without-writing events are left out: sp404d's own reads would echo back.
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


@dataclass(frozen=True)
class Change:
    """Something happened to ``path`` below ``inbox``.

    kind: ``closed`` (written and closed: complete), ``changed`` (created, modified or moved
    in: complete once it settles), ``deleted``, ``dir`` (a folder appeared: scan it),
    ``inbox_gone`` (the inbox itself was deleted: watch it again once it is back).
    """

    path: Path
    kind: str
    inbox: Path
    moved_from: Path | None = None  # a move or rename inside the inbox: where it was


def _text(value: bytes | str) -> str:
    return os.fsdecode(value)


class _Enqueue(FileSystemEventHandler):
    """Turns events into Changes. Does nothing else, and never raises."""

    def __init__(self, inbox: Path, out: queue.Queue[Any]) -> None:
        self.inbox, self.out = inbox, out

    def _put(self, path: bytes | str, kind: str, src: bytes | str | None = None) -> None:
        moved_from = Path(_text(src)) if src is not None else None
        self.out.put(Change(Path(_text(path)), kind, self.inbox, moved_from))

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            if event.is_directory:
                if isinstance(event, DirDeletedEvent) and _text(event.src_path) == str(self.inbox):
                    self._put(event.src_path, "inbox_gone")  # its watch died with it
                elif isinstance(event, DirMovedEvent):
                    self._put(event.dest_path, "dir", event.src_path)
                elif isinstance(event, DirCreatedEvent):
                    self._put(event.src_path, "dir")
                return
            if isinstance(event, FileMovedEvent):
                self._put(event.src_path, "deleted")
                self._put(event.dest_path, "changed", event.src_path)
            elif isinstance(event, FileClosedEvent):
                self._put(event.src_path, "closed")
            elif isinstance(event, FileDeletedEvent):
                self._put(event.src_path, "deleted")
            else:
                self._put(event.src_path, "changed")
        except Exception:  # never out of the observer's thread: it would die silently
            with contextlib.suppress(Exception):
                get_logger().exception("watch_event_lost", what=repr(event))


class Watcher:
    """Observers for a set of inboxes, feeding one queue."""

    def __init__(
        self,
        inboxes: list[Path],
        out: queue.Queue[Any],
        *,
        polling: bool = False,
        poll_interval: float = 2.0,
        skip: Sequence[Path] = (),
    ) -> None:
        """``skip``: folders inside an inbox that are never input (not worth a poll)."""
        self.inboxes = inboxes
        self.out = out
        self.polling = polling
        self.poll_interval = poll_interval
        self.skip = tuple(skip)
        self.observer: BaseObserver | None = None
        self.backup: BaseObserver | None = None  # polls the folders inotify could not watch
        self.polled: list[Path] = []
        self.note: str | None = None  # why we fell back to polling, if we did

    @property
    def mode(self) -> str:
        if self.polling:
            return "polling"
        return f"events, polling {len(self.polled)} folders" if self.polled else "events"

    def _make(self, polling: bool) -> BaseObserver:
        if polling:
            return PollingObserver(timeout=self.poll_interval)
        return Observer()

    def start(self) -> None:
        """Start watching every inbox that exists; fall back to polling if inotify runs out."""
        try:
            self.observer = self._start(self.polling)
        except OSError as exc:
            if self.polling or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            self.note = f"ran out of inotify watches; polling the inboxes instead: {ADVICE}"
            self.polling = True
            self.observer = self._start(True)
            return
        self._cover(self.inboxes)

    def cover(self, folder: Path) -> bool:
        """A folder appeared: poll it if inotify could not watch it. True if it is polled now.

        watchdog adds the watch for a new folder before it passes the folder's event on, so
        by the time the event reaches us the kernel's list is up to date.
        """
        if self.polling or self.observer is None:
            return False
        if any(folder.is_relative_to(p) for p in self.polled):
            return False  # polled already, with its whole subtree
        return self._cover([folder]) > 0

    def _cover(self, folders: list[Path]) -> int:
        """Poll, with their subtrees, the folders below ``folders`` that have no watch."""
        missing = unwatched(folders, self.skip)
        if not missing:
            return 0
        if self.backup is None:
            self.backup = PollingObserver(timeout=self.poll_interval)
            self.backup.daemon = True
            self.backup.start()
        for folder in missing:
            inbox = next((i for i in self.inboxes if folder.is_relative_to(i)), folder)
            self.backup.schedule(
                _Enqueue(inbox, self.out), str(folder), recursive=True, event_filter=EVENTS
            )
            self.polled.append(folder)
        self.note = (
            f"ran out of inotify watches: {len(self.polled)} folders (and what is below them) "
            f"are polled every {self.poll_interval:g} s instead; {ADVICE}"
        )
        return len(missing)

    def _start(self, polling: bool) -> BaseObserver:
        observer = self._make(polling)
        observer.daemon = True
        try:
            for inbox in self.inboxes:
                if inbox.is_dir():
                    observer.schedule(
                        _Enqueue(inbox, self.out), str(inbox), recursive=True, event_filter=EVENTS
                    )
            observer.start()
        except BaseException:
            with contextlib.suppress(Exception):  # best effort: a half-started observer
                observer.stop()
            raise
        return observer

    def alive(self) -> bool:
        observers = [o for o in (self.observer, self.backup) if o is not None]
        return self.observer is not None and all(o.is_alive() for o in observers)

    def stop(self) -> None:
        for observer in (self.observer, self.backup):
            if observer is not None:
                observer.stop()
                if observer.is_alive():
                    observer.join(timeout=5)
        self.observer = self.backup = None
        self.polled = []


def open_for_writing(path: Path) -> bool | None:
    """Whether any process still has ``path`` open for writing (Linux leases); None: unknown.

    A recorder that pauses longer than the settle time keeps its file open: size and mtime
    stand still, yet the take is not finished. Linux refuses a read lease (F_SETLEASE) on a
    file that some process has open for writing, which tells exactly that, without scanning
    /proc. Elsewhere, on filesystems without leases, or on files we do not own, the settle
    time alone decides.
    """
    setlease = getattr(fcntl, "F_SETLEASE", None)
    if setlease is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno == errno.EAGAIN else None
    else:
        fcntl.fcntl(fd, setlease, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


@dataclass
class _Watch:
    size: int
    mtime_ns: int
    stable_since: float
    check_at: float


class Settler:
    """Tracks files that are still arriving; says which ones are complete."""

    def __init__(self, settle_s: float, check_every: float = 0.25) -> None:
        self.settle_s = settle_s
        self.check_every = max(0.05, min(check_every, settle_s / 2 if settle_s else check_every))
        self._watch: dict[Path, tuple[_Watch, Path]] = {}
        self._ready: list[tuple[Path, Path]] = []

    def __len__(self) -> int:
        return len(self._watch) + len(self._ready)

    def saw(self, path: Path, inbox: Path, *, closed: bool, now: float, wall: float) -> None:
        """Note an event (or a scan finding) for ``path``.

        ``closed``: the writer closed it (inotify); it is complete now, unless it is empty (a
        browser's 0-byte placeholder: it waits the settle time) or another writer still has it.
        """
        try:
            st = path.stat()
        except OSError:
            self._watch.pop(path, None)
            return
        # The lease probe costs an open and two fcntls: only where it decides something.
        if closed and st.st_size > 0 and not open_for_writing(path):
            self._watch.pop(path, None)
            self._ready.append((path, inbox))
            return
        # Found by a scan and untouched for longer than the settle time: complete already.
        old = wall - st.st_mtime > self.settle_s + 1
        fresh = path not in self._watch
        if not closed and st.st_size > 0 and old and fresh and not open_for_writing(path):
            self._ready.append((path, inbox))
            return
        self._watch[path] = (_Watch(st.st_size, st.st_mtime_ns, now, now + self.check_every), inbox)

    def touch(self, path: Path, now: float) -> bool:
        """A further write to a file already being watched: its settle time starts again.

        Cheaper than :meth:`saw` (no stat): a drop makes several events per file, and the
        next check reads the size and mtime anyway. False if ``path`` is not being watched.
        """
        entry = self._watch.get(path)
        if entry is None:
            return False
        entry[0].stable_since = now
        return True

    def forget(self, path: Path) -> None:
        self._watch.pop(path, None)

    def due(self, now: float) -> list[tuple[Path, Path]]:
        """Files complete as of ``now``: each returned once."""
        ready, self._ready = self._ready, []
        for path, (w, inbox) in list(self._watch.items()):
            if w.check_at > now:
                continue
            try:
                st = path.stat()
            except OSError:
                del self._watch[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (w.size, w.mtime_ns):
                w.size, w.mtime_ns, w.stable_since = st.st_size, st.st_mtime_ns, now
            elif now - w.stable_since >= self.settle_s and not open_for_writing(path):
                # An empty file that stayed empty (not a browser's placeholder being filled) is
                # taken too: refused with its reason, so it leaves a trace; it is converted if
                # it fills later (a new event).
                del self._watch[path]
                ready.append((path, inbox))
                continue
            w.check_at = now + self.check_every
        return ready

    def next_check(self) -> float | None:
        if self._ready:
            return 0.0
        return min((w.check_at for w, _ in self._watch.values()), default=None)
