"""The daemon's work: sources waiting in the intake to plans, worker trips, records and
aftercare, as long as the outbox is there.

Files dropped at once are planned together, which gives them their kit pads in name order,
explicit claims first, exactly as ``convert`` does. A kit inbox plans a drop once it has stopped
arriving; other layouts plan a few dozen files at a time just ahead of the workers, so the first
converts while the rest of a big drop is still arriving.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sp404d.daemon.aftercare import Aftercare
from sp404d.daemon.intake import Intake
from sp404d.daemon.outboxguard import OutboxGuard
from sp404d.logs import get_logger
from sp404d.pipeline import Deferred, Outcome, Plan, Request, Runner

PLAN_AHEAD = 64  # files planned ahead of the workers (kit inboxes plan a whole drop at once)


class Dispatcher:
    """Moves work along; ``changed`` is called whenever what ``status`` shows may have changed."""

    def __init__(
        self, runner: Runner, intake: Intake, guard: OutboxGuard, changed: Callable[[], None]
    ) -> None:
        self.runner = runner
        self.scheduler = runner.scheduler
        self.intake = intake
        self.guard = guard
        self.changed = changed
        self.deferred: list[Request] = []  # kit files waiting for a chop in their kit
        self.log = get_logger()
        self.aftercare = Aftercare(
            runner.recorder, intake.settings, self.requeue, lambda: self.outbox_ok(time.monotonic())
        )

    @property
    def queued(self) -> int:
        return len(self.intake) + self.scheduler.queued + len(self.deferred)

    @property
    def in_flight(self) -> int:
        return self.scheduler.in_flight

    def requeue(self, source: Path, inbox: Path) -> None:
        self.intake.enqueue(source, inbox)
        self.changed()

    def outbox_ok(self, now: float) -> bool:
        was = self.guard.reason
        ok = self.guard.ok(now)
        if self.guard.reason != was:
            self.changed()
        return ok

    def can_plan(self) -> bool:
        """Whether waiting files should be planned now: in a kit inbox all together, otherwise
        a few at a time, just ahead of the workers."""
        return bool(self.intake.waiting) and (
            self.intake.whole_drops or self.scheduler.queued < PLAN_AHEAD
        )

    def step(self, now: float) -> None:
        """Take in completed files and due retries, plan, dispatch, stop overdue trips."""
        before = len(self.intake)
        self.intake.settle(now)
        self.aftercare.retry_due(now)
        if len(self.intake) != before:
            self.changed()
        if self.guard.reason is not None and now >= self.guard.next_check:
            self.outbox_ok(now)  # back? checked every AWAY_CHECK_S, work waiting or not
        self._dispatch(now)
        for job in self.scheduler.overdue(now):
            self.finished(*job)

    def _dispatch(self, now: float) -> None:
        if not (self.intake.waiting or self.scheduler.planned):
            return
        if self.guard.waiting(now) or not self.outbox_ok(now):
            return
        if self.can_plan():
            self._plan_waiting(None if self.intake.whole_drops else PLAN_AHEAD)
        running = len(self.scheduler.running)
        self.scheduler.dispatch()
        if len(self.scheduler.running) != running:
            self.changed()

    def _plan_waiting(self, limit: int | None) -> None:
        requests = sorted(self.intake.take(limit), key=lambda r: str(r.source).casefold())
        self.changed()
        for item in self.runner.planner.plan_many(requests):
            if isinstance(item, Deferred):  # waits for a loop chopped in its kit
                self.deferred.append(item.request)
                continue
            if isinstance(item, Plan):
                self.intake.busy.add(item.source)
                self.scheduler.add([item])
                continue
            source, inbox = item.request.source, item.request.root
            if item.settled:
                # Nothing changed since its last job: nothing to record. A refusal's note says
                # so already; a conversion's aftercare may still be owed (a stop between the
                # record and a move or delete), and is safe to repeat.
                if item.outcome.status != "rejected":
                    output = item.outcome.output
                    earlier = {
                        "status": item.outcome.status,
                        "size": item.size,
                        "mtime_ns": item.mtime_ns,
                        "output": str(output) if output else None,
                    }
                    self.aftercare.after(earlier, source, inbox)
                continue
            self.aftercare.after(self.runner.record(item), source, inbox)

    def on_done(self, future: Future[list[Outcome]]) -> None:
        """A trip came back from a worker (or its worker died)."""
        for job in self.scheduler.ended(future):
            self.finished(*job)
        self.changed()

    def finished(self, plan: Plan, outcome: Outcome, started_at: str) -> None:
        rec = self.runner.finish(plan, outcome, started_at)
        self.intake.ended(plan.source)
        for request in self.deferred:  # what waited for a chop: planned again (or waits on)
            self.intake.enqueue(
                request.source, request.root, retried=request.again, moved_from=request.moved_from
            )
        self.deferred.clear()
        if outcome.status == "failed":
            # A write cut off (a card pulled and back before the daemon looked, a full disk) may
            # have left its temp file where its worker could not remove it: the health check
            # clears it once nothing holds it.
            self.guard.temps_left = True
        self.changed()
        self.aftercare.after(rec, plan.source, plan.root)

    def health(self, now: float) -> None:
        """The journal (gone, replaced, records owed), temp files of killed workers, a pulled
        card (an idle daemon notices it too: status tells)."""
        if self.runner.recorder.flush_owed():
            self.changed()
        if self.runner.pool.take_lost():  # killed workers left temp files (cleared once free)
            self.guard.temps_left = True
        if self.guard.temps_left:
            self.guard.clean_temps()
        if self.guard.removable:
            self.outbox_ok(now)

    def take_retries(self, sources: list[Path]) -> None:
        """Files ``sp404d retry`` asked for again (see :mod:`sp404d.daemon.mailbox`)."""
        taken, outside = 0, []
        for source in sources:
            inbox = self.intake.inbox_of(source)
            if inbox is None:
                outside.append(str(source))
                continue
            self.intake.enqueue(source, inbox, retried=True)
            taken += 1
        self.changed()
        self.log.info("retry", files=taken, not_in_an_inbox=outside or None)

    def state(self) -> dict[str, Any]:
        """The work's part of the daemon's state file."""
        return {
            "queue": self.queued,
            "running": self.in_flight,
            "outbox": str(self.guard.outbox),
            "outbox_state": "away" if self.guard.reason else "ready",
            "outbox_reason": self.guard.reason,
            "journal_problem": self.runner.recorder.journal_problem(),
        }

    def status_line(self, inboxes: tuple[Path, ...]) -> str:
        if self.guard.reason:
            return f"waiting: {self.guard.reason}"
        if self.scheduler.running or self.queued:
            return f"converting {self.in_flight}, queued {self.queued}"
        return "idle, watching " + ", ".join(str(p) for p in inboxes)
