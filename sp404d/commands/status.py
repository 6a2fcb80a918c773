"""``sp404d status``: counts by status, the latest jobs with their reasons, the daemon's state."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sp404d.commands.common import EXIT_OK, add_common, journal_path
from sp404d.errors import ConfigError
from sp404d.report import JobFilter, absolute, parse_since


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="counts by status and the latest jobs")
    add_common(p)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--limit", type=int, default=20, help="latest jobs to list; 0 = all")
    p.add_argument("--failed", action="store_true", help="only jobs that failed")
    p.add_argument("--rejected", action="store_true", help="only jobs that were refused")
    p.add_argument("--since", metavar="WHEN", help="only jobs since: 2h, 30m, 3d, 2026-12-01")
    p.add_argument("--inbox", type=Path, help="only files from this folder")
    p.add_argument(
        "--source", type=Path, metavar="PATH", help="the whole history of one file, in full"
    )
    p.set_defaults(handler=cmd_status)


def job_filter(args: argparse.Namespace) -> JobFilter:
    """The filter the status, retry flags describe; ConfigError naming the flag if wrong."""
    statuses = {s for s in ("failed", "rejected") if getattr(args, s, False)}
    since = None
    if getattr(args, "since", None):
        try:
            since = parse_since(args.since)
        except ValueError as exc:
            raise ConfigError("--since", str(exc)) from None
    inbox = getattr(args, "inbox", None)
    return JobFilter(frozenset(statuses), since, None, absolute(inbox) if inbox else None)


def cmd_status(args: argparse.Namespace) -> int:
    from sp404d.journal import Journal
    from sp404d.report import write_status_json, write_status_text

    if args.limit < 0:
        raise ConfigError("--limit", "must be 0 (all) or more")
    which = job_filter(args)
    with Journal(journal_path(args), readonly=True) as journal:
        if args.source is not None:
            from sp404d.report import write_history

            write_history(journal, absolute(args.source), sys.stdout, as_json=args.json)
            return EXIT_OK
        write = write_status_json if args.json else write_status_text
        write(journal, None if args.limit == 0 else args.limit, sys.stdout, which)
    return EXIT_OK
