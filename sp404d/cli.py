"""The ``sp404d`` command: parsing and rendering only. The one place that exits.

Exit codes: 0 every input ended done or skipped; 1 some input was rejected or failed; 2 usage or
configuration error (the message names the setting and what is allowed).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from sp404d import __version__
from sp404d.config import SETTINGS, Config, load_config
from sp404d.errors import ConfigError, Sp404dError

EXIT_OK, EXIT_JOBS, EXIT_USAGE = 0, 1, 2


def _flag(p: argparse.ArgumentParser, name: str) -> None:
    """``--NAME``, an override of the setting of that name, shaped and described by it."""
    s = next(s for s in SETTINGS if s.name == name and s.flag)
    metavar = name.upper() if s.kind is not str else None
    if s.choices:
        p.add_argument(f"--{name}", choices=s.choices, help=s.doc)
    else:
        p.add_argument(f"--{name}", type=s.kind, metavar=metavar, help=s.doc)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help="config file (YAML); default ~/.config/sp404d/config.yaml if it exists",
    )
    _flag(p, "journal")


def _conversion(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files and folders")
    for s in SETTINGS:
        if s.flag and s.name not in ("journal", "workers"):
            _flag(p, s.name)
    _common(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sp404d", description="Any audio file in, a Roland SP-404MK2-ready file out."
    )
    parser.add_argument("--version", action="version", version=f"sp404d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="watch the inboxes and convert what arrives (foreground)")
    p.add_argument("--config", type=Path, help="config file (YAML)")

    p = sub.add_parser("convert", help="convert files and folders once")
    _conversion(p)
    _flag(p, "workers")
    p.add_argument("-v", "--verbose", action="store_true", help="log every job, not only problems")

    p = sub.add_parser("check", help="dry run: show what convert would do; writes nothing")
    _conversion(p)

    p = sub.add_parser("status", help="counts by status and the latest jobs")
    _common(p)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--limit", type=int, default=20, help="latest jobs to list; 0 = all")

    p = sub.add_parser("install-service", help="write a systemd user unit / launchd agent")
    p.add_argument("--config", type=Path, help="config file the service should use")

    sub.add_parser("example-config", help="print the documented example config")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, as the config file would give them."""
    return {
        s.name: (str(v) if isinstance(v, Path) else v)
        for s in SETTINGS
        if s.flag and (v := getattr(args, s.name, None)) is not None
    }


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, _overrides(args))


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        # Never a UnicodeEncodeError on a name that is not UTF-8, under any locale.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "convert":
            return cmd_convert(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "status":
            return cmd_status(args)
        if args.command == "run":
            from sp404d.daemon import run

            return run(args.config)
        if args.command == "install-service":
            return cmd_install_service(args)
        if args.command == "example-config":
            from sp404d.config import example_yaml

            sys.stdout.write(example_yaml())
            return EXIT_OK
    except ConfigError as exc:
        print(f"sp404d: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Sp404dError as exc:
        print(f"sp404d: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sp404d: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")


# --- convert / check ---------------------------------------------------------------------


def _requests(
    config: Config, paths: Sequence[Path], passed: list[tuple[Path, str]] | None = None
) -> list[Any]:
    """A request per file to convert; ``passed`` collects what the folders held but is not
    taken (see :func:`sp404d.discover.walk`). Refuses inputs that overlap the outbox."""
    import stat

    from sp404d.discover import walk
    from sp404d.folders import within
    from sp404d.metadata import is_metadata_file
    from sp404d.planner import Request

    own = set(config.not_inputs())
    requests = []
    for raw in paths:
        path = raw.expanduser()
        try:
            mode: int | None = path.stat().st_mode
        except (OSError, ValueError):
            mode = None
        if mode is not None and stat.S_ISDIR(mode) and (how := within(config.outbox, path)):
            raise Sp404dError(
                f"the outbox {config.outbox} is {how} the input {raw}: a second run would "
                "take its outputs as inputs; give an outbox outside the inputs"
            )
        if mode is not None and within(path, config.outbox):
            raise Sp404dError(
                f"the input {raw} is inside the outbox {config.outbox}: sp404d would convert "
                "its own outputs; give files from outside the outbox"
            )
        if mode is not None and stat.S_ISDIR(mode):
            root = path.resolve()
            requests += [
                Request(p, root, config)
                for p in walk(root, exclude=tuple(own), extra_ignore=config.ignore, passed=passed)
            ]
        elif mode is not None and stat.S_ISREG(mode):
            resolved = path.resolve()
            if not is_metadata_file(path) and resolved not in own:
                requests.append(Request(resolved, resolved.parent, config))
        elif mode is not None:
            raise Sp404dError(f"not a regular file: {raw}")
        elif path.is_symlink():
            raise Sp404dError(f"broken link: {raw} (points to {os.readlink(path)})")
        else:
            raise Sp404dError(f"no such file or folder: {raw}")
    return requests


_PLURAL = {
    "hidden name": "hidden names",
    "not a regular file": "not regular files",
    "broken link": "broken links",
    "linked folder, not followed": "linked folders, not followed",
}


def _passed_over(passed: Sequence[tuple[Path, str]]) -> str:
    """``2 passed over: 1 hidden name, 1 not a regular file``."""
    counts: dict[str, int] = {}
    for _, reason in passed:
        counts[reason] = counts.get(reason, 0) + 1
    order = [r for r in _PLURAL if r in counts] + sorted(set(counts) - set(_PLURAL))
    parts = ", ".join(f"{counts[r]} {r if counts[r] == 1 else _PLURAL.get(r, r)}" for r in order)
    return f"{len(passed)} passed over: {parts}"


def _print_settings(config: Config, out: TextIO) -> None:
    origin = str(config.source) if config.source else "defaults (no config file)"
    print(
        f"sp404d {__version__}: config {origin}\n"
        f"  outbox  {config.outbox}  (layout {config.layout}, {config.format})\n"
        f"  journal {config.journal}",
        file=out,
    )


class Progress:
    """One updating line on a terminal; silent otherwise."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.on = out.isatty() and total > 1
        self.seen = 0
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, rec: Mapping[str, Any]) -> None:
        self.seen += 1
        if not self.on:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and self.seen < self.total:
            return
        self.last = now
        rate = self.seen / max(1e-6, now - self.start)
        name = Path(rec["source"]).name[:40]
        self.out.write(f"\r\x1b[K[{self.seen}/{self.total}] {rate:.0f} files/s  {name}")
        self.out.flush()

    def done(self) -> None:
        if self.on:
            self.out.write("\r\x1b[K")
            self.out.flush()


def _leave_to_daemons(config: Config, paths: Sequence[Path], requests: list[Any]) -> list[Any]:
    """Drop the files of inboxes a running daemon watches: it converts them (or has)."""
    from sp404d.instance import watched_by_daemons

    folders = [*config.inbox_paths, *(p.expanduser().resolve() for p in paths)]
    daemons = watched_by_daemons(folders)
    if not daemons:
        return requests
    mine = [r for r in requests if not any(r.source.is_relative_to(i) for i in daemons)]
    if len(mine) < len(requests):
        watching = ", ".join(f"{inbox} (pid {pid})" for inbox, pid in daemons.items())
        print(
            f"{len(requests) - len(mine)} files left to the running daemon, which watches "
            f"{watching}: see sp404d status",
            file=sys.stderr,
        )
    return mine


def cmd_convert(args: argparse.Namespace) -> int:
    from sp404d import logs
    from sp404d.journal import Journal
    from sp404d.outbox import check_outbox, clean_stale_temps
    from sp404d.runner import Runner

    config = _config(args)
    logs.configure(config.log_format, "info" if args.verbose else "warning")
    _print_settings(config, sys.stderr)
    passed: list[tuple[Path, str]] = []
    requests = _requests(config, args.paths, passed)
    requests = _leave_to_daemons(config, args.paths, requests)
    check_outbox(config.outbox, removable=config.outbox_removable)
    clean_stale_temps(config.outbox, wait_young=True)
    progress = Progress(len(requests), sys.stderr)
    started = time.monotonic()
    with Journal(config.journal) as journal:
        runner = Runner(
            journal, config.worker_count, job_timeout=config.job_timeout, on_record=progress
        )
        try:
            if requests:
                runner.warm()  # fork the workers before the journal's sync thread exists
            tally = runner.run_batch(requests)
            lost = runner.recorder.finish_owed()  # the journal's last chance to take what it owes
        except BaseException:
            runner.close(wait=False)  # Ctrl-C: stop now; finished jobs are already journaled
            raise
        finally:
            runner.close()
            progress.done()
    if runner.pool.lost:  # killed workers leave their temp files behind, unlocked
        clean_stale_temps(config.outbox, wait_young=True)
    elapsed = time.monotonic() - started
    parts = ", ".join(f"{n} {s}" for s, n in sorted(tally.counts.items())) or "nothing to do"
    print(f"{tally.total} files in {elapsed:.1f} s: {parts}")
    if passed:
        print(_passed_over(passed) + ("" if args.verbose else " (-v lists them)"))
        if args.verbose:
            for path, reason in sorted(passed, key=lambda item: str(item[0]).casefold()):
                print(f"  {path}: {reason}")
    if not tally.ok:
        print(f"see why: sp404d status --journal '{config.journal}'")
    if lost:
        print(
            f"sp404d: the journal {config.journal} could not be written: {lost} records lost "
            "(the log lists their outputs, all complete; run convert again once it can be)",
            file=sys.stderr,
        )
        return EXIT_JOBS
    return EXIT_OK if tally.ok else EXIT_JOBS


def cmd_check(args: argparse.Namespace) -> int:
    from sp404d.audio.probe import probe
    from sp404d.errors import JobError
    from sp404d.job import Plan, check_duration
    from sp404d.journal import Journal
    from sp404d.metadata import Metadata
    from sp404d.pathtext import printable
    from sp404d.planner import Planner

    config = _config(args)
    _print_settings(config, sys.stderr)
    passed: list[tuple[Path, str]] = []
    requests = _requests(config, args.paths, passed)
    bad = 0
    meta: Metadata | None
    with Journal(config.journal, readonly=True) as journal:
        for item in Planner(journal).plan_many(requests):
            if isinstance(item, Plan):
                source, meta = item.source, item.meta
                try:
                    info = probe(item.source)
                    check_duration(info, item.rules)
                    line = (
                        f"-> {item.final}  ({info.format} {info.subtype}, {info.rate} Hz, "
                        f"{info.channels} ch, {info.duration:.2f} s)"
                    )
                except JobError as exc:
                    line, bad = f"refused: {exc.reason}", bad + 1
            else:
                source, meta = item.request.source, item.meta
                outcome = item.outcome
                if outcome.status == "skipped":
                    line = f"unchanged: already at {outcome.output}"
                else:
                    line, bad = f"refused: {outcome.reason}", bad + 1
            print(printable(f"{source}\n  {line}"))
            if meta is not None:
                for name, value in meta.as_dict().items():
                    if name != "origins" and value not in (None, [], ()):
                        origin = meta.origins.get(name, "?")
                        print(printable(f"    {name}: {value}  [{origin}]"))
    for path, reason in sorted(passed, key=lambda item: str(item[0]).casefold()):
        print(printable(f"{path}\n  passed over: {reason}"))
    if passed:
        print(_passed_over(passed))
    return EXIT_OK if not bad else EXIT_JOBS


# --- status ------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from sp404d.journal import Journal
    from sp404d.status import write_status_json, write_status_text

    if args.limit < 0:
        raise ConfigError("--limit", "must be 0 (all) or more")
    journal_path = args.journal or load_config(args.config).journal
    write = write_status_json if args.json else write_status_text
    with Journal(Path(journal_path), readonly=True) as journal:
        write(journal, None if args.limit == 0 else args.limit, sys.stdout)
    return EXIT_OK


def cmd_install_service(args: argparse.Namespace) -> int:
    from sp404d.service import install_service

    config = args.config.resolve() if args.config else None
    if config is not None and not config.is_file():
        raise ConfigError("--config", f"no such file: {config}")
    path, instructions = install_service(config=config)
    print(f"wrote {path}\n{instructions}")
    return EXIT_OK
