"""``sp404d convert`` (the pipeline once, over files and folders) and ``sp404d check`` (what
it would do, writing nothing)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from sp404d.commands.common import (
    EXIT_JOBS,
    EXIT_OK,
    add_conversion,
    add_flag,
    config_from,
    print_settings,
)
from sp404d.config import Config
from sp404d.daemon import reason_kind
from sp404d.errors import Sp404dError
from sp404d.pathtext import printable
from sp404d.report.described import described, heard_now
from sp404d.values import checks


def register(sub: Any) -> None:
    p = sub.add_parser("convert", help="convert files and folders once")
    add_conversion(p)
    add_flag(p, "workers")
    p.add_argument("-v", "--verbose", action="store_true", help="log every job, not only problems")
    p.set_defaults(handler=cmd_convert)
    p = sub.add_parser("check", help="dry run: show what convert would do; writes nothing")
    add_conversion(p)
    p.set_defaults(handler=cmd_check)


def _requests(
    config: Config, paths: Sequence[Path], passed: list[tuple[Path, str]] | None = None
) -> list[Any]:
    """A request per file to convert; ``passed`` collects what the folders held but is not
    taken (see :func:`sp404d.watch.discover.walk`). Refuses inputs that overlap the outbox."""
    import stat

    from sp404d.config import within
    from sp404d.metadata import is_metadata_file
    from sp404d.pipeline import Request
    from sp404d.watch import walk

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
        inbox = _inbox_of(config, path) if mode is not None else None
        settings = config if inbox is None else config.for_inbox(inbox[0])
        if mode is not None and stat.S_ISDIR(mode):
            top = path.resolve()
            root = top if inbox is None else inbox[0]
            ignore = settings.ignore
            requests += [
                Request(_as_daemon(p, inbox), root, settings, name_root=inbox is None)
                for p in walk(top, exclude=tuple(own), extra_ignore=ignore, passed=passed)
            ]
        elif mode is not None and stat.S_ISREG(mode):
            resolved = path.resolve()
            if not is_metadata_file(path) and resolved not in own:
                root = resolved.parent if inbox is None else inbox[0]
                requests.append(Request(_as_daemon(resolved, inbox), root, settings))
        elif mode is not None:
            raise Sp404dError(f"not a regular file: {raw}")
        elif path.is_symlink():
            raise Sp404dError(f"broken link: {raw} (points to {os.readlink(path)})")
        else:
            raise Sp404dError(f"no such file or folder: {raw}")
    return requests


def _inbox_of(config: Config, path: Path) -> tuple[Path, Path] | None:
    """The configured inbox ``path`` is in (as configured, and resolved), if any: its files
    are planned as the daemon plans them, with the inbox's settings and from its top."""
    real = path.resolve()
    for inbox in config.inbox_paths:
        top = inbox.resolve()
        if real.is_relative_to(top):
            return inbox, top
    return None


def _as_daemon(path: Path, inbox: tuple[Path, Path] | None) -> Path:
    """A resolved path as the daemon spells it: below the inbox as configured (an inbox
    reached through a symlink), so both record one file under one name."""
    return path if inbox is None else inbox[0] / path.relative_to(inbox[1])


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


def progress_line(
    seen: int, total: int, elapsed: float, name: str, *, worked: int | None = None
) -> str:
    """``[120/3000] 85 files/s, ETA 0:34  name``: the rate and ETA from the files ``worked``
    on so far (all ``seen`` when not given; a resumed run's skips cost nothing and would make
    the ETA a fiction) over ``elapsed`` seconds of that work."""
    done = seen if worked is None else worked
    rate = done / max(elapsed, 1e-6)
    left = max(0, total - seen) / rate if rate > 0 else 0.0
    minutes, seconds = divmod(round(left), 60)
    hours, minutes = divmod(minutes, 60)
    eta = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"[{seen}/{total}] {rate:.0f} files/s, ETA {eta}  {name[:40]}"


def refusal_summary(refused: Sequence[tuple[str, str]], examples: int = 3) -> list[str]:
    """Lines grouping refused files (name, reason) by the kind of reason, most common first,
    with a few examples of each: a backfill's trouble at a glance."""
    if not refused:
        return []
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, reason in refused:
        groups.setdefault(reason_kind(reason), []).append((name, reason))
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    lines = ["refused: " + ", ".join(f"{len(jobs)} {kind}" for kind, jobs in ordered)]
    for _, jobs in ordered:
        lines += [f"  {name}: {reason}" for name, reason in jobs[:examples]]
        if len(jobs) > examples:
            lines.append(f"  ... and {len(jobs) - examples} more")
    return lines


class Progress:
    """One updating line on a terminal (silent otherwise), and the refusals for the summary.

    The line is cut to the terminal's width (a wrapped line leaves a new line at every
    update), and whatever else is written to the terminal (a warning in the log) goes through
    :attr:`stream`, which clears the line first; the next update draws it again.
    """

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.on = out.isatty() and total > 1
        self.seen = 0
        self.worked = 0  # not skipped: what the rate and ETA are made of
        self.start = time.monotonic()
        self.work_start: float | None = None
        self.last = 0.0
        self.drawn = False
        self.refused: list[tuple[str, str]] = []
        self.stream: TextIO = _Clearing(self) if self.on else out  # type: ignore[assignment]

    def __call__(self, rec: Mapping[str, Any]) -> None:
        now = time.monotonic()
        self.seen += 1
        if rec.get("status") != "skipped":
            if self.work_start is None:
                self.work_start = now - float(rec.get("elapsed_s") or 0.0)
            self.worked += 1
        if rec.get("status") in ("rejected", "failed"):
            self.refused.append((Path(rec["source"]).name, str(rec.get("reason"))))
        if not self.on:
            return
        if now - self.last < 0.1 and self.seen < self.total:
            return
        self.last = now
        since = self.work_start if self.work_start is not None else self.start
        name = Path(rec["source"]).name
        line = progress_line(self.seen, self.total, now - since, name, worked=self.worked)
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.out.write("\r\x1b[K" + line[:width])
        self.out.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.out.write("\r\x1b[K")
            self.drawn = False

    def done(self) -> None:
        if self.on:
            self.clear()
            self.out.flush()


class _Clearing:
    """The terminal, for the log while a progress line is drawn: clears the line first."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def write(self, text: str) -> int:
        self.progress.clear()
        return self.progress.out.write(text)

    def flush(self) -> None:
        self.progress.out.flush()

    def isatty(self) -> bool:
        return self.progress.out.isatty()


def _leave_to_daemons(config: Config, paths: Sequence[Path], requests: list[Any]) -> list[Any]:
    """Drop the files of inboxes a running daemon watches: it converts them (or has)."""
    from sp404d.daemon import watched_by_daemons

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
    from sp404d.pipeline import Runner, check_outbox, clean_stale_temps

    config = config_from(args)
    level = "info" if args.verbose else "warning"
    logs.configure(config.log_format, level)
    print_settings(config, sys.stderr)
    passed: list[tuple[Path, str]] = []
    requests = _requests(config, args.paths, passed)
    requests = _leave_to_daemons(config, args.paths, requests)
    check_outbox(config.outbox, removable=config.outbox_removable)
    clean_stale_temps(config.outbox, wait_young=True)
    progress = Progress(len(requests), sys.stderr)
    logs.configure(config.log_format, level, stream=progress.stream)
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
            with contextlib.suppress(OSError):  # what the killed workers were writing
                clean_stale_temps(config.outbox, wait_young=True)
            raise
        finally:
            runner.close()
            progress.done()
        if config.outbox_removable and config.card_manifest and tally.counts.get("done"):
            _write_card_manifest(config, journal)
    if runner.pool.take_lost():  # killed workers leave their temp files behind, unlocked
        clean_stale_temps(config.outbox, wait_young=True)
    elapsed = time.monotonic() - started
    parts = ", ".join(f"{n} {s}" for s, n in sorted(tally.counts.items())) or "nothing to do"
    if tally.slices:  # chopped loops: one file each, written as slices
        parts += f" ({tally.slices} slices)"
    print(f"{tally.total} file{'' if tally.total == 1 else 's'} in {elapsed:.1f} s: {parts}")
    if passed:
        print(_passed_over(passed) + ("" if args.verbose else " (-v lists them)"))
        if args.verbose:
            for path, reason in sorted(passed, key=lambda item: str(item[0]).casefold()):
                print(f"  {path}: {reason}")
    for line in refusal_summary(progress.refused):
        print(printable(line))
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


def _write_card_manifest(config: Config, journal: Any) -> None:
    from sp404d.card import write_manifest

    try:
        write_manifest(config.outbox, journal)
    except OSError as exc:
        print(f"sp404d: could not write the card's SP404D.TXT: {exc}", file=sys.stderr)


def _shaping_text(asked: Mapping[str, Any]) -> str:
    """What ``check`` says shaping would do, e.g. ``then: trim below -60 dB, fold to mono``."""
    said = []
    if trim := asked.get("trim"):
        said.append(f"trim below {trim[0]:g} dB keeping {trim[1]:g} ms")
    if normalize := asked.get("normalize"):
        unit = "LUFS" if normalize[0] == "lufs" else "dBTP"
        said.append(f"normalise to {normalize[1]:g} {unit}")
    if mono := asked.get("mono"):
        said.append(
            "fold to mono"
            + ("" if mono == "all" else f" if under {mono:g} s")
            + (" (even if its channels cancel)" if asked.get("fold_cancels") == "fold" else "")
        )
    if chop := asked.get("chop"):
        said.append(checks.chop_said(*chop))
    return f"\n  then: {', '.join(said)}" if said else ""


def cmd_check(args: argparse.Namespace) -> int:
    from sp404d.audio.probe import probe
    from sp404d.errors import JobError
    from sp404d.journal import Journal
    from sp404d.metadata import Metadata
    from sp404d.pathtext import printable
    from sp404d.pipeline import Early, Plan, Planner, check_duration

    config = config_from(args)
    print_settings(config, sys.stderr)
    passed: list[tuple[Path, str]] = []
    requests = _requests(config, args.paths, passed)
    bad = 0
    meta: Metadata | None
    with Journal(config.journal, readonly=True) as journal:
        for item in Planner(journal, defer=False).plan_many(requests):
            heard: dict[str, object] = {}
            if isinstance(item, Plan):
                source, meta = item.source, item.meta
                try:
                    info = probe(item.source)
                    check_duration(info, item.rules)
                    target = str(item.final)
                    if len(item.pieces) > 1:  # a chop: its first and last names
                        last = item.pieces[-1].final
                        same = last.parent == item.final.parent
                        target += f" .. {'' if same else last.parent.name + '/'}{last.name}"
                    line = (
                        f"-> {target}  ({info.format} {info.subtype}, {info.rate} Hz, "
                        f"{info.channels} ch, {info.duration:.2f} s)"
                    ) + _shaping_text(item.rules.shaping())
                    heard = heard_now(item.source, item.meta, item.rules)
                except JobError as exc:
                    line, bad = f"refused: {exc.reason}", bad + 1
                except Exception as exc:  # one odd file must not end the check of the rest
                    line, bad = f"failed: internal error ({type(exc).__name__})", bad + 1
            elif isinstance(item, Early):
                source, meta = item.request.source, item.meta
                outcome = item.outcome
                if outcome.status == "skipped":
                    line = f"unchanged: already at {outcome.output}"
                else:
                    line, bad = f"refused: {outcome.reason}", bad + 1
            else:  # not with defer=False; said plainly if it ever is
                source, meta, line = item.request.source, None, "waits for a chop in its kit"
            print(printable(f"{source}\n  {line}"))
            if meta is not None:
                for text in described(meta.as_dict(), heard):
                    print(printable(text))
    for path, reason in sorted(passed, key=lambda item: str(item[0]).casefold()):
        print(printable(f"{path}\n  passed over: {reason}"))
    if passed:
        print(_passed_over(passed))
    return EXIT_OK if not bad else EXIT_JOBS
