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

Every way counts the frames it decoded against the length the header gave. A decode that ends
early is a truncated file: refused (``truncated: reject``) or kept and recorded in the result
(``truncated: keep``).

Sound shaping: a file held whole is shaped here; a longer one in passes
(:mod:`sp404d.audio.render_long`); a chopped loop's slices are cut from the whole
(:mod:`sp404d.audio.render_chop`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soxr

from sp404d.audio import dsp, shape
from sp404d.audio.decode import read_all, read_blocks
from sp404d.audio.listen import hear, hear_file, listenable
from sp404d.audio.pcmfile import PcmWriter
from sp404d.audio.probe import AudioInfo
from sp404d.audio.render_common import (
    SOXR_QUALITY,
    Length,
    RenderResult,
    RenderSpec,
    db,
    fold_verdict,
    judge,
    limiter_gain,
    nan_reason,
    out_channels,
    to_out_rate,
    with_warning,
)
from sp404d.audio.render_long import render_long
from sp404d.errors import RejectedError

__all__ = [
    "IN_MEMORY_FRAMES",
    "RenderResult",
    "RenderSpec",
    "finish",
    "heard_as_rendered",
    "prepare_whole",
    "render",
]

IN_MEMORY_FRAMES = 1 << 21
DEFAULT_SPEC = RenderSpec()
EXACT_SUBTYPES = frozenset({"PCM_16", "PCM_S8", "PCM_U8"})
CONTAINER = {"wav": "WAV", "aiff": "AIFF"}


def render(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec = DEFAULT_SPEC) -> RenderResult:
    """Write ``src`` to ``dst`` (an existing path, truncated) as the SP-404MK2 wants it; with
    ``hear_bpm`` or ``hear_key``, what its sound says of them too."""
    result = _render(src, info, dst, spec)
    if (spec.hear_bpm or spec.hear_key) and result.heard is None and result.method != "convert":
        # Copied, never decoded: read once for listening (plain PCM, no decode).
        heard = hear_file(src, info, spec.hear_bpm, spec.hear_key)
        result = replace(result, heard=heard or None)
    return result


def heard_as_rendered(src: Path, info: AudioInfo, spec: RenderSpec) -> dict[str, object]:
    """What :func:`render` would record as heard for ``src`` under ``spec``, without writing:
    the samples its job listens to (decoded, folded, shaped by trim, mono and normalise,
    resampled at its quality, before padding), so ``check``, the planner and the job say the
    same BPM and key to the last decimal. Raises what the render would (``check`` and the
    planner leave a refusal to the job)."""
    if not (spec.hear_bpm or spec.hear_key):
        return {}
    if spec.chop is not None:  # a chop holds its loop whole, up to 43 s of output at any rate
        if info.frames * dsp.OUT_RATE > IN_MEMORY_FRAMES * info.rate:
            return {}  # too long to chop: refused
    elif not spec.shapes and _exact(info):
        return hear_file(src, info, spec.hear_bpm, spec.hear_key)  # copied, or sample for sample
    elif not (info.frames <= IN_MEMORY_FRAMES and info.exact_length):
        return {}  # streamed: not listened to
    whole = prepare_whole(src, info, replace(spec, min_frames=0, recheck=None))
    return hear(whole.x[: whole.sounded], dsp.OUT_RATE, spec.hear_bpm, spec.hear_key)


def _exact(info: AudioInfo) -> bool:
    """48 kHz 16-bit (or 8-bit) mono or stereo: written sample for sample, never resampled."""
    return info.rate == dsp.OUT_RATE and info.subtype in EXACT_SUBTYPES and info.channels <= 2


def _render(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec) -> RenderResult:
    channels = out_channels(info)
    exact = _exact(info)
    copyable = (
        info.subtype == "PCM_16"
        and info.plain
        and info.format == CONTAINER[spec.fmt]
        and not info.truncated  # a header promising more than the file holds is not valid
        and info.raw_offset is None
    )
    if spec.shapes:
        if info.frames <= IN_MEMORY_FRAMES and info.exact_length:
            return _render_whole(src, info, dst, spec)
        return render_long(src, info, dst, spec)
    if exact and copyable and info.frames >= spec.min_frames:
        shutil.copyfile(src, dst)
        return RenderResult("copy", info.frames, channels, 0.0, 0, False, None)
    if exact:
        return _render_exact(src, info, dst, spec)
    if info.frames <= IN_MEMORY_FRAMES and info.exact_length:
        return _render_whole(src, info, dst, spec)
    return _render_streamed(src, info, dst, spec)


def _render_exact(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec) -> RenderResult:
    frames = 0
    listen = (spec.hear_bpm or spec.hear_key) and listenable(info)
    kept: list[np.ndarray] = []  # for listening: the decode, not a second one
    with PcmWriter(dst, spec.fmt, info.channels) as out:
        for block in read_blocks(src, info, dtype="int16"):
            out.write(block)
            frames += len(block)
            if listen:
                kept.append(block)
        length = judge(info, frames, spec)
        if frames < length.min_frames:
            out.write(np.zeros((length.min_frames - frames, info.channels), dtype=np.int16))
            frames = length.min_frames
    result = RenderResult("exact", frames, info.channels, 0.0, 0, False, None)
    result = length.annotate(result, info)
    if not listen:
        return result
    # As libsndfile reads 16-bit samples as float (exactly, over 2^15): what check hears.
    x = np.concatenate(kept).astype(np.float32) if kept else dsp.silence(0, info.channels)
    x *= np.float32(1.0 / 32768.0)
    return replace(result, heard=hear(x, dsp.OUT_RATE, spec.hear_bpm, spec.hear_key))


@dataclass(frozen=True)
class Whole:
    """A whole input, decoded, shaped and resampled: float samples at 48 kHz, not yet limited
    or dithered, with what is needed to finish them."""

    x: np.ndarray
    length: Length
    sounded: int  # frames of x before any padding: what is listened to, as check hears it
    scale: float
    gain: float  # the limiter's
    top: float
    shaping: dict[str, object]
    warning: str | None


def prepare_whole(src: Path, info: AudioInfo, spec: RenderSpec) -> Whole:
    x = read_all(src, info)
    length = judge(info, len(x), spec)
    if not dsp.finite(x):
        raise nan_reason()
    x = dsp.fold_channels(x)
    x, shaping, warning = _shape_input(x, info.rate, spec)
    if "trim_start_ms" in shaping and spec.recheck is not None:
        # The length rules again, on what the trim left: too short is refused or padded.
        try:
            length = replace(length, min_frames=spec.recheck(replace(info, frames=len(x))))
        except RejectedError as exc:
            raise RejectedError(f"{exc.reason} after trimming silence") from None
    x, scale = dsp.tame(x, dsp.peak(x), spec.overs)
    if info.rate != dsp.OUT_RATE:
        x = soxr.resample(x, info.rate, dsp.OUT_RATE, quality=SOXR_QUALITY[spec.quality])
    sounded = len(x)
    if len(x) < length.min_frames:
        x = np.concatenate([x, dsp.silence(length.min_frames - len(x), x.shape[1])])
    if spec.normalize is not None:
        way, target = spec.normalize
        if way == "lufs":
            gain, before = shape.loudness_gain(x, target)
            shaping["loudness_before_lufs"] = round(before, 2)
        else:
            gain, before = shape.peak_gain(x, dsp.OUT_RATE, target)
            shaping["peak_before_dbtp"] = round(before, 2)
        x = x * np.float32(gain)  # not part of ``scale``: the limiter judges the result
        shaping["normalize_gain_db"] = round(db(gain), 2)
    top = dsp.peak(x)
    gain = limiter_gain(top, scale) if spec.overs == "limit" else 1.0
    if spec.normalize is not None:
        final = x * np.float32(gain)
        shaping["peak_after_dbtp"] = round(db(shape.true_peak(final, dsp.OUT_RATE)), 2)
        if spec.normalize[0] == "lufs":
            shaping["loudness_after_lufs"] = round(shape.loudness(final), 2)
    return Whole(x, length, sounded, scale, gain, top, shaping, warning)


def finish(
    whole: Whole,
    x: np.ndarray,
    info: AudioInfo,
    dst: Path,
    spec: RenderSpec,
    seed: int | tuple[int, int],
) -> RenderResult:
    """Limit, dither and write ``x`` (the whole, or a slice of it) to ``dst``."""
    top = whole.top if x is whole.x else dsp.peak(x)
    samples, clipped = dsp.quantise(x, np.random.default_rng(seed), whole.gain, whole.top)
    with PcmWriter(dst, spec.fmt, samples.shape[1]) as out:
        out.write(samples)
    peak_db = db(top * whole.gain) if top > 0 else None
    gain_db = db(whole.scale * whole.gain)
    result = RenderResult(
        "convert", len(samples), samples.shape[1], gain_db, clipped, True, peak_db
    )
    result = whole.length.annotate(result, info)
    result = replace(result, shaping=whole.shaping or None)
    return with_warning(result, whole.warning) if whole.warning else result


def _render_whole(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec) -> RenderResult:
    whole = prepare_whole(src, info, spec)
    result = finish(whole, whole.x, info, dst, spec, spec.seed)
    if not (spec.hear_bpm or spec.hear_key):
        return result
    heard = hear(whole.x[: whole.sounded], dsp.OUT_RATE, spec.hear_bpm, spec.hear_key)
    return replace(result, heard=heard)


def _shape_input(
    x: np.ndarray, rate: int, spec: RenderSpec
) -> tuple[np.ndarray, dict[str, object], str | None]:
    """Fold and trim at the input's rate; what was done, and a warning if one is due."""
    shaping: dict[str, object] = {}
    warning = None
    short = not spec.mono_below_s or len(x) < spec.mono_below_s * rate
    if spec.mono and x.shape[1] == 2 and short:
        fold = shape.fold_to_mono(x)
        folds, warning = fold_verdict(fold.drop_db, spec, shaping)
        if folds:
            x = fold.samples
    if spec.trim is not None:
        threshold, keep = spec.trim
        trimmed = shape.trim_silence(x, rate, threshold, keep)
        if trimmed is None:
            raise RejectedError(f"silent: nothing above {threshold:g} dB (trim)")
        x = trimmed.samples
        shaping.update(
            trim_start_ms=round(trimmed.start_ms, 1), trim_end_ms=round(trimmed.end_ms, 1)
        )
    return x, shaping, warning


@dataclass
class _Tally:
    """What a pass over the input saw: frames decoded and the loudest input sample."""

    frames: int = 0
    peak: float = 0.0


def _resampled(
    src: Path, info: AudioInfo, quality: str, scale: float, tally: _Tally
) -> Iterator[np.ndarray]:
    """The input, folded, scaled by ``scale`` and resampled, as float32 blocks.

    Samples past :data:`dsp.HUGE` with no scale given are clipped there (see :func:`dsp.tame`):
    the ``clip`` policy's answer, and for ``limit`` a first pass that only measures, to be
    run again with the scale ``tally.peak`` calls for.
    """

    def blocks() -> Iterator[np.ndarray]:
        for block in read_blocks(src, info):
            if not dsp.finite(block):
                raise nan_reason()
            tally.frames += len(block)
            block = dsp.fold_channels(block)
            top = dsp.peak(block)
            tally.peak = max(tally.peak, top)
            if scale != 1.0:
                block = block * np.float32(scale)
            elif top > dsp.HUGE:
                block, _ = dsp.tame(block, top, "clip")
            yield block

    return to_out_rate(blocks(), info.rate, out_channels(info), quality)


def _peak(blocks: Iterator[np.ndarray]) -> float:
    return max((dsp.peak(b) for b in blocks), default=0.0)


def _render_streamed(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec) -> RenderResult:
    rng = np.random.default_rng(spec.seed)
    gain = scale = 1.0
    top = None
    length = None
    if spec.overs == "limit":
        tally = _Tally()
        top = _peak(_resampled(src, info, spec.quality, 1.0, tally))
        if tally.peak > dsp.HUGE:  # garbage-sized samples: scale them, and measure again
            scale = dsp.huge_scale(tally.peak)
            tally = _Tally()
            top = _peak(_resampled(src, info, spec.quality, scale, tally))
        length = judge(info, tally.frames, spec)
        gain = limiter_gain(top, scale)
    channels = out_channels(info)
    frames = clipped = 0
    running_peak = 0.0
    tally = _Tally()
    with PcmWriter(dst, spec.fmt, channels) as out:
        for block in _resampled(src, info, spec.quality, scale, tally):
            samples, overs_here = dsp.quantise(block, rng, gain)
            out.write(samples)
            frames += len(samples)
            clipped += overs_here
            if top is None:
                running_peak = max(running_peak, dsp.peak(block))
        if length is None:
            length = judge(info, tally.frames, spec)
        if frames < length.min_frames:
            samples, _ = dsp.quantise(dsp.silence(length.min_frames - frames, channels), rng)
            out.write(samples)
            frames = length.min_frames
    top = running_peak if top is None else top
    peak_db = db(top * gain) if top > 0 else None
    result = RenderResult("convert", frames, channels, db(scale * gain), clipped, True, peak_db)
    return length.annotate(result, info)
