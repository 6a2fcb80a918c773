"""``chop: onsets`` beside the onset detectors users would reach for, on the same loops, in one
run.

    python bench/bench_onsets.py [--loops 120] [--seed 21] [--before CHECKOUT] [--write DIR]
                                 [--show CASE] [--only NAME]

The loops are built from real one-shots with every hit's time known (:mod:`drum_loops`; needs
``apt install hydrogen-drumkits``). Scored as MIREX scores onset detection: a detection within
50 ms of a true onset, one to one; F, precision, recall; the start error of the matched ones
(95th percentile of its size, and how many start more than 2 ms after the hit: a slice that
cuts its attack); the time to detect, per second of loop and per 4-bar loop (sp404d's from the
48 kHz samples convert makes anyway, the peers' from the loop as it is); and the recall by
hard case. sp404d is timed and scored as ``sp404d convert`` cuts: the 48 kHz output, the
slices' starts after the snap to a quiet sample. Peers that install (``pip install -e
'.[bench]'``: librosa, aubio) are run on the loop at its own rate, with their onsets closer than
sp404d's shortest slice (100 ms) merged to the first, as a slicer must.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import drum_loops

from sp404d.audio import chop

CHOP_FILE = "sp404d/audio/chop.py"
WINDOW_S = 0.050
LATE_S = 0.002
MIN_SLICE_S = 0.100
OUT = 48000

Detector = Callable[[np.ndarray, int], list[float]]


def sp404d_onsets(x: np.ndarray, rate: int, sensitivity: str = "mid") -> list[float]:
    """Where ``chop: onsets 64`` starts its slices, in seconds of the loop."""
    y = soxr.resample(x, rate, OUT).astype(np.float32) if rate != OUT else x
    starts, _ = chop.onset_starts(y, OUT, 64, round(MIN_SLICE_S * OUT), sensitivity)
    return [s.start / OUT for s in chop.slices_from(y, starts, OUT)]


def before_from(checkout: Path) -> Detector:
    """The ``chop: onsets`` of an older checkout (its sp404d/audio/chop.py, numpy only then)."""
    spec = importlib.util.spec_from_file_location("chop_before", checkout / CHOP_FILE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no {CHOP_FILE} in {checkout}")
    old = importlib.util.module_from_spec(spec)
    sys.modules["chop_before"] = old
    spec.loader.exec_module(old)

    def by_before(x: np.ndarray, rate: int) -> list[float]:
        y = soxr.resample(x, rate, OUT).astype(np.float32) if rate != OUT else x
        cuts = old.onset_cuts(y, OUT, 64, round(MIN_SLICE_S * OUT))
        return [s.start / OUT for s in old.slices(y, cuts, OUT, snapped=True)]

    return by_before


def _apart(times: list[float]) -> list[float]:
    kept: list[float] = []
    for t in sorted(times):
        if not kept or t - kept[-1] >= MIN_SLICE_S:
            kept.append(t)
    return kept


def peers() -> dict[str, Detector]:
    found: dict[str, Detector] = {}
    try:
        import librosa

        def by_librosa(x: np.ndarray, rate: int) -> list[float]:
            y = x.mean(axis=1)
            times = librosa.onset.onset_detect(y=y, sr=rate, backtrack=True, units="time")
            return _apart([float(t) for t in times])

        by_librosa(np.zeros((4096, 1), np.float32), 48000)  # its first call compiles (numba)
        found["librosa onset_detect (backtrack)"] = by_librosa
    except ImportError:
        pass
    try:
        import aubio

        def by_aubio(x: np.ndarray, rate: int) -> list[float]:
            y = np.ascontiguousarray(x.mean(axis=1), dtype=np.float32)
            hop = 256
            o = aubio.onset("complex", 1024, hop, rate)
            times = []
            for k in range(0, len(y) - hop + 1, hop):
                if o(y[k : k + hop]):
                    times.append(o.get_last_s())
            return _apart(times)

        found["aubio complex"] = by_aubio
    except ImportError:
        pass
    return found


@dataclass
class Score:
    hits: int = 0
    found: int = 0
    matched: int = 0
    errors: list[float] = field(default_factory=list)
    seconds: float = 0.0
    audio_s: float = 0.0
    by_case: dict[str, list[int]] = field(default_factory=dict)  # case -> [matched, of]
    missed: list[tuple[str, float, str]] = field(default_factory=list)

    def add(self, loop: drum_loops.Loop, found: list[float], took: float) -> None:
        pairs = match(loop.onsets, found)
        self.hits += len(loop.onsets)
        self.found += len(found)
        self.matched += len(pairs)
        self.errors += [found[j] - loop.onsets[i] for i, j in pairs]
        self.seconds += took
        self.audio_s += len(loop.x) / loop.rate
        hit = {i for i, _ in pairs}
        for i, cases in enumerate(loop.cases):
            for case in cases or {"plain"}:
                tally = self.by_case.setdefault(case, [0, 0])
                tally[0] += i in hit
                tally[1] += 1
            if i not in hit:
                self.missed.append((loop.name, loop.onsets[i], ", ".join(sorted(cases))))

    def row(self, name: str) -> str:
        p = self.matched / self.found if self.found else 0.0
        r = self.matched / self.hits if self.hits else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        err = np.abs(self.errors) if self.errors else np.zeros(1)
        late = float(np.mean(np.array(self.errors) > LATE_S)) if self.errors else 0.0
        per_s = 1000 * self.seconds / self.audio_s
        return (
            f"| {name} | {f:.3f} | {p:.3f} | {r:.3f} | {1000 * np.percentile(err, 95):.1f} ms "
            f"| {100 * late:.0f}% | {per_s:.1f} ms |"
        )


def match(truth: list[float], found: list[float]) -> list[tuple[int, int]]:
    """One-to-one pairs (truth index, found index) within :data:`WINDOW_S`, closest first."""
    near = sorted(
        (abs(f - t), i, j)
        for i, t in enumerate(truth)
        for j, f in enumerate(found)
        if abs(f - t) <= WINDOW_S
    )
    used_t: set[int] = set()
    used_f: set[int] = set()
    pairs = []
    for _, i, j in near:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            pairs.append((i, j))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=120)
    ap.add_argument("--seed", type=int, default=21, help="another seed: another set of loops")
    ap.add_argument("--write", type=Path, help="also write the loops and their onsets here")
    ap.add_argument("--before", type=Path, help="also the detector of this checkout (a worktree)")
    ap.add_argument("--only", help="run only the detectors whose name holds this")
    ap.add_argument("--show", help="list the misses of sp404d in this case ('all' for every one)")
    args = ap.parse_args()
    loops = drum_loops.make_loops(args.loops, args.seed)
    if args.write:
        drum_loops.write(args.write, loops)
    detectors: dict[str, Detector] = {
        "sp404d `chop: onsets`": sp404d_onsets,
        "sp404d `onsets soft`": lambda x, r: sp404d_onsets(x, r, "soft"),
        "sp404d `onsets hard`": lambda x, r: sp404d_onsets(x, r, "hard"),
        **peers(),
    }
    if args.before:
        detectors["sp404d before (" + args.before.name + ")"] = before_from(args.before)
    if args.only:
        detectors = {n: d for n, d in detectors.items() if args.only in n}
    scores = {name: Score() for name in detectors}
    for loop in loops:
        # sp404d chops the 48 kHz output, which convert makes anyway: its resampling is not
        # the detector's time. The peers work at the loop's own rate.
        at_out = soxr.resample(loop.x, loop.rate, OUT).astype(np.float32)
        for name, detect in detectors.items():
            ours = name.startswith("sp404d")
            x, rate = (at_out, OUT) if ours else (loop.x, loop.rate)
            begun = time.perf_counter()
            found = detect(x, rate)
            scores[name].add(loop, found, time.perf_counter() - begun)
    hits = sum(len(loop.onsets) for loop in loops)
    seconds = sum(len(loop.x) / loop.rate for loop in loops)
    print(f"{len(loops)} loops, {hits} true onsets, {seconds:.0f} s of audio\n")
    print("| detector | F | precision | recall | p95 start error | slices > 2 ms late "
          "| time per s of loop |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, score in scores.items():
        print(score.row(name))
    cases = sorted({c for s in scores.values() for c in s.by_case})
    print("\nrecall by case (hits found / hits)\n")
    print("| detector | " + " | ".join(cases) + " |")
    print("|---|" + "---|" * len(cases))
    for name, score in scores.items():
        cells = [
            f"{score.by_case[c][0]}/{score.by_case[c][1]}" if c in score.by_case else "-"
            for c in cases
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    longest = max(loops, key=lambda lp: len(lp.x) / lp.rate)
    y = soxr.resample(longest.x, longest.rate, OUT).astype(np.float32)
    took = []
    for _ in range(3):
        begun = time.perf_counter()
        sp404d_onsets(y, OUT)
        took.append(time.perf_counter() - begun)
    print(f"\nsp404d per loop: {1000 * scores[next(iter(scores))].seconds / len(loops):.1f} ms "
          f"mean; the longest ({longest.name}, {len(y) / OUT:.1f} s): "
          f"{1000 * min(took):.1f} ms")  # fmt: skip
    if args.show:
        print()
        for name, at, cases_said in scores[next(iter(scores))].missed:
            if args.show == "all" or args.show in cases_said:
                print(f"missed {name} at {at:.3f} s ({cases_said or 'plain'})")


if __name__ == "__main__":
    main()
