"""One job's way, from a request to a record: planned in the parent
(:mod:`~sp404d.pipeline.planner`), run in a worker (:mod:`~sp404d.pipeline.job`), written
into the outbox (:mod:`~sp404d.pipeline.outbox`), recorded
(:mod:`~sp404d.pipeline.recorder`); :class:`Runner` wires them, as ``convert`` and the
daemon use them."""

from __future__ import annotations

from sp404d.pipeline.job import check_duration
from sp404d.pipeline.outbox import CARD_MARKER, OutboxAwayError, check_outbox, clean_stale_temps
from sp404d.pipeline.plan import Outcome, Piece, Plan
from sp404d.pipeline.planner import Planner
from sp404d.pipeline.pool import WorkerPool
from sp404d.pipeline.recorder import Recorder, Tally
from sp404d.pipeline.records import JobRecord, now_iso
from sp404d.pipeline.request import Deferred, Early, Request
from sp404d.pipeline.runner import Runner
from sp404d.pipeline.scheduler import Scheduler

__all__ = [
    "CARD_MARKER",
    "Deferred",
    "Early",
    "JobRecord",
    "OutboxAwayError",
    "Outcome",
    "Piece",
    "Plan",
    "Planner",
    "Recorder",
    "Request",
    "Runner",
    "Scheduler",
    "Tally",
    "WorkerPool",
    "check_duration",
    "check_outbox",
    "clean_stale_temps",
    "now_iso",
]
