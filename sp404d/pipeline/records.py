"""The journal record of a job: one flat, JSON-friendly dict, built in one place.

``status`` reads it back; so may any tool of the user's (it is TinyDB/JSON). Field names are
part of sp404d's interface: add fields, do not rename them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from sp404d import __version__
from sp404d.metadata import Metadata
from sp404d.pipeline.plan import Outcome, Plan, Status
from sp404d.pipeline.planner import Early


class JobRecord(TypedDict):
    """One journal record, as written. Readers get these fields back from the journal (plain
    dicts, which may hold fields an older or newer version wrote)."""

    source: str
    root: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    key: str | None  # the job key: content, place and output settings (job.job_key)
    inputs: str | None  # metadata and settings, as one digest (planner.input_id)
    status: Status
    reason: str | None  # why it was refused or failed, in a musician's words
    output: str | None
    outbox: str | None  # the outbox it was written below (rebuild puts it at the same place)
    replaced: str | None  # this source's earlier output, superseded and removed
    metadata: dict[str, Any] | None
    input: dict[str, Any] | None  # what the probe found: format, rate, channels, frames
    render: dict[str, Any] | None  # what rendering did: dither, gain, clipped samples
    gain_db: float | None
    warning: str | None  # done, but worth knowing
    elapsed_s: float
    started_at: str
    finished_at: str
    version: str
    # A slice of a chopped loop: which (n of), how it was chopped and where (seconds of the
    # 48 kHz loop). The last slice's record, the one a lookup by source finds, also lists every
    # slice's output (``slices``) and the earlier outputs it removed (``removed``).
    slice: NotRequired[dict[str, Any]]
    slices: NotRequired[list[str]]
    removed: NotRequired[list[str]]
    # The rules the job rendered with, after the inbox, folder file and sidecar had their say
    # (``Rules.as_record``): ``sp404d rebuild`` renders its output again from them.
    rules: NotRequired[dict[str, Any]]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_record(item: Plan | Early, outcome: Outcome, started_at: str) -> JobRecord:
    """Everything the journal keeps about one job."""
    meta: Metadata | None
    size: int | None
    mtime_ns: int | None
    if isinstance(item, Plan):
        source, root, meta = item.source, item.root, item.meta
        size, mtime_ns, inputs = item.size, item.mtime_ns, item.inputs
    else:
        source, root, meta = item.request.source, item.request.root, item.meta
        size, mtime_ns, inputs = item.size, item.mtime_ns, item.inputs
    render = outcome.render
    rec: JobRecord = {
        "source": str(source),
        "root": str(root),
        "size": size,
        "mtime_ns": mtime_ns,
        "sha256": outcome.sha256,
        "key": outcome.key,
        "inputs": inputs,
        "status": outcome.status,
        "reason": outcome.reason,
        "output": str(outcome.output) if outcome.output else None,
        "outbox": str(item.rules.outbox if isinstance(item, Plan) else item.request.config.outbox),
        "replaced": str(outcome.replaced) if outcome.replaced else None,
        "metadata": meta.as_dict() if meta is not None else None,
        "input": outcome.info.as_dict() if outcome.info is not None else None,
        "render": render or None,
        "gain_db": render.get("gain_db") if render else None,
        "warning": render.get("warning") if render else None,  # done, but worth knowing
        "elapsed_s": round(outcome.elapsed_s, 4),
        "started_at": started_at,
        "finished_at": now_iso(),
        "version": __version__,
    }
    if isinstance(item, Plan):
        rec["rules"] = item.rules.as_record()
    return rec


def make_records(plan: Plan, outcome: Outcome, started_at: str) -> list[JobRecord]:
    """The records of a job that ran: one, or one a slice of a chopped loop (in slice order,
    appended together)."""
    if not outcome.slices:
        rec = make_record(plan, outcome, started_at)
        if outcome.removed:
            rec["removed"] = [str(p) for p in outcome.removed]
        return [rec]
    records = []
    for part in outcome.slices:
        render = dict(part.render)
        facts = render.pop("slice", None)
        one = replace(outcome, output=part.output, render=render, replaced=None)
        rec = make_record(plan, one, started_at)
        if facts is not None:
            rec["slice"] = facts
        records.append(rec)
    last = records[-1]
    last["slices"] = [str(s.output) for s in outcome.slices]
    gone = [p for p in (outcome.replaced, *outcome.removed) if p is not None]
    if gone:
        last["removed"] = [str(p) for p in gone]
    return records
