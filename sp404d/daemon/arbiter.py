"""``sp404d run``: the watch-folder daemon's lifecycle, in the manner of gunicorn's arbiter.

One main thread owns all state. Everything else only puts messages on its queue: observer
threads (file events), future callbacks (trips ended) and the signal relay
(:mod:`sp404d.daemon.signals`). The loop sleeps until a message or the next deadline (a settle
check, a rescan, a retry, a job's time limit, the watchdog ping), so an idle daemon costs no
CPU. This class is the lifecycle: start, the loop, health checks, reload and stop.

Flow, one way: event -> :mod:`~sp404d.daemon.intake` (complete? ours?) ->
:mod:`~sp404d.daemon.dispatch`: planner -> scheduler (worker pool) -> recorder (journal) ->
:mod:`~sp404d.daemon.aftercare` (keep/move/delete, error note, retry).
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sys
import time
from pathlib import Path

from sp404d import __version__, logs
from sp404d.config import Config, load_config
from sp404d.daemon.announce import Announcer
from sp404d.daemon.dispatch import Dispatcher
from sp404d.daemon.instance import Claim, claim
from sp404d.daemon.intake import Intake
from sp404d.daemon.mailbox import take_requests
from sp404d.daemon.messages import Message, SignalReceived, TripEnded
from sp404d.daemon.notify import Notifier
from sp404d.daemon.outboxguard import AWAY_CHECK_S, OutboxGuard
from sp404d.daemon.signals import SignalRelay
from sp404d.daemon.state import remove_state, write_state
from sp404d.daemon.telling import greeting, live_state
from sp404d.errors import ConfigError, Sp404dError
from sp404d.journal import Journal
from sp404d.pipeline import Runner, clean_stale_temps
from sp404d.watch import Change, InboxWatch, Settler

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE_S = 20.0  # in-flight jobs get this long to finish on SIGTERM (systemd waits 30 s)
HEALTH_EVERY_S = 5.0  # how often inboxes, observers and the journal are checked
DRAIN_BUDGET_S = 0.05  # longest the loop takes in queued events before it dispatches work


class Daemon:
    """The watch-folder service. Build with a valid config, then :meth:`run`."""

    def __init__(self, config: Config, config_path: Path | None, held: Claim) -> None:
        self.config = config
        self.config_path = config_path
        self.held = held
        self.log = logs.get_logger()
        self.q: queue.Queue[Message] = queue.Queue()
        self.notifier = Notifier()
        self.journal = Journal(config.journal)
        self.runner = Runner(
            self.journal,
            config.worker_count,
            job_timeout=config.job_timeout,
            need_output=False,  # see Planner.settled
            start_method="forkserver",
            notify=lambda f: self.q.put(TripEnded(f)),
        )
        self.scheduler = self.runner.scheduler
        self.intake = Intake(config, Settler(config.settle_seconds))
        self.inboxes = InboxWatch(config, self.q)
        self.guard = OutboxGuard(
            config.outbox, config.outbox_removable, self.notifier, self.runner.forget
        )
        self.work = Dispatcher(self.runner, self.intake, self.guard, self._changed)
        self.announce = Announcer(config, self.journal)
        self.runner.recorder.hooks.append(self.announce.saw)
        self.signals = SignalRelay(self.q)
        self.stopping = False
        self.next_rescan = 0.0
        self.next_health = 0.0
        self.next_ping = 0.0
        self.ping_every = self.notifier.watchdog_interval()
        self.state_dirty = True
        self.next_state = 0.0

    def _changed(self) -> None:
        self.state_dirty = True

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> int:
        made = [p for p in (*self.config.inbox_paths, self.config.outbox) if not p.exists()]
        self.inboxes.prepare_folders()
        if not self.config.outbox_removable:
            self.config.outbox.mkdir(parents=True, exist_ok=True)
        if sys.stderr.isatty():  # a person at a terminal: where to drop files, first
            sys.stderr.write(greeting(self.config, [p for p in made if p.exists()]))
            sys.stderr.flush()
        self.signals.start()
        self.inboxes.start()
        self.guard.ok(time.monotonic())
        with contextlib.suppress(OSError):
            clean_stale_temps(self.config.outbox, wait_young=True)
        self.next_health = time.monotonic() + 1.0
        self.log.info(
            "start",
            version=__version__,
            inboxes=[str(p) for p in self.config.inbox_paths],
            outbox=str(self.config.outbox),
            journal=str(self.config.journal),
            mode=self.inboxes.mode,
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
            self.signals.close()
        return 0

    def _timeout(self, now: float) -> float:
        if self.work.can_plan() and self.guard.reason is None:
            return 0.0  # more of a drop to plan: go round again at once
        deadlines = [
            self.next_health,
            self.next_rescan if self.config.rescan_interval else None,
            self.next_ping if self.ping_every else None,
            self.guard.next_check if self.guard.reason else None,
            self.work.aftercare.next_retry(),
            self.next_state if self.state_dirty else None,
            self.scheduler.next_deadline(),
            self.announce.due(),
        ]
        settle = self.intake.settler.next_check()
        if settle is not None:
            deadlines.append(now + settle if settle == 0.0 else settle)
        pending = [d for d in deadlines if d is not None]
        return max(0.0, min(pending) - now) if pending else HEALTH_EVERY_S

    def _step(self) -> None:
        """One turn of the loop: the daemon's stages, in the order data flows. Events in (the
        intake notes files arriving), then what became complete or due goes to the planner
        and the workers (``work.step``: intake -> plan -> dispatch -> trips ended -> records ->
        aftercare), then what the daemon tells (notifications, SP404D.TXT), its health, a
        rescan, systemd's watchdog and the state file ``status`` reads."""
        now = time.monotonic()
        try:
            self._handle(self.q.get(timeout=self._timeout(now)))
            # During a flood of events (a big drop), dispatch every DRAIN_BUDGET_S, so the
            # workers start on the first files while the rest still arrive.
            whole = self.intake.whole_drops
            until = float("inf") if whole else time.monotonic() + DRAIN_BUDGET_S
            while time.monotonic() < until:
                self._handle(self.q.get_nowait())
        except queue.Empty:
            pass
        now = time.monotonic()
        self.work.step(now)
        self.announce.flush(now, card_ready=self.guard.reason is None)
        if now >= self.next_health:
            self._health(now)
        if self.config.rescan_interval and now >= self.next_rescan:
            self.rescan("periodic")
        if self.ping_every and now >= self.next_ping:
            self.notifier.watchdog()
            self.next_ping = now + self.ping_every
        if self.state_dirty and now >= self.next_state:
            self._write_state()

    def _handle(self, message: Message) -> None:
        if isinstance(message, Change):
            self._on_change(message)
        elif isinstance(message, TripEnded):
            self.work.on_done(message.future)
        else:
            self._on_signal(message.signum)

    # --- intake ---------------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind == "inbox_gone":
            self.inboxes.gone(change.inbox)
            self.next_health = time.monotonic()  # see whether it is back, and watch it again
            return
        if change.kind == "dir" and not self.intake.excluded(change.path):
            self.inboxes.cover(change.path)
            self.state_dirty = True
        self.intake.on_change(change)

    def rescan(self, why: str) -> None:
        """Queue what the journal does not have as converted (see :meth:`Intake.rescan`)."""
        found = self.intake.rescan(lambda r: self.runner.settled(r))
        self.next_rescan = time.monotonic() + self.config.rescan_interval
        if found or why == "start":
            self.log.info("rescan", why=why, new_or_changed=found)

    # --- health ---------------------------------------------------------------------------

    def _health(self, now: float) -> None:
        """The journal (gone, replaced, records owed), temp files of killed workers, a pulled
        card, and the inboxes and their observer."""
        self.next_health = now + HEALTH_EVERY_S
        self.work.health(now)
        missing = self.inboxes.missing()
        restarted = self.inboxes.check()
        if not self.inboxes.all_present():
            self.next_health = now + AWAY_CHECK_S  # watch it again as soon as it is back
        if restarted:
            self.state_dirty = True
            self.rescan("watch restarted")
        elif missing != self.inboxes.missing():
            self.state_dirty = True

    # --- signals, reload, stop --------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.reload()
            return
        if signum == signal.SIGUSR1:
            self.work.take_retries(take_requests(self.config.journal))
            return
        if self.stopping:
            return
        self.stopping = True
        self.log.info(
            "stop", signal=signal.Signals(signum).name, in_flight=self.scheduler.in_flight
        )
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
        self.config = new  # one config, handed to every part that keeps one
        logs.configure(new.log_format, new.log_level)
        for part in (self.intake, self.inboxes, self.guard, self.announce, self.runner):
            part.use(new)
        self.log.info("reloaded", config=str(self.config_path) if self.config_path else "defaults")
        self.rescan("reload")
        self.notifier.ready(self._status_line())

    def _shutdown(self) -> None:
        self.inboxes.stop()
        # Trips still queued in the pool have not started: they wait for the next start (its
        # scan finds them) instead of holding up the stop.
        not_started = self.scheduler.cancel_waiting()
        deadline = time.monotonic() + STOP_GRACE_S
        while self.scheduler.running and time.monotonic() < deadline:
            try:
                message = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if isinstance(message, TripEnded):
                self.work.on_done(message.future)
            elif isinstance(message, SignalReceived) and message.signum in STOP_SIGNALS:
                self.log.warning("stop_now", in_flight=self.scheduler.in_flight)
                break  # a second signal: do not wait
        queued = self.scheduler.queued + len(self.intake)
        left = self.scheduler.in_flight + not_started + queued + self.runner.recorder.finish_owed()
        self.announce.flush(time.monotonic(), card_ready=self.guard.reason is None, force=True)
        self.runner.close(wait=not self.scheduler.running)
        self.journal.close()
        remove_state(self.config.journal)
        self.log.info("stopped", left_for_next_start=left)

    # --- reporting --------------------------------------------------------------------------

    def _status_line(self) -> str:
        return self.work.status_line(self.config.inbox_paths)

    def _write_state(self) -> None:
        """The small live-state file ``sp404d status`` reads (throttled to once a second)."""
        self.state_dirty = False
        self.next_state = time.monotonic() + 1.0
        write_state(self.config.journal, live_state(self.config, self.work, self.inboxes))
        self.notifier.status(self._status_line())


def run(config_path: Path | None) -> int:
    """Entry point of ``sp404d run``: exits non-zero, naming the key, on an invalid config."""
    config = load_config(config_path)
    logs.configure(config.log_format, config.log_level)
    held = claim(config.journal, config.inbox_paths)  # one daemon per journal and inbox
    try:
        return Daemon(config, config.source, held).run()
    finally:
        held.release()
