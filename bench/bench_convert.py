"""`sp404d convert` against the in-process floor and a sox loop, timed in one run.

    python bench/bench_convert.py [--hits 600] [--loops 40] [--workdir bench/out]

floor : soundfile.read + soxr.resample(HQ) + TPDF dither + soundfile.write, on a pool of every
        core (the method of ../shared/bench/peers.py, `limit2`): the least work any converter
        must do. sp404d adds hashing, metadata, naming, fsyncs, the journal and its own start-up.
floor+start: the same floor run as a fresh process (interpreter start and numpy, soundfile and
        soxr imports included), as sp404d is timed: the fair end-to-end baseline.
sox   : one `sox IN -r 48000 -b 16 OUT` process per file (sox dithers), when sox is installed.
sp404d: `sp404d convert CORPUS` as a user runs it (a fresh outbox and journal), interpreter
        start-up included. Target: within 1.3x of the floor. Run with bytecode caching on, as
        on a user's machine (some sandboxes set PYTHONDONTWRITEBYTECODE, which would make every
        run compile sp404d's modules afresh: about 30 ms more start-up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import make_corpus


def _floor_one(args: tuple[str, str]) -> None:
    src, dst = args
    x, sr = sf.read(src, dtype="float32", always_2d=True)
    if sr != 48000:
        x = soxr.resample(x, sr, 48000, quality="HQ")
    rng = np.random.default_rng(0)
    d = (rng.random(x.shape, dtype=np.float32) - rng.random(x.shape, dtype=np.float32)) / 32768
    y = np.clip(np.round((x + d) * 32768.0), -32768, 32767).astype(np.int16)
    sf.write(dst, y, 48000, subtype="PCM_16", format="WAV")


def floor(files: list[Path], out: Path) -> float:
    jobs = [(str(f), str(out / f"{i:05d}.wav")) for i, f in enumerate(files)]
    t = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as ex:
        list(ex.map(_floor_one, jobs, chunksize=8))
    return time.perf_counter() - t


def floor_process(corpus: Path, out: Path) -> float:
    """The floor in a fresh interpreter, timed from outside as sp404d is."""
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--floor-child", str(corpus), str(out)],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )
    return time.perf_counter() - t


def sox_loop(files: list[Path], out: Path) -> float:
    t = time.perf_counter()
    for i, f in enumerate(files):
        subprocess.run(
            ["sox", "-q", str(f), "-r", "48000", "-b", "16", str(out / f"{i:05d}.wav")], check=True
        )
    return time.perf_counter() - t


def sp404d(corpus: Path, out: Path, journal: Path, checkout: Path | None = None) -> float:
    """``sp404d convert`` as a user runs it; ``checkout``: another sp404d's source tree (an
    earlier commit), timed in the same run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    t = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sp404d",
            "convert",
            str(corpus),
            "--outbox",
            str(out),
            "--journal",
            str(journal),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        sys.exit(f"sp404d convert failed: {proc.stderr}")
    print(f"    sp404d says: {proc.stdout.strip().splitlines()[0]}")
    return elapsed


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--floor-child":  # floor_process's interpreter
        corpus, out = Path(sys.argv[2]), Path(sys.argv[3])
        floor(sorted(p for p in corpus.rglob("*") if p.is_file() and p.stat().st_size), out)
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hits", type=int, default=600)
    ap.add_argument("--loops", type=int, default=40)
    ap.add_argument("--workdir", type=Path, default=Path(__file__).parent / "out")
    ap.add_argument("--rounds", type=int, default=3, help="best of N for each method")
    ap.add_argument(
        "--before", type=Path, help="another sp404d checkout to time in the same run (a worktree)"
    )
    a = ap.parse_args()
    corpus = a.workdir / "corpus"
    files = make_corpus(corpus, a.hits, a.loops)
    total = sum(f.stat().st_size for f in files) / 1e6
    print(f"corpus: {len(files)} files, {total:.0f} MB, {os.cpu_count()} cores")

    def fresh(name: str) -> Path:
        d = a.workdir / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    results: dict[str, float] = {}
    for _ in range(a.rounds):
        results["floor"] = min(results.get("floor", 1e9), floor(files, fresh("floor")))
        took = floor_process(corpus, fresh("floor_start"))
        results["floor+start"] = min(results.get("floor+start", 1e9), took)
        d = fresh("sp404d")
        results["sp404d"] = min(
            results.get("sp404d", 1e9), sp404d(corpus, d / "out", d / "j.jsonl")
        )
        if a.before is not None:
            d = fresh("before")
            took = sp404d(corpus, d / "out", d / "j.jsonl", a.before)
            results["before"] = min(results.get("before", 1e9), took)
    if shutil.which("sox"):
        results["sox"] = sox_loop(files, fresh("sox"))
    base = results["floor"]
    started = results["floor+start"]
    print(f"{'method':12s} {'wall s':>8s} {'files/s':>8s} {'vs floor':>9s} {'vs floor+start':>15s}")
    for name, secs in sorted(results.items(), key=lambda kv: kv[1]):
        ratios = f"{secs / base:8.2f}x {secs / started:14.2f}x"
        print(f"{name:12s} {secs:8.2f} {len(files) / secs:8.0f} {ratios}")


if __name__ == "__main__":
    main()
