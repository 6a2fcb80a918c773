"""Write-ahead notes: which output name each job was about to take, kept beside the journal.

A worker renames its output into place, then the parent journals the job. A crash between the
two leaves a complete output that no record claims. Before a job starts, its source and
reserved output name are appended here, and once its record is written a second line resolves
the note. At the next start, a note never resolved whose output exists tells which source that
file belongs to: the job is redone onto that very name instead of beside it (a duplicate, or in
a kit a second pad for the same sample).

The file is only ever appended to and, when it holds nothing worth keeping, truncated in place
under an exclusive lock: never replaced, so another process (a daemon beside a one-shot
``convert``) keeps appending to the same file.

Writing a note never raises: when the file cannot take it (its disk full, read-only, gone) the
note waits in memory and goes out, in order, with the next one the file takes. A job's resolving
note is written only once its journal record is (the runner calls :meth:`Intents.resolve` then),
so an output whose record is owed keeps its note. :meth:`check` notices a file deleted or
replaced behind our back and writes into the new one the notes still unresolved.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

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

    def unresolved(self, recorded_outputs: set[str]) -> dict[str, Path]:
        """Outputs on disk that an earlier run wrote but never journaled, by source."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return {}
        pending: dict[tuple[str, str], bool] = {}
        for line in text.splitlines():
            try:
                note: Any = json.loads(line)
                key = (str(note["source"]), str(note["output"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line
            if note.get("resolved"):
                pending.pop(key, None)
            else:
                pending[key] = True
        found = {
            source: Path(output)
            for source, output in pending
            if output not in recorded_outputs and Path(output).is_file()
        }
        if not found and len(text) > COMPACT_BYTES:
            self._truncate()
        return found

    def _truncate(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_WRONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)

    def _write(self, note: dict[str, Any]) -> None:
        self._queue.append(json.dumps(note) + "\n")
        self.flush()

    def flush(self) -> bool:
        """Write the notes that wait; True when none is left. Never raises."""
        if not self._queue:
            return True
        payload = (("\n" if self._torn else "") + "".join(self._queue)).encode()
        written = 0
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
        still under way, so their outputs are not left without a note."""
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
            return
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd, self._torn = None, False
        again = [json.dumps({"source": s, "output": o}) + "\n" for s, o in self._open_notes]
        self._queue[:0] = again
        self.flush()

    def add(self, source: Path, output: Path) -> None:
        """Note a job before it starts: one small append, no fsync (a crash, not power loss)."""
        self._open_notes[(str(source), str(output))] = None
        self._write({"source": str(source), "output": str(output)})

    def resolve(self, source: Path, output: Path) -> None:
        """The job's record is written: its note no longer means anything."""
        self._open_notes.pop((str(source), str(output)), None)
        self._write({"source": str(source), "output": str(output), "resolved": True})

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
