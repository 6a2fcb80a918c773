"""A reproducible, varied corpus of drum hits and loops, made of generated sound.

Shaped like the real one in ../shared/peers.md: mostly short hits (median under a second),
some loops; WAV, FLAC and AIFF; 44.1/48/96 kHz, one 22.05 kHz 8-bit file; 16 and 24-bit; mono and
stereo; a few files under 100 ms.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

FORMATS = [("wav", "WAV"), ("flac", "FLAC"), ("aif", "AIFF")]
RATES = [44100, 44100, 44100, 48000, 48000, 96000]
SUBTYPES = ["PCM_16", "PCM_16", "PCM_24"]


def _hit(rng: np.random.Generator, rate: int, seconds: float, channels: int) -> np.ndarray:
    n = max(1, int(rate * seconds))
    t = np.arange(n) / rate
    env = np.exp(-t * rng.uniform(4, 30))
    body = np.sin(2 * np.pi * rng.uniform(40, 200) * t) * 0.7 + rng.normal(0, 0.2, n)
    x = (body * env * rng.uniform(0.3, 0.95)).astype(np.float64)
    if channels == 2:
        x = np.stack([x, np.roll(x, 7) * 0.9], axis=1)
    return np.clip(x, -1, 1)


def make_corpus(folder: Path, hits: int = 600, loops: int = 40, seed: int = 0) -> list[Path]:
    """Write the corpus (once; an existing complete corpus is reused) and return its files."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".complete-{hits}-{loops}-{seed}"
    if marker.exists():
        return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(hits + loops):
        loop = i >= hits
        seconds = rng.uniform(4, 16) if loop else float(np.clip(rng.lognormal(-0.4, 0.6), 0.05, 4))
        ext, fmt = FORMATS[i % 3]
        rate = RATES[i % len(RATES)]
        subtype = SUBTYPES[i % 3]
        channels = 2 if (loop or i % 2) else 1
        if i == 7:
            ext, fmt, rate, subtype = "wav", "WAV", 22050, "PCM_U8"
        data = _hit(rng, rate, seconds, channels)
        sub = "loops" if loop else f"kit{i % 12:02d}"
        path = folder / sub / f"{'loop' if loop else 'hit'}_{i:04d}.{ext}"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), data, rate, subtype=subtype, format=fmt)
        paths.append(path)
    marker.touch()
    return sorted(paths)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--hits", type=int, default=600)
    ap.add_argument("--loops", type=int, default=40)
    a = ap.parse_args()
    files = make_corpus(a.folder, a.hits, a.loops)
    print(f"{len(files)} files in {a.folder}")
