"""Sound shaping users ask for, as pure functions on float samples (frames, channels).

Each is off unless a setting asks for it, so outputs stay byte-identical otherwise, and each
returns what it measured, for the journal. They run on the input before resampling (trim and
fold) or on the resampled output before dither (normalise), so every other audio promise holds:
the overs limiter still has the last word, and dither is still the last step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr

FADE_MS = 2.0  # a cut inside sound gets this short a fade, so it does not click
CANCEL_DB = 10.0  # a fold this much quieter than its louder channel cancels (one side only: 6)


def db(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else -math.inf


@dataclass(frozen=True)
class Fold:
    samples: np.ndarray
    drop_db: float  # the mono mix's level against the louder channel's (RMS)

    @property
    def cancels(self) -> bool:
        """The sides cancel (a phase-inverted channel): folding loses the sound."""
        return self.drop_db > CANCEL_DB


def fold_to_mono(x: np.ndarray) -> Fold:
    """The mean of the channels, and how much quieter it is than the louder channel."""
    if x.shape[1] == 1:
        return Fold(x, 0.0)
    mono = x.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    loudest = max(
        float(np.sqrt(np.mean(np.square(x[:, c], dtype=np.float64)))) for c in range(x.shape[1])
    )
    mixed = _rms(mono)
    drop = db(loudest) - db(mixed) if loudest > 0 else 0.0
    return Fold(mono, 0.0 if math.isnan(drop) else min(drop, 200.0))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@dataclass(frozen=True)
class Trim:
    samples: np.ndarray
    start_ms: float  # cut at the start
    end_ms: float  # cut at the end


def trim_silence(x: np.ndarray, rate: int, threshold_db: float, keep_ms: float) -> Trim | None:
    """Leading and trailing silence below ``threshold_db`` (of full scale) cut, keeping
    ``keep_ms`` before the first sound and after the last; a fade where the cut falls inside
    sound. None when the whole file is below the threshold."""
    level = np.max(np.abs(x), axis=1)
    loud = np.flatnonzero(level > 10 ** (threshold_db / 20))
    if len(loud) == 0:
        return None
    keep = round(keep_ms * rate / 1000)
    start = max(0, int(loud[0]) - keep)
    end = min(len(x), int(loud[-1]) + 1 + keep)
    y = x[start:end].copy()
    fade = min(len(y) // 2, round(FADE_MS * rate / 1000))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)[:, None]
        if start > 0:
            y[:fade] *= ramp
        if end < len(x):
            y[-fade:] *= ramp[::-1]
    return Trim(y, start * 1000 / rate, (len(x) - end) * 1000 / rate)


def true_peak(x: np.ndarray, rate: int) -> float:
    """The peak between samples too (ITU-R BS.1770's 4x oversampling), as a linear value."""
    if len(x) == 0:
        return 0.0
    up = soxr.resample(x.astype(np.float32), rate, rate * 4, quality="HQ")
    return float(max(np.max(np.abs(up)), np.max(np.abs(x))))


def peak_gain(x: np.ndarray, rate: int, target_dbtp: float) -> tuple[float, float]:
    """The gain that brings the true peak to ``target_dbtp``, and the true peak before (dBTP)."""
    peak = true_peak(x, rate)
    if peak <= 0:
        return 1.0, -math.inf
    return 10 ** (target_dbtp / 20) / peak, db(peak)


# ITU-R BS.1770-4's K-weighting at 48 kHz (the output's rate): a high shelf, then the RLB
# high-pass, as (b, a) biquad coefficients from the recommendation.
_K_WEIGHTING = (
    (
        (1.53512485958697, -2.69169618940638, 1.19839281085285),
        (1.0, -1.69065929318241, 0.73248077421585),
    ),
    ((1.0, -2.0, 1.0), (1.0, -1.99004745483398, 0.99007225036621)),
)
_K_RATE = 48_000
_TAIL_S = 1.0  # the filters' ring-out, kept clear of the FFT's wrap-around


def k_weighted(x: np.ndarray) -> np.ndarray:
    """``x`` (48 kHz) through the K-weighting filters, applied as their exact frequency response
    on a zero-padded FFT (no scipy needed; the padding outlasts the filters' ring-out)."""
    n = 1 << math.ceil(math.log2(len(x) + _TAIL_S * _K_RATE))
    spectrum = np.fft.rfft(x.astype(np.float64), n, axis=0)
    for b, a in _K_WEIGHTING:
        spectrum *= (np.fft.rfft(b, n) / np.fft.rfft(a, n))[:, None]
    return np.fft.irfft(spectrum, n, axis=0)[: len(x)]


def loudness(x: np.ndarray) -> float:
    """Integrated loudness (LUFS) of 48 kHz samples, as ITU-R BS.1770-4 gates it: 400 ms blocks
    every 100 ms, an absolute gate at -70 LUFS and a relative one 10 LU under the gated mean.
    A file shorter than one block is measured whole."""
    weighted = k_weighted(x)
    power = np.square(weighted).sum(axis=1)  # channel weights: 1.0 for left and right
    block, step = int(0.4 * _K_RATE), int(0.1 * _K_RATE)
    if len(power) < block:
        blocks = np.array([power.mean()]) if len(power) else np.array([0.0])
    else:
        sums = np.concatenate([[0.0], np.cumsum(power)])
        starts = np.arange(0, len(power) - block + 1, step)
        blocks = (sums[starts + block] - sums[starts]) / block
    return gated_loudness(blocks)


def gated_loudness(blocks: np.ndarray) -> float:
    """The integrated loudness of 400 ms blocks' mean squares (K-weighted, channels summed):
    an absolute gate at -70 LUFS, then a relative one 10 LU under the gated mean."""
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(blocks)
    kept = blocks[levels > -70.0]
    if len(kept) == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(kept.mean()) - 10.0
    kept = blocks[(levels > -70.0) & (levels > relative)]
    return -0.691 + 10 * math.log10(kept.mean())


def loudness_gain(x: np.ndarray, target_lufs: float) -> tuple[float, float]:
    """The gain that brings ``x`` (48 kHz) to ``target_lufs``, and its loudness before."""
    before = loudness(x)
    if not math.isfinite(before):
        return 1.0, before
    return 10 ** ((target_lufs - before) / 20), before
