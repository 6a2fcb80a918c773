"""Runs planned jobs on a pool of worker processes and records each one as it ends.

The flow is one way: requests -> plans (here, in the parent) -> ``job.execute`` (workers) ->
records (here: journal, log, the caller's callback). Only this process writes the journal, the
single-writer pattern TinyDB's maintainers recommend. Used by ``convert`` and the daemon.

A record owed is a record written: when the journal cannot be appended to (its disk full,
read-only, gone), :meth:`Runner.record` does not fail: the record waits in memory, in order
(``Journal.append_or_owe``), and the next record or :meth:`Runner.flush_owed` writes it once the
journal takes it. The log says so once (``journal_unwritable`` with the reason and ``owed``, then
``journal_writable``). What must follow a record waits with it: the job's intent note stays
unresolved, and a caller's aftercare can wait through :meth:`Runner.owes`. At the end
(:meth:`Runner.finish_owed`) records still owed are logged as lost with their outputs: complete
files, which a later run adopts (conversion is deterministic) instead of converting again.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sp404d.converted import prepare
from sp404d.intents import Intents
from sp404d.job import Outcome, Plan, execute_many
from sp404d.journal import Journal
from sp404d.logs import get_logger
from sp404d.planner import Early, Planner, Request
from sp404d.records import make_record, now_iso

RecordHook = Callable[[dict[str, Any]], None]


@dataclass
class Tally:
    """Counts by status, for summaries and exit codes."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return not (self.counts.get("rejected") or self.counts.get("failed"))


def _start_method() -> str:
    # fork is the cheapest start (workers inherit numpy, soxr, soundfile already imported) and
    # safe while the parent has no other threads; with threads (the daemon's observers),
    # forkserver avoids forking a process that holds locks.
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group; the parent decides what stops, not each worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_pool(workers: int, start_method: str | None = None) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context(start_method or _start_method())
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["sp404d.job"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)


def kill_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, killing its workers (a stuck job, or a stop that cannot wait)."""
    processes = dict(getattr(pool, "_processes", None) or {})
    for proc in processes.values():
        with contextlib.suppress(Exception):
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


class Runner:
    """Plans, executes and records jobs. Call from one thread only."""

    def __init__(
        self,
        journal: Journal,
        workers: int,
        on_record: RecordHook | None = None,
        start_method: str | None = None,
    ) -> None:
        self.journal = journal
        self.start_method = start_method
        self.intents = Intents(journal.path)
        self.planner = Planner(journal, self.intents)
        self.workers = workers
        self.on_record = on_record
        self.tally = Tally()
        self.log = get_logger()
        self._pool: ProcessPoolExecutor | None = None
        self.workers_lost = False  # a pool was killed or broke: its temp files need clearing
        self._journal_down = False  # journal_unwritable said, journal_writable not yet
        self._written_late = 0  # owed records written since journal_unwritable
        self._waiting: dict[str, list[Callable[[], None]]] = {}  # source -> what waits for it
        self._ready: list[Callable[[], None]] = []  # their records are written: run them

    @property
    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = make_pool(self.workers, self.start_method)
        return self._pool

    def close(self, wait: bool = True) -> None:
        self.intents.close()
        if self._pool is not None:
            if wait:
                self._pool.shutdown(wait=True)
                self._pool = None
            else:
                self.kill()

    def record(self, item: Plan | Early, outcome: Outcome, started_at: str) -> dict[str, Any]:
        """Journal (or owe), log and report one finished job. Never raises for the journal."""
        return self._record(make_record(item, outcome, started_at), None)

    def _record(self, rec: dict[str, Any], intent: tuple[Path, Path] | None) -> dict[str, Any]:
        source = rec["source"]

        def written(late: bool) -> None:
            if intent is not None:
                self.intents.resolve(*intent)
            if late:
                self._written_late += 1
                if not self.journal.owes(source):
                    self._ready += self._waiting.pop(source, [])

        self.journal.append_or_owe(rec, written)
        self._journal_state()
        self.planner.recorded(rec)
        status = rec["status"]
        self.tally.add(status)
        level = "info" if status in ("done", "skipped") else "warning"
        fields = {k: rec[k] for k in ("source", "status", "reason", "output") if rec[k] is not None}
        getattr(self.log, level)("job", **fields, duration_s=rec["elapsed_s"])
        if self.on_record is not None:
            self.on_record(rec)
        self._run_ready()
        return rec

    # --- records the journal could not take yet -----------------------------------------------

    def owes(self, source: Path, then: Callable[[], None] | None = None) -> bool:
        """Whether the record of ``source`` waits for the journal; if so, ``then`` runs once it
        is written (a move or delete of the source must wait for its record)."""
        if not self.journal.owes(str(source)):
            return False
        if then is not None:
            self._waiting.setdefault(str(source), []).append(then)
        return True

    @property
    def records_owed(self) -> int:
        return self.journal.owed

    def journal_problem(self) -> dict[str, Any] | None:
        """For the daemon's state file: why the journal cannot be written, while records wait."""
        if not self.journal.owed:
            return None
        return {"reason": self.journal.owed_reason, "records_owed": self.journal.owed}

    def flush_owed(self) -> bool:
        """Look at the journal (one stat: deleted or replaced?) and write the records owed, if
        it takes them now. True when something changed worth reporting. Never raises."""
        owed = self.journal.owed
        changed = self.journal.check()
        self.intents.check()
        if owed:
            self.journal.write_owed()
        changed = self._journal_state() or changed or self.journal.owed != owed
        self._run_ready()
        return changed

    def finish_owed(self) -> int:
        """The last try (at stop, at the end of ``convert``): write what is owed; log what still
        cannot be, with its outputs, as lost. Return how many records were lost."""
        self.flush_owed()
        if not self.journal.owed:
            return 0
        reason = self.journal.owed_reason
        lost = self.journal.drop_owed()
        self._waiting.clear()
        self._journal_down = False
        self.log.error(
            "journal_records_lost",
            journal=str(self.journal.path),
            reason=reason,
            records=len(lost),
            outputs=[rec["output"] for rec in lost if rec.get("output")],
            sources=[rec["source"] for rec in lost if not rec.get("output")],
            note="each output is a complete file; a run once the journal can be written adopts "
            "it (conversion is deterministic) and records it, without converting it twice",
        )
        return len(lost)

    def _journal_state(self) -> bool:
        """Log a change of the journal's state once; True when it changed."""
        owed = self.journal.owed
        if owed and not self._journal_down:
            self._journal_down, self._written_late = True, 0
            self.log.warning(
                "journal_unwritable",
                journal=str(self.journal.path),
                reason=self.journal.owed_reason,
                owed=owed,
                action="records wait in memory, in order, and are written once it takes them",
            )
            return True
        if not owed and self._journal_down:
            self._journal_down = False
            self.log.info(
                "journal_writable", journal=str(self.journal.path), written=self._written_late
            )
            return True
        return False

    def _run_ready(self) -> None:
        while self._ready:
            self._ready.pop(0)()

    def _sync(self) -> None:
        # A failed fsync is said once already (journal_sync_failed); the records are written.
        with contextlib.suppress(OSError):
            self.journal.sync()

    def warm(self) -> None:
        """Start every worker now, with the journal open, so the first file waits for
        neither."""
        journal = self.journal.path
        for fut in [self.pool.submit(prepare, journal) for _ in range(self.workers)]:
            fut.result()

    def kill(self) -> None:
        """Kill the pool's workers now (a stuck job, a broken pool); the next submit starts anew."""
        if self._pool is not None:
            kill_pool(self._pool)
            self._pool = None
            self.workers_lost = True

    def finish(self, plan: Plan, outcome: Outcome, started_at: str) -> dict[str, Any]:
        """Record a job that ran; its intent note is resolved once its record is written."""
        self.planner.settle(plan, outcome)
        return self._record(make_record(plan, outcome, started_at), (plan.source, plan.final))

    def submit(self, plans: Sequence[Plan]) -> Future[list[Outcome]]:
        """Run plans in one trip to a worker (what a trip costs is paid once); a pool broken by
        a dead worker is replaced first."""
        for plan in plans:
            self.intents.add(plan.source, plan.final)
        try:
            return self.pool.submit(execute_many, tuple(plans))
        except BrokenProcessPool:
            self.kill()
            return self.pool.submit(execute_many, tuple(plans))

    def run_batch(self, requests: Iterable[Request]) -> Tally:
        """Plan all requests together (pads in name order), run them, record each as it ends.

        Small files travel to the workers in chunks. A worker that dies (killed, out of memory,
        a crash in a decoder) takes down every job in flight with it, though only one was its
        own: those jobs run again, one per trip, then alone, so only the culprit is recorded as
        failed. A re-run adopts the output its first run may already have renamed into place.
        """
        started = now_iso()
        requests = list(requests)
        # A few files still spread over every worker: chunks only as big as keeps them all busy.
        size = max(1, min(CHUNK_FILES, -(-len(requests) // (2 * self.workers))))
        chunked: dict[Future[list[Outcome]], tuple[list[Plan], str]] = {}
        for item in chunk_plans(self.planner.plan_many(requests), size):
            if isinstance(item, Early):
                self.record(item, item.outcome, started)
            else:
                chunked[self.submit(item)] = (item, now_iso())
        lost = self._collect(chunked)
        if lost:
            again = [[for_rerun(plan)] for plan in lost]
            singles = {self.submit(one): (one, now_iso()) for one in again}
            for plan in self._collect(singles):
                self._collect({self.submit([plan]): ([plan], now_iso())}, last_try=True)
        self._sync()
        return self.tally

    def _collect(
        self,
        pending: Mapping[Future[list[Outcome]], tuple[list[Plan], str]],
        last_try: bool = False,
    ) -> list[Plan]:
        """Record each finished job; return the plans whose worker died under them."""
        lost: list[Plan] = []
        for fut in as_completed(pending):
            plans, began = pending[fut]
            try:
                result = fut.result()
            except Exception as exc:  # a worker died (killed, out of memory): not the file's fault
                if not last_try:
                    lost += plans
                    continue
                reason = f"worker process failed: {exc or type(exc).__name__}"
                result = [Outcome("failed", reason) for _ in plans]
            for plan, outcome in zip(plans, result, strict=True):
                self.finish(plan, outcome, began)
        return lost


def for_rerun(plan: Plan) -> Plan:
    """A plan to run again: it may find its own complete output already in place."""
    return plan if plan.final in plan.adopt else replace(plan, adopt=(*plan.adopt, plan.final))


CHUNK_FILES = 8
CHUNK_BYTES = 2 << 20


def chunk_plans(
    items: Iterable[Plan | Early], files: int = CHUNK_FILES
) -> Iterator[list[Plan] | Early]:
    """Group plans into chunks of small files, in order; early results pass straight through.

    A chunk closes at ``files`` files or ``CHUNK_BYTES`` of input, so a long file always
    travels alone and the workers end a batch evenly loaded.
    """
    chunk: list[Plan] = []
    size = 0
    for item in items:
        if isinstance(item, Early):
            yield item
            continue
        chunk.append(item)
        size += item.size
        if len(chunk) >= files or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk
