"""``status --source PATH``: the whole history of one file, every job with its metadata and
where each value came from (sidecar, folder file, path, config defaults), what the file was,
and what was done to it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from sp404d.card import of_source
from sp404d.journal import Journal
from sp404d.pathtext import printable
from sp404d.report.described import described


def source_jobs(journal: Journal, source: str) -> list[Mapping[str, Any]]:
    """Every record of ``source``, oldest first (one pass over the journal, newest first)."""
    jobs: list[Mapping[str, Any]] = [
        rec for rec in journal.iter_newest() if rec.get("source") == source
    ]
    jobs.reverse()
    return jobs


def write_history(journal: Journal, source: str, out: TextIO, *, as_json: bool) -> int:
    """Write the history, then where its samples are now (the card model's word); return how
    many jobs it holds."""
    jobs = source_jobs(journal, source)
    outboxes = [str(j["outbox"]) for j in jobs if isinstance(j.get("outbox"), str)]
    now = of_source(journal, source, outboxes)
    if as_json:
        samples = [{"path": str(o.path), "present": o.present} for o in now]
        data = {"source": source, "jobs": [dict(j) for j in jobs], "samples": samples}
        out.write(json.dumps(data) + "\n")
        return len(jobs)
    if not jobs:
        out.write(printable(f"no jobs for {source} in {journal.path}\n"))
        return 0
    runs = _chops_together(jobs)
    lines = [f"{source}: {len(runs)} job{'s' if len(runs) != 1 else ''}"]
    for run in runs:
        lines += _job_lines(run[-1], run[:-1])
    if now:
        lines += ["", "its samples now:"]
        lines += [f"  {o.path}" + ("" if o.present else "  (not on the card)") for o in now]
    out.write(printable("\n".join(lines) + "\n"))
    return len(runs)


def _chops_together(jobs: list[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Jobs as they ran: a chopped loop's slice records (1..N, appended together) as one."""
    runs: list[list[Mapping[str, Any]]] = []
    for job in jobs:
        part = job.get("slice")
        n = part.get("n") if isinstance(part, Mapping) else None
        if isinstance(n, int) and n > 1 and runs and _next_slice(runs[-1][-1], n):
            runs[-1].append(job)
        else:
            runs.append([job])
    return runs


def _next_slice(previous: Mapping[str, Any], n: int) -> bool:
    part = previous.get("slice")
    return isinstance(part, Mapping) and part.get("n") == n - 1


def _job_lines(job: Mapping[str, Any], before: list[Mapping[str, Any]]) -> list[str]:
    """One job's lines; ``before``: the slices a chopped loop's last slice record follows."""
    when = str(job.get("finished_at") or "")[:19].replace("T", " ")
    status = job.get("status")
    if status in ("rejected", "failed"):
        what = f"{status}: {job.get('reason')}"
    elif isinstance(job.get("slice"), Mapping):
        part = job["slice"]
        what = f"{status}: chopped into {part.get('of')} slices (chop: {part.get('chop')})"
    elif job.get("output"):
        what = f"{status} -> {job['output']}" + (
            f"  ({job['reason']})" if job.get("reason") else ""
        )
    else:
        what = str(status)
    lines = ["", f"  {when}  {what}"]
    info = job.get("input") or {}
    if info:
        lines.append(
            f"    input: {info.get('format')} {info.get('subtype')}, {info.get('rate')} Hz, "
            f"{info.get('channels')} ch, {float(info.get('duration_s') or 0):.2f} s"
        )
    for part in [*before, job] if isinstance(job.get("slice"), Mapping) else []:
        cut = part.get("slice") or {}
        lines.append(
            f"    {cut.get('n')}: {float(cut.get('start_s') or 0):.3f}-"
            f"{float(cut.get('end_s') or 0):.3f} s -> {part.get('output')}"
        )
    render = job.get("render") or {}
    if render.get("gain_db"):
        lines.append(f"    turned down {render['gain_db']} dB so that nothing clips")
    if job.get("warning"):
        lines.append(f"    warning: {job['warning']}")
    lines += described(job.get("metadata") or {}, render.get("heard"), source_word="from ")
    if job.get("replaced"):
        lines.append(f"    replaced its earlier output {Path(str(job['replaced'])).name}")
    for gone in job.get("removed") or []:
        lines.append(f"    removed its earlier output {Path(str(gone)).name}")
    return lines
