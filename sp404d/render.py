"""Turn one probed input into one 48 kHz / 16-bit PCM file at a given (temporary) path.

Three ways, cheapest first:
- ``copy``: the input already is a plain 48 kHz/16-bit PCM file in the wanted container, so its
  bytes are copied; nothing could improve it.
- ``exact``: the samples are already 48 kHz and 16 bits or fewer: they are written unchanged
  (no dither, no gain) into a clean header.
- ``convert``: fold to stereo, soxr to 48 kHz, limit inter-sample overs, TPDF dither to 16 bits.

Short files are read whole (one soxr call: the fast path for drum hits); long ones stream in
blocks, in two passes when overs are limited (the first only measures the peak), so memory stays
bounded whatever the input's length.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from sp404d import dsp
from sp404d.decode import read_all, read_blocks
from sp404d.errors import RejectedError
from sp404d.pcmfile import PcmWriter
from sp404d.probe import AudioInfo

IN_MEMORY_FRAMES = 1 << 21
EXACT_SUBTYPES = frozenset({"PCM_16", "PCM_S8", "PCM_U8"})
SOXR_QUALITY = {"hq": "HQ", "vhq": "VHQ"}
CONTAINER = {"wav": "WAV", "aiff": "AIFF"}


@dataclass(frozen=True)
class RenderResult:
    """What was done to the samples, for the journal."""

    method: str  # copy | exact | convert
    frames: int
    channels: int
    gain_db: float
    clipped_samples: int
    dithered: bool
    peak_dbfs: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "frames": self.frames,
            "channels": self.channels,
            "duration_s": round(self.frames / dsp.OUT_RATE, 6),
            "gain_db": round(self.gain_db, 3),
            "clipped_samples": self.clipped_samples,
            "dithered": self.dithered,
            "peak_dbfs": None if self.peak_dbfs is None else round(self.peak_dbfs, 2),
        }


def _db(gain: float) -> float:
    return 20 * math.log10(gain) if gain > 0 else -math.inf


def _nan_reason() -> RejectedError:
    return RejectedError("broken audio: the file contains NaN or infinite samples")


def out_channels(info: AudioInfo) -> int:
    return min(info.channels, 2)


def render(
    src: Path,
    info: AudioInfo,
    dst: Path,
    *,
    fmt: str = "wav",
    quality: str = "hq",
    overs: str = "limit",
    min_frames: int = 0,
    seed: int = 0,
) -> RenderResult:
    """Write ``src`` to ``dst`` (an existing path, truncated) as the SP-404MK2 wants it.

    ``min_frames``: pad with silence up to this many output frames (the ``pad`` policy for
    short files). ``seed`` makes the dither, and so the output bytes, reproducible: the same
    input always gives the same file, which lets a re-run recognise its own earlier output.
    """
    channels = out_channels(info)
    exact = info.rate == dsp.OUT_RATE and info.subtype in EXACT_SUBTYPES and info.channels <= 2
    copyable = info.subtype == "PCM_16" and info.plain and info.format == CONTAINER[fmt]
    if exact and copyable and info.frames >= min_frames:
        shutil.copyfile(src, dst)
        return RenderResult("copy", info.frames, channels, 0.0, 0, False, None)
    if exact:
        return _render_exact(src, info, dst, fmt, min_frames)
    rng = np.random.default_rng(seed)
    if info.frames <= IN_MEMORY_FRAMES:
        return _render_whole(src, info, dst, fmt, quality, overs, min_frames, rng)
    return _render_streamed(src, info, dst, fmt, quality, overs, rng)


def _render_exact(src: Path, info: AudioInfo, dst: Path, fmt: str, min_frames: int) -> RenderResult:
    frames = 0
    with PcmWriter(dst, fmt, info.channels) as out:
        for block in read_blocks(src, info, dtype="int16"):
            out.write(block)
            frames += len(block)
        if frames < min_frames:
            out.write(np.zeros((min_frames - frames, info.channels), dtype=np.int16))
            frames = min_frames
    return RenderResult("exact", frames, info.channels, 0.0, 0, False, None)


def _render_whole(
    src: Path,
    info: AudioInfo,
    dst: Path,
    fmt: str,
    quality: str,
    overs: str,
    min_frames: int,
    rng: np.random.Generator,
) -> RenderResult:
    x = read_all(src, info)
    if not dsp.finite(x):
        raise _nan_reason()
    x = dsp.fold_channels(x)
    if info.rate != dsp.OUT_RATE:
        x = soxr.resample(x, info.rate, dsp.OUT_RATE, quality=SOXR_QUALITY[quality])
    if len(x) < min_frames:
        x = np.concatenate([x, dsp.silence(min_frames - len(x), x.shape[1])])
    top = dsp.peak(x)
    gain = dsp.limit_gain(top) if overs == "limit" else 1.0
    samples, clipped = dsp.quantise(x, rng, gain, top)
    with PcmWriter(dst, fmt, samples.shape[1]) as out:
        out.write(samples)
    peak_db = _db(top * gain) if top > 0 else None
    return RenderResult(
        "convert", len(samples), samples.shape[1], _db(gain), clipped, True, peak_db
    )


def _resampled(src: Path, info: AudioInfo, quality: str) -> Iterator[np.ndarray]:
    """The input, folded and resampled, as a stream of float32 blocks."""
    channels = out_channels(info)
    stream = None
    if info.rate != dsp.OUT_RATE:
        stream = soxr.ResampleStream(
            info.rate, dsp.OUT_RATE, channels, dtype="float32", quality=SOXR_QUALITY[quality]
        )
    for block in read_blocks(src, info):
        if not dsp.finite(block):
            raise _nan_reason()
        block = dsp.fold_channels(block)
        out = stream.resample_chunk(block) if stream is not None else block
        if len(out):
            yield out
    if stream is not None:
        tail = stream.resample_chunk(np.zeros((0, channels), dtype=np.float32), last=True)
        if len(tail):
            yield tail


def _render_streamed(
    src: Path,
    info: AudioInfo,
    dst: Path,
    fmt: str,
    quality: str,
    overs: str,
    rng: np.random.Generator,
) -> RenderResult:
    gain = 1.0
    top = None
    if overs == "limit":
        top = max((dsp.peak(b) for b in _resampled(src, info, quality)), default=0.0)
        gain = dsp.limit_gain(top)
    channels = out_channels(info)
    frames = clipped = 0
    running_peak = 0.0
    with PcmWriter(dst, fmt, channels) as out:
        for block in _resampled(src, info, quality):
            samples, overs_here = dsp.quantise(block, rng, gain)
            out.write(samples)
            frames += len(samples)
            clipped += overs_here
            if top is None:
                running_peak = max(running_peak, dsp.peak(block))
    top = running_peak if top is None else top
    peak_db = _db(top * gain) if top > 0 else None
    return RenderResult("convert", frames, channels, _db(gain), clipped, True, peak_db)
