"""What follows a job's record in the daemon: the source kept, moved or deleted, the error note
beside a refused file written or removed, a failed job retried later.

Each is contained to its own job: its record is written already, and a surprise here (a name the
OS chokes on, a bug) must not cost the records of the jobs that travelled with it. A source is
never moved or deleted before its record is durable, nor if it changed since it was converted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sp404d.config import Config
from sp404d.daemon.sourcefiles import dispose, remove_error_note, write_error_note
from sp404d.logs import FilteringBoundLogger, get_logger
from sp404d.pipeline import Recorder

RETRY_DELAYS_S = (5.0, 30.0, 120.0)  # failed jobs (not the card's fault) are retried this often


@dataclass
class Aftercare:
    """Source disposition, error notes and retries.

    ``settings``: the settings of an inbox; ``requeue``: put a source back in the queue;
    ``outbox_ok``: whether the outbox is there now (a job failed while the card is away is
    redone when it is back, not retried on a timer).
    """

    recorder: Recorder
    settings: Callable[[Path], Config]
    requeue: Callable[[Path, Path], None]
    outbox_ok: Callable[[], bool]
    retries: dict[Path, tuple[float, int, Path]] = field(default_factory=dict)  # (due, n, inbox)
    log: FilteringBoundLogger = field(default_factory=get_logger)

    def after(self, rec: Mapping[str, Any], source: Path, inbox: Path) -> None:
        """What follows a job's record, once the record is written (it may wait for the
        journal: so does the source)."""
        if self.recorder.owes(source, then=lambda: self.after(rec, source, inbox)):
            return
        try:
            self._after(rec, source, inbox)
        except Exception as exc:
            self.log.warning(
                "aftercare_failed",
                source=str(source),
                status=rec.get("status"),
                error=f"{type(exc).__name__}: {exc}",
            )

    def _after(self, rec: Mapping[str, Any], source: Path, inbox: Path) -> None:
        settings = self.settings(inbox)
        status = rec["status"]
        if status in ("done", "skipped"):
            self.retries.pop(source, None)
            remove_error_note(source)
            if settings.on_done != "keep" and rec.get("output") and _unchanged_since(source, rec):
                self.recorder.journal.sync()  # the record is durable before the source goes
                self._dispose(source, inbox, settings)
        elif status == "rejected":
            if settings.error_files and source.exists():
                write_error_note(source, str(rec["reason"]))
        elif status == "failed":
            self._schedule_retry(source, inbox, str(rec.get("reason")))

    def _dispose(self, source: Path, inbox: Path, settings: Config) -> None:
        try:
            moved = dispose(source, inbox, settings.on_done, settings.archive)
        except OSError as exc:
            self.log.warning("source", source=str(source), action=settings.on_done, error=str(exc))
            return
        self.log.info(
            "source", source=str(source), action=settings.on_done, to=str(moved) if moved else None
        )

    # --- retries ------------------------------------------------------------------------------

    def _schedule_retry(self, source: Path, inbox: Path, reason: str) -> None:
        if not source.exists():
            return
        if not self.outbox_ok():
            self.requeue(source, inbox)  # the card is away: redo when it is back
            return
        _, attempts, _ = self.retries.get(source, (0.0, 0, inbox))
        if attempts >= len(RETRY_DELAYS_S):
            self.log.error("giving_up", source=str(source), reason=reason, attempts=attempts)
            self.retries.pop(source, None)
            return
        self.retries[source] = (time.monotonic() + RETRY_DELAYS_S[attempts], attempts + 1, inbox)

    def next_retry(self) -> float | None:
        return min((due for due, _, _ in self.retries.values()), default=None)

    def retry_due(self, now: float) -> None:
        for source, (due, attempts, inbox) in list(self.retries.items()):
            if due <= now:
                self.retries[source] = (float("inf"), attempts, inbox)
                self.requeue(source, inbox)


def _unchanged_since(source: Path, rec: Mapping[str, Any]) -> bool:
    """The source is still the file this record converted (not rewritten meanwhile)."""
    try:
        st = source.stat()
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (rec.get("size"), rec.get("mtime_ns"))
