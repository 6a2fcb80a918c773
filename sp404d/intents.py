"""Write-ahead notes: which output name each job was about to take, kept beside the journal.

A worker renames its output into place, then the parent journals the job. A crash between the
two leaves a complete output that no record claims. Before a job starts, its source and
reserved output name are appended here, so the next start knows that file belongs to that
source: the job is redone onto that very name instead of beside it (a duplicate, or in a kit a
second pad for the same sample).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def intents_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".intents")


class Intents:
    """Append-only notes of (source, output) for jobs under way."""

    def __init__(self, journal: Path) -> None:
        self.path = intents_path(journal)
        self._fd: int | None = None

    def unresolved(self, recorded_outputs: set[str]) -> dict[str, Path]:
        """Outputs on disk that an earlier run wrote but never journaled, by source.

        Keeps only those notes in the file (an atomic rewrite), so the file stays small.
        """
        found: dict[str, Path] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return found
        for line in lines:
            try:
                note: Any = json.loads(line)
                source, output = str(note["source"]), str(note["output"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line
            if output not in recorded_outputs and Path(output).is_file():
                found[source] = Path(output)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(
                "".join(
                    json.dumps({"source": s, "output": str(o)}) + "\n" for s, o in found.items()
                ),
                encoding="utf-8",
            )
            os.replace(tmp, self.path)
        return found

    def add(self, source: Path, output: Path) -> None:
        """Note a job before it starts: one small append, no fsync (a crash, not power loss)."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = json.dumps({"source": str(source), "output": str(output)}) + "\n"
        os.write(self._fd, line.encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
