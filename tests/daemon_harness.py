"""A real `sp404d run` subprocess on tmp_path, with helpers to wait on what it does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from sp404d.daemon.state import read_state, state_path
from tests.conftest import SP404D, journal_records, run_env

DEADLINE_S = 30.0

#: The ``daemon`` fixture: settings (config keys) in, a not yet started daemon out.
DaemonFactory = Callable[..., "DaemonProc"]


def wait_for(cond: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


BARRIER = "zz_barrier.wav"


def _when(iso: str) -> datetime:
    """An ISO time as the daemon writes it (``...T12:00:00.123Z``), comparable."""
    return datetime.fromisoformat(iso)


def ours(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of a test's own files, without :meth:`DaemonProc.barrier`'s."""
    return [r for r in records if Path(r["source"]).name != BARRIER]


def last_finished(records: list[dict[str, Any]]) -> str:
    """The latest ``finished_at`` of ``records``."""
    latest: str = max((r["finished_at"] for r in records), key=_when)
    return latest


class DaemonProc:
    """One daemon with its own inbox, outbox, journal, config and log."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.dir = tmp_path
        self.inbox = tmp_path / "in"
        self.inbox.mkdir(parents=True, exist_ok=True)  # a configured inbox is not made for us
        self.outbox = tmp_path / "out"
        self.journal = tmp_path / "journal.jsonl"
        self.config = tmp_path / "sp404d.yaml"
        self.log_path = tmp_path / "daemon.log"
        self.settings: dict[str, Any] = {
            "inbox": str(self.inbox),
            "outbox": str(self.outbox),
            "journal": str(self.journal),
            "settle_seconds": 0.3,
            "rescan_interval": 0,
            "log_format": "json",
            "workers": 2,
            **settings,
        }
        self.write_config()
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = run_env(tmp_path / "home")

    def write_config(self, **changes: Any) -> None:
        self.settings.update(changes)
        self.config.write_text(yaml.safe_dump(self.settings))

    def start(
        self,
        *,
        wait: bool = True,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
    ) -> DaemonProc:
        """Start ``sp404d run``; ``prefix``: the command that runs sp404d (default ``SP404D``),
        e.g. a script that injects a fault first, or ``unshare`` with a lowered limit."""
        state_path(self.journal).unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*(prefix or SP404D), "run", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            env=env or self.env,
            start_new_session=True,
        )
        log.close()
        if wait:
            proc = self.proc
            ready = state_path(self.journal)
            wait_for(lambda: ready.exists() or proc.poll() is not None, "the daemon to be ready")
            assert self.proc.poll() is None, self.log_text()
        return self

    def exited(self) -> bool:
        """Started, and ended since."""
        return self.proc is not None and self.proc.poll() is not None

    def send(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.send(sig)
        code = self.proc.wait(timeout=timeout)
        return code

    def kill(self) -> None:
        """SIGKILL the daemon and its workers at once (a power cut, as far as they know)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def records(self) -> list[dict[str, Any]]:
        """The journal's records now; polled often, so the reader is closed every time."""
        return journal_records(self.journal)

    def by_status(self, status: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["status"] == status]

    def outputs(self) -> list[str]:
        """The files in the outbox now (a folder the daemon removes meanwhile is skipped)."""
        found = []
        for folder, _, files in os.walk(self.outbox):  # os.walk passes over a vanished folder
            found += [Path(folder, f).relative_to(self.outbox).as_posix() for f in files]
        return sorted(found)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == name:
                out.append(entry)
        return out

    def state(self) -> dict[str, Any] | None:
        """The live state the running daemon wrote last (``JOURNAL.state.json``), or None."""
        return read_state(self.journal)

    def wait_state(
        self, what: str, *, since: str | None = None, timeout: float = DEADLINE_S, **expect: Any
    ) -> dict[str, Any]:
        """The first state the daemon writes (at or after ``since``, a time the daemon itself
        wrote, such as a record's ``finished_at``) with the ``expect``ed values.

        The daemon writes its state at the end of a turn of its loop, after it has handled the
        events of that turn, queued the files that became complete, planned, dispatched and
        recorded; and it writes it again (within a second) whenever its queue, running jobs or
        outbox state change. So a state that matches describes everything the daemon did up to
        that turn: the positive signal that a moment has passed.
        """
        after = _when(since) if since else None

        def written() -> dict[str, Any] | None:
            state = self.state()
            if state is None or (after is not None and _when(state["updated_at"]) < after):
                return None
            return state if all(state.get(k) == v for k, v in expect.items()) else None

        state: dict[str, Any] = wait_for(
            written, f"{what} (a state with {expect}; log: {self.log_path})", timeout
        )
        return state

    def wait_idle(self, since: str, timeout: float = DEADLINE_S) -> dict[str, Any]:
        """Wait until the daemon reports nothing queued or arriving and nothing running, in a
        state written at or after ``since``: whatever followed from the events it had by then
        (a second job, a move, a delete, a note) has happened."""
        return self.wait_state(
            f"the daemon idle after {since}", since=since, timeout=timeout, queue=0, running=0
        )

    def barrier(self, name: str = BARRIER) -> dict[str, Any]:
        """Drop a file the daemon refuses at once (not audio) and return its record.

        One observer delivers the inbox's events in order, and a closed file is complete at
        once, so by the time this record exists the daemon has handled every earlier event and
        queued every file that was complete before it. Tests leave it out of what they count
        with :func:`ours`.
        """
        (self.inbox / name).write_bytes(b"a barrier, not audio\n" * 16)

        def recorded() -> dict[str, Any] | None:
            return next((r for r in self.records() if Path(r["source"]).name == name), None)

        record: dict[str, Any] = wait_for(
            recorded, f"the barrier {name} to be recorded (log: {self.log_path})"
        )
        return record

    def wait_done(self, n: int, timeout: float = DEADLINE_S) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            done = self.by_status("done")
            return done if len(done) >= n else None

        return wait_for(enough, f"{n} done jobs (log: {self.log_path})", timeout)  # type: ignore[no-any-return]
