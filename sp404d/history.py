"""``status --source PATH``: the whole history of one file, every job with its metadata and
where each value came from (sidecar, folder file, path, config defaults), what the file was,
and what was done to it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from sp404d.journal import Journal
from sp404d.pathtext import printable


def source_jobs(journal: Journal, source: str) -> list[Mapping[str, Any]]:
    """Every record of ``source``, oldest first (one pass over the journal, newest first)."""
    jobs: list[Mapping[str, Any]] = [
        rec for rec in journal.iter_newest() if rec.get("source") == source
    ]
    jobs.reverse()
    return jobs


def write_history(journal: Journal, source: str, out: TextIO, *, as_json: bool) -> int:
    """Write the history; return how many jobs it holds."""
    jobs = source_jobs(journal, source)
    if as_json:
        out.write(json.dumps({"source": source, "jobs": [dict(j) for j in jobs]}) + "\n")
        return len(jobs)
    if not jobs:
        out.write(printable(f"no jobs for {source} in {journal.path}\n"))
        return 0
    lines = [f"{source}: {len(jobs)} job{'s' if len(jobs) != 1 else ''}"]
    for job in jobs:
        lines += _job_lines(job)
    out.write(printable("\n".join(lines) + "\n"))
    return len(jobs)


def _job_lines(job: Mapping[str, Any]) -> list[str]:
    when = str(job.get("finished_at") or "")[:19].replace("T", " ")
    status = job.get("status")
    if status in ("rejected", "failed"):
        what = f"{status}: {job.get('reason')}"
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
    render = job.get("render") or {}
    if render.get("gain_db"):
        lines.append(f"    turned down {render['gain_db']} dB so that nothing clips")
    if job.get("warning"):
        lines.append(f"    warning: {job['warning']}")
    meta = job.get("metadata") or {}
    origins = meta.get("origins") or {}
    for name, value in meta.items():
        if name != "origins" and value not in (None, [], ()):
            lines.append(f"    {name}: {value}  [from {origins.get(name, '?')}]")
    if job.get("replaced"):
        lines.append(f"    replaced its earlier output {Path(str(job['replaced'])).name}")
    return lines
