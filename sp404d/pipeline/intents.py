"""Write-ahead notes: which output name each job was about to take, kept beside the journal.

A worker renames its output into place, then the parent journals the job. A crash between the
two leaves a complete output that no record claims. Before a job starts, its source and
reserved output name are appended here, and once its record is written a second line resolves
the note. At the next start, a note never resolved whose output exists tells which source that
file belongs to: the job is redone onto that very name instead of beside it (a duplicate, or in
a kit a second pad for the same sample).

The file is only ever appended to, never replaced, so another process (a daemon beside a
one-shot ``convert``) keeps appending to the same file. Every process that has it open holds a
shared ``flock`` on it, from before its first note until it closes it; the file is compacted (cut
down to its unresolved notes, in place) only by a process that gets the lock exclusively, that
is, while no other process has notes under way. Compaction keeps every unresolved note, even
one whose output does not exist yet, so a note of a job in flight is never dropped.

Writing a note never raises: when the file cannot take it (its disk full, read-only, gone) the
note waits in memory and goes out, in order, with the next one the file takes. A job's resolving
note is written only once its journal record is (the runner calls :meth:`Intents.resolve` then),
so an output whose record is owed keeps its note. :meth:`check` notices a file deleted or
replaced behind our back and writes into the new one the notes still unresolved.

Why a file of its own, not journal lines: the journal is the history of finished jobs, one
line a job, that users query through TinyDB and that is never cut; a note lives only while its
job is in flight (two short lines, compacted away once resolved), and a crash-time question
(which source does this file belong to?) is answered by reading these few notes, not the
journal's years.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The file is compacted once it is this big (at open, and by :meth:`Intents.check`).
COMPACT_BYTES = 256 * 1024


def intents_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".intents")


class Intents:
    """Append-only notes of (source, output) for jobs under way."""

    def __init__(self, journal: Path) -> None:
        self.path = intents_path(journal)
        self._fd: int | None = None
        self._queue: list[str] = []  # lines not written yet, in order
        self._torn = False  # a write stopped part-way: end that line before the next
        self._open_notes: dict[tuple[str, str], None] = {}  # added here, not resolved yet

    def unresolved(self, recorded: Callable[[str], bool]) -> dict[str, tuple[Path, ...]]:
        """Outputs on disk that an earlier run wrote but never journaled (``recorded(output)``
        is false), by source (a chopped loop's slices: several), in the order noted."""
        with contextlib.suppress(OSError):
            self._open()
        if self._fd is None:
            return {}
        try:
            pending = _pending(_read_all(self._fd))
        except OSError:
            return {}
        found: dict[str, tuple[Path, ...]] = {}
        for source, output in pending:
            if (
                (source, output) not in self._open_notes
                and Path(output).is_file()
                and not recorded(output)
            ):
                found[source] = (*found.get(source, ()), Path(output))
        return found

    def _open(self) -> None:
        """Open the file (shared lock held from now on); compact it if it is big and no
        other process has it open."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self.compact()

    def compact(self) -> bool:
        """Cut the file down to its unresolved notes if it is over :data:`COMPACT_BYTES` and no
        other process holds it; True when it was. Never raises."""
        fd = self._fd
        if fd is None:
            return False
        try:
            if os.fstat(fd).st_size <= COMPACT_BYTES:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fcntl.flock(fd, fcntl.LOCK_SH)  # a failed conversion drops the shared lock
                return False
            try:
                keep = _pending(_read_all(fd))
                os.ftruncate(fd, 0)
                lines = [json.dumps({"source": s, "output": o}) + "\n" for s, o in keep]
                _write_all(fd, "".join(lines).encode())
                self._torn = False
            finally:
                fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            return False
        return True

    def _write(self, note: dict[str, Any], *, now: bool = True) -> None:
        self._queue.append(json.dumps(note) + "\n")
        if now:
            self.flush()

    def flush(self) -> bool:
        """Write the notes that wait; True when none is left. Never raises."""
        if not self._queue:
            return True
        payload = (("\n" if self._torn else "") + "".join(self._queue)).encode()
        written = 0
        try:
            self._open()
            assert self._fd is not None
            while written < len(payload):
                written += os.write(self._fd, payload[written:])
        except OSError:
            # A line cut off part-way is skipped by readers; it is ended, and written again.
            self._torn = self._torn or written > 0
            return False
        self._queue.clear()
        self._torn = False
        return True

    def check(self) -> None:
        """Notice the file deleted or replaced (one stat): reopen it, and note again the jobs
        still under way, so their outputs are not left without a note. Compact a big file."""
        if self._fd is None:
            self.flush()
            return
        try:
            st = os.stat(self.path)
            ours = os.fstat(self._fd)
            same = (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino)
        except OSError:
            same = False
        if same:
            self.flush()
            self.compact()
            return
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd, self._torn = None, False
        again = [json.dumps({"source": s, "output": o}) + "\n" for s, o in self._open_notes]
        self._queue[:0] = again
        self.flush()

    def add(self, notes: list[tuple[Path, Path]]) -> None:
        """Note jobs before they start, (source, output) each: one small append for all, no
        fsync (a crash, not power loss)."""
        for source, output in notes:
            self._open_notes[(str(source), str(output))] = None
            self._write({"source": str(source), "output": str(output)}, now=False)
        self.flush()

    def resolve(self, source: Path, output: Path) -> None:
        """The job's record is written: its note no longer means anything. Written with the
        next notes, not at once: a note whose output has a record is settled by the record."""
        self._open_notes.pop((str(source), str(output)), None)
        self._write({"source": str(source), "output": str(output), "resolved": True}, now=False)

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)  # and with it the shared lock
            self._fd = None


def _pending(text: bytes) -> list[tuple[str, str]]:
    """The notes not resolved, in order (a torn or damaged line is passed over)."""
    pending: dict[tuple[str, str], None] = {}
    for line in text.splitlines():
        try:
            note: Any = json.loads(line)
            key = (str(note["source"]), str(note["output"]))
        except (ValueError, KeyError, TypeError):
            continue
        if note.get("resolved"):
            pending.pop(key, None)
        else:
            pending[key] = None
    return list(pending)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, at = [], 0
    while at < size:
        chunk = os.pread(fd, size - at, at)
        if not chunk:
            break
        chunks.append(chunk)
        at += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, payload: bytes) -> None:
    written = 0
    while written < len(payload):
        written += os.write(fd, payload[written:])
