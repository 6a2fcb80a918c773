"""What ``sp404d status`` shows: counts by status, the latest jobs with reasons, daemon state.

Kept apart from the CLI so the daemon's own health reporting and tests can use the same data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sp404d.journal import Journal
from sp404d.pathtext import printable

JOB_FIELDS = ("source", "status", "output", "reason", "warning", "finished_at")


def state_path(journal: Path) -> Path:
    """The daemon's small live-state file, kept beside its journal."""
    return journal.with_name(journal.name + ".state.json")


def read_state(journal: Path) -> dict[str, Any] | None:
    """The running daemon's state, or None when no daemon runs (or it died)."""
    try:
        state = json.loads(state_path(journal).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    pid = state.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return state


def status_data(journal: Journal, limit: int | None) -> dict[str, Any]:
    jobs = [{k: rec.get(k) for k in JOB_FIELDS} for rec in journal.newest(limit)]
    return {
        "journal": str(journal.path),
        "counts": journal.counts(),
        "total": len(journal),
        "jobs": jobs,
        "daemon": read_state(journal.path),
    }


def render_status(data: dict[str, Any]) -> str:
    counts = data["counts"]
    lines = [f"journal {data['journal']}: {data['total']} jobs"]
    if counts:
        lines.append("  " + "  ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    daemon = data.get("daemon")
    if daemon:
        lines.append(
            f"daemon: running (pid {daemon.get('pid')}), queue {daemon.get('queue', 0)}, "
            f"outbox {daemon.get('outbox_state', 'unknown')}"
        )
        if daemon.get("outbox_reason"):
            lines.append(f"  {daemon['outbox_reason']}")
        if daemon.get("watch_limit"):
            lines.append(f"  watching: {daemon['watch_limit']}")
    else:
        lines.append("daemon: not running")
    if data["jobs"]:
        lines.append("latest:")
    for job in data["jobs"]:
        when = (job.get("finished_at") or "")[:19].replace("T", " ")
        name = Path(job["source"]).name if job.get("source") else "?"
        detail = (
            job.get("reason") if job.get("status") in ("rejected", "failed") else job.get("output")
        )
        lines.append(f"  {when}  {job['status']:<8}  {name}  {detail or ''}".rstrip())
        if job.get("warning"):
            lines.append(f"      warning: {job['warning']}")
    return printable("\n".join(lines) + "\n")  # names that are not UTF-8: see pathtext
