"""sp404d's conversion quality beside the peers', measured on the same tones in one run.

    python bench/bench_quality.py [methods...]     (default: sp404d sox ffmpeg soxr_hq soxr_vhq)

Uses the measurement of ../shared/bench/quality.py (SNR of a loud 1 kHz tone 44.1k/24 -> 48k/16,
alias residue of a 30 kHz tone from 96 kHz, passband level at 19 kHz, 3rd harmonic of a -90 dBFS
tone) and adds sp404d's own path (probe + render, as `sp404d convert` runs it). sox and ffmpeg
rows need those programs installed; missing ones are left out.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import soundfile as sf

SHARED = Path(__file__).resolve().parents[2] / "shared" / "bench"
sys.path.insert(0, str(SHARED))
try:
    import quality as peers  # type: ignore[import-not-found]
except ImportError:
    sys.exit(f"needs ../shared/bench/quality.py (looked in {SHARED})")

from sp404d.audio.probe import probe  # noqa: E402
from sp404d.audio.render import RenderSpec, render  # noqa: E402
from sp404d.audio.render_chop import render_chopped  # noqa: E402


def run_sp404d(src: str, dst: str) -> None:
    Path(dst).touch()
    render(Path(src), probe(Path(src)), Path(dst), RenderSpec(seed=1))


def run_shaped(src: str, dst: str) -> None:
    """sp404d with trim (a -100 dB threshold: cuts nothing of a tone) and the fold to mono."""
    Path(dst).touch()
    spec = RenderSpec(seed=1, trim=(-100.0, 5.0), mono=True)
    render(Path(src), probe(Path(src)), Path(dst), spec)


def run_normalised(src: str, dst: str) -> None:
    """sp404d with ``normalize: peak -1``: every tone brought to -1 dBTP, so the level columns
    read relative to that; SNR and the harmonic's distance from its tone are what to compare."""
    Path(dst).touch()
    render(Path(src), probe(Path(src)), Path(dst), RenderSpec(seed=1, normalize=("peak", -1.0)))


def run_chopped(src: str, dst: str) -> None:
    """sp404d with ``chop: 2``: the first of the two equal slices (1 s of the 2 s tone) is
    measured; the cut and its fade fall at its end, outside the steady middle measured."""
    spare = Path(dst + ".2.wav")
    Path(dst).touch()
    spare.touch()
    spec = RenderSpec(seed=1, chop=("equal", 2))
    render_chopped(Path(src), probe(Path(src)), [Path(dst), spare], spec)
    spare.unlink()


def run_half(src: str, dst: str) -> None:
    """The plain conversion's first half (its samples copied, not dithered again): the
    baseline of the same length for the chopped row."""
    run_sp404d(src, dst)
    y, rate = sf.read(dst, dtype="int16", always_2d=True)
    sf.write(dst, y[: len(y) // 2], rate, subtype="PCM_16")


def main() -> None:
    methods = dict(peers.M)
    methods["sp404d"] = run_sp404d
    methods["trim+mono"] = run_shaped
    methods["normalised"] = run_normalised
    methods["chopped"] = run_chopped
    methods["half"] = run_half
    wanted = sys.argv[1:] or [
        "sp404d", "trim+mono", "normalised", "half", "chopped",
        "sox", "ffmpeg", "soxr_hq", "soxr_vhq",
    ]  # fmt: skip
    wanted = [m for m in wanted if m not in ("sox", "ffmpeg") or shutil.which(m)]
    cases = {
        "snr_1k": (44100, 1000, -1.0),
        "alias_30k": (96000, 30000, -6.0),
        "pass_19k": (44100, 19000, -6.0),
        "low_1k": (44100, 1000, -90.0),
    }
    d = tempfile.mkdtemp()
    srcs = {}
    for name, (rate, freq, db) in cases.items():
        p = os.path.join(d, name + ".wav")
        sf.write(p, peers.tone(rate, freq, db), rate, subtype="PCM_24")
        srcs[name] = p
    print(
        f"{'method':10s} {'SNR 1k dB':>10s} {'alias 18k dBFS':>15s} {'19k change dB':>14s} "
        f"{'-90 dBFS tone 3rd harm. dBFS':>29s}"
    )
    for m in wanted:
        out = {}
        for name, p in srcs.items():
            o = os.path.join(d, f"{m}_{name}.wav")
            methods[m](p, o)
            y, rate = sf.read(o, always_2d=True)
            y = y[:, 0]
            out[name] = (
                peers.snr(y, rate, 1000)
                if name == "snr_1k"
                else peers.level_at(y, rate, 18000)
                if name == "alias_30k"
                else peers.level_at(y, rate, 3000)
                if name == "low_1k"
                else peers.level_at(y, rate, 19000) - (-6.0)
            )
        print(
            f"{m:10s} {out['snr_1k']:10.1f} {out['alias_30k']:15.1f} {out['pass_19k']:14.2f} "
            f"{out['low_1k']:29.1f}",
            flush=True,
        )
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
