"""The worker processes: how they start, how they are warmed, replaced and killed."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sp404d.pipeline.converted import prepare
from sp404d.pipeline.job import execute_many
from sp404d.pipeline.plan import Outcome, Plan


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
        ctx.set_forkserver_preload(["sp404d.pipeline.job"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)


def kill_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, killing its workers (a stuck job, or a stop that cannot wait)."""
    processes = dict(getattr(pool, "_processes", None) or {})
    for proc in processes.values():
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in processes.values():  # gone, so the locks on their temp files are free
        with contextlib.suppress(Exception):
            proc.join(timeout=2.0)
    pool.shutdown(wait=False, cancel_futures=True)


class WorkerPool:
    """A process pool started on first use and replaced when a worker dies or is killed.

    :meth:`take_lost` says whether workers were killed or died since it was last asked: their
    temp files in the outbox want clearing once nothing holds them.
    """

    def __init__(self, workers: int, start_method: str | None = None) -> None:
        self.workers = workers
        self.start_method = start_method
        self.lost = False
        self._pool: ProcessPoolExecutor | None = None

    def _get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = make_pool(self.workers, self.start_method)
        return self._pool

    def submit(self, plans: Sequence[Plan]) -> Future[list[Outcome]]:
        """Run plans in one trip to a worker; a pool broken by a dead worker is replaced."""
        try:
            return self._get().submit(execute_many, tuple(plans))
        except BrokenProcessPool:
            self.kill()
            return self._get().submit(execute_many, tuple(plans))

    def warm(self, journal: Path | None) -> None:
        """Start every worker now, with the journal open, so the first file waits for
        neither."""
        pool = self._get()
        for fut in [pool.submit(prepare, journal) for _ in range(self.workers)]:
            fut.result()

    def resize(self, workers: int, *, idle: bool) -> None:
        """Take a new worker count: an idle pool is replaced by one of that size at its next
        use; a busy one keeps its workers until it is next replaced."""
        if workers != self.workers and idle:
            self.close()
        self.workers = workers

    def take_lost(self) -> bool:
        """Whether workers were killed or died since the last ask (and forget it)."""
        lost, self.lost = self.lost, False
        return lost

    def kill(self) -> None:
        """Kill the workers now (a stuck job, a broken pool); the next submit starts anew."""
        if self._pool is not None:
            kill_pool(self._pool)
            self._pool = None
            self.lost = True

    def close(self, wait: bool = True) -> None:
        if self._pool is None:
            return
        if wait:
            self._pool.shutdown(wait=True)
            self._pool = None
        else:
            self.kill()
