"""``sp404d status``: counts by status, the latest jobs with their reasons, the daemon's state."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sp404d.commands.common import EXIT_OK, add_common, journal_path
from sp404d.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="counts by status and the latest jobs")
    add_common(p)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--limit", type=int, default=20, help="latest jobs to list; 0 = all")
    p.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from sp404d.journal import Journal
    from sp404d.status import write_status_json, write_status_text

    if args.limit < 0:
        raise ConfigError("--limit", "must be 0 (all) or more")
    write = write_status_json if args.json else write_status_text
    with Journal(journal_path(args), readonly=True) as journal:
        write(journal, None if args.limit == 0 else args.limit, sys.stdout)
    return EXIT_OK
