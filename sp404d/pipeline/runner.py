"""Plans, runs and records jobs: the planner, the scheduler and the recorder, wired once.

Flow, one way: requests -> plans (here, in the parent: :mod:`sp404d.pipeline.planner`) -> trips
on the worker pool (:mod:`sp404d.pipeline.scheduler`; ``job.execute`` in the workers) -> records
(:mod:`sp404d.pipeline.recorder`: journal, log, the caller's hook). ``convert`` runs a batch
through
:meth:`Runner.run_batch`; the daemon feeds the same parts as files arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future

from sp404d.config import Config
from sp404d.journal import Journal
from sp404d.pipeline.plan import Outcome, Plan
from sp404d.pipeline.planner import Deferred, Early, Planner, Request
from sp404d.pipeline.pool import WorkerPool
from sp404d.pipeline.recorder import Recorder, RecordHook, Tally
from sp404d.pipeline.records import JobRecord, now_iso
from sp404d.pipeline.scheduler import Scheduler


class Runner:
    """The parts of a job's way, sharing one journal. Call from one thread only.

    ``need_output``: whether a source whose output was deleted is converted again (``convert``:
    yes; the daemon: no, see :meth:`Planner.settled`). ``notify``: see :class:`Scheduler`.
    """

    def __init__(
        self,
        journal: Journal,
        workers: int,
        *,
        job_timeout: float = 600.0,
        need_output: bool = True,
        on_record: RecordHook | None = None,
        start_method: str | None = None,
        notify: Callable[[Future[list[Outcome]]], None] | None = None,
    ) -> None:
        self.journal = journal
        self.recorder = Recorder(journal)
        self.planner = Planner(journal, self.recorder.intents, need_output=need_output)
        self.recorder.hooks.append(self.planner.recorded)
        if on_record is not None:
            self.recorder.hooks.append(on_record)
        self.pool = WorkerPool(workers, start_method)
        self.scheduler = Scheduler(
            self.pool, job_timeout, before_trip=self.recorder.intend, notify=notify
        )

    def settled(self, request: Request) -> bool:
        """Nothing to do for this source (the daemon's rescan asks; see Planner.settled)."""
        return self.planner.settled(request, need_output=self.planner.need_output)

    def forget(self) -> None:
        """The outbox changed behind our back (a card back): what was known of it is stale."""
        self.planner.forget()

    def use(self, config: Config) -> None:
        """A reloaded config: its worker count and time limit; the outbox looked at anew."""
        self.pool.resize(config.worker_count, idle=not self.scheduler.running)
        self.scheduler.job_timeout = config.job_timeout
        self.planner.forget()

    def warm(self) -> None:
        """Start every worker now, with the journal open, so the first file waits for
        neither."""
        self.pool.warm(self.journal.path)

    def record(self, item: Early) -> JobRecord:
        """Record a job that ended while planning."""
        return self.recorder.record(item, item.outcome, now_iso())

    def finish(self, plan: Plan, outcome: Outcome, started_at: str) -> JobRecord:
        """Record a job that ran, once its reservations are settled."""
        self.planner.settle(plan, outcome)
        return self.recorder.ran(plan, outcome, started_at)

    def run_batch(self, requests: Iterable[Request]) -> Tally:
        """Plan all requests together (pads in name order), run them, record each as it ends;
        then the kit files that waited for a loop chopped at its onsets, and so on."""
        pending = list(requests)
        while pending:
            waiting: list[Request] = []
            for item in self.planner.plan_many(pending):
                if isinstance(item, Deferred):
                    waiting.append(item.request)
                elif isinstance(item, Early):
                    self.record(item)
                else:
                    self.scheduler.add([item])
            self.scheduler.run_all(self.finish)
            if len(waiting) == len(pending):  # nothing ran that they wait for: cannot be
                self.planner.defer = False
            pending = waiting
        self.recorder.sync()
        return self.recorder.tally

    def close(self, wait: bool = True) -> None:
        self.recorder.close()
        self.pool.close(wait)
