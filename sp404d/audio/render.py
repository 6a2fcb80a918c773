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
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soxr

from sp404d.audio import chop, dsp, shape, shape_stream
from sp404d.audio.decode import read_all, read_blocks
from sp404d.audio.pcmfile import PcmWriter
from sp404d.audio.probe import AudioInfo, truncated_reason
from sp404d.errors import RejectedError

IN_MEMORY_FRAMES = 1 << 21
EXACT_SUBTYPES = frozenset({"PCM_16", "PCM_S8", "PCM_U8"})
SOXR_QUALITY = {"hq": "HQ", "vhq": "VHQ"}
CONTAINER = {"wav": "WAV", "aiff": "AIFF"}
# A decode may fall this far short of the header's length and still be whole: an MP3's or
# AAC's count leaves out encoder delay and padding (measured: under two 1152-sample frames).
SHORT_SLACK_FRAMES = 2 * 1152
SHORT_SLACK_FRACTION = 0.02

# Re-checks the real length once decoded (too short, too long) and returns the frames to pad
# to: the job's rules, applied again when the decode did not match the header.
Recheck = Callable[[AudioInfo], int]


@dataclass(frozen=True)
class RenderSpec:
    """How one input is to be rendered: the output's form and the rules for judging its decode.

    One value for every way of rendering (copy, exact, convert) and the passes they make, so
    each way reads the same choices and none is dropped along the way.
    """

    fmt: str = "wav"  # wav | aiff
    quality: str = "hq"  # soxr's: hq | vhq
    overs: str = "limit"  # limit | clip
    # Pad with silence up to this many output frames (the ``pad`` policy for short files).
    min_frames: int = 0
    # Makes the dither, and so the output bytes, reproducible: the same input always gives the
    # same file, which lets a re-run recognise its own earlier output.
    seed: int = 0
    truncated: str = "reject"  # reject | keep a file whose decode ends early
    # Applies the length rules again when the decode's length differs from the header's.
    recheck: Recheck | None = None
    # Sound shaping (:mod:`sp404d.audio.shape`), all off by default.
    trim: tuple[float, float] | None = None  # (threshold dB, keep ms)
    normalize: tuple[str, float] | None = None  # ("peak", dBTP)
    mono: bool = False
    mono_below_s: float = 0.0  # 0: fold every file
    fold_cancels: str = "stereo"  # a fold whose sides cancel: kept stereo, or folded anyway
    chop: tuple[str, int] | None = None  # ("equal", N) or ("onsets", most): render_chopped
    slice_min_frames: int = 0  # no slice shorter: padded with silence, or with
    pad_slices: bool = True  # False, equal slices that short are refused

    @property
    def shapes(self) -> bool:
        return self.trim is not None or self.normalize is not None or self.mono


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
    truncated: tuple[float, float | None] | None = None  # kept: (decoded s, promised s)
    recovered: str | None = None  # how a broken header was read round
    warning: str | None = None  # one line a musician should know about this output
    shaping: dict[str, object] | None = None  # what trim, fold and normalise did, measured

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "method": self.method,
            "frames": self.frames,
            "channels": self.channels,
            "duration_s": round(self.frames / dsp.OUT_RATE, 6),
            "gain_db": round(self.gain_db, 3),
            "clipped_samples": self.clipped_samples,
            "dithered": self.dithered,
            "peak_dbfs": None if self.peak_dbfs is None else round(self.peak_dbfs, 2),
        }
        if self.truncated is not None:
            decoded, promised = self.truncated
            out["truncated"] = {
                "decoded_s": round(decoded, 3),
                "promised_s": None if promised is None else round(promised, 3),
            }
        if self.recovered is not None:
            out["recovered"] = self.recovered
        if self.warning is not None:
            out["warning"] = self.warning
        if self.shaping:
            out["shaping"] = self.shaping
        return out


def _db(gain: float) -> float:
    return 20 * math.log10(gain) if gain > 0 else -math.inf


def _nan_reason() -> RejectedError:
    return RejectedError("broken audio: the file contains NaN or infinite samples")


def out_channels(info: AudioInfo) -> int:
    return min(info.channels, 2)


@dataclass(frozen=True)
class _Length:
    """The judgement on a decode's length: frames to pad to, and what to record."""

    min_frames: int
    truncated: tuple[float, float | None] | None = None

    def annotate(self, result: RenderResult, info: AudioInfo) -> RenderResult:
        warnings = []
        recovered = None
        if info.raw_offset is not None:
            recovered = "data size 0 in the header"
            warnings.append(
                "the header's data size was 0 (a recorder that never finished the file?): "
                "read the audio to the end of the file"
            )
        if self.truncated is not None:
            decoded, promised = self.truncated
            warnings.append(truncated_reason(decoded, promised) + "; kept what it holds")
        return replace(
            result,
            truncated=self.truncated,
            recovered=recovered,
            warning="; ".join(warnings) or None,
        )


def _judge(info: AudioInfo, decoded: int, spec: RenderSpec) -> _Length:
    """Compare the frames decoded with the header's length (see the module's docstring)."""
    rate = info.rate
    min_frames = spec.min_frames
    if decoded == 0:  # nothing to keep, nothing worth padding into a sample of silence
        if not info.exact_length:
            raise RejectedError("empty: the file holds no audio")
        raise RejectedError(truncated_reason(0.0, (info.promised_frames or info.frames) / rate))
    promised = info.promised_frames / rate if info.promised_frames else None
    truncated = (decoded / rate, promised) if info.truncated else None
    slack = max(SHORT_SLACK_FRAMES, SHORT_SLACK_FRACTION * info.frames)
    if info.exact_length and info.frames - decoded > slack:
        promised = (info.promised_frames or info.frames) / rate
        if spec.truncated == "reject":
            raise RejectedError(truncated_reason(decoded / rate, promised))
        truncated = (decoded / rate, promised)
    if decoded != info.frames and spec.recheck is not None:
        min_frames = spec.recheck(replace(info, frames=decoded))
    return _Length(min_frames, truncated)


def render(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec = RenderSpec()) -> RenderResult:
    """Write ``src`` to ``dst`` (an existing path, truncated) as the SP-404MK2 wants it."""
    channels = out_channels(info)
    exact = info.rate == dsp.OUT_RATE and info.subtype in EXACT_SUBTYPES and info.channels <= 2
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
        return _render_streamed_shaped(src, info, dst, spec)
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
    with PcmWriter(dst, spec.fmt, info.channels) as out:
        for block in read_blocks(src, info, dtype="int16"):
            out.write(block)
            frames += len(block)
        length = _judge(info, frames, spec)
        if frames < length.min_frames:
            out.write(np.zeros((length.min_frames - frames, info.channels), dtype=np.int16))
            frames = length.min_frames
    return length.annotate(RenderResult("exact", frames, info.channels, 0.0, 0, False, None), info)


@dataclass(frozen=True)
class _Whole:
    """A whole input, decoded, shaped and resampled: float samples at 48 kHz, not yet limited
    or dithered, with what is needed to finish them."""

    x: np.ndarray
    length: _Length
    scale: float
    gain: float  # the limiter's
    top: float
    shaping: dict[str, object]
    warning: str | None


def _prepare_whole(src: Path, info: AudioInfo, spec: RenderSpec) -> _Whole:
    x = read_all(src, info)
    length = _judge(info, len(x), spec)
    if not dsp.finite(x):
        raise _nan_reason()
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
        shaping["normalize_gain_db"] = round(_db(gain), 2)
    top = dsp.peak(x)
    gain = _limit(top, scale) if spec.overs == "limit" else 1.0
    if spec.normalize is not None:
        final = x * np.float32(gain)
        shaping["peak_after_dbtp"] = round(_db(shape.true_peak(final, dsp.OUT_RATE)), 2)
        if spec.normalize[0] == "lufs":
            shaping["loudness_after_lufs"] = round(shape.loudness(final), 2)
    return _Whole(x, length, scale, gain, top, shaping, warning)


def _finish(
    whole: _Whole,
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
    peak_db = _db(top * whole.gain) if top > 0 else None
    gain_db = _db(whole.scale * whole.gain)
    result = RenderResult(
        "convert", len(samples), samples.shape[1], gain_db, clipped, True, peak_db
    )
    result = whole.length.annotate(result, info)
    result = replace(result, shaping=whole.shaping or None)
    return _warn(result, whole.warning) if whole.warning else result


def _render_whole(src: Path, info: AudioInfo, dst: Path, spec: RenderSpec) -> RenderResult:
    whole = _prepare_whole(src, info, spec)
    return _finish(whole, whole.x, info, dst, spec, spec.seed)


def render_chopped(
    src: Path, info: AudioInfo, dsts: Sequence[Path], spec: RenderSpec
) -> list[tuple[chop.Slice, RenderResult]]:
    """Write ``src`` as slices (``spec.chop``) to the first of ``dsts``, one a slice: as many
    as the way of chopping gives, at most ``len(dsts)``.

    The whole loop is shaped, normalised and limited as one (slices keep their levels against
    each other); each slice is then cut, faded where its cut is inside sound, and dithered
    with its own seed.
    """
    assert spec.chop is not None
    way, count = spec.chop
    if info.frames > IN_MEMORY_FRAMES or not info.exact_length:
        minutes = info.duration / 60
        length = f"{minutes:.1f} min" if minutes >= 1 else f"{info.duration:.1f} s"
        raise RejectedError(f"too long to chop: {length}; chop takes files up to 43 s")
    whole = _prepare_whole(src, info, spec)
    x = whole.x
    least = spec.slice_min_frames
    if way == "equal":
        if len(x) // count < least and not spec.pad_slices:
            ms = 1000 * len(x) / count / dsp.OUT_RATE
            raise RejectedError(
                f"chop {count}: slices of {ms:.0f} ms, minimum {1000 * least / dsp.OUT_RATE:.0f} ms"
            )
        parts = chop.slices(x, chop.equal_cuts(len(x), count), dsp.OUT_RATE, snapped=False)
    else:
        cuts = chop.onset_cuts(x, dsp.OUT_RATE, min(count, len(dsts)), least)
        parts = chop.slices(x, cuts, dsp.OUT_RATE, snapped=True)
    done = []
    for i, (part, dst) in enumerate(zip(parts, dsts, strict=False)):
        y = chop.cut_out(x, part, dsp.OUT_RATE)
        if len(y) < least:
            y = np.concatenate([y, dsp.silence(least - len(y), y.shape[1])])
        done.append((part, _finish(whole, y, info, dst, spec, (spec.seed, i))))
    if way == "onsets" and len(done) == 1:
        part, result = done[0]
        done[0] = (part, _warn(result, "no transients found to chop at: one slice"))
    return done


def _shape_input(
    x: np.ndarray, rate: int, spec: RenderSpec
) -> tuple[np.ndarray, dict[str, object], str | None]:
    """Fold and trim at the input's rate; what was done, and a warning if one is due."""
    shaping: dict[str, object] = {}
    warning = None
    short = not spec.mono_below_s or len(x) < spec.mono_below_s * rate
    if spec.mono and x.shape[1] == 2 and short:
        fold = shape.fold_to_mono(x)
        folds, warning = _fold_verdict(fold.drop_db, spec, shaping)
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


def _fold_verdict(
    drop_db: float, spec: RenderSpec, shaping: dict[str, object]
) -> tuple[bool, str | None]:
    """Whether to fold, given how much quieter the fold is than the louder channel; recorded in
    ``shaping``, with the warning a fold whose sides cancel calls for (``fold_cancels``)."""
    shaping["fold_drop_db"] = round(drop_db, 2)
    if drop_db <= shape.CANCEL_DB:
        shaping["fold"] = "mono"
        return True, None
    why = (
        f"folded to mono it is {drop_db:.0f} dB quieter "
        "(its channels cancel, one is phase-inverted)"
    )
    if spec.fold_cancels == "fold":
        shaping["fold"] = "mono"
        return True, f"{why}; folded anyway (fold_cancels: fold)"
    shaping["fold"] = "kept stereo"
    return False, f"kept stereo: {why.replace('it is', 'it would be')}"


def _warn(result: RenderResult, warning: str) -> RenderResult:
    joined = "; ".join(w for w in (result.warning, warning) if w)
    return replace(result, warning=joined)


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
                raise _nan_reason()
            tally.frames += len(block)
            block = dsp.fold_channels(block)
            top = dsp.peak(block)
            tally.peak = max(tally.peak, top)
            if scale != 1.0:
                block = block * np.float32(scale)
            elif top > dsp.HUGE:
                block, _ = dsp.tame(block, top, "clip")
            yield block

    return _to_out_rate(blocks(), info.rate, out_channels(info), quality)


def _to_out_rate(
    blocks: Iterator[np.ndarray], rate: int, channels: int, quality: str
) -> Iterator[np.ndarray]:
    """Float blocks at ``rate`` as 48 kHz blocks, through one soxr stream (no seams)."""
    if rate == dsp.OUT_RATE:
        yield from blocks
        return
    stream = soxr.ResampleStream(
        rate, dsp.OUT_RATE, channels, dtype="float32", quality=SOXR_QUALITY[quality]
    )
    for block in blocks:
        out = stream.resample_chunk(block)
        if len(out):
            yield out
    tail = stream.resample_chunk(np.zeros((0, channels), dtype=np.float32), last=True)
    if len(tail):
        yield tail


def _limit(top: float, scale: float) -> float:
    """The limiter's gain for samples scaled by ``scale`` (see :func:`dsp.tame`): that of the
    file's true peak, so a garbage-sized file ends at the limiter's level like any over."""
    return dsp.limit_gain(top / scale) / scale if top > 0 else 1.0


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
        length = _judge(info, tally.frames, spec)
        gain = _limit(top, scale)
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
            length = _judge(info, tally.frames, spec)
        if frames < length.min_frames:
            samples, _ = dsp.quantise(dsp.silence(length.min_frames - frames, channels), rng)
            out.write(samples)
            frames = length.min_frames
    top = running_peak if top is None else top
    peak_db = _db(top * gain) if top > 0 else None
    result = RenderResult("convert", frames, channels, _db(scale * gain), clipped, True, peak_db)
    return length.annotate(result, info)


# -- shaping a file too long to hold whole --------------------------------------------------------


@dataclass(frozen=True)
class _Cut:
    """What pass one decided for the passes after it: fold to mono, and the frames to keep."""

    fold: bool
    start: int
    end: int
    total: int


def _render_streamed_shaped(
    src: Path, info: AudioInfo, dst: Path, spec: RenderSpec
) -> RenderResult:
    """Trim, fold and normalise a long file in three passes over it, memory bounded: pass one
    measures the input (where its sound is, how its channels fold), pass two the resampled
    output (peak, true peak, loudness), pass three writes. The same figures, and the same
    recorded ``shaping``, as :func:`_render_whole` takes from the samples held whole."""
    channels = out_channels(info)
    threshold = 10 ** (spec.trim[0] / 20) if spec.trim is not None else math.inf
    span = shape_stream.SoundSpan(threshold)
    folded = shape_stream.SoundSpan(threshold)
    peak_in = 0.0
    for block in read_blocks(src, info):
        if not dsp.finite(block):
            raise _nan_reason()
        block = dsp.fold_channels(block)
        peak_in = max(peak_in, dsp.peak(block))
        span.add(block)
        if spec.mono and channels == 2:
            folded.add(block.mean(axis=1, keepdims=True, dtype=np.float32))
    length = _judge(info, span.frames, spec)
    shaping: dict[str, object] = {}
    warning = None
    fold = False
    if (
        spec.mono
        and channels == 2
        and (not spec.mono_below_s or span.frames < spec.mono_below_s * info.rate)
    ):
        fold, warning = _fold_verdict(span.fold_drop_db, spec, shaping)
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
    norm = 1.0
    loudness_before = None
    if spec.normalize is not None and true_peak is not None:
        target = spec.normalize[1]
        tp = true_peak.finish()
        if loud is not None:
            loudness_before = loud.finish()
            shaping["loudness_before_lufs"] = round(loudness_before, 2)
            if math.isfinite(loudness_before):
                norm = 10 ** ((target - loudness_before) / 20)
        else:
            shaping["peak_before_dbtp"] = round(_db(tp), 2)
            norm = 10 ** (target / 20) / tp if tp > 0 else 1.0
        shaping["normalize_gain_db"] = round(_db(norm), 2)
    top *= norm
    gain = _limit(top, scale) if spec.overs == "limit" else 1.0
    if true_peak is not None:  # the gains scale both measures exactly
        shaping["peak_after_dbtp"] = round(_db(true_peak.value * norm * gain), 2)
        if loudness_before is not None:
            after = loudness_before + _db(norm * gain)
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
    peak_db = _db(top * gain) if top > 0 else None
    result = RenderResult("convert", written, out, _db(scale * gain), clipped, True, peak_db)
    result = replace(length.annotate(result, info), shaping=shaping or None)
    return _warn(result, warning) if warning else result


def _trimmed(
    span: shape_stream.SoundSpan,
    cut: _Cut,
    info: AudioInfo,
    spec: RenderSpec,
    length: _Length,
    shaping: dict[str, object],
) -> tuple[_Cut, _Length]:
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

    out = 1 if cut.fold else out_channels(info)
    return _to_out_rate(blocks(), info.rate, out, spec.quality)


def _fades(lo: int, hi: int, cut: _Cut, fade: int) -> np.ndarray:
    """The gains of frames ``lo..hi`` under a trim's fades (as :func:`shape.trim_silence`)."""
    index = np.arange(lo, hi)
    ramp = np.ones(hi - lo)
    if cut.start > 0:
        ramp = np.minimum(ramp, (index - cut.start) / fade)
    if cut.end < cut.total:
        ramp = np.minimum(ramp, (cut.end - 1 - index) / fade)
    return np.minimum(ramp, 1.0).astype(np.float32)
