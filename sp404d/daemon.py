"""``sp404d run``: the watch-folder daemon's lifecycle, in the manner of gunicorn's arbiter.

One main thread owns all state. Everything else only puts messages on its queue: observer
threads (file events), future callbacks (jobs ended), and a signal thread (SIGTERM, SIGINT,
SIGHUP arrive through ``signal.set_wakeup_fd``, so no Python code runs inside a signal handler
while the main thread might hold a lock). The loop sleeps until a message or the next deadline
(a settle check, a rescan, the watchdog ping), so an idle daemon costs no CPU.

Flow, one way: event -> Settler (complete?) -> waiting -> Planner -> worker pool -> journal ->
source aftercare (keep/move/delete, .error.txt).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import stat
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sp404d import __version__, logs
from sp404d.config import Config, load_config
from sp404d.discover import is_candidate, walk
from sp404d.errors import ConfigError, Sp404dError
from sp404d.instance import Claim, claim
from sp404d.job import Outcome, Plan
from sp404d.journal import Journal
from sp404d.metadata import audio_for_metadata_file, is_metadata_file
from sp404d.notify import Notifier
from sp404d.outbox import OutboxAwayError, check_outbox, clean_stale_temps
from sp404d.planner import Request
from sp404d.records import now_iso
from sp404d.runner import CHUNK_BYTES, CHUNK_FILES, Runner, for_rerun
from sp404d.sourcefiles import dispose, remove_error_note, write_error_note
from sp404d.status import read_state, state_path
from sp404d.watcher import Change, Settler, Watcher

STOP_GRACE_S = 20.0  # in-flight jobs get this long to finish on SIGTERM (systemd waits 30 s)
HEALTH_EVERY_S = 5.0  # how often inboxes and observers are checked
AWAY_CHECK_S = 1.0  # how often an absent outbox is looked for
PLAN_AHEAD = 64  # files planned ahead of the workers (kit inboxes plan a whole drop at once)
DRAIN_BUDGET_S = 0.05  # longest the loop takes in queued events before it dispatches work
RETRY_DELAYS_S = (5.0, 30.0, 120.0)  # failed jobs (not the card's fault) are retried this often


@dataclass
class Running:
    """Plans sent to a worker in one trip (one, or a chunk of small files during a backlog)."""

    plans: list[Plan]
    started_at: str
    suspect: bool = False  # a re-run alone after a worker died, with nothing else in the pool
    since: float | None = None  # when a worker took it; None while it waits in the pool's queue


class Daemon:
    """The watch-folder service. Build with a valid config, then :meth:`run`."""

    def __init__(self, config: Config, config_path: Path | None, held: Claim) -> None:
        self.held = held
        self._use(config)
        self.config_path = config_path
        self.log = logs.get_logger()
        self.q: queue.Queue[Any] = queue.Queue()
        self.notifier = Notifier()
        self.journal = Journal(config.journal)
        self.runner = Runner(self.journal, config.worker_count, start_method="forkserver")
        self.runner.planner.need_output = False  # see Planner.settled
        self.settler = Settler(config.settle_seconds)
        self.watcher = self._watcher(config)
        self.waiting: OrderedDict[Path, Path] = OrderedDict()  # source -> its inbox
        self.planned: deque[Plan] = deque()
        self.running: dict[Future[list[Outcome]], Running] = {}
        self.alone: set[Path] = set()  # sources to send in a trip of their own (chunk ran late)
        # Sources in flight when a worker died: each runs alone with nothing else in the pool,
        # so that only the file that kills its worker is recorded as failed.
        self.suspects: set[Path] = set()
        self.busy: set[Path] = set()
        self.again: dict[Path, Path] = {}  # busy sources that changed again -> inbox
        self.retries: dict[Path, tuple[float, int, Path]] = {}
        self.outbox_reason: str | None = None
        self.temps_left = False  # temp files of cut-off writes wait to be cleared
        self.stopping = False
        self.next_rescan = 0.0
        self.next_health = 0.0
        self.next_away_check = 0.0
        self.next_ping = 0.0
        self.ping_every = self.notifier.watchdog_interval()
        self.state_dirty = True
        self.next_state = 0.0
        self.inbox_present: dict[Path, bool] = {}
        self.inbox_ids: dict[Path, tuple[int, int] | None] = {}  # to notice one replaced
        self.watch_limit_logged = False
        self._wake_r, self._wake_w = os.pipe()

    # --- setup ---------------------------------------------------------------------------

    def _use(self, config: Config) -> None:
        """Take ``config``, with what every event would otherwise work out from it again."""
        self.config = config
        self._by_inbox = {inbox.path: inbox.settings for inbox in config.inboxes()}
        self.not_inputs = list(config.not_inputs())  # folders and files never taken as input
        # Kit pads follow name order among files planned together, so a kit inbox plans a drop
        # once it has stopped arriving; other layouts start converting while it still arrives.
        self._whole_drops = any(s.layout == "kit" for s in self._by_inbox.values())

    def _watcher(self, config: Config) -> Watcher:
        return Watcher(
            list(config.inbox_paths),
            self.q,
            polling=config.polling,
            poll_interval=config.poll_interval,
            skip=self.not_inputs,
        )

    def _start_watching(self) -> None:
        self.watcher.start()
        self.inbox_ids = {inbox: _identity(inbox) for inbox in self.config.inbox_paths}
        self._watch_limit_seen()

    def _watch_limit_seen(self) -> None:
        """Log running out of inotify watches once (with the remedy); status shows it."""
        note = self.watcher.note
        if note and not self.watch_limit_logged:
            self.watch_limit_logged = True
            self.log.error("watch_limit", message=note, mode=self.watcher.mode)
        self.state_dirty = True

    def _install_signals(self) -> threading.Thread:
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: None)  # the wakeup fd carries the signal number
        # A writer opening a file during the read-lease probe (watcher.open_for_writing) makes
        # the kernel send SIGIO to the lease holder; its default action would end the daemon.
        signal.signal(signal.SIGIO, signal.SIG_IGN)

        def relay() -> None:
            while True:
                data = os.read(self._wake_r, 64)
                for signum in data:
                    if signum == 0:
                        return
                    self.q.put(("signal", signum))

        thread = threading.Thread(target=relay, name="sp404d-signals", daemon=True)
        thread.start()
        return thread

    def _prepare_folders(self) -> None:
        for inbox in self.config.inbox_paths:
            inbox.mkdir(parents=True, exist_ok=True)
            self.inbox_present[inbox] = True
        if not self.config.outbox_removable:
            self.config.outbox.mkdir(parents=True, exist_ok=True)

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        self._prepare_folders()
        relay = self._install_signals()
        self._start_watching()
        self._outbox_ok(time.monotonic())
        with contextlib.suppress(OSError):
            clean_stale_temps(self.config.outbox, wait_young=True)
        self.next_health = time.monotonic() + 1.0
        self.log.info(
            "start",
            version=__version__,
            inboxes=[str(p) for p in self.config.inbox_paths],
            outbox=str(self.config.outbox),
            journal=str(self.config.journal),
            mode=self.watcher.mode,
            workers=self.config.worker_count,
            config=str(self.config_path) if self.config_path else "defaults",
        )
        self.runner.warm()
        self.rescan("start")
        self.notifier.ready(self._status_line())
        try:
            while not self.stopping:
                try:
                    self._step()
                except Exception:  # a bug must not stop the service; log it and go on
                    self.log.exception("internal_error")
                    time.sleep(0.5)
        finally:
            self._shutdown()
            os.write(self._wake_w, b"\x00")
            relay.join(timeout=2)
            signal.set_wakeup_fd(-1)
        return 0

    def _timeout(self, now: float) -> float:
        if self._can_plan() and self.outbox_reason is None:
            return 0.0  # more of a drop to plan: go round again at once
        deadlines = [self.next_health, self.next_rescan if self.config.rescan_interval else None]
        if self.ping_every:
            deadlines.append(self.next_ping)
        if self.outbox_reason:
            deadlines.append(self.next_away_check)
        settle = self.settler.next_check()
        if settle is not None:
            deadlines.append(now + settle if settle == 0.0 else settle)
        if self.retries:
            deadlines.append(min(t for t, _, _ in self.retries.values()))
        if self.state_dirty:
            deadlines.append(self.next_state)
        limits = [
            r.since + self.config.job_timeout for r in self.running.values() if r.since is not None
        ]
        if limits:
            deadlines.append(min(limits))
        pending = [d for d in deadlines if d is not None]
        return max(0.0, min(pending) - now) if pending else HEALTH_EVERY_S

    def _step(self) -> None:
        now = time.monotonic()
        try:
            message = self.q.get(timeout=self._timeout(now))
            self._handle(message)
            # During a flood of events (a big drop), dispatch every DRAIN_BUDGET_S, so the
            # workers start on the first files while the rest still arrive.
            until = float("inf") if self._whole_drops else time.monotonic() + DRAIN_BUDGET_S
            while time.monotonic() < until:
                self._handle(self.q.get_nowait())
        except queue.Empty:
            pass
        now = time.monotonic()
        for path, inbox in self.settler.due(now):
            self._ready(path, inbox)
        self._retry_due(now)
        if self.outbox_reason is not None and now >= self.next_away_check:
            self._outbox_ok(now)  # back? checked every AWAY_CHECK_S, work waiting or not
        self._dispatch(now)
        self._check_timeouts(now)
        if now >= self.next_health:
            self._health(now)
        if self.config.rescan_interval and now >= self.next_rescan:
            self.rescan("periodic")
        if self.ping_every and now >= self.next_ping:
            self.notifier.watchdog()
            self.next_ping = now + self.ping_every
        if self.state_dirty and now >= self.next_state:
            self._write_state()

    def _handle(self, message: tuple[str, Any]) -> None:
        kind, payload = message
        if kind == "fs":
            self._on_change(payload)
        elif kind == "done":
            self._on_done(payload)
        elif kind == "signal":
            self._on_signal(payload)

    # --- file events -----------------------------------------------------------------------

    def _excluded(self, path: Path) -> bool:
        return any(path.is_relative_to(folder) for folder in self.not_inputs)

    def _on_change(self, change: Change) -> None:
        path, inbox = change.path, change.inbox
        now, wall = time.monotonic(), time.time()
        if change.kind == "changed" and self.settler.touch(path, now):
            return  # still arriving; already known to be a file we take
        if self._excluded(path):
            return
        if change.kind == "inbox_gone":
            # Its watch died with it; a new folder of that name may even reuse its inode.
            self.inbox_ids[inbox] = None
            self.next_health = now  # see whether it is back, and watch it again, at once
            return
        if change.kind == "dir":
            if self.watcher.cover(path):
                self._watch_limit_seen()
            ignore = self._settings(inbox).ignore
            for found in walk(path, exclude=self.not_inputs, extra_ignore=ignore):
                self.settler.saw(found, inbox, closed=False, now=now, wall=wall)
            return
        if change.kind == "deleted":
            self.settler.forget(path)
            if is_metadata_file(path):
                self._metadata_changed(path, inbox)
            else:
                remove_error_note(path)
            return
        if not (is_metadata_file(path) or self._is_audio(path, inbox)):
            return
        self.settler.saw(path, inbox, closed=change.kind == "closed", now=now, wall=wall)

    def _is_audio(self, path: Path, inbox: Path) -> bool:
        return is_candidate(path, inbox, self._settings(inbox).ignore)

    def _settings(self, inbox: Path) -> Config:
        return self._by_inbox.get(inbox, self.config)

    def _metadata_changed(self, meta_file: Path, inbox: Path) -> None:
        """A sidecar or folder file arrived, changed or went: re-plan the files it covers."""
        try:
            scope = audio_for_metadata_file(meta_file)
        except ValueError:
            return
        for audio in scope.audio_files():
            if self._is_audio(audio, inbox):
                self._enqueue(audio, inbox)

    def _ready(self, path: Path, inbox: Path) -> None:
        if is_metadata_file(path):
            self._metadata_changed(path, inbox)
        elif path.is_file():
            self._enqueue(path, inbox)

    def _enqueue(self, path: Path, inbox: Path) -> None:
        """Queue a source for planning; whether anything changed is the planner's to decide."""
        if path in self.busy:
            self.again[path] = inbox
            return
        self.waiting[path] = inbox
        self.state_dirty = True

    def rescan(self, why: str) -> None:
        """Walk every inbox and queue what the journal does not have as converted.

        Catches files that arrived while sp404d was down, events lost to an inotify overflow,
        and network folders that deliver no events at all.
        """
        now, wall = time.monotonic(), time.time()
        found = 0
        for inbox in self.config.inbox_paths:
            if not inbox.is_dir():
                continue
            excluded = self.not_inputs
            for path in walk(inbox, exclude=excluded, extra_ignore=self._settings(inbox).ignore):
                if path in self.busy or path in self.waiting:
                    continue
                request = Request(path, inbox, self._settings(inbox))
                if self.runner.planner.settled(request, need_output=False):
                    continue
                self.settler.saw(path, inbox, closed=False, now=now, wall=wall)
                found += 1
        self.next_rescan = now + self.config.rescan_interval
        if found or why == "start":
            self.log.info("rescan", why=why, new_or_changed=found)

    # --- dispatching work --------------------------------------------------------------------

    def _outbox_ok(self, now: float) -> bool:
        try:
            check_outbox(self.config.outbox, removable=self.config.outbox_removable)
        except OutboxAwayError as exc:
            if self.outbox_reason is None:
                self.log.warning("outbox_away", outbox=str(self.config.outbox), reason=exc.reason)
                self.notifier.status(f"waiting: {exc.reason}")
            self.outbox_reason = exc.reason
            self.next_away_check = now + AWAY_CHECK_S
            self.state_dirty = True
            return False
        if self.outbox_reason is not None:
            self.outbox_reason = None
            self.log.info("outbox_back", outbox=str(self.config.outbox))
            self.runner.planner.forget()
            # A write cut off by the pull may still hold its temp file (its worker has not
            # noticed yet): the health check clears it once it is free.
            self.temps_left = True
            self._clean_temps()
            self.state_dirty = True
        return True

    def _clean_temps(self) -> None:
        """Clear temp files of writes that were cut off (a killed worker, a pulled card);
        those still locked by their writer are looked at again at the next health check."""
        with contextlib.suppress(OSError):
            self.temps_left = clean_stale_temps(self.config.outbox).left > 0

    def _dispatch(self, now: float) -> None:
        """Plan everything waiting as one batch, then keep every worker busy.

        Planning together is what gives files dropped at once their kit pads in name order,
        explicit claims first, exactly as ``convert`` does.
        """
        if not (self.waiting or self.planned):
            return
        if self.outbox_reason is not None and now < self.next_away_check:
            return
        if not self._outbox_ok(now):
            return
        if self._can_plan():
            self._plan_waiting(None if self._whole_drops else PLAN_AHEAD)
        # Two trips a worker: the next one is already queued when a worker finishes, instead of
        # waiting for the result to travel here, be journaled, and a new job to travel back.
        slots = 2 * self.runner.workers
        while self.planned and len(self.running) < slots:
            suspect = self.planned[0].source in self.suspects
            if (suspect and self.running) or any(r.suspect for r in self.running.values()):
                break
            plans = self._next_trip(slots)
            future = self.runner.submit(plans)
            self.running[future] = Running(plans, now_iso(), suspect=suspect)
            future.add_done_callback(lambda f: self.q.put(("done", f)))
            self.state_dirty = True

    def _next_trip(self, slots: int) -> list[Plan]:
        """The next plans for one worker trip: one at a time, or chunks while a backlog lasts.

        A drop of hundreds of small files would otherwise cost a round trip and a wake-up of
        this loop per file; a single file still goes at once, alone.
        """
        want = min(CHUNK_FILES, -(-len(self.planned) // slots))
        plans: list[Plan] = []
        size = 0
        while self.planned and len(plans) < want and size < CHUNK_BYTES:
            if plans and self._by_itself(self.planned[0]):
                break
            plan = self.planned.popleft()
            plans.append(plan)
            size += plan.size
            if self._by_itself(plan):
                break
        return plans

    def _by_itself(self, plan: Plan) -> bool:
        return plan.source in self.alone or plan.source in self.suspects

    def _run_again(self, plans: list[Plan], into: set[Path] | None = None) -> None:
        """Put plans whose worker was killed back at the front, each to adopt its own output
        if its first run got as far as renaming it into place; ``into``: mark them."""
        for plan in reversed(plans):
            self.planned.appendleft(for_rerun(plan))
            if into is not None:
                into.add(plan.source)

    def _can_plan(self) -> bool:
        """Whether waiting files should be planned now: in a kit inbox all together, otherwise
        a few at a time, just ahead of the workers, so the first converts while the rest of a
        big drop is still being planned."""
        return bool(self.waiting) and (self._whole_drops or len(self.planned) < PLAN_AHEAD)

    def _plan_waiting(self, limit: int | None) -> None:
        requests: list[Request] = []
        while self.waiting and (limit is None or len(requests) < limit):
            path, inbox = self.waiting.popitem(last=False)
            if path.is_file():
                requests.append(Request(path, inbox, self._settings(inbox)))
        requests.sort(key=lambda r: str(r.source).casefold())
        self.state_dirty = True
        for item in self.runner.planner.plan_many(requests):
            if isinstance(item, Plan):
                self.busy.add(item.source)
                self.planned.append(item)
                continue
            source = item.request.source
            if item.outcome.status == "unchanged":
                continue  # still refused for the same reason: its note says so already
            if item.outcome.status == "skipped" and item.outcome.reason == "already converted":
                # Unchanged: nothing to convert, nothing to record. Its aftercare may still be
                # owed (a stop between the record and a move/delete), and is safe to repeat.
                owed = {"status": "skipped", "size": item.size, "mtime_ns": item.mtime_ns}
                output = item.outcome.output
                self._aftercare(
                    {**owed, "output": str(output) if output else None}, source, item.request.root
                )
                continue
            rec = self.runner.record(item, item.outcome, now_iso())
            self._aftercare(rec, source, item.request.root)

    def _on_done(self, future: Future[list[Outcome]]) -> None:
        job = self.running.pop(future, None)
        if job is None:
            return  # a job abandoned when its pool was killed
        try:
            outcomes = future.result()
        except Exception as exc:  # a dead worker is a failed job, not a dead daemon
            # The next submit replaces a broken pool (killing it here could kill its successor,
            # already started for other trips); the dead worker's temp file wants clearing.
            self.runner.workers_lost = True
            if not job.suspect:  # any trip in flight may have been the cause: each alone
                self._run_again(job.plans, into=self.suspects)
                return
            reason = f"worker process failed: {exc or type(exc).__name__}"
            self._finished(job.plans[0], Outcome("failed", reason), job.started_at, suspect=True)
            return
        for plan, outcome in zip(job.plans, outcomes, strict=True):
            self._finished(plan, outcome, job.started_at)

    def _finished(
        self, plan: Plan, outcome: Outcome, started_at: str, *, suspect: bool = False
    ) -> None:
        """Record a job. ``suspect``: its worker died under it alone; its retries run alone."""
        rec = self.runner.finish(plan, outcome, started_at)
        self.busy.discard(plan.source)
        self.alone.discard(plan.source)
        if not suspect:
            self.suspects.discard(plan.source)
        again = self.again.pop(plan.source, None)
        if again is not None:
            self._enqueue(plan.source, again)
        self.state_dirty = True
        self._aftercare(rec, plan.source, plan.root)

    def _aftercare(self, rec: dict[str, Any], source: Path, inbox: Path) -> None:
        """What follows a job's record, contained to that job: its record is written already,
        and a surprise here (a name the OS chokes on, a bug) must not cost the records of the
        jobs that travelled with it."""
        if self.runner.owes(source, then=lambda: self._aftercare(rec, source, inbox)):
            return  # its record waits for the journal, and so does the source
        try:
            self._aftercare_of(rec, source, inbox)
        except Exception as exc:
            self.log.warning(
                "aftercare_failed",
                source=str(source),
                status=rec.get("status"),
                error=f"{type(exc).__name__}: {exc}",
            )

    def _aftercare_of(self, rec: dict[str, Any], source: Path, inbox: Path) -> None:
        """Error notes, source disposition, retries."""
        settings = self._settings(inbox)
        status = rec["status"]
        if status in ("done", "skipped"):
            self.retries.pop(source, None)
            remove_error_note(source)
            if settings.on_done != "keep" and rec.get("output") and _unchanged_since(source, rec):
                self.journal.sync()  # the record is durable before the source goes
                try:
                    moved = dispose(source, inbox, settings.on_done, settings.archive)
                    self.log.info(
                        "source",
                        source=str(source),
                        action=settings.on_done,
                        to=str(moved) if moved else None,
                    )
                except OSError as exc:
                    self.log.warning(
                        "source", source=str(source), action=settings.on_done, error=str(exc)
                    )
        elif status == "rejected":
            if settings.error_files and source.exists():
                write_error_note(source, str(rec["reason"]))
        elif status == "failed":
            self._schedule_retry(source, inbox, str(rec.get("reason")))

    def _schedule_retry(self, source: Path, inbox: Path, reason: str) -> None:
        if not source.exists():
            return
        now = time.monotonic()
        if not self._outbox_ok(now):
            self._enqueue(source, inbox)  # the card is away: redo when it is back
            return
        _, attempts, _ = self.retries.get(source, (0.0, 0, inbox))
        if attempts >= len(RETRY_DELAYS_S):
            self.log.error("giving_up", source=str(source), reason=reason, attempts=attempts)
            self.retries.pop(source, None)
            return
        self.retries[source] = (now + RETRY_DELAYS_S[attempts], attempts + 1, inbox)

    def _retry_due(self, now: float) -> None:
        for source, (due, attempts, inbox) in list(self.retries.items()):
            if due <= now:
                self.retries[source] = (float("inf"), attempts, inbox)
                self._enqueue(source, inbox)

    def _check_timeouts(self, now: float) -> None:
        # The pool runs jobs in the order they were submitted: the first `workers` are running.
        # A chunk gets one file's limit too: it holds only small files (CHUNK_BYTES of input in
        # all, tens of milliseconds of work), and a late chunk's files only run again, alone.
        for job in list(self.running.values())[: self.runner.workers]:
            if job.since is None:
                job.since = now
        late = [
            f
            for f, r in self.running.items()
            if r.since is not None and now - r.since > self.config.job_timeout
        ]
        if not late:
            return
        self.log.warning(
            "timeout",
            sources=[str(p.source) for f in late for p in self.running[f].plans],
            job_timeout=self.config.job_timeout,
            action="stopping the workers; the files run again, those in a late trip alone",
        )
        self.runner.kill()
        for future, job in reversed(list(self.running.items())):
            self.running.pop(future)
            if future in late and len(job.plans) == 1:
                reason = f"took longer than {self.config.job_timeout:g} s (job_timeout); stopped"
                self._finished(job.plans[0], Outcome("failed", reason), job.started_at)
            else:  # killed with the pool: again, a late chunk's files each alone
                self._run_again(job.plans, into=self.alone if future in late else None)

    # --- health ---------------------------------------------------------------------------

    def _health(self, now: float) -> None:
        """Restart a dead observer; notice inboxes that vanish and come back."""
        self.next_health = now + HEALTH_EVERY_S
        if self.runner.flush_owed():  # the journal: gone or replaced? owed records written?
            self.state_dirty = True
        if self.runner.workers_lost:  # killed workers left temp files (cleared once unlocked)
            self.runner.workers_lost = False
            self.temps_left = True
        if self.temps_left:
            self._clean_temps()
        if self.config.outbox_removable:
            self._outbox_ok(now)  # an idle daemon notices a pulled card too (status tells)
        changed = False
        for inbox in self.config.inbox_paths:
            ident = _identity(inbox)
            present = ident is not None
            if present != self.inbox_present.get(inbox, True):
                changed = True
                self.log.warning("inbox_back" if present else "inbox_away", inbox=str(inbox))
            elif present and ident != self.inbox_ids.get(inbox):
                changed = True  # deleted and made again, or another folder moved in its place
                self.log.warning("inbox_replaced", inbox=str(inbox))
            self.inbox_present[inbox] = present
        if not all(self.inbox_present.values()):
            self.next_health = now + AWAY_CHECK_S  # watch it again as soon as it is back
        if changed or not self.watcher.alive():
            if not changed:
                self.log.error("observer_died", action="restarting")
            self.watcher.stop()
            self._start_watching()
            self.rescan("watch restarted")

    # --- signals, reload, stop --------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.reload()
            return
        if self.stopping:
            return
        self.stopping = True
        self.log.info("stop", signal=signal.Signals(signum).name, in_flight=self._in_flight())
        self.notifier.stopping()

    def reload(self) -> None:
        """Re-read the config; an invalid one is refused and the running one kept."""
        self.notifier.reloading()
        try:
            new = load_config(self.config_path)
            if new.journal != self.config.journal:
                raise ConfigError("journal", "cannot change while running; restart sp404d")
            claim(new.journal, new.inbox_paths, held=self.held)
        except Sp404dError as exc:
            self.log.error("reload_refused", error=str(exc), keeping=str(self.config_path))
            self.notifier.ready(self._status_line())
            return
        old = self.config
        self._use(new)
        logs.configure(new.log_format, new.log_level)
        self.settler.settle_s = new.settle_seconds
        if (old.inbox_paths, old.polling, old.poll_interval) != (
            new.inbox_paths,
            new.polling,
            new.poll_interval,
        ):
            self.watcher.stop()
            self._prepare_folders()
            self.watcher = self._watcher(new)
            self._start_watching()
        if new.worker_count != self.runner.workers and not self.running:
            self.runner.close()
        self.runner.workers = new.worker_count
        self.runner.planner.forget()
        self.log.info("reloaded", config=str(self.config_path) if self.config_path else "defaults")
        self.rescan("reload")
        self.notifier.ready(self._status_line())

    def _shutdown(self) -> None:
        self.watcher.stop()
        # Trips still queued in the pool have not started: they wait for the next start (its
        # scan finds them) instead of holding up the stop.
        not_started = 0
        for future, job in list(self.running.items()):
            if future.cancel():
                del self.running[future]
                not_started += len(job.plans)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.running and time.monotonic() < deadline:
            try:
                kind, payload = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if kind == "done":
                self._on_done(payload)
            elif kind == "signal" and payload in (signal.SIGTERM, signal.SIGINT):
                self.log.warning("stop_now", in_flight=self._in_flight())
                break  # a second signal: do not wait
        queued = len(self.planned) + len(self.waiting) + len(self.settler)
        left = self._in_flight() + not_started + queued + self.runner.finish_owed()
        self.runner.close(wait=not self.running)
        self.journal.close()
        if (read_state(self.config.journal) or {}).get("pid") == os.getpid():
            with contextlib.suppress(OSError):  # only our own: never another daemon's
                state_path(self.config.journal).unlink()
        self.log.info("stopped", left_for_next_start=left)

    # --- reporting --------------------------------------------------------------------------

    def _in_flight(self) -> int:
        return sum(len(job.plans) for job in self.running.values())

    def _status_line(self) -> str:
        if self.outbox_reason:
            return f"waiting: {self.outbox_reason}"
        queued = len(self.waiting) + len(self.settler) + len(self.planned)
        if self.running or queued:
            return f"converting {self._in_flight()}, queued {queued}"
        return "idle, watching " + ", ".join(str(p) for p in self.config.inbox_paths)

    def _write_state(self) -> None:
        """The small live-state file ``sp404d status`` reads (throttled to once a second)."""
        self.state_dirty = False
        self.next_state = time.monotonic() + 1.0
        state = {
            "pid": os.getpid(),
            "version": __version__,
            "updated_at": now_iso(),
            "queue": len(self.waiting) + len(self.settler) + len(self.planned),
            "running": self._in_flight(),
            "outbox": str(self.config.outbox),
            "outbox_state": "away" if self.outbox_reason else "ready",
            "outbox_reason": self.outbox_reason,
            "inboxes": [str(p) for p in self.config.inbox_paths],
            "mode": self.watcher.mode,
            "watch_limit": self.watcher.note,
            "journal_problem": self.runner.journal_problem(),
        }
        path = state_path(self.config.journal)
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass
        self.notifier.status(self._status_line())


def _identity(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, None when it is not there: tells a folder made anew."""
    try:
        st = folder.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _unchanged_since(source: Path, rec: dict[str, Any]) -> bool:
    """The source is still the file this record converted (not rewritten meanwhile)."""
    try:
        st = source.stat()
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (rec.get("size"), rec.get("mtime_ns"))


def run(config_path: Path | None) -> int:
    """Entry point of ``sp404d run``: exits non-zero, naming the key, on an invalid config."""
    config = load_config(config_path)
    logs.configure(config.log_format, config.log_level)
    held = claim(config.journal, config.inbox_paths)  # one daemon per journal and inbox
    try:
        return Daemon(config, config.source, held).run()
    finally:
        held.release()
