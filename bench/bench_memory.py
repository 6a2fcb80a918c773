"""Peak memory of `sp404d convert` on one long file: does streaming keep it bounded?

    python bench/bench_memory.py [--minutes 30] [--workdir /tmp] [--interval 0.05]

Writes a MINUTES-long 96 kHz / 24-bit stereo WAV (30 minutes is about 1 GB; written block by
block with soundfile.SoundFile, so the generator itself stays small) into a temporary folder
under --workdir, after checking there is room for it and its output. Then runs

    python -m sp404d convert FILE --outbox D --journal J --config C

as a subprocess (C only raises ``max_duration_s`` above the file's length: by default sp404d
refuses inputs over 16 minutes, the SP-404MK2's limit) and samples, every --interval seconds,
the RSS (VmRSS) of every process in its tree (the convert process and its worker children, found
through /proc). Printed: the peak of the tree's total RSS, the peak of the largest single
process (also its kernel-kept high-water mark, VmHWM, which no sampling interval can miss), the
peak total PSS (a page shared by n processes counts 1/n: forked workers share the parent's
libraries, which a plain RSS sum counts twice), and the wall time. The same is measured, as a
baseline, for a bare ``python -c "import numpy, soxr, soundfile"`` (with a short sleep so the
sampler sees it after its imports). Target: peak under 250 MB.

The output is checked: one file, 48 kHz, PCM_16, stereo, MINUTES * 60 * 48000 frames. Every
file written is deleted at the end. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procfs import descendants, read, status_kb

IN_RATE = 48000 * 2
OUT_RATE = 48000
CHANNELS = 2
BLOCK_FRAMES = IN_RATE * 4  # 4 s: 3 MB of float32 per block


# --- /proc ------------------------------------------------------------------------------------


@dataclass
class Peaks:
    """What the sampler saw of one process tree."""

    total_rss_mb: float = 0.0
    single_rss_mb: float = 0.0
    total_pss_mb: float = 0.0
    processes: int = 0
    samples: int = 0
    hwm_mb: dict[int, float] = field(default_factory=dict)  # pid -> last VmHWM seen

    def add(self, root: int) -> None:
        total = pss = 0.0
        count = 0
        for pid in descendants(root):
            status = read(f"/proc/{pid}/status")
            if status is None:
                continue
            rss = status_kb(status, "VmRSS") / 1024
            if rss == 0:  # a zombie, or a kernel thread
                continue
            count += 1
            total += rss
            self.single_rss_mb = max(self.single_rss_mb, rss)
            self.hwm_mb[pid] = status_kb(status, "VmHWM") / 1024
            rollup = read(f"/proc/{pid}/smaps_rollup")
            pss += status_kb(rollup, "Pss") / 1024 if rollup else rss
        self.total_rss_mb = max(self.total_rss_mb, total)
        self.total_pss_mb = max(self.total_pss_mb, pss)
        self.processes = max(self.processes, count)
        self.samples += 1


def watch(
    cmd: list[str], env: dict[str, str], interval: float, log: Path
) -> tuple[Peaks, float, int]:
    """Run ``cmd``, sampling its tree's memory until it exits: (peaks, wall seconds, exit code)."""
    peaks = Peaks()
    t = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while proc.poll() is None:
                peaks.add(proc.pid)
                time.sleep(interval)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return peaks, time.perf_counter() - t, proc.returncode


# --- the input --------------------------------------------------------------------------------


def write_long_wav(path: Path, frames: int) -> None:
    """A quiet chord with noise and a slow tremolo, 96 kHz / 24-bit stereo, block by block."""
    rng = np.random.default_rng(0)
    freqs = np.array([110.0, 164.8, 220.0, 277.2])
    with sf.SoundFile(str(path), "w", IN_RATE, CHANNELS, subtype="PCM_24", format="WAV") as f:
        for start in range(0, frames, BLOCK_FRAMES):
            n = min(BLOCK_FRAMES, frames - start)
            t = (start + np.arange(n)) / IN_RATE
            chord = np.sin(2 * np.pi * freqs[:, None] * t).sum(axis=0) / len(freqs)
            tremolo = 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)
            left = 0.5 * chord * tremolo + rng.normal(0, 0.01, n)
            right = 0.5 * np.roll(chord, 13) * (1.6 - tremolo) + rng.normal(0, 0.01, n)
            f.write(np.stack([left, right], axis=1).astype(np.float32))


# --- main -------------------------------------------------------------------------------------


def _report(name: str, peaks: Peaks, wall: float) -> None:
    hwm = max(peaks.hwm_mb.values(), default=0.0)
    print(
        f"{name:9s} {wall:7.1f} {peaks.total_rss_mb:10.1f} {peaks.single_rss_mb:11.1f} "
        f"{hwm:9.1f} {peaks.total_pss_mb:10.1f} {peaks.processes:6d} {peaks.samples:8d}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between samples")
    a = ap.parse_args()
    if sys.platform != "linux":
        sys.exit("bench_memory.py needs Linux (/proc)")

    in_frames = round(a.minutes * 60 * IN_RATE)
    out_frames = round(a.minutes * 60 * OUT_RATE)
    need = in_frames * CHANNELS * 3 + out_frames * CHANNELS * 2
    a.workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(a.workdir).free
    print(
        f"{a.minutes:g} min 96 kHz/24-bit stereo: needs {need / 1e9:.2f} GB in {a.workdir} "
        f"(input and output), {free / 1e9:.1f} GB free"
    )
    if free < need * 1.1 + 100e6:
        print("not enough free space: choose another --workdir or fewer --minutes")
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=a.workdir))
    try:
        source = tmp / "long_take.wav"
        t = time.perf_counter()
        write_long_wav(source, in_frames)
        print(
            f"wrote {source} ({source.stat().st_size / 1e9:.2f} GB) in "
            f"{time.perf_counter() - t:.1f} s"
        )

        env = dict(os.environ)
        env.update(HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "home" / ".config"))
        env.update(XDG_STATE_HOME=str(tmp / "home" / ".local" / "state"))
        max_s = int(a.minutes * 60) + 60
        config = tmp / "sp404d.yaml"
        config.write_text(yaml.safe_dump({"max_duration_s": max_s}))
        outbox = tmp / "out"
        convert = [
            sys.executable,
            "-m",
            "sp404d",
            "convert",
            str(source),
            "--outbox",
            str(outbox),
            "--journal",
            str(tmp / "journal.jsonl"),
            "--config",
            str(config),
        ]
        bare = [sys.executable, "-c", "import numpy, soxr, soundfile, time; time.sleep(0.5)"]

        base, base_wall, _ = watch(bare, env, a.interval, tmp / "bare.log")
        peaks, wall, code = watch(convert, env, a.interval, tmp / "convert.log")
        print(f"convert exit code {code}; it printed:")
        for line in (tmp / "convert.log").read_text(errors="replace").splitlines():
            print(f"    {line}")
        print(
            f"{'process':9s} {'wall s':>7s} {'RSS tot MB':>10s} {'RSS max MB':>11s} "
            f"{'HWM max':>9s} {'PSS tot MB':>10s} {'procs':>6s} {'samples':>8s}"
        )
        _report("bare", base, base_wall)
        _report("convert", peaks, wall)
        print(
            f"target: convert's peak total RSS under 250 MB: "
            f"{'met' if peaks.total_rss_mb < 250 else 'NOT met'} ({peaks.total_rss_mb:.0f} MB); "
            f"{a.minutes * 60 / wall:.0f}x real time"
        )

        outputs = sorted(p for p in outbox.rglob("*") if p.is_file())
        if len(outputs) != 1:
            print(f"output: expected one file, found {[p.name for p in outputs]}")
            return 1
        info = sf.info(str(outputs[0]))
        ok = (info.frames, info.samplerate, info.subtype, info.channels) == (
            out_frames,
            OUT_RATE,
            "PCM_16",
            CHANNELS,
        )
        print(
            f"output {outputs[0].name}: {info.frames} frames (expected {out_frames}), "
            f"{info.samplerate} Hz, {info.subtype}, {info.channels} ch: {'OK' if ok else 'WRONG'}"
        )
        return 0 if ok and code == 0 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
