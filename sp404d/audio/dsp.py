"""The sample maths, as pure functions on numpy arrays: fold-down, gain, dither, quantise.

Conventions: float samples are in [-1, 1) with full scale at 1.0, as soundfile reads them
(int16 value = float * 32768), so a 16-bit input that needs no resampling keeps every sample.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import soxr

OUT_RATE = 48_000
FULL = 32768.0
# Turn-down target when limiting: one LSB below the top code, so TPDF dither (+-1 LSB) on the
# loudest sample still lands in range and nothing clips after the gain.
LIMIT_PEAK = 32766.0 / FULL

# Past this (+96 dB over full scale) a float sample is a broken file's garbage or a wrong scale,
# not a loud sound, and near float32's limit (3.4e38) soxr's arithmetic overflows to inf and
# the whole file comes out as NaN. Such input is scaled (or clipped) to this before resampling.
HUGE = 65536.0

_SQRT_HALF = 0.7071067811865476


def downmix_matrix(channels: int) -> np.ndarray:
    """A (channels, 2) matrix folding a multichannel file to stereo.

    Standard layouts in WAV channel order (ITU-R BS.775 style: centre and surrounds at -3 dB,
    LFE dropped); anything else alternates channels left/right. Each output row is normalised
    to a gain sum of 1, so the fold itself can never push a sample past full scale.
    """
    c, s = _SQRT_HALF, _SQRT_HALF
    layouts: dict[int, list[tuple[float, float]]] = {
        3: [(1, 0), (0, 1), (c, c)],  # L R C
        4: [(1, 0), (0, 1), (s, 0), (0, s)],  # L R Ls Rs (quad)
        5: [(1, 0), (0, 1), (c, c), (s, 0), (0, s)],  # L R C Ls Rs
        6: [(1, 0), (0, 1), (c, c), (0, 0), (s, 0), (0, s)],  # 5.1: L R C LFE Ls Rs
        8: [(1, 0), (0, 1), (c, c), (0, 0), (s, 0), (0, s), (s, 0), (0, s)],  # 7.1
    }
    rows = layouts.get(channels) or [
        (1.0, 0.0) if i % 2 == 0 else (0.0, 1.0) for i in range(channels)
    ]
    m = np.array(rows, dtype=np.float64)
    m /= m.sum(axis=0, keepdims=True)
    return m.astype(np.float32)


def fold_channels(block: np.ndarray) -> np.ndarray:
    """Mono stays mono, stereo stays stereo, more channels fold down to stereo."""
    if block.shape[1] <= 2:
        return block
    return block @ downmix_matrix(block.shape[1])  # type: ignore[no-any-return]


def mix_down(x: np.ndarray) -> np.ndarray:
    """The mean of ``x``'s channels as one float32 signal (``x`` itself when it is one), summed
    column by column: numpy is slow along a short axis. For analysis, not for output."""
    if x.ndim == 1:
        return np.asarray(x, dtype=np.float32)
    mono = np.array(x[:, 0], dtype=np.float32)
    for c in range(1, x.shape[1]):
        mono += x[:, c]
    if x.shape[1] > 1:
        mono /= x.shape[1]
    return mono


def percentile(x: np.ndarray, q: float) -> float:
    """``np.percentile(x, q)`` (its default, linear between the two nearest), by a partition:
    numpy's (and ``np.median``) load ``numpy.ma`` on their first call, 10 ms in every worker."""
    flat = np.asarray(x).ravel()
    if not len(flat):
        return float("nan")  # as numpy says
    at = q / 100.0 * (len(flat) - 1)
    lo = int(np.floor(at))
    hi = min(lo + 1, len(flat) - 1)
    part = np.partition(flat, [lo, hi])
    return float(part[lo] + (part[hi] - part[lo]) * (at - lo))


def frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """``x`` (1-D, at least ``size`` long) as overlapping frames of ``size`` every ``hop``
    samples, a read-only view: (count, size)."""
    count = 1 + (len(x) - size) // hop
    view: np.ndarray = np.lib.stride_tricks.as_strided(
        x, shape=(count, size), strides=(hop * x.strides[0], x.strides[0]), writeable=False
    )
    return view


def spectra(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """The short-time spectrum of ``x`` (1-D, at least ``size`` long): each frame of
    :func:`frames` through a Hann window, (count, size // 2 + 1), complex. The frames are
    float64: numpy 2 transforms float32 up to four times slower (256 and 4096 points)."""
    out: np.ndarray = np.fft.rfft(frames(x, size, hop) * _hann(size), axis=1)
    return out


@functools.lru_cache(maxsize=8)
def _hann(size: int) -> np.ndarray:
    return np.hanning(size)


def peak(block: np.ndarray) -> float:
    """Largest absolute sample value (0.0 for an empty block)."""
    return float(np.max(np.abs(block))) if block.size else 0.0


def limit_gain(peak_value: float) -> float:
    """Linear gain that brings ``peak_value`` down to just below full scale (1.0 if it fits)."""
    return LIMIT_PEAK / peak_value if peak_value > LIMIT_PEAK else 1.0


def tame(block: np.ndarray, top: float, overs: str) -> tuple[np.ndarray, float]:
    """Bring a block whose peak ``top`` is past :data:`HUGE` into a range soxr can work in.

    ``overs: limit`` scales by a power of two (exact in floating point, so the shape is kept and
    the limiter then turns it down as any over), returning the scale for the recorded gain;
    ``overs: clip`` clips, as it would anyway. Anything at or below HUGE is left as it is.
    """
    if top <= HUGE:
        return block, 1.0
    if overs == "clip":
        return np.clip(block, -HUGE, HUGE), 1.0
    scale = huge_scale(top)
    return block * np.float32(scale), scale


def huge_scale(top: float) -> float:
    """The power of two that brings a peak past :data:`HUGE` to within (0.5, 1]; else 1.0."""
    return 2.0 ** -math.ceil(math.log2(top)) if top > HUGE else 1.0


def finite(block: np.ndarray) -> bool:
    return bool(np.isfinite(block).all())


def tpdf_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Triangular noise of +-1 LSB: the difference of two uniforms of 16 random bits each.

    Sixteen bits per uniform is far finer than a 1 LSB dither needs, and cutting one 64-bit draw
    into four of them is about four times quicker than two ``rng.random`` arrays.
    """
    n = int(np.prod(shape))
    raw = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint16)
    noise = raw[:n].astype(np.float32)
    np.subtract(noise, raw[n : 2 * n], out=noise)
    noise *= np.float32(1 / 65536)
    return noise.reshape(shape)


def quantise(
    block: np.ndarray,
    rng: np.random.Generator | None,
    gain: float = 1.0,
    peak_value: float | None = None,
) -> tuple[np.ndarray, int]:
    """Float block -> int16 with TPDF dither (when ``rng`` is given), and the clip count.

    TPDF dither of +-1 LSB (the difference of two uniform variables) makes the quantisation
    error independent of the signal: a quiet tone keeps no harmonic distortion, which plain
    rounding (what Roland's own app does) leaves in fades and reverb tails. The count is of
    samples that were past full scale before dither, i.e. real clipping, not dither overshoot.
    A known ``peak_value`` that leaves room for the dither (as the overs limiter always does)
    spares the passes that count and clip.
    """
    scaled = block * np.float32(FULL * gain)
    # Room for +-1 LSB of dither and float32 rounding: rint never leaves [-32768, 32767].
    safe = peak_value is not None and peak_value * gain * FULL <= FULL - 1.5
    overs = 0
    if not safe:
        overs = int(np.count_nonzero((scaled >= FULL - 0.5) | (scaled < -FULL - 0.5)))
    if rng is not None:
        scaled += tpdf_noise(rng, scaled.shape)
    np.rint(scaled, out=scaled)
    if not safe:
        np.clip(scaled, -FULL, FULL - 1, out=scaled)
    return scaled.astype(np.int16), overs


def silence(frames: int, channels: int) -> np.ndarray:
    return np.zeros((frames, channels), dtype=np.float32)


def at_rate(x: np.ndarray, rate: int, low: int) -> np.ndarray:
    """``x`` (1-D, or frames x channels) as one float32 signal at about ``low`` Hz, for
    analysis: where the rate is N times ``low``, the mean of every N frames over every channel,
    as one matrix-vector product (a box filter: cheap, and what aliases in is noise far under
    the notes and hits analysis looks for; five times quicker than mixing down, then
    decimating); else the mix, through soxr at low quality (at its quickest, beats were lost)."""
    factor = rate / low
    if rate == low:
        out: np.ndarray = mix_down(x)
    elif factor == int(factor):
        n, width = int(factor), 1 if x.ndim == 1 else x.shape[1]
        whole = np.ascontiguousarray(x[: len(x) // n * n], dtype=np.float32)
        out = whole.reshape(-1, n * width) @ np.full(n * width, 1.0 / (n * width), np.float32)
    else:
        out = soxr.resample(mix_down(x), rate, low, quality="LQ")
    return np.ascontiguousarray(out, dtype=np.float32)
