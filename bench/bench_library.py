#!/usr/bin/env python3
"""A library of years: what a user feels with a 100,000-job journal, against a fresh one.

    python bench/bench_library.py [--jobs 100000] [--files 300] [--drops 20] [--rounds 3]

Every figure is taken twice in the same run, once with a fresh (empty) journal and once with a
copy of a big one, and printed with the ratio between them. The big journals are built through
the project's own API (``Journal.db.insert_multiple`` with records shaped like
``records.make_record``'s, about 1 KB a line, then closed, which leaves the index snapshot a
running daemon would leave); every round works on a fresh copy of them.

convert  : ``sp404d convert`` of FILES new files (the bench corpus's hits: varied sizes, formats
           and rates) into a fresh outbox; then FILES new files that all share one byte size,
           with a journal whose every job has that same size (the worst case of the old
           size-keyed lookup: loops of one length, DAW exports). Best of --rounds.
daemon   : a real ``sp404d run`` (bench_daemon.Daemon): start to ready (watching, its first
           rescan done: its state file appears after that), then --drops files written into the
           inbox one at a time, close() to output in place (p50, p95), then the main process's
           RSS once idle. Bytes per job = (RSS with the big journal - RSS with a fresh one) / jobs.
status   : ``sp404d status --json`` (default limit) and ``--limit 0`` (every job, streamed) as
           fresh processes: wall time and the process's peak RSS (wait4). Median of --rounds.

Targets (issue 9): convert within 1.2x of fresh (both cases); daemon ready within 0.5 s of a fresh
one's; first-drop p50 under 50 ms; daemon RSS under 80 MB; status --json under 0.2 s, --limit 0
under 2 s. Linux only (inotify, /proc, wait4).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import sp404d
from bench_daemon import Daemon, _pct, drop_one
from bench_journal import sp404d_record
from corpus import make_corpus
from procfs import read, status_kb

import sp404d as package
from sp404d.journal._index import index_path
from sp404d.journal.journal import Journal

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# --- inputs ---------------------------------------------------------------------------------


def build_journal(path: Path, jobs: int, size: int | None = None) -> float:
    """A journal of ``jobs`` records through the project's API; returns the seconds it took."""
    start = time.perf_counter()

    def records(first: int, last: int) -> Iterator[dict[str, Any]]:
        for i in range(first, last):
            rec = sp404d_record(i)
            if size is not None:
                rec["size"] = size
            yield rec

    with Journal(path) as journal:
        for first in range(0, jobs, 10_000):
            journal.db.insert_multiple(records(first, min(jobs, first + 10_000)))
    return time.perf_counter() - start


def one_size_files(folder: Path, n: int) -> int:
    """N distinct 0.5 s tones of exactly one byte size; returns that size."""
    folder.mkdir(parents=True, exist_ok=True)
    rate = 44100
    t = np.arange(rate // 2) / rate
    for i in range(n):
        tone = 0.5 * np.sin(2 * np.pi * (110 + 3 * i) * t) * np.exp(-t * 4)
        sf.write(str(folder / f"loop_{i:04d}.wav"), tone, rate, subtype="PCM_16", format="WAV")
    sizes = {p.stat().st_size for p in folder.iterdir()}
    assert len(sizes) == 1, sizes
    return sizes.pop()


def copy_journal(template: Path | None, dest: Path) -> Path:
    """A fresh copy of a template journal and its side files (None: no journal at all)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "journal.jsonl"
    if template is not None:
        for side in template.parent.glob(template.name + "*"):
            shutil.copy(side, dest / (target.name + side.name[len(template.name) :]))
    return target


# --- the parts --------------------------------------------------------------------------------


def best_convert(corpus: Path, template: Path | None, work: Path, rounds: int) -> float:
    best = float("inf")
    for r in range(rounds):
        here = work / f"convert{r}"
        journal = copy_journal(template, here)
        best = min(best, sp404d(corpus, here / "out", journal))
        shutil.rmtree(here)
    return best


def daemon_run(template: Path | None, work: Path, drops: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Ready time, close-to-output latency of each drop, and the idle main process's RSS."""
    root = work / "daemon"
    copy_journal(template, root)
    daemon = Daemon(root, workers=os.cpu_count() or 1, settle=0.2)
    latencies = []
    with daemon:
        ready = daemon.ready_s
        for name, payload in drops:
            closed, seen = drop_one(daemon, name, payload)
            latencies.append((seen - closed) * 1000)
            time.sleep(0.05)
        time.sleep(1.5)  # idle: the state file written, nothing queued
        rss = status_kb(read(f"/proc/{daemon.pid}/status") or "", "VmRSS") / 1024
    shutil.rmtree(root)
    return {"ready": ready, "lat": latencies, "rss": rss}


# ``sp404d status`` run as ``-m sp404d`` does, reporting its own peak RSS on the way out. The
# peak is VmHWM of the process's own memory: wait4's ru_maxrss would count the parent's memory
# at fork, which Linux carries over across exec.
STATUS_RUN = """
import atexit, runpy, sys
def peak():
    with open("/proc/self/status") as f:
        kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    sys.stderr.write(f"VmHWM {kb}\\n")
atexit.register(peak)
sys.argv = ["sp404d", *sys.argv[1:]]
runpy.run_module("sp404d", run_name="__main__")
"""


def timed_status(journal: Path, *extra: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``sp404d status --json`` process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", STATUS_RUN, "status", "--journal", str(journal), "--json", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"status failed: {proc.stderr}")
    kb = next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VmHWM"))
    return wall, int(kb) / 1024


OPEN_RUN = """
import atexit, sys
from pathlib import Path
from sp404d.journal.journal import Journal
def peak():
    with open("/proc/self/status") as f:
        kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    sys.stderr.write(f"VmHWM {kb}\\n")
atexit.register(peak)
Journal(Path(sys.argv[1])).close()
"""


def timed_open(journal: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a process that opens the journal to write (the first
    writer: a daemon's start, a convert) and closes it."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", OPEN_RUN, str(journal)],
        stderr=subprocess.PIPE,
        env=ENV,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"open failed: {proc.stderr}")
    kb = next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VmHWM"))
    return wall, int(kb) / 1024


def without_index(template: Path | None, dest: Path) -> Path:
    """A copy of a journal without its index snapshot (restored from a backup, upgraded)."""
    path = copy_journal(template, dest)
    index_path(path).unlink(missing_ok=True)
    return path


def index_bytes(journal: Path) -> int:
    """Python and numpy memory an open journal keeps (tracemalloc sees numpy arrays too)."""
    tracemalloc.start()
    with Journal(journal, readonly=True) as opened:
        opened.counts()
        kept = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return kept


def median_status(journal: Path, rounds: int, *extra: str) -> tuple[float, float]:
    runs = [timed_status(journal, *extra) for _ in range(rounds)]
    return statistics.median(w for w, _ in runs), max(m for _, m in runs)


# --- report -----------------------------------------------------------------------------------


def row(what: str, fresh: float, big: float, unit: str, target: str, fmt: str = ".2f") -> None:
    ratio = big / fresh if fresh else float("nan")
    print(f"{what:44s} {fresh:>9{fmt}} {big:>9{fmt}} {unit:3s} {ratio:>6.2f}x   {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="records in the big journal")
    parser.add_argument("--files", type=int, default=300, help="new files per convert")
    parser.add_argument("--drops", type=int, default=20, help="files dropped on each daemon")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the journals and corpora here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sp404d-library-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"sp404d {package.__version__} from {Path(package.__file__).parent}")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, work in {work}")
        varied = work / "varied"
        make_corpus(varied, hits=args.files, loops=0, seed=1)
        same = work / "same"
        shutil.rmtree(same, ignore_errors=True)
        size = one_size_files(same, args.files)
        big, big_same = work / "big" / "journal.jsonl", work / "big-same" / "journal.jsonl"
        for path, sized in ((big, None), (big_same, size)):
            shutil.rmtree(path.parent, ignore_errors=True)
            path.parent.mkdir(parents=True)
            took = build_journal(path, args.jobs, sized)
            print(f"built {path} ({path.stat().st_size / 1e6:.0f} MB) in {took:.1f} s")

        kept = index_bytes(big)
        drops = []
        for i in range(args.drops):
            rate, t = 44100, np.arange(22050) / 44100
            tone = 0.5 * np.sin(2 * np.pi * (220 + 7 * i) * t) * np.exp(-t * 6)
            path = work / f"drop_{i:03d}.wav"
            sf.write(str(path), tone, rate, subtype="PCM_16")
            drops.append((path.name, path.read_bytes()))

        sp404d(varied, work / "warm" / "out", work / "warm" / "journal.jsonl")  # caches, bytecode
        shutil.rmtree(work / "warm")
        conv = (
            best_convert(varied, None, work, args.rounds),
            best_convert(varied, big, work, args.rounds),
        )
        conv_same = (
            best_convert(same, None, work, args.rounds),
            best_convert(same, big_same, work, args.rounds),
        )
        daemons: dict[str, list[dict[str, Any]]] = {"fresh": [], "big": []}
        for _ in range(args.rounds):
            daemons["fresh"].append(daemon_run(None, work, drops))
            daemons["big"].append(daemon_run(big, work, drops))
        empty = copy_journal(None, work / "status-fresh")
        Journal(empty).close()
        status = (median_status(empty, args.rounds), median_status(big, args.rounds))
        status_all = (
            median_status(empty, args.rounds, "--limit", "0"),
            median_status(big, args.rounds, "--limit", "0"),
        )
        # No snapshot: the index is built from the lines, once; the reader keeps it.
        bare = (without_index(None, work / "bare-fresh"), without_index(big, work / "bare-big"))
        Journal(bare[0]).close()
        index_path(bare[0]).unlink(missing_ok=True)
        rebuilt_first = (timed_status(bare[0]), timed_status(bare[1]))
        rebuilt_second = (timed_status(bare[0]), timed_status(bare[1]))
        opened = (
            timed_open(without_index(None, work / "bare-w-fresh")),
            timed_open(without_index(big, work / "bare-w-big")),
        )

    def best(kind: str, key: str) -> float:
        return min(run[key] for run in daemons[kind])

    def lat(kind: str, q: float) -> float:
        return _pct([x for run in daemons[kind] for x in run["lat"]], q)

    print()
    big_name = f"{args.jobs // 1000}k jobs"
    head = f"{'what':44s} {'fresh':>9s} {big_name:>9s} {'':3s} {'ratio':>7s}   target"
    print(head)
    print("-" * (len(head) + 30))
    row(f"convert {args.files} new files (best of {args.rounds})", *conv, "s", "within 1.2x")
    row(f"convert {args.files} files, all one size", *conv_same, "s", "within 1.2x")
    ready = (best("fresh", "ready"), best("big", "ready"))
    row("daemon start to ready (best)", *ready, "s", "within +0.5 s")
    print(f"{'':44s} {'':9s} {'':9s} {'':3s} {ready[1] - ready[0]:>+6.2f}s")
    n = args.drops * args.rounds
    row(
        f"first drops, close to output p50 ({n})",
        lat("fresh", 50),
        lat("big", 50),
        "ms",
        "p50 under 50 ms",
        ".0f",
    )
    row("first drops, close to output p95", lat("fresh", 95), lat("big", 95), "ms", "", ".0f")
    rss = (best("fresh", "rss"), best("big", "rss"))
    row("daemon main process RSS, idle (best)", *rss, "MB", "under 80 MB", ".0f")
    per_job = (rss[1] - rss[0]) * 1024 * 1024 / args.jobs
    print(f"{'  per job, from the RSS difference':44s} {per_job:>19.0f} B    a few hundred bytes")
    print(f"{'  per job, an open journal (tracemalloc)':44s} {kept / args.jobs:>19.0f} B")
    row(f"status --json (median of {args.rounds})", status[0][0], status[1][0], "s", "under 0.2 s")
    row("status --json --limit 0", status_all[0][0], status_all[1][0], "s", "under 2 s")
    row("status --json --limit 0, peak RSS", status_all[0][1], status_all[1][1], "MB", "", ".0f")
    first = (rebuilt_first[0][0], rebuilt_first[1][0])
    row("no snapshot: first status (rebuilds it)", *first, "s", "under 0.5 s")
    peak_first = (rebuilt_first[0][1], rebuilt_first[1][1])
    row("no snapshot: first status, peak RSS", *peak_first, "MB", "under 150 MB", ".0f")
    second = (rebuilt_second[0][0], rebuilt_second[1][0])
    row("no snapshot: second status (kept by the first)", *second, "s", "as with a snapshot")
    row("no snapshot: first writer opens", opened[0][0], opened[1][0], "s", "under 0.5 s")
    peak_open = (opened[0][1], opened[1][1])
    row("no snapshot: first writer, peak RSS", *peak_open, "MB", "under 150 MB", ".0f")


if __name__ == "__main__":
    main()
