"""``sp404d retry`` (files back in the queue once something outside them is fixed) and
``sp404d rebuild`` (a card made again, or repaired, from the journal)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from sp404d.commands import common
from sp404d.errors import ConfigError
from sp404d.jobfilter import absolute, standing
from sp404d.pathtext import printable


def register(sub: Any) -> None:
    p = sub.add_parser("retry", help="put failed or refused files back in the queue")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders")
    p.add_argument("--failed", action="store_true", help="the files whose last job failed")
    p.add_argument("--rejected", action="store_true", help="the files last refused")
    common.add_common(p)
    common.add_flag(p, "workers")
    p.set_defaults(handler=cmd_retry)
    p = sub.add_parser("rebuild", help="make a card again from the journal, or repair one")
    p.add_argument("--outbox", type=Path, required=True, help="the new card's IMPORT folder")
    p.add_argument("--dry-run", action="store_true", help="list what would be done")
    common.add_common(p)
    common.add_flag(p, "workers")
    p.set_defaults(handler=cmd_rebuild)


def cmd_retry(args: argparse.Namespace) -> int:
    from sp404d.journal import Journal
    from sp404d.retry import choose, hand_over
    from sp404d.state import read_state

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
    sources = [str(rec["source"]) for rec in present]
    daemon = read_state(config.journal)
    if daemon and isinstance(daemon.get("pid"), int):
        try:
            hand_over(config.journal, sources, daemon["pid"])
        except OSError as exc:
            print(f"sp404d: could not reach the daemon (pid {daemon['pid']}): {exc}; "
                  "running them here", file=sys.stderr)  # fmt: skip
        else:
            print(f"{_files(len(sources))} handed to the running daemon (pid {daemon['pid']}); "
                  "sp404d status shows how they end")  # fmt: skip
            return common.EXIT_OK
    return _retry_here(config, present)


def _retry_here(config: Any, present: list[Any]) -> int:
    from sp404d.journal import Journal
    from sp404d.planner import Request
    from sp404d.runner import Runner

    common.print_settings(config, sys.stderr)
    requests = []
    for rec in present:
        root = Path(str(rec.get("root") or Path(str(rec["source"])).parent))
        requests.append(Request(Path(str(rec["source"])), root, config.for_inbox(root), True))
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
    from sp404d.journal import Journal
    from sp404d.rebuild import entries, run

    config = common.config_from(argparse.Namespace(**{**vars(args), "outbox": None}))
    new = Path(absolute(args.outbox))
    if new.exists() and not new.is_dir():
        raise ConfigError("--outbox", f"{new} is a file, not a folder")
    from sp404d.folders import within

    for inbox in config.inbox_paths:
        if how := within(new, inbox):
            raise ConfigError(
                "--outbox",
                f"{new} is {how} the inbox {inbox}: its files would be converted "
                "again; give a folder outside every inbox",
            )
    with Journal(config.journal, readonly=True) as journal:
        # A re-run's "skipped" stands for the done job behind it (jobfilter.standing).
        done = list(standing(journal.iter_newest()))
    done.reverse()
    todo, targets = [], set()
    for entry in entries(done, config, new):
        if entry.target not in targets:  # the newest claim to a place wins
            targets.add(entry.target)
            todo.append(entry)
    if args.dry_run:
        for entry in todo:
            what = "would write" if entry.plan is not None else f"not rebuilt: {entry.problem}"
            print(printable(f"{what}  {entry.target}  <-  {entry.source}"))
        print(f"{sum(e.plan is not None for e in todo)} of {len(todo)} outputs would be made")
        return common.EXIT_OK
    started = time.monotonic()
    result = run(todo, lambda plans: _execute(plans, config.worker_count, config.job_timeout))
    for entry, verdict in result:
        print(printable(f"{verdict}  {entry.target}  <-  {entry.source}"))
    bad = [v for _, v in result if not (v.startswith(("written", "rewritten", "ok")))]
    made = len(result) - len(bad)
    print(f"{made} of {len(result)} outputs in {new} ({time.monotonic() - started:.1f} s)")
    return common.EXIT_OK if not bad else common.EXIT_JOBS


def _execute(plans: list[Any], workers: int, job_timeout: float) -> dict[Path, Any]:
    from sp404d.pool import WorkerPool
    from sp404d.scheduler import Scheduler

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
