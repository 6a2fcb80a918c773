"""What every way of rendering shares: what it is asked (:class:`RenderSpec`), what it gives
back (:class:`RenderResult`), how a decode's length is judged against its header, and the steps
more than one way takes (the limiter's gain, one soxr stream, the verdict on a fold)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import soxr

from sp404d.audio import dsp, shape
from sp404d.audio.probe import AudioInfo, truncated_reason
from sp404d.errors import RejectedError

SOXR_QUALITY = {"hq": "HQ", "vhq": "VHQ"}
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
    chop: tuple[str, int] | None = None  # ("equal", N), ("onsets", most)...: render_chopped
    markers: tuple[int, ...] = ()  # ``chop: markers``: the file's markers, 48 kHz frames
    # The slices a chop made before, (start, end, fade in, fade out) in 48 kHz frames: rebuild
    # cuts there again, whatever today's onset detector would find.
    cuts: tuple[tuple[int, int, bool, bool], ...] = ()
    slice_min_frames: int = 0  # no slice shorter: padded with silence, or with
    pad_slices: bool = True  # False, equal slices that short are refused
    # Listen for the BPM, the key (:mod:`sp404d.audio.listen`): what the file carries none of.
    hear_bpm: bool = False
    hear_key: bool = False

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
    heard: dict[str, object] | None = None  # BPM and key heard in the sound, with confidence

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
        if self.heard:
            out["heard"] = self.heard
        return out


def db(gain: float) -> float:
    return 20 * math.log10(gain) if gain > 0 else -math.inf


def nan_reason() -> RejectedError:
    return RejectedError("broken audio: the file contains NaN or infinite samples")


def out_channels(info: AudioInfo) -> int:
    return min(info.channels, 2)


@dataclass(frozen=True)
class Length:
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


def judge(info: AudioInfo, decoded: int, spec: RenderSpec) -> Length:
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
    return Length(min_frames, truncated)


def fold_verdict(
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


def with_warning(result: RenderResult, warning: str) -> RenderResult:
    joined = "; ".join(w for w in (result.warning, warning) if w)
    return replace(result, warning=joined)


def to_out_rate(
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


def limiter_gain(top: float, scale: float) -> float:
    """The limiter's gain for samples scaled by ``scale`` (see :func:`dsp.tame`): that of the
    file's true peak, so a garbage-sized file ends at the limiter's level like any over."""
    return dsp.limit_gain(top / scale) / scale if top > 0 else 1.0
