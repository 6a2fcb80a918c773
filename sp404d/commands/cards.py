"""``sp404d retry`` (files back in the queue once something outside them is fixed) and
``sp404d rebuild`` (a card made again, or repaired, from the journal)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from sp404d.commands import common
from sp404d.config import within
from sp404d.errors import ConfigError
from sp404d.pathtext import printable
from sp404d.report import absolute


def register(sub: Any) -> None:
    p = sub.add_parser("retry", help="put failed or refused files back in the queue")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders")
    p.add_argument("--failed", action="store_true", help="the files whose last job failed")
    p.add_argument("--rejected", action="store_true", help="the files last refused")
    common.add_common(p)
    common.add_flag(p, "workers")
    p.set_defaults(handler=cmd_retry)
    p = sub.add_parser(
        "rebuild", help="make the card's samples again from the journal: repair it, or a copy"
    )
    p.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="make them in this folder (a new card's IMPORT) instead of repairing the card",
    )
    p.add_argument("--kit", metavar="KIT", help="only this kit's samples")
    p.add_argument("--inbox", type=Path, metavar="DIR", help="only samples of files below DIR")
    p.add_argument("--dry-run", action="store_true", help="compare with the card; write nothing")
    common.add_common(p)
    common.add_flag(p, "outbox")
    common.add_removable(p)
    common.add_flag(p, "workers")
    p.set_defaults(handler=cmd_rebuild)


def cmd_retry(args: argparse.Namespace) -> int:
    from sp404d.daemon import hand_over, read_state
    from sp404d.journal import Journal
    from sp404d.report import choose

    config = common.config_from(args)
    statuses = {s for s in ("failed", "rejected") if getattr(args, s)}
    if not statuses and not args.paths:
        statuses = {"failed", "rejected"}
    paths = [absolute(p) for p in args.paths]
    with Journal(config.journal, readonly=True) as journal:
        chosen = choose(journal, frozenset(statuses), paths)
    present = [rec for rec in chosen if Path(str(rec["source"])).is_file()]
    for rec in chosen:
        if rec not in present:
            print(printable(f"gone, not retried: {rec['source']}"))
    if not present:
        print("nothing to retry" + (" (the files are gone)" if chosen else ""))
        return common.EXIT_OK if not chosen else common.EXIT_JOBS
    daemon = read_state(config.journal)
    pid = daemon.get("pid") if daemon else None
    theirs, here = _split(present, daemon, config) if isinstance(pid, int) else ([], present)
    if theirs and isinstance(pid, int):
        try:
            hand_over(config.journal, [str(rec["source"]) for rec in theirs], pid)
        except OSError as exc:
            print(f"sp404d: could not reach the daemon (pid {pid}): {exc}; "
                  "running them here", file=sys.stderr)  # fmt: skip
            here = present
        else:
            print(f"{_files(len(theirs))} handed to the running daemon (pid {pid}); "
                  "sp404d status shows how they end")  # fmt: skip
    if not here:
        return common.EXIT_OK
    return _retry_here(config, here)


def _split(present: list[Any], daemon: Any, config: Any) -> tuple[list[Any], list[Any]]:
    """The files the running daemon takes (below one of its inboxes, their job made for its
    outbox) and those run here (converted by ``convert`` elsewhere, or for another outbox)."""
    inboxes = [str(p).rstrip("/") + "/" for p in daemon.get("inboxes") or ()]
    outbox = str(daemon.get("outbox") or config.outbox)
    theirs, here = [], []
    for rec in present:
        source = str(rec["source"])
        mine = any(source.startswith(i) for i in inboxes)
        if mine and rec.get("outbox") in (None, outbox):
            theirs.append(rec)
        else:
            here.append(rec)
    return theirs, here


def _retry_here(config: Any, present: list[Any]) -> int:
    from dataclasses import replace

    from sp404d.journal import Journal
    from sp404d.pipeline import Request, Runner

    common.print_settings(config, sys.stderr)
    requests = []
    for rec in present:
        root = Path(str(rec.get("root") or Path(str(rec["source"])).parent))
        settings = config.for_inbox(root)
        if rec.get("outbox") and Path(str(rec["outbox"])) != settings.outbox:
            job_box = Path(str(rec["outbox"]))  # the outbox its job was made for
            card = config.outbox_removable and within(job_box, config.outbox) is not None
            settings = replace(settings, outbox=job_box, outbox_removable=card)
        requests.append(Request(Path(str(rec["source"])), root, settings, True))
    with Journal(config.journal) as journal:
        runner = Runner(journal, config.worker_count, job_timeout=config.job_timeout)
        try:
            tally = runner.run_batch(requests)
            runner.recorder.finish_owed()
        finally:
            runner.close()
    parts = ", ".join(f"{n} {s}" for s, n in sorted(tally.counts.items()))
    print(f"{_files(tally.total)} retried: {parts}")
    return common.EXIT_OK if tally.ok else common.EXIT_JOBS


def cmd_rebuild(args: argparse.Namespace) -> int:
    from sp404d.card import standing
    from sp404d.journal import Journal
    from sp404d.naming import fold
    from sp404d.pipeline import OutboxAwayError, check_outbox
    from sp404d.report.rebuild import compared, entries, run

    config = common.config_from(args)
    card = config.outbox
    target = Path(absolute(args.to)) if args.to else card
    removable = config.outbox_removable and (target == card or within(target, card) is not None)
    _check_target(config, target, removable)
    try:
        check_outbox(target, removable=removable)
    except OutboxAwayError as exc:
        raise ConfigError("--to" if args.to else "outbox", exc.reason) from None
    inbox = absolute(args.inbox) if args.inbox else None
    others: set[str] = set()
    with Journal(config.journal, readonly=True) as journal:
        outputs = standing(journal.iter_newest(), card, others)
    if not outputs:
        where = f"; it has samples in {', '.join(sorted(others))} (--outbox DIR)" if others else ""
        print(f"the journal has no samples in {card}{where}")
        return common.EXIT_OK
    if args.kit:
        outputs = [o for o in outputs if o.slot and fold(o.slot[0]) == fold(args.kit)]
    if inbox:
        outputs = [o for o in outputs if (o.source or "").startswith(inbox.rstrip("/") + "/")]
    if not outputs:
        limits = " and ".join(
            x for x in (f"kit {args.kit!r}" if args.kit else "", f"below {inbox}" if inbox else "")
            if x
        )  # fmt: skip
        print(f"no samples of {limits} in {card}")
        return common.EXIT_OK
    in_place = os.path.realpath(target) == os.path.realpath(card)  # a link to it is the card
    todo = entries(outputs, config, target, removable=removable, in_place=in_place)
    if args.dry_run:
        made = 0
        for entry in todo:
            said = compared(entry, target, None if in_place else card)
            print(printable(f"{said}  {entry.target}  <-  {entry.source}"))
            made += not said.startswith("not rebuilt")
        print(f"{made} of {len(todo)} outputs would be made or checked in {target}")
        return common.EXIT_OK
    started = time.monotonic()
    copy_of = None if in_place else (card, target, removable)
    result = run(
        todo, lambda plans: _execute(plans, config.worker_count, config.job_timeout), copy_of
    )
    for entry, verdict in result:
        print(printable(f"{verdict}  {entry.target}  <-  {entry.source}"))
    bad = [v for _, v in result if not v.startswith(("written", "rewritten", "ok", "copied"))]
    made = len(result) - len(bad)
    print(f"{made} of {len(result)} outputs in {target} ({time.monotonic() - started:.1f} s)")
    return common.EXIT_OK if not bad else common.EXIT_JOBS


def _check_target(config: Any, target: Path, removable: bool) -> None:
    """One line, exit 2, for a place rebuild must not write: a file, an inbox, nowhere."""
    if target.exists() and not target.is_dir():
        raise ConfigError("--to", f"{target} is a file, not a folder")
    for inbox in config.inbox_paths:
        if how := within(target, inbox):
            raise ConfigError(
                "--to",
                f"{target} is {how} the inbox {inbox}: its files would be converted "
                "again; give a folder outside every inbox",
            )
    if not removable and not target.exists() and not target.parent.is_dir():
        raise ConfigError("--to", f"{target.parent} does not exist (a typo? a card not mounted?)")


def _execute(plans: list[Any], workers: int, job_timeout: float) -> dict[Path, Any]:
    from sp404d.pipeline import Scheduler, WorkerPool

    outcomes: dict[Path, Any] = {}
    pool = WorkerPool(workers)
    scheduler = Scheduler(pool, job_timeout)
    scheduler.add(plans)
    try:
        scheduler.run_all(lambda plan, outcome, _: outcomes.__setitem__(plan.source, outcome))
    finally:
        pool.close()
    return outcomes


def _files(n: int) -> str:
    return f"{n} file{'s' if n != 1 else ''}"
