"""`sp404d run` as a user runs it: latency of one dropped file, throughput of a drop, idle cost.

    python bench/bench_daemon.py [--files 50] [--drop 1000] [--idle 10] [--rounds 3]
                                 [--workdir bench/out]

Each part starts a real daemon subprocess (settle_seconds 0.2, rescan_interval 0, JSON logs,
workers = every core) on a fresh temporary inbox, outbox and journal, and waits until it is
ready (its state file ``<journal>.state.json`` appears).

latency   : N files (0.5 s, 44.1 kHz, 16-bit mono WAV, generated beforehand outside the inbox)
            are written into the inbox one at a time with open/write/close, so inotify reports
            IN_CLOSE_WRITE. Latency is from just after close() to the moment the converted file
            is seen in the outbox (polled every 2 ms). The journal's ``started_at`` and
            ``elapsed_s`` split each one into noticing + planning (close -> job dispatched), the
            worker's own time, and the rest. Target: p50 < 250 ms on Linux.
throughput: the drop corpus (bench/corpus.py, hits only) arrives in the inbox of a freshly
            started daemon two ways, each timed from the first file to the last job's journal
            record: renamed in from a staging folder on the same filesystem (how sync clients
            deliver; the daemon's own throughput), and copied in as fast as shutil.copy goes
            (a Finder-style drop; the copying itself, timed alone as "copy alone", shares the
            cores and the disk). The floor is measured in the same run on the same files
            (soundfile.read + soxr HQ + TPDF dither + soundfile.write on a pool of every core,
            ``floor`` from bench_convert.py). Best of --rounds for each, as bench_convert.py
            does. Target: within 1.5x of the floor.
idle      : the throughput daemon, once it has nothing left to do, is watched for ``--idle``
            seconds: CPU time (utime+stime from /proc/PID/stat) and wake-ups (voluntary context
            switches of every thread) of the daemon and each process below it, and their memory
            (VmRSS, and PSS, which counts a page shared by n processes as 1/n). Target: no loop
            burning CPU while idle.

The daemon is stopped with SIGTERM at the end of each part; its whole process group is killed if
anything goes wrong. Linux only (inotify, /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from sp404d.journal.journal import Journal
from sp404d.report.status import state_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import floor, sp404d
from corpus import make_corpus
from procfs import descendants, read, stat_fields, status_kb

CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 60.0
OUTPUT_SUFFIXES = {".wav", ".aif", ".aiff"}


# --- a daemon under test --------------------------------------------------------------------


#: Another sp404d source tree to run (``--checkout``), or None for this one.
CHECKOUT: Path | None = None


class Daemon:
    """One `sp404d run` subprocess in its own session, with its own folders, config and log.

    As a context manager: a clean exit stops it with SIGTERM; an exception kills its process
    group, so no worker outlives the bench.
    """

    def __init__(self, root: Path, *, workers: int, settle: float) -> None:
        self.root = root
        self.inbox = root / "in"
        self.outbox = root / "out"
        self.journal = root / "journal.jsonl"
        self.log_path = root / "daemon.log"
        self.config = root / "sp404d.yaml"
        settings = {
            "inbox": str(self.inbox),
            "outbox": str(self.outbox),
            "journal": str(self.journal),
            "settle_seconds": settle,
            "rescan_interval": 0,
            "log_format": "json",
            "workers": workers,
        }
        self.inbox.mkdir(parents=True, exist_ok=True)  # a configured inbox is not made for us
        self.config.write_text(yaml.safe_dump(settings))
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.ready_s = float("nan")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start and wait until ready; return the seconds that took."""
        home = self.root / "home"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_STATE_HOME=str(home / ".local" / "state"),
            PYTHONUNBUFFERED="1",
        )
        env.pop("NOTIFY_SOCKET", None)
        if CHECKOUT is not None:  # another sp404d (an earlier commit), timed the same way
            env["PYTHONPATH"] = str(CHECKOUT)
        ready = state_path(self.journal)
        ready.unlink(missing_ok=True)
        t = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sp404d", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        end = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited at start; log:\n{self.log_text()}")
            if time.monotonic() > end:
                raise RuntimeError(f"the daemon was not ready after {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.01)
        self.ready_s = time.perf_counter() - t
        return self.ready_s

    def state(self) -> dict[str, Any]:
        try:
            data = json.loads(state_path(self.journal).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"the daemon ignored SIGTERM for {timeout:.0f} s") from None
        self._reap_group()
        return self.exit_code

    def kill(self) -> None:
        if self.proc is None:
            return
        self._reap_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def _reap_group(self) -> None:
        # The session leader's pid is the group id; anything still in it is a leftover worker.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records(self) -> list[dict[str, Any]]:
        return Journal(self.journal, readonly=True).all()

    def outputs(self) -> int:
        """Converted files in the outbox (temp files are ``~S*.TMP``, so not counted)."""
        count = 0
        for _, _, names in os.walk(self.outbox):
            count += sum(1 for n in names if os.path.splitext(n)[1].lower() in OUTPUT_SUFFIXES)
        return count


# --- /proc ------------------------------------------------------------------------------------


@dataclass
class ProcSample:
    pid: int
    ppid: int
    role: str
    cpu_s: float  # utime + stime, all threads
    rss_mb: float
    pss_mb: float | None
    wakeups: dict[str, int] = field(default_factory=dict)  # thread name -> voluntary switches


def _role(pid: int, root: int, ppid: int) -> str:
    if pid == root:
        return "daemon"
    cmd = (read(f"/proc/{pid}/cmdline") or "").replace("\0", " ")
    if "resource_tracker" in cmd:
        return "resource_tracker"
    if ppid == root and "forkserver" in cmd:
        return "forkserver"
    return "worker" if "forkserver" in cmd or ppid != root else "child"


def sample(pid: int, root: int) -> ProcSample | None:
    fields = stat_fields(pid)
    status = read(f"/proc/{pid}/status")
    if fields is None or status is None:
        return None
    ppid = int(fields[1])
    cpu_s = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rollup = read(f"/proc/{pid}/smaps_rollup")
    pss = status_kb(rollup, "Pss") / 1024 if rollup else None
    wakeups: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            t_status = read(f"/proc/{pid}/task/{tid}/status")
            if t_status is None:
                continue
            name = (read(f"/proc/{pid}/task/{tid}/comm") or "?").strip()
            key = f"{name}[{tid}]"
            wakeups[key] = status_kb(t_status, "voluntary_ctxt_switches")
    return ProcSample(
        pid,
        ppid,
        _role(pid, root, ppid),
        cpu_s,
        status_kb(status, "VmRSS") / 1024,
        pss,
        wakeups,
    )


def sample_tree(root: int) -> dict[int, ProcSample]:
    out = {}
    for pid in descendants(root):
        s = sample(pid, root)
        if s is not None:
            out[pid] = s
    return out


# --- the parts ------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _wall(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _staged_files(staging: Path, n: int) -> list[tuple[str, bytes]]:
    """N distinct 0.5 s tones, encoded as WAV bytes ahead of time."""
    staging.mkdir(parents=True, exist_ok=True)
    rate = 44100
    t = np.arange(rate // 2) / rate
    files = []
    for i in range(n):
        path = staging / f"lat_{i:03d}.wav"
        tone = 0.5 * np.sin(2 * np.pi * (220 + 7 * i) * t) * np.exp(-t * 6)
        sf.write(str(path), tone, rate, subtype="PCM_16", format="WAV")
        files.append((path.name, path.read_bytes()))
    return files


def drop_one(daemon: Daemon, name: str, payload: bytes) -> tuple[float, float]:
    """Write one file into the inbox (open, write, close: IN_CLOSE_WRITE) and wait for its
    output; return the wall times of the close and of the output seen (polled every 1 ms)."""
    before = daemon.outputs()
    with open(daemon.inbox / name, "wb") as f:
        f.write(payload)
    closed = time.time()
    end = time.monotonic() + 10.0
    while daemon.outputs() <= before:
        if time.monotonic() > end:
            raise RuntimeError(f"{name}: no output after 10 s; log: {daemon.log_path}")
        time.sleep(0.001)
    return closed, time.time()


def bench_latency(root: Path, n: int, workers: int, pause: float) -> None:
    files = _staged_files(root / "staging", n)
    daemon = Daemon(root / "daemon", workers=workers, settle=0.2)
    lat: list[float] = []
    closed_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    with daemon:
        print(f"latency: daemon ready in {daemon.ready_s:.2f} s (pid {daemon.pid})")
        time.sleep(0.5)  # let start-up work (the first rescan, the state file) finish
        for name, payload in files:
            t_close, t_seen = drop_one(daemon, name, payload)
            lat.append(t_seen - t_close)
            closed_at[name], seen_at[name] = t_close, t_seen
            time.sleep(pause)
        time.sleep(0.3)
        records = daemon.records()
    ms = [x * 1000 for x in lat]
    print(
        f"  {n} files one at a time: p50 {_pct(ms, 50):.0f} ms  p95 {_pct(ms, 95):.0f} ms  "
        f"max {max(ms):.0f} ms  min {min(ms):.0f} ms  (target p50 < 250 ms)"
    )
    # Where the time goes, from the journal: close -> dispatched to a worker (inotify, settle,
    # planning), the worker's own time, and what is left (result back, poll granularity).
    notice, work, rest = [], [], []
    for rec in records:
        name = Path(rec["source"]).name
        if name not in closed_at or rec.get("status") != "done":
            continue
        started = _wall(rec["started_at"])
        notice.append((started - closed_at[name]) * 1000)
        work.append(rec["elapsed_s"] * 1000)
        rest.append((seen_at[name] - started) * 1000 - rec["elapsed_s"] * 1000)
    if notice:
        print(
            f"  median split: close->dispatch {statistics.median(notice):.0f} ms, "
            f"worker {statistics.median(work):.0f} ms, "
            f"rest {statistics.median(rest):.0f} ms  "
            "(journal timestamps have 1 ms resolution)"
        )
    print(f"  daemon exit code {daemon.exit_code}")


def _wait_records(journal: Journal, n: int, limit_s: float) -> None:
    end = time.monotonic() + limit_s
    while True:
        journal.refresh()
        if len(journal) >= n:
            return
        if time.monotonic() > end:
            raise RuntimeError(f"only {len(journal)} of {n} jobs recorded in time")
        time.sleep(0.01)


def _copy_all(files: list[Path], dest: Path) -> float:
    t0 = time.perf_counter()
    for f in files:
        shutil.copy(f, dest / f.name)
    return time.perf_counter() - t0


def _drop_by_rename(root: Path, files: list[Path], workers: int, limit_s: float) -> float:
    """A drop by rename, as sync clients deliver (download to a temp name, then rename): the
    files are staged on the same filesystem first, so the time is the daemon's own."""
    daemon = Daemon(root, workers=workers, settle=0.2)
    staging = root / "staging"
    staging.mkdir(parents=True)
    _copy_all(files, staging)
    time.sleep(1.5)  # older than the settle time: complete when they arrive
    with daemon:
        time.sleep(0.5)
        journal = Journal(daemon.journal, readonly=True)
        t0 = time.perf_counter()
        for f in files:
            os.rename(staging / f.name, daemon.inbox / f.name)
        _wait_records(journal, len(files), limit_s)
        return time.perf_counter() - t0


def bench_throughput_and_idle(
    root: Path, corpus_dir: Path, n: int, workers: int, idle_s: float, rounds: int
) -> None:
    files = make_corpus(corpus_dir, hits=n, loops=0)
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"throughput: {len(files)} files, {total_mb:.0f} MB, {os.cpu_count()} cores")
    best: dict[str, float] = {}

    def keep(name: str, secs: float) -> None:
        best[name] = min(best.get(name, float("inf")), secs)

    floor_cpu = 0.0
    for i in range(rounds):
        here = root / f"round{i}"
        (here / "floor").mkdir(parents=True)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        keep("floor", floor(files, here / "floor"))
        ru_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        floor_cpu = ru_after.ru_utime + ru_after.ru_stime - ru.ru_utime - ru.ru_stime
        (here / "copy").mkdir()
        keep("copy alone", _copy_all(files, here / "copy"))  # the harness's part of a copy drop
        keep("convert", sp404d(corpus_dir, here / "convert" / "out", here / "convert" / "j.jsonl"))
        keep("daemon, rename", _drop_by_rename(here / "rename", files, workers, 300.0))
        if i < rounds - 1:
            keep("daemon, copy", _drop_by_copy(here / "drop", files, workers, None))
        shutil.rmtree(here, ignore_errors=True)
    daemon = Daemon(root / "drop", workers=workers, settle=0.2)
    with daemon:
        keep("daemon, copy", _drop_by_copy(root / "drop", files, workers, daemon))
        head = f"{'method':16s} {'wall s':>8s} {'files/s':>8s} {'vs floor':>9s}"
        print(f"{head}   (best of {rounds})")
        for name in ("floor", "copy alone", "convert", "daemon, rename", "daemon, copy"):
            secs = best[name]
            print(f"{name:16s} {secs:8.2f} {len(files) / secs:8.0f} {secs / best['floor']:8.2f}x")
        print(
            "  (target: daemon within 1.5x of the floor. 'copy alone': shutil.copy of the files "
            "into an unwatched folder, the harness's own part of a drop by copy)"
        )
        print(f"  the floor's workers used {floor_cpu:.2f} s of CPU on the same files (last round)")
        bench_idle(daemon, idle_s)
    print(f"  daemon exit code {daemon.exit_code}")


def _drop_by_copy(root: Path, files: list[Path], workers: int, daemon: Daemon | None) -> float:
    """Files copied into the inbox as fast as shutil.copy goes (a Finder-style drop)."""
    own = daemon is None
    daemon = daemon or Daemon(root, workers=workers, settle=0.2)
    with contextlib.ExitStack() as stack:
        if own:
            stack.enter_context(daemon)
        time.sleep(0.5)
        journal = Journal(daemon.journal, readonly=True)
        cpu_before = sample_tree(daemon.pid)
        w0 = time.time()
        t0 = time.perf_counter()
        _copy_all(files, daemon.inbox)
        _wait_records(journal, len(files), 300.0)
        wall = time.perf_counter() - t0
        if not own:
            cpu_after = sample_tree(daemon.pid)
            _drop_split(journal.all(), w0, wall, workers, cpu_before, cpu_after)
        return wall


def _drop_split(
    records: list[dict[str, Any]],
    w0: float,
    wall: float,
    workers: int,
    before: dict[int, ProcSample],
    after: dict[int, ProcSample],
) -> None:
    """Where the drop's time went: the workers' share of it, and who used the CPU."""
    busy = sum(float(r.get("elapsed_s") or 0.0) for r in records)
    first = min(_wall(r["started_at"]) for r in records) - w0
    last = max(_wall(r["finished_at"]) for r in records) - w0
    print(
        f"  first job dispatched {first * 1000:.0f} ms after the first copy, last recorded at "
        f"{last:.2f} s; jobs' own time {busy:.2f} s = {100 * busy / (wall * workers):.0f}% "
        f"of {workers} workers x {wall:.2f} s"
    )
    by_role: dict[str, float] = {}
    for pid, a in after.items():
        b = before.get(pid)
        by_role[a.role] = by_role.get(a.role, 0.0) + a.cpu_s - (b.cpu_s if b else 0.0)
    used = ", ".join(f"{role} {secs:.2f} s" for role, secs in sorted(by_role.items()))
    print(f"  CPU used during the drop: {used} (of {workers * wall:.2f} core-seconds)")


def bench_idle(daemon: Daemon, idle_s: float) -> None:
    end = time.monotonic() + 60
    while True:
        state = daemon.state()
        if state.get("queue") == 0 and state.get("running") == 0:
            break
        if time.monotonic() > end:
            raise RuntimeError(f"the daemon did not go idle: {state}")
        time.sleep(0.1)
    time.sleep(1.5)  # past the last state-file write and journal fsync timer
    before = sample_tree(daemon.pid)
    t = time.perf_counter()
    time.sleep(idle_s)
    window = time.perf_counter() - t
    after = sample_tree(daemon.pid)
    print(f"idle: {window:.1f} s window after the drop, daemon pid {daemon.pid}")
    print(
        f"  {'pid':>7s} {'role':16s} {'RSS MB':>7s} {'PSS MB':>7s} {'CPU ms':>7s} {'CPU %':>6s} "
        f"{'wakeups/s':>9s}"
    )
    tot_rss = tot_pss = tot_cpu = 0.0
    tot_wake = 0
    busy_threads: list[str] = []
    for pid, b in sorted(before.items(), key=lambda kv: (kv[1].role != "daemon", kv[0])):
        a = after.get(pid)
        if a is None:
            continue
        cpu = a.cpu_s - b.cpu_s
        wake = sum(a.wakeups.get(k, v) - v for k, v in b.wakeups.items())
        for key, v in b.wakeups.items():
            if a.wakeups.get(key, v) - v:
                busy_threads.append(f"{a.role}:{key} {(a.wakeups[key] - v) / window:.1f}/s")
        tot_rss += a.rss_mb
        tot_pss += a.pss_mb or 0.0
        tot_cpu += cpu
        tot_wake += wake
        pss = f"{a.pss_mb:7.1f}" if a.pss_mb is not None else f"{'-':>7s}"
        print(
            f"  {pid:7d} {a.role:16s} {a.rss_mb:7.1f} {pss} {cpu * 1000:7.0f} "
            f"{100 * cpu / window:6.2f} {wake / window:9.1f}"
        )
    print(
        f"  {'total':>7s} {'':16s} {tot_rss:7.1f} {tot_pss:7.1f} {tot_cpu * 1000:7.0f} "
        f"{100 * tot_cpu / window:6.2f} {tot_wake / window:9.1f}"
    )
    print(f"  CPU time has {1000 / CLK_TCK:.0f} ms resolution; threads that woke up:")
    for line in busy_threads:
        print(f"    {line}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=50, help="files for the latency part")
    ap.add_argument("--drop", type=int, default=1000, help="files for the throughput part")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    ap.add_argument("--pause", type=float, default=0.1, help="seconds between latency files")
    ap.add_argument("--workdir", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--rounds", type=int, default=3, help="throughput: best of N for each method")
    ap.add_argument("--checkout", type=Path, help="run another sp404d source tree (a worktree)")
    a = ap.parse_args()
    global CHECKOUT
    CHECKOUT = a.checkout
    print(f"sp404d from {a.checkout or 'this checkout'}")
    if sys.platform != "linux":
        sys.exit("bench_daemon.py needs Linux (inotify, /proc)")
    workers = os.cpu_count() or 1
    a.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-daemon-", dir=a.workdir) as tmp:
        root = Path(tmp)
        bench_latency(root / "latency", a.files, workers, a.pause)
        bench_throughput_and_idle(
            root / "throughput",
            a.workdir / f"corpus-drop-{a.drop}",
            a.drop,
            workers,
            a.idle,
            a.rounds,
        )


if __name__ == "__main__":
    main()
