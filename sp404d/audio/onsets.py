"""Where the hits of a loop begin: onset detection for ``chop: onsets``, numpy only.

How, and why each step (the misses of the first detector, replayed hit by hit, named them; the
figures are in docs/benchmarks.md, from bench/bench_onsets.py):

1. **Rises in dB, per band group.** A short-time spectrum (43 ms window, 5.3 ms hop) is pooled
   into log-spaced bands; each band's level in dB is compared with 21 ms before (with the
   neighbouring bands' levels too, so a sliding pitch is not a new sound). The rises are averaged
   over three groups, low (to 250 Hz), mid (to 4 kHz) and high, and the detection function is
   the largest group's average. A kick rises in a few low bands only: summed over the whole
   spectrum it scored a tenth of a hat and was missed; in its own group it is as strong as a
   hat in its. Levels 50 dB under the loop's loudest are one floor: noise and a window's leakage
   rise nowhere.
2. **A threshold that follows the music**: a peak counts where it stands out of the local
   median (0.2 s around it) by the sensitivity's margin (``soft``, ``mid``, ``hard``, as the
   MK2's own AUTO MARK has) and is a local maximum within 10 ms.
3. **The start of the rise, not half its peak.** The onset is placed on a fine envelope (0.25 ms
   steps) of what the group hears: low through a low-pass, mid through a first difference,
   high through a second (so a snare's body does not hide a hat's start, nor a hat a kick's).
   From the steepest rise near the peak, back to where the envelope leaves the level it had just
   before. Half the peak landed early in a louder sound's tail, or 20-30 ms late on a slow pedal
   hat or a clap's weak first burst. A kick's click rises in the high group before its body in
   the low: the earliest group that rose strongly places the onset.
4. **A new sound, not a step in a decay**: what the group hears in the 15 ms after the onset
   must be 3 dB louder than in the 15 ms before, 3 dB over the group's floor in the loop, and
   its attack must rise 6 dB within 5 ms. The swell of an 808's tail, two microphones beating
   in a kick's decay, noise between hits: none is a hit.

:func:`detect` gives every onset with its strength; the chop keeps the strongest it has room
for (:mod:`sp404d.audio.chop`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sp404d.audio import dsp

FRAME = 2048  # ~43 ms at 48 kHz (at other rates, as long in time)
HOP = 512  # ~10.7 ms: the detection function's step, before the onset is refined
AT_RATE = 48_000
LAG = 2  # frames: a rise is measured against the frame this far before
BANDS_PER_OCTAVE = 4
LOWEST_HZ, HIGHEST_HZ = 40.0, 18_000.0
GROUP_EDGES_HZ = (250.0, 4000.0)  # low | mid | high
FLOOR_DB = -70.0  # levels under this are silence (no onset is found in silence)
#: Band levels this far under the loop's loudest are one floor: the window's leakage of a loud
#: tone into bands it does not sound in, and noise far under the music, rise nowhere.
RANGE_DB = 50.0
#: How far a peak must stand out of the local median, in dB averaged over its group's bands.
SENSITIVITY_DB = {"soft": 1.0, "mid": 2.0, "hard": 4.0}
SENSITIVITIES = tuple(SENSITIVITY_DB)
#: And how strong beside the median onset of the loop.
TYPICAL_SHARE = {"soft": 0.1, "mid": 0.2, "hard": 0.4}
MEDIAN_S = 0.2
PEAK_S = 0.010
BLOCK_S = 0.00025  # the fine envelope's step
REACH = (0.5, 0.5)  # where a frame's onset is looked for: frames before and after its centre
HOLD_S = (0.010, 0.001, 0.001)  # per group: a period of its lowest sound (a sine's dips)
LEVEL_S = 0.02  # the level a rise starts from: the median of the span this long before it
RISE_DB = 3.0  # what the group hears after the onset over before it
RISE_S = 0.015
SHARP_DB, SHARP_S = 6.0, 0.005  # a hit's attack rises at least this much this fast
FLOOR_PERCENTILE = 20.0  # a group's floor: its level in the loop's quieter moments
#: A hit's level over that floor, per group: noise under 250 Hz stirs by several dB in 15 ms
#: (a hiss or vinyl bed gave false kicks), a kick stands far out of it.
ABOVE_FLOOR_DB = (10.0, 3.0, 3.0)
SPREAD_S = 0.012  # a hit's parts begin this close: a kick's click before its body
LEAD_S = 0.002  # the slice starts this much before the refined onset: an attack kept whole


def _sizes(rate: int) -> tuple[int, int]:
    """:data:`FRAME` and :data:`HOP` at ``rate``: the same durations (a tempo's check listens
    at 12 kHz, where 2048 samples were four times the window and the work)."""
    return max(16, round(FRAME * rate / AT_RATE)), max(4, round(HOP * rate / AT_RATE))


@dataclass(frozen=True)
class Onset:
    """A hit: the frame its sound begins at, and how strongly it rose (dB)."""

    at: int
    strength: float


@dataclass(frozen=True)
class _Heard:
    """What one group hears, over the whole loop, in blocks of :data:`BLOCK_S`: its peak-held
    envelope and its power over the :data:`RISE_S` ending at each block, in dB; its floor."""

    block: int
    envelope: np.ndarray
    power: np.ndarray
    floor: float


def detect(mono: np.ndarray, rate: int, sensitivity: str = "mid") -> list[Onset]:
    """Every onset of ``mono`` (float samples), in time order."""
    found = _found(mono, rate, sensitivity)
    if found:  # a rise a fraction of the loop's typical hit's is a tail's stir, not a hit
        typical = dsp.percentile(np.array([o.strength for o in found]), 50.0)
        found = [o for o in found if o.strength >= TYPICAL_SHARE[sensitivity] * typical]
    return found


def begin(mono: np.ndarray, rate: int, count: int) -> bool:
    """Whether at least ``count`` new sounds begin in ``mono``: :func:`detect`'s onsets
    before it drops the ones far weaker than the loop's typical hit (which needs them all),
    stopped at the ``count``-th, each group listened to only when a peak asks it. For a
    tempo's check that a pulse is made of hits (two beating tones begin none), at a fraction
    of the work; a quiet hat counts."""
    return len(_found(mono, rate, "mid", enough=count)) >= count


def _found(mono: np.ndarray, rate: int, sensitivity: str, enough: int | None = None) -> list[Onset]:
    """The onsets, before the loop's typical hit is known; only the first ``enough``."""
    frame, hop = _sizes(rate)
    if len(mono) < frame // 2 or not np.any(mono):
        return []
    levels = _band_levels(mono, rate)
    groups = _groups(rate)
    rises = np.maximum(levels - _before(levels), 0.0)
    by_group = np.stack([rises[:, g].mean(axis=1) for g in groups], axis=1)
    odf = by_group.max(axis=1)
    margin = SENSITIVITY_DB[sensitivity]
    heard: dict[int, _Heard] = {}  # by group, when first asked for
    found: list[Onset] = []
    near = max(1, round(PEAK_S * rate / hop))
    spread = round(SPREAD_S * rate)
    apart = round(PEAK_S * rate)
    for k in _peaks(odf, rate, margin):
        first = max(0, k - near)
        span = by_group[first : k + 1]
        attacks: list[tuple[float, bool, int]] = []  # (sharpness, new sound?, start) by group
        for g in range(len(groups)):
            if by_group[k, g] >= margin / 2:  # it rose at the peak
                centre = k * hop
            elif span[:, g].max() >= RISE_DB:  # it rose just before (a kick's click)
                centre = (first + int(span[:, g].argmax())) * hop
            else:
                continue
            if g not in heard:
                heard[g] = _hear(mono, g, rate)
            start = _rise_start(heard[g], centre, rate)
            new, sharpness = _attack(heard[g], start, rate, ABOVE_FLOOR_DB[g])
            if sharpness >= SHARP_DB:
                attacks.append((sharpness, new, start))
        if any(new for _, new, _ in attacks):  # the sharpest new sound is the hit; a steep
            main = max(a for a in attacks if a[1])[2]  # rise just before it, a part of it
            at = min(start for _, _, start in attacks if main - spread <= start <= main)
            found.append(Onset(max(0, at - round(LEAD_S * rate)), float(odf[k])))
            if enough is not None and len(_apart(found, apart)) >= enough:
                break
    return _apart(found, apart)


def _band_levels(mono: np.ndarray, rate: int) -> np.ndarray:
    """Each frame's level in each log-spaced band, in dB (frames centred on ``k * hop``)."""
    frame, hop = _sizes(rate)
    padded = np.concatenate([np.zeros(frame // 2, np.float32), mono, np.zeros(frame, np.float32)])
    spectrum = dsp.spectra(padded, frame, hop)
    power = spectrum.real**2 + spectrum.imag**2  # no square root to square again
    energy = power @ _filterbank(rate)
    levels: np.ndarray = 10.0 * np.log10(energy + 10.0 ** (FLOOR_DB / 10.0) * frame)
    floored: np.ndarray = np.maximum(levels, levels.max() - RANGE_DB)
    return floored


def _edges(rate: int) -> np.ndarray:
    top = min(HIGHEST_HZ, rate / 2 * 0.95)
    count = int(np.log2(top / LOWEST_HZ) * BANDS_PER_OCTAVE)
    return LOWEST_HZ * 2.0 ** (np.arange(count + 2) / BANDS_PER_OCTAVE)


@functools.lru_cache(maxsize=8)
def _filterbank(rate: int) -> np.ndarray:
    """Triangular filters on log-spaced centres, (bins, bands); each band at least one bin."""
    freqs = np.fft.rfftfreq(_sizes(rate)[0], 1.0 / rate)
    edges = _edges(rate)
    bank = np.zeros((len(freqs), len(edges) - 2), np.float32)
    for b in range(len(edges) - 2):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        bank[:, b] = np.clip(np.minimum(up, down), 0.0, None)
        if not bank[:, b].any():
            bank[int(np.argmin(np.abs(freqs - mid))), b] = 1.0
    return bank


def _groups(rate: int) -> list[np.ndarray]:
    centres = _edges(rate)[1:-1]
    low, high = GROUP_EDGES_HZ
    return [
        np.flatnonzero(centres < low),
        np.flatnonzero((centres >= low) & (centres < high)),
        np.flatnonzero(centres >= high),
    ]


def _before(levels: np.ndarray) -> np.ndarray:
    """Each band's level :data:`LAG` frames before, as the loudest of it and its neighbours (a
    sliding pitch moves between bands: no new sound)."""
    silence = np.full_like(levels[:LAG], levels.min())
    before = np.concatenate([silence, levels[:-LAG]], axis=0)  # before the file: silence
    padded = np.pad(before, ((0, 0), (1, 1)), mode="edge")
    near: np.ndarray = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return near


def _peaks(odf: np.ndarray, rate: int, margin: float) -> list[int]:
    """Frames where the detection function is a local maximum (within :data:`PEAK_S`) standing
    ``margin`` above its local median."""
    hop = _sizes(rate)[1]
    span = max(1, round(MEDIAN_S * rate / hop / 2))
    padded = np.pad(odf, span, mode="constant")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * span + 1)
    median = np.partition(windows, span, axis=1)[:, span]  # odd: np.median's, without numpy.ma
    near = max(1, round(PEAK_S * rate / hop))
    local = np.lib.stride_tricks.sliding_window_view(
        np.pad(odf, near, mode="constant"), 2 * near + 1
    ).max(axis=1)
    return [int(k) for k in np.flatnonzero((odf >= local) & (odf > median + margin) & (odf > 0))]


def _hear(mono: np.ndarray, group: int, rate: int) -> _Heard:
    """What ``group`` hears of the loop, without delay: low through a zero-phase low-pass (the
    mean of each block, then two 2 ms moving averages: a hat over the kick does not hide its
    start), mid through a first difference, high through a second (a snare's body does not
    hide a hat's)."""
    block = max(1, round(BLOCK_S * rate))
    count = len(mono) // block
    if group == 0:
        width = max(1, round(0.002 * rate / block))
        means = mono[: count * block].reshape(count, block).mean(axis=1, dtype=np.float64)
        low = _moving_average(_moving_average(means, width), width)
        peak, energy = np.abs(low), low**2
    else:
        x = np.diff(mono, prepend=mono[:1])
        if group == 2:
            x = np.diff(x, prepend=x[:1])
        blocks = np.abs(x[: count * block].reshape(count, block))
        peak, energy = blocks[:, 0].copy(), np.square(blocks[:, 0], dtype=np.float64)
        for j in range(1, block):  # column by column: numpy is slow along a short axis
            np.maximum(peak, blocks[:, j], out=peak)
            energy += np.square(blocks[:, j], dtype=np.float64)
        energy /= block
    held = _trailing_max(peak, max(1, round(HOLD_S[group] * rate / block)))
    reach = max(1, round(RISE_S * rate / block))
    summed = np.concatenate([[0.0], np.cumsum(energy)])
    ends = np.arange(count + 1)
    power = 10.0 * np.log10((summed - summed[np.maximum(0, ends - reach)]) / reach + 1e-12)
    floor = dsp.percentile(power[reach:], FLOOR_PERCENTILE) if count > reach else -120.0
    return _Heard(block, 20.0 * np.log10(held + 1e-9), power, floor)


def _trailing_max(x: np.ndarray, width: int) -> np.ndarray:
    """The largest of each ``width`` values ending at each (``x`` not negative), by doubling."""
    out = x.copy()
    covered = 1
    while covered < width:
        step = min(covered, width - covered)
        np.maximum(out[step:], out[:-step].copy(), out=out[step:])
        covered += step
    return out


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred: no delay."""
    summed = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.clip(np.arange(len(x)) - width // 2, 0, len(x))
    hi = np.clip(lo + width, 0, len(x))
    out: np.ndarray = (summed[hi] - summed[lo]) / width
    return out


def _rise_start(heard: _Heard, centre: int, rate: int) -> int:
    """Where the rise the frame at ``centre`` saw begins, in frames of the loop.

    The steepest 1 ms rise of the group's envelope within the frame's reach; back from it to
    where the envelope leaves the level it had before (:func:`_foot`): a pedal hat's slow rise
    or a clap's weak first burst is inside that foot, not after it.
    """
    env, block = heard.envelope, heard.block
    frame = _sizes(rate)[0]
    lo = max(0, (centre - round(REACH[0] * frame)) // block)
    hi = min(len(env), (centre + round(REACH[1] * frame)) // block)
    step = max(1, round(0.001 * rate / block))
    if hi - lo <= step + 1:
        return max(0, min(centre, (len(env) - 1) * block))
    slope = env[lo + step : hi] - env[lo : hi - step]
    start = _foot(env, lo + step + int(np.argmax(slope)), step, rate, block)
    return start * block


def _foot(env: np.ndarray, steepest: int, step: int, rate: int, block: int) -> int:
    """Back from a rise at ``steepest`` to the last point under the level the envelope had in
    the :data:`LEVEL_S` before (its median: noise, a decaying tail) plus a tenth of the rise
    (at least :data:`RISE_DB`)."""
    back = max(0, steepest - round(LEVEL_S * rate / block))
    level = _median(env[back : max(back + 1, steepest - step)])
    peak = float(np.max(env[steepest : steepest + 4 * step + 1]))
    threshold = level + max(RISE_DB, 0.1 * (peak - level))
    quiet = np.flatnonzero(env[back : steepest + 1] <= threshold)
    return back + int(quiet[-1]) + 1 if len(quiet) else steepest


def _median(x: np.ndarray) -> float:
    """The median, or near it: a partition costs a tenth of ``np.median`` on spans this short."""
    return float(np.partition(x, len(x) // 2)[len(x) // 2])


def _attack(heard: _Heard, at: int, rate: int, above: float) -> tuple[bool, float]:
    """Whether a new sound begins at ``at``, and how sharply what the group hears rises there
    (its largest rise over :data:`SHARP_S`, in dB, from just before to :data:`RISE_S` after).

    New: over :data:`RISE_S` after ``at`` it is :data:`RISE_DB` louder than over the same span
    before, :data:`ABOVE_FLOOR_DB` over the group's floor in the loop, and it rises
    :data:`SHARP_DB` (an attack, not a swell)."""
    power, env, block = heard.power, heard.envelope, heard.block
    reach = max(1, round(RISE_S * rate / block))
    span = max(1, round(SHARP_S * rate / block))
    i = at // block
    window = env[max(0, i - span) : i + reach + 1]
    if i + reach >= len(power) or len(window) <= span:
        return False, 0.0
    sharpness = float((window[span:] - window[:-span]).max())
    after = float(power[i + reach])
    before = float(power[i]) if i >= reach else -120.0
    new = after - before >= RISE_DB and after >= heard.floor + above
    return new and sharpness >= SHARP_DB, sharpness


def _apart(found: list[Onset], near: int) -> list[Onset]:
    """Onsets refined to the same place (two peaks of one rise): the stronger kept."""
    kept: list[Onset] = []
    for onset in sorted(found, key=lambda o: o.at):
        if kept and onset.at - kept[-1].at < near:
            if onset.strength > kept[-1].strength:
                kept[-1] = onset
            continue
        kept.append(onset)
    return kept
