"""Sound shaping for a file too long to hold whole: trim, fold and normalise in passes over it,
memory bounded, to the figures :func:`sp404d.audio.render.render` takes from samples held
whole (the meters of :mod:`sp404d.audio.shape_stream`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sp404d.audio import dsp, shape, shape_stream
from sp404d.audio import render_common as rc
from sp404d.audio.decode import read_blocks
from sp404d.audio.pcmfile import PcmWriter
from sp404d.audio.probe import AudioInfo
from sp404d.audio.render_common import Length, RenderResult, RenderSpec
from sp404d.errors import RejectedError


@dataclass(frozen=True)
class _Cut:
    """What pass one decided for the passes after it: fold to mono, and the frames to keep."""

    fold: bool
    start: int
    end: int
    total: int


def render_long(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec) -> RenderResult:
    """Trim, fold and normalise a long file in three passes over it, memory bounded: pass one
    measures the input (where its sound is, how its channels fold), pass two the resampled
    output (peak, true peak, loudness), pass three writes. The same figures, and the same
    recorded ``shaping``, as :func:`_render_whole` takes from the samples held whole."""
    channels = rc.out_channels(info)
    threshold = 10 ** (spec.trim[0] / 20) if spec.trim is not None else math.inf
    span = shape_stream.SoundSpan(threshold)
    folded = shape_stream.SoundSpan(threshold)
    peak_in = 0.0
    for block in read_blocks(src, info):
        if not dsp.finite(block):
            raise rc.nan_reason()
        block = dsp.fold_channels(block)
        peak_in = max(peak_in, dsp.peak(block))
        span.add(block)
        if spec.mono and channels == 2:
            folded.add(block.mean(axis=1, keepdims=True, dtype=np.float32))
    length = rc.judge(info, span.frames, spec)
    shaping: dict[str, object] = {}
    warning = None
    fold = False
    if (
        spec.mono
        and channels == 2
        and (not spec.mono_below_s or span.frames < spec.mono_below_s * info.rate)
    ):
        fold, warning = rc.fold_verdict(span.fold_drop_db, spec, shaping)
    cut = _Cut(fold, 0, span.frames, span.frames)
    if spec.trim is not None:
        cut, length = _trimmed(folded if fold else span, cut, info, spec, length, shaping)
    scale = dsp.huge_scale(peak_in) if spec.overs == "limit" else 1.0
    out = 1 if fold else channels
    # Pass two: the output before gain, measured.
    top, frames = 0.0, 0
    true_peak = shape_stream.TruePeak(dsp.OUT_RATE, out) if spec.normalize else None
    loud = shape_stream.Loudness(out) if spec.normalize and spec.normalize[0] == "lufs" else None
    for block in _shaped_blocks(src, info, spec, cut, scale):
        top = max(top, dsp.peak(block))
        frames += len(block)
        if true_peak is not None:
            true_peak.add(block)
        if loud is not None:
            loud.add(block)
    norm, loudness_before = _normalised(spec, true_peak, loud, shaping)
    top *= norm
    gain = rc.limiter_gain(top, scale) if spec.overs == "limit" else 1.0
    if true_peak is not None:  # the gains scale both measures exactly
        shaping["peak_after_dbtp"] = round(rc.db(true_peak.value * norm * gain), 2)
        if loudness_before is not None:
            after = loudness_before + rc.db(norm * gain)
            shaping["loudness_after_lufs"] = round(after, 2)
    # Pass three: written.
    rng = np.random.default_rng(spec.seed)
    written = clipped = 0
    with PcmWriter(dst, spec.fmt, out) as pcm:
        for block in _shaped_blocks(src, info, spec, cut, scale):
            samples, overs = dsp.quantise(block * np.float32(norm), rng, gain, top)
            pcm.write(samples)
            written += len(samples)
            clipped += overs
        if written < length.min_frames:
            samples, _ = dsp.quantise(dsp.silence(length.min_frames - written, out), rng)
            pcm.write(samples)
            written = length.min_frames
    peak_db = rc.db(top * gain) if top > 0 else None
    result = RenderResult("convert", written, out, rc.db(scale * gain), clipped, True, peak_db)
    result = replace(length.annotate(result, info), shaping=shaping or None)
    return rc.with_warning(result, warning) if warning else result


def _normalised(
    spec: RenderSpec,
    true_peak: shape_stream.TruePeak | None,
    loud: shape_stream.Loudness | None,
    shaping: dict[str, object],
) -> tuple[float, float | None]:
    """The normalising gain from pass two's measures (1 without ``normalize``), and the
    loudness before it (with ``normalize: lufs``); what they were goes in ``shaping``."""
    if spec.normalize is None or true_peak is None:
        return 1.0, None
    target = spec.normalize[1]
    tp = true_peak.finish()
    norm, loudness_before = 1.0, None
    if loud is not None:
        loudness_before = loud.finish()
        shaping["loudness_before_lufs"] = round(loudness_before, 2)
        if math.isfinite(loudness_before):
            norm = 10 ** ((target - loudness_before) / 20)
    else:
        shaping["peak_before_dbtp"] = round(rc.db(tp), 2)
        norm = 10 ** (target / 20) / tp if tp > 0 else 1.0
    shaping["normalize_gain_db"] = round(rc.db(norm), 2)
    return norm, loudness_before


def _trimmed(
    span: shape_stream.SoundSpan,
    cut: _Cut,
    info: AudioInfo,
    spec: RenderSpec,
    length: Length,
    shaping: dict[str, object],
) -> tuple[_Cut, Length]:
    """The frames a trim keeps (as :func:`shape.trim_silence` would), judged by the length
    rules again."""
    assert spec.trim is not None
    threshold, keep_ms = spec.trim
    if span.first is None or span.last is None:
        raise RejectedError(f"silent: nothing above {threshold:g} dB (trim)")
    keep = round(keep_ms * info.rate / 1000)
    start, end = max(0, span.first - keep), min(cut.total, span.last + 1 + keep)
    shaping.update(
        trim_start_ms=round(start * 1000 / info.rate, 1),
        trim_end_ms=round((cut.total - end) * 1000 / info.rate, 1),
    )
    if spec.recheck is not None:
        try:
            length = replace(length, min_frames=spec.recheck(replace(info, frames=end - start)))
        except RejectedError as exc:
            raise RejectedError(f"{exc.reason} after trimming silence") from None
    return replace(cut, start=start, end=end), length


def _shaped_blocks(
    src: Path, info: AudioInfo, spec: RenderSpec, cut: _Cut, scale: float
) -> Iterator[np.ndarray]:
    """The input folded, trimmed (with the fades of :func:`shape.trim_silence`), scaled and
    resampled to 48 kHz, a block at a time."""
    fade = min((cut.end - cut.start) // 2, round(shape.FADE_MS * info.rate / 1000))

    def blocks() -> Iterator[np.ndarray]:
        at = 0
        for block in read_blocks(src, info):
            first = at
            at += len(block)
            block = dsp.fold_channels(block)
            if cut.fold:
                block = block.mean(axis=1, keepdims=True, dtype=np.float32)
            lo, hi = max(cut.start, first), min(cut.end, at)
            if lo >= hi:
                continue
            block = block[lo - first : hi - first] * np.float32(scale)
            if spec.overs != "limit" and dsp.peak(block) > dsp.HUGE:
                block, _ = dsp.tame(block, dsp.peak(block), "clip")
            yield block * _fades(lo, hi, cut, fade)[:, None] if fade > 0 else block

    out = 1 if cut.fold else rc.out_channels(info)
    return rc.to_out_rate(blocks(), info.rate, out, spec.quality)


def _fades(lo: int, hi: int, cut: _Cut, fade: int) -> np.ndarray:
    """The gains of frames ``lo..hi`` under a trim's fades (as :func:`shape.trim_silence`)."""
    index = np.arange(lo, hi)
    ramp = np.ones(hi - lo)
    if cut.start > 0:
        ramp = np.minimum(ramp, (index - cut.start) / fade)
    if cut.end < cut.total:
        ramp = np.minimum(ramp, (cut.end - 1 - index) / fade)
    return np.minimum(ramp, 1.0).astype(np.float32)
