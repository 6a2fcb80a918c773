#!/usr/bin/env python3
"""How the journal scales: cost of one more append, and of ``status``, as the journal grows.

    python bench/bench_journal.py [--sizes 1000,10000,100000] [--repeat 3]

For each size N a journal of N records is built (all but the last 400 with one
``db.insert_multiple``: the same line format and code path as ``append``, in a single write),
then it measures:

- append: mean cost of one ``Journal.append`` over 100 calls with the default group commit
  (``sync_interval=0.2``), best of 3 rounds of 100 (the machine's noise only ever adds), then
  the mean of the last 100 with an fsync each (``sync_interval=0``);
- status: a fresh ``python -c`` that opens the journal read-only, takes ``counts()`` and
  ``newest(20)``: wall time including interpreter start-up and imports (median of --repeat);
- load: the same three calls in this process, and a writer's open (its index: from the
  snapshot ``JOURNAL.index`` the build left, then the lines after it).

The baseline, measured in the same run: stock TinyDB (``JSONStorage``) inserts at 1,000 records,
with the same records and with the record shape of ``/work/shared/bench/tinydb_scale.py``.
Records are shaped like sp404d's own (``sp404d/records.py``), about 900 bytes a line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinydb import TinyDB  # noqa: E402  (after the path set-up above)

from sp404d.journal.journal import Journal  # noqa: E402

STATUSES = ("done", "done", "done", "skipped", "rejected", "failed")

STATUS_SNIPPET = """
import sys
from pathlib import Path
from sp404d.journal.journal import Journal
j = Journal(Path(sys.argv[1]), readonly=True)
counts, newest = j.counts(), j.newest(20)
print(sum(counts.values()), len(newest))
"""


def sp404d_record(i: int) -> dict[str, Any]:
    """A record shaped like ``sp404d.pipeline.records.make_record``'s (about 900 bytes of JSON)."""
    kit, pad = f"Kit{i % 50}", i % 16 + 1
    source = f"/home/u/Music/inbox/kits/{kit}/{pad:02d}_sample_{i:06d}.wav"
    status = STATUSES[i % len(STATUSES)]
    return {
        "source": source,
        "root": "/home/u/Music/inbox",
        "size": 123456 + i,
        "mtime_ns": 1795537785350610047 + i,
        "sha256": f"{i:064x}",
        "key": f"{i:064x}|wav|hq|limit|100|reject",
        "place": f"{kit}/bank_A/pad_{pad:02d}_sample_{i}.wav|wav|hq|limit|100|reject",
        "status": status,
        "reason": None if status == "done" else "too short: 42 ms (the minimum is 100 ms)",
        "output": f"/media/u/SD/ROLAND/SP-404MKII/IMPORT/{kit}/bank_A/pad_{pad:02d}.wav",
        "replaced": None,
        "metadata": {
            "title": f"sample {i}",
            "genre": "hiphop",
            "bpm": 92.0,
            "key": "Am",
            "tags": ["drums", "kit"],
            "kit": kit,
            "bank": "A",
            "pad": pad,
            "origins": {"title": "path", "genre": "folder", "kit": "path", "pad": "path"},
        },
        "input": {
            "format": "WAV",
            "subtype": "PCM_24",
            "rate": 44100,
            "channels": 2,
            "frames": 54321,
            "duration_s": 1.231769,
        },
        "render": {"rate": 48000, "subtype": "PCM_16", "dither": "tpdf", "gain_db": -0.3},
        "gain_db": -0.3,
        "elapsed_s": 0.0123,
        "started_at": "2026-11-24T16:29:45.272Z",
        "finished_at": "2026-11-24T16:29:45.283Z",
        "version": "0.1.0",
    }


def shared_record(i: int) -> dict[str, Any]:
    """The record of ``/work/shared/bench/tinydb_scale.py`` (about 450 bytes)."""
    return {
        "source": f"/home/u/inbox/kits/Kit{i % 50}/sample_{i:06d}.wav",
        "sha256": "ab" * 32,
        "output": (
            f"/media/SD/ROLAND/SP-404MKII/IMPORT/kit{i % 50}/A/{i % 16 + 1:02d}_sample_{i}.wav"
        ),
        "status": "done",
        "error": None,
        "bytes_in": 123456,
        "bytes_out": 234567,
        "sr_in": 44100,
        "ch": 2,
        "dur_s": 1.234,
        "ms": 12.5,
        "ts": "2026-11-24T12:00:00Z",
        "meta": {"genre": "hiphop", "bpm": 92.0, "kit": f"Kit{i % 50}", "bank": "A", "pad": 1},
    }


def mean_ms(times: list[float]) -> float:
    return 1000 * sum(times) / len(times)


def timed_calls(call: Callable[[int], object], first: int, count: int) -> list[float]:
    times = []
    for i in range(first, first + count):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return times


def bench_ours(folder: Path, n: int, repeat: int) -> dict[str, float]:
    path = folder / f"journal-{n}.jsonl"
    start = time.perf_counter()
    with Journal(path) as journal:
        journal.db.insert_multiple(sp404d_record(i) for i in range(n - 400))
        built = time.perf_counter() - start
        grouped = min(
            mean_ms(timed_calls(lambda i: journal.append(sp404d_record(i)), first, 100))
            for first in (n - 400, n - 300, n - 200)
        )
    with Journal(path, sync_interval=0) as journal:
        synced = timed_calls(lambda i: journal.append(sp404d_record(i)), n - 100, 100)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", STATUS_SNIPPET, str(path)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        walls.append(time.perf_counter() - start)
        assert out == [str(n), "20"], out

    start = time.perf_counter()
    with Journal(path, readonly=True) as reader:
        reader.counts()
        reader.newest(20)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    with Journal(path) as writer:
        assert len(writer) == n
    writer_open = time.perf_counter() - start
    return {
        "append": grouped,
        "append_fsync": mean_ms(synced),
        "status": statistics.median(walls),
        "status_min": min(walls),
        "load": loaded,
        "writer_open": writer_open,
        "build": built,
        "mb": path.stat().st_size / 1e6,
    }


def bench_stock(folder: Path, record: Callable[[int], dict[str, Any]], name: str) -> float:
    """Mean of the last 100 stock TinyDB inserts into a 1,000-record database."""
    with TinyDB(folder / f"stock-{name}.json") as db:
        db.insert_multiple(record(i) for i in range(900))
        return mean_ms(timed_calls(lambda i: db.insert(record(i)), 900, 100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="status runs per size")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if any(n < 500 for n in sizes):
        parser.error("sizes must be >= 500")

    with tempfile.TemporaryDirectory(prefix="sp404d-bench-") as tmp:
        folder = Path(tmp)
        stock_same = bench_stock(folder, sp404d_record, "same")
        stock_shared = bench_stock(folder, shared_record, "shared")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, journal in {folder}")
        print(
            f"stock TinyDB insert at 1,000 records: {stock_same:.2f} ms (these records), "
            f"{stock_shared:.2f} ms (tinydb_scale.py's records)"
        )
        print()
        header = (
            f"{'records':>8} {'file MB':>8} {'append ms':>10} {'ratio':>6} {'vs stock':>9} "
            f"{'fsync each':>11} {'status s':>9} {'(min)':>6} {'load s':>7} {'writer open s':>14}"
        )
        print(header)
        print("-" * len(header))
        bench_ours(folder, 500, 1)  # warm-up: first calls of every code path, not reported
        base: float | None = None
        for n in sizes:
            r = bench_ours(folder, n, args.repeat)
            base = base or r["append"]
            ratio = f"{r['append'] / base:.2f}x"
            print(
                f"{n:>8,} {r['mb']:>8.1f} {r['append']:>10.3f} {ratio:>6} "
                f"{stock_same / r['append']:>8.0f}x {r['append_fsync']:>9.2f}ms "
                f"{r['status']:>9.2f} {r['status_min']:>6.2f} {r['load']:>7.2f} "
                f"{r['writer_open']:>14.2f}",
                flush=True,
            )
        print()
        print("append ms: mean of 100 appends, best of 3 rounds, group commit (sync_interval=0.2)")
        print(f"ratio: append cost relative to the {sizes[0]:,}-record journal")
        print("vs stock: how many times cheaper than a stock TinyDB insert at 1,000 records")
        print("fsync each: mean of 100 appends with sync_interval=0")
        print("status s: fresh `python -c`: open read-only, counts(), newest(20); median (min)")
        print("load s: the same in this process")
        print("writer open s: open for writing (the index snapshot, then the lines after it)")


if __name__ == "__main__":
    main()
