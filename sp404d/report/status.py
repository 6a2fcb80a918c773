"""What ``sp404d status`` shows: counts by status, the latest jobs with reasons, daemon state.

Kept apart from the CLI so the daemon's own health reporting and tests can use the same data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from sp404d.daemon import read_state, state_path
from sp404d.journal import Journal, damaged_path
from sp404d.pathtext import printable
from sp404d.report.attention import hint, last_seen, mark_seen, needs_you
from sp404d.report.jobfilter import JobFilter

__all__ = ["read_state", "state_path", "status_data", "write_status_json", "write_status_text"]

JOB_FIELDS = ("source", "status", "output", "reason", "warning", "finished_at")
ALL = JobFilter()
ATTENTION_SHOWN = 10


def status_data(journal: Journal, limit: int | None) -> dict[str, Any]:
    """Everything ``sp404d status`` shows, with the ``limit`` latest jobs (all when None)."""
    return {**status_head(journal), "jobs": list(latest_jobs(journal, limit))}


def status_head(journal: Journal) -> dict[str, Any]:
    """What status shows besides the jobs: counts, the daemon's state, the journal's health."""
    return {
        "journal": str(journal.path),
        "counts": journal.counts(),
        "total": len(journal),
        "daemon": read_state(journal.path),
        "journal_health": journal_health(journal),
    }


def latest_jobs(
    journal: Journal, limit: int | None, which: JobFilter = ALL
) -> Iterator[dict[str, Any]]:
    """The ``limit`` latest jobs (all when None) that ``which`` selects, newest first, read as
    they are shown."""
    for rec in islice(which.select(journal.iter_newest()), limit):
        job = {k: rec.get(k) for k in JOB_FIELDS}
        if rec.get("slice"):  # a slice of a chopped loop: which, of how many, where
            job["slice"] = rec["slice"]
        yield job


def write_status_json(
    journal: Journal, limit: int | None, out: TextIO, which: JobFilter = ALL
) -> None:
    """``status --json``: one JSON object; its jobs are written as they are read, so memory
    stays flat however many are asked for."""
    head = json.dumps(status_head(journal))
    out.write(head[:-1] + ', "jobs": [')
    jobs = latest_jobs(journal, limit, which)
    sep = ""
    while batch := list(islice(jobs, 1000)):  # one dumps a thousand jobs: a third the time
        out.write(sep + json.dumps(batch)[1:-1])
        sep = ", "
    out.write("]}\n")


def write_status_text(
    journal: Journal, limit: int | None, out: TextIO, which: JobFilter = ALL
) -> None:
    """``status``: what needs the user since their last look (unfiltered only), the summary,
    then the latest jobs ``which`` selects, written as they are read."""
    if not which.active:
        seen = last_seen(journal.path)
        shown = needs_you(journal, seen)
        out.write(printable("\n".join(_attention_lines(shown, seen.at))))
    data = status_head(journal)
    out.write(printable("\n".join(_head_lines(data)) + "\n"))
    title = "matching:" if which.active else "latest:"
    for i, job in enumerate(latest_jobs(journal, limit, which)):
        out.write(printable("\n".join(([title] if i == 0 else []) + _job_lines(job)) + "\n"))
    if not which.active:
        mark_seen(journal, seen, shown)


def _attention_lines(jobs: list[Mapping[str, Any]], at: str | None) -> list[str]:
    if not jobs:
        return []
    since = f"since your last look ({at[:16].replace('T', ' ')} UTC)" if at else "lately"
    lines = [f"needs you: {len(jobs)} file{'s' if len(jobs) != 1 else ''} {since}"]
    for job in jobs[:ATTENTION_SHOWN]:
        lines.append(f"  {job.get('status')}: {job.get('source')}")
        lines.append(f"      {job.get('reason')}")
        lines.append(f"      -> {hint(job.get('status'), job.get('reason'))}")
    if len(jobs) > ATTENTION_SHOWN:
        more = len(jobs) - ATTENTION_SHOWN
        lines.append(f"  ... and {more} more: sp404d status --rejected / --failed")
    return [*lines, "", ""]


def journal_health(journal: Journal) -> dict[str, Any]:
    """What is wrong with the journal, as a reader can see it: damaged lines still in the file
    (the next writer keeps them aside), lines kept aside in ``JOURNAL.damaged`` (damaged, or a
    last line cut off by a crash), and a file system that is full or read-only."""
    aside = damaged_path(journal.path)
    try:
        kept = aside.read_bytes()
    except OSError:
        kept = b""
    torn = kept.count(b'"kind":"torn"')
    file_system = None
    try:
        fs = os.statvfs(journal.path.parent)
        if fs.f_flag & os.ST_RDONLY:
            file_system = "read-only"
        elif fs.f_bavail == 0:
            file_system = "full"
    except OSError:
        pass
    return {
        "skipped_lines": journal.skipped_lines,
        "damaged_kept": kept.count(b"\n") - torn,
        "torn_kept": torn,
        "kept_in": str(aside) if kept else None,
        "file_system": file_system,
    }


def _journal_lines(health: dict[str, Any] | None, daemon: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    problem = (daemon or {}).get("journal_problem")
    if problem:
        lines.append(
            f"journal: cannot be written ({problem.get('reason')}): "
            f"{problem.get('records_owed')} records wait in the daemon, written once it can"
        )
    if not health:
        return lines
    if health.get("file_system"):
        lines.append(f"journal: its file system is {health['file_system']}")
    damaged, torn = health.get("damaged_kept", 0), health.get("torn_kept", 0)
    if damaged or torn:
        what = [f"{damaged} damaged line{'s' * (damaged != 1)}"] if damaged else []
        if torn:
            what.append(f"{torn} last line{'s' * (torn != 1)} cut off by a crash")
        lines.append(f"journal: {' and '.join(what)} kept aside in {health.get('kept_in')}")
    skipped = health.get("skipped_lines", 0)
    if skipped:
        lines.append(
            f"journal: {skipped} damaged line{'s' * (skipped != 1)} skipped in the file "
            "(the next sp404d that writes it keeps them aside)"
        )
    return lines


def render_status(data: dict[str, Any]) -> str:
    lines = _head_lines(data)
    if data["jobs"]:
        lines.append("latest:")
    for job in data["jobs"]:
        lines += _job_lines(job)
    return printable("\n".join(lines) + "\n")  # names that are not UTF-8: see pathtext


def _head_lines(data: dict[str, Any]) -> list[str]:
    counts = data["counts"]
    lines = [f"journal {data['journal']}: {data['total']} jobs"]
    if counts:
        lines.append("  " + "  ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    daemon = data.get("daemon")
    lines += _journal_lines(data.get("journal_health"), daemon)
    if daemon:
        lines.append(
            f"daemon: running (pid {daemon.get('pid')}), queue {daemon.get('queue', 0)}, "
            f"outbox {daemon.get('outbox_state', 'unknown')}"
        )
        if daemon.get("outbox_reason"):
            lines.append(f"  {daemon['outbox_reason']}")
        for inbox in daemon.get("inboxes_missing") or ():
            lines.append(f"  inbox {inbox} does not exist; waiting for it")
        if daemon.get("watch_limit"):
            lines.append(f"  watching: {daemon['watch_limit']}")
    else:
        lines.append("daemon: not running")
    return lines


def _job_lines(job: dict[str, Any]) -> list[str]:
    when = (job.get("finished_at") or "")[:19].replace("T", " ")
    name = Path(job["source"]).name if job.get("source") else "?"
    if isinstance(part := job.get("slice"), dict):  # one slice of a chopped loop
        name += f" [{part.get('n')}/{part.get('of')}]"
    detail = job.get("reason") if job.get("status") in ("rejected", "failed") else job.get("output")
    lines = [f"  {when}  {job['status']:<8}  {name}  {detail or ''}".rstrip()]
    if job.get("warning"):
        lines.append(f"      warning: {job['warning']}")
    return lines
