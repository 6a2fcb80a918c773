"""Runs planned jobs on the worker pool and hands back how each ended: one scheduler for
``convert`` and the daemon.

Plans go to the workers in trips: a single file at once, alone; chunks of small files while a
backlog lasts (a drop of hundreds would otherwise cost a round trip and a wake-up of the caller
per file), cut finer as the queue shortens so every worker ends evenly loaded, and never past
``CHUNK_BYTES`` of input, so a long file travels alone. Two trips a worker are in flight, so the
next one is already queued when a worker finishes.

A worker that dies (killed, out of memory, a crash in a decoder) takes down every trip in flight
with it, though only one was its own: those files run again, each alone with nothing else in
the pool, so only the culprit is recorded as failed; each re-run adopts the output its first run
may already have renamed into place. A trip past ``job_timeout`` stops the pool: a late single
file fails, a late chunk's files run again each alone, the rest run again as they were.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path

from sp404d.logs import get_logger
from sp404d.pipeline.plan import Outcome, Plan
from sp404d.pipeline.pool import WorkerPool
from sp404d.pipeline.records import now_iso

CHUNK_FILES = 8
CHUNK_BYTES = 2 << 20

#: A job that ended: its plan, how it ended, and when its trip started (ISO time).
Ended = tuple[Plan, Outcome, str]


@dataclass
class Trip:
    """Plans sent to a worker together (one, or a chunk of small files during a backlog)."""

    plans: list[Plan]
    started_at: str
    suspect: bool = False  # a re-run alone after a worker died, with nothing else in the pool
    since: float | None = None  # when a worker took it; None while it waits in the pool's queue


def for_rerun(plan: Plan) -> Plan:
    """A plan to run again: it may find its own complete output (or slices) already in place."""
    if plan.pieces:
        pieces = tuple(
            p if p.final in p.adopt else replace(p, adopt=(*p.adopt, p.final)) for p in plan.pieces
        )
        return replace(plan, pieces=pieces)
    return plan if plan.final in plan.adopt else replace(plan, adopt=(*plan.adopt, plan.final))


def next_trip(planned: deque[Plan], slots: int, alone: Callable[[Plan], bool]) -> list[Plan]:
    """Take the plans for one trip off the front of ``planned``: up to an even share of the
    queue over ``slots`` trips (at most ``CHUNK_FILES``), closed at ``CHUNK_BYTES``; a plan
    that must run ``alone`` goes in a trip of its own."""
    want = min(CHUNK_FILES, -(-len(planned) // slots))
    plans: list[Plan] = []
    size = 0
    while planned and len(plans) < want and size < CHUNK_BYTES:
        if plans and alone(planned[0]):
            break
        plan = planned.popleft()
        plans.append(plan)
        size += plan.size
        if alone(plan):
            break
    return plans


class Scheduler:
    """Ready plans in, ended jobs out. Call from one thread only.

    ``before_trip`` sees each trip's plans before they are submitted (the write-ahead intent
    notes); ``notify`` is called with each trip's future once it is done, from another thread
    (the daemon wakes its loop with it; ``convert`` waits with :meth:`wait` instead).
    """

    def __init__(
        self,
        pool: WorkerPool,
        job_timeout: float,
        *,
        before_trip: Callable[[Sequence[Plan]], None] | None = None,
        notify: Callable[[Future[list[Outcome]]], None] | None = None,
    ) -> None:
        self.pool = pool
        self.job_timeout = job_timeout
        self.before_trip = before_trip
        self.notify = notify
        self.log = get_logger()
        self.planned: deque[Plan] = deque()
        self.running: dict[Future[list[Outcome]], Trip] = {}
        self.alone: set[Path] = set()  # to run in a trip of their own (their chunk ran late)
        # In flight when a worker died: each runs alone with nothing else in the pool, so that
        # only the file that kills its worker is recorded as failed (its retries run alone too).
        self.suspects: set[Path] = set()

    # --- state --------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self.planned)

    @property
    def in_flight(self) -> int:
        return sum(len(trip.plans) for trip in self.running.values())

    def idle(self) -> bool:
        return not (self.planned or self.running)

    def next_deadline(self) -> float | None:
        """When the earliest running trip runs out of time (monotonic), if any is running."""
        limits = [t.since + self.job_timeout for t in self.running.values() if t.since is not None]
        return min(limits) if limits else None

    # --- work in --------------------------------------------------------------------------------

    def add(self, plans: Iterable[Plan]) -> None:
        self.planned.extend(plans)

    def dispatch(self) -> None:
        """Keep every worker busy: two trips each, a suspect only with nothing else running."""
        slots = 2 * self.pool.workers
        while self.planned and len(self.running) < slots:
            suspect = self.planned[0].source in self.suspects
            if (suspect and self.running) or any(t.suspect for t in self.running.values()):
                return
            plans = next_trip(self.planned, slots, self._by_itself)
            if self.before_trip is not None:
                self.before_trip(plans)
            future = self.pool.submit(plans)
            self.running[future] = Trip(plans, now_iso(), suspect=suspect)
            if self.notify is not None:
                future.add_done_callback(self.notify)

    def _by_itself(self, plan: Plan) -> bool:
        return plan.source in self.alone or plan.source in self.suspects

    def _run_again(self, plans: list[Plan], into: set[Path] | None = None) -> None:
        """Put plans back at the front, each to adopt its own output if its first run got as far
        as renaming it into place; ``into``: mark them (alone, or suspects)."""
        for plan in reversed(plans):
            self.planned.appendleft(for_rerun(plan))
            if into is not None:
                into.add(plan.source)

    # --- work out -------------------------------------------------------------------------------

    def ended(self, future: Future[list[Outcome]]) -> list[Ended]:
        """The jobs a finished trip ended; none if its worker died and they will run again."""
        trip = self.running.pop(future, None)
        if trip is None:
            return []  # abandoned when its pool was killed
        try:
            outcomes = future.result()
        except Exception as exc:  # a dead worker is a failed job, not a dead caller
            # The next submit replaces a broken pool (killing it here could kill its successor,
            # already started for other trips); the dead worker's temp file wants clearing.
            self.pool.lost = True
            if not trip.suspect:  # any trip in flight may have been the cause: each alone
                self._run_again(trip.plans, into=self.suspects)
                return []
            reason = f"worker process failed: {exc or type(exc).__name__}"
            return [(trip.plans[0], Outcome("failed", reason), trip.started_at)]
        for plan in trip.plans:
            self.alone.discard(plan.source)
            self.suspects.discard(plan.source)
        return list(zip(trip.plans, outcomes, [trip.started_at] * len(outcomes), strict=True))

    def overdue(self, now: float) -> list[Ended]:
        """Stop the pool if a trip ran past ``job_timeout``; return the jobs that failed for it."""
        # The pool runs trips in the order they were submitted: the first `workers` are running.
        # A chunk gets one file's limit too: it holds only small files (CHUNK_BYTES of input in
        # all, tens of milliseconds of work), and a late chunk's files only run again, alone.
        for trip in list(self.running.values())[: self.pool.workers]:
            if trip.since is None:
                trip.since = now
        late = [
            f
            for f, t in self.running.items()
            if t.since is not None and now - t.since > self.job_timeout
        ]
        if not late:
            return []
        self.log.warning(
            "timeout",
            sources=[str(p.source) for f in late for p in self.running[f].plans],
            job_timeout=self.job_timeout,
            action="stopping the workers; the files run again, those in a late trip alone",
        )
        self.pool.kill()
        failed: list[Ended] = []
        for future, trip in reversed(list(self.running.items())):
            self.running.pop(future)
            if future in late and len(trip.plans) == 1:
                reason = f"took longer than {self.job_timeout:g} s (job_timeout); stopped"
                self.alone.discard(trip.plans[0].source)
                self.suspects.discard(trip.plans[0].source)
                failed.append((trip.plans[0], Outcome("failed", reason), trip.started_at))
            else:  # killed with the pool: again, a late chunk's files each alone
                self._run_again(trip.plans, into=self.alone if future in late else None)
        return failed

    def wait(self, timeout: float | None) -> list[Ended]:
        """Block until a trip ends or ``timeout`` passes; return what ended (``convert``)."""
        done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
        return [job for future in done for job in self.ended(future)]

    def run_all(self, finish: Callable[[Plan, Outcome, str], object]) -> None:
        """Run everything added until nothing is left, calling ``finish`` as each job ends."""
        while not self.idle():
            self.dispatch()
            for job in self.overdue(time.monotonic()):  # also notes when running trips began
                finish(*job)
            deadline = self.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            for job in self.wait(timeout):
                finish(*job)

    def cancel_waiting(self) -> int:
        """At a stop: drop the trips the pool has not started; return how many files they held
        (they wait for the next start, whose scan finds them)."""
        dropped = 0
        for future, trip in list(self.running.items()):
            if future.cancel():
                del self.running[future]
                dropped += len(trip.plans)
        return dropped
