"""Where the hits of a loop begin: onset detection for ``chop: onsets``, numpy only.

How, and why each step (the misses of the first detector, replayed hit by hit, named them):

1. **Rises in dB, per band group.** A short-time spectrum (21 ms window, 5.3 ms hop) is pooled
   into log-spaced bands; each band's level in dB is compared with the frame before (with the
   neighbouring bands' levels too, so a sliding pitch is not a new sound). The rises are averaged
   over three groups, low (to 250 Hz), mid (to 4 kHz) and high, and the detection function is
   the largest group's average. A kick rises in a few low bands only: summed over the whole
   spectrum it scored a tenth of a hat and was missed; in its own group it is as strong as a
   hat in its.
2. **A threshold that follows the music**: a peak counts where it stands out of the local
   median (about 0.2 s around it) by the sensitivity's margin (``soft``, ``mid``, ``hard``, as
   the MK2's own AUTO MARK has) and is a local maximum within 10 ms.
3. **The start of the rise, not half its peak.** The onset is refined on a fine envelope (1 ms)
   of the group that rose (a first difference for mid and high, which a low tail barely moves;
   a smoothed signal for low): from the steepest rise near the peak, back to where the envelope
   leaves the level it had just before. Half the peak landed early in a louder sound's tail, or
   20-30 ms late on a slow pedal hat or a clap's weak first burst.
4. **A new sound, not a step in a decay**: the group's level in the 15 ms after the onset must
   be 3 dB above the 15 ms before it. A decay stepping down to digital silence rises nowhere.

:func:`detect` gives every onset with its strength; the chop keeps the strongest it has room
for (:mod:`sp404d.audio.chop`). About 5 ms per second of audio on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME = 1024  # ~21 ms at 48 kHz
HOP = 256  # ~5.3 ms: the detection function's step, before the onset is refined
BANDS_PER_OCTAVE = 4
LOWEST_HZ, HIGHEST_HZ = 40.0, 18_000.0
GROUP_EDGES_HZ = (250.0, 4000.0)  # low | mid | high
#: How far a peak must stand out of the local median, in dB averaged over its group's bands.
SENSITIVITY_DB = {"soft": 1.5, "mid": 3.0, "hard": 6.0}
SENSITIVITIES = tuple(SENSITIVITY_DB)
MEDIAN_S = 0.2
PEAK_S = 0.010
RISE_DB = 3.0  # the group's level after the onset over before it
RISE_S = 0.015
ENVELOPE_S = 0.001
FLOOR_DB = -70.0
#: Band levels this far under the loop's loudest are one floor: the window's leakage of a loud
#: tone into bands it does not sound in, and noise far under the music, rise nowhere.
RANGE_DB = 50.0  # levels under this are silence (no onset is found in silence)
FLOOR_PERCENTILE = 20.0  # a group's floor: its level in the loop's quieter moments
ABOVE_FLOOR_DB = 6.0  # a hit's group level over that floor
LEAD_S = 0.0005  # the slice starts this much before the refined onset


@dataclass(frozen=True)
class Onset:
    """A hit: the frame its sound begins at, and how strongly it rose (dB)."""

    at: int
    strength: float


def detect(mono: np.ndarray, rate: int, sensitivity: str = "mid") -> list[Onset]:
    """Every onset of ``mono`` (float samples), in time order."""
    if len(mono) < FRAME // 2 or not np.any(mono):
        return []
    levels = _band_levels(mono, rate)
    groups = _groups(rate)
    rises = np.maximum(levels - _before(levels), 0.0)
    by_group = np.stack([rises[:, g].mean(axis=1) for g in groups], axis=1)
    odf = by_group.max(axis=1)
    which = _loudest_rise(levels, groups)
    peaks = _peaks(odf, rate, SENSITIVITY_DB[sensitivity])
    floors = [_db_percentile(levels[:, g], FLOOR_PERCENTILE) for g in groups]
    found: list[Onset] = []
    for k in peaks:
        g = int(which[k])
        at = _rise_start(mono, k * HOP, rate, g)
        if _is_new_sound(levels, groups[g], at, rate, floors[g]):
            found.append(Onset(at, float(odf[k])))
    return _apart(found, round(PEAK_S * rate))


def _band_levels(mono: np.ndarray, rate: int) -> np.ndarray:
    """Each frame's level in each log-spaced band, in dB (frames centred on ``k * HOP``)."""
    padded = np.concatenate([np.zeros(FRAME // 2, np.float32), mono, np.zeros(FRAME, np.float32)])
    count = 1 + (len(padded) - FRAME) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded,
        shape=(count, FRAME),
        strides=(HOP * padded.strides[0], padded.strides[0]),
        writeable=False,
    )
    power = np.abs(np.fft.rfft(frames * np.hanning(FRAME).astype(np.float32), axis=1)) ** 2
    energy = power @ _filterbank(rate)
    levels: np.ndarray = 10.0 * np.log10(energy + 10.0 ** (FLOOR_DB / 10.0) * FRAME)
    floored: np.ndarray = np.maximum(levels, levels.max() - RANGE_DB)
    return floored


def _edges(rate: int) -> np.ndarray:
    top = min(HIGHEST_HZ, rate / 2 * 0.95)
    count = int(np.log2(top / LOWEST_HZ) * BANDS_PER_OCTAVE)
    return LOWEST_HZ * 2.0 ** (np.arange(count + 2) / BANDS_PER_OCTAVE)


def _filterbank(rate: int) -> np.ndarray:
    """Triangular filters on log-spaced centres, (bins, bands); each band at least one bin."""
    freqs = np.fft.rfftfreq(FRAME, 1.0 / rate)
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


def _loudest_rise(levels: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Per frame, the group whose power grew most: where the new sound is. (Its mean rise in
    dB would favour a narrow group where a tone's onset only splashes.)"""
    power = 10.0 ** (levels / 10.0)
    growth = power - np.concatenate([power[:1], power[:-1]], axis=0)
    by_group = np.stack([growth[:, g].sum(axis=1) for g in groups], axis=1)
    which: np.ndarray = by_group.argmax(axis=1)
    return which


def _before(levels: np.ndarray) -> np.ndarray:
    """Each band's level in the frame before, as the loudest of it and its neighbours (a
    sliding pitch moves between bands: no new sound)."""
    silence = np.full_like(levels[:1], levels.min())
    before = np.concatenate([silence, levels[:-1]], axis=0)  # before the file: silence
    padded = np.pad(before, ((0, 0), (1, 1)), mode="edge")
    near: np.ndarray = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return near


def _peaks(odf: np.ndarray, rate: int, margin: float) -> list[int]:
    """Frames where the detection function is a local maximum (within :data:`PEAK_S`) standing
    ``margin`` above its local median."""
    span = max(1, round(MEDIAN_S * rate / HOP / 2))
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(odf, span, mode="constant"), 2 * span + 1
    )
    median = np.median(windows, axis=1)
    near = max(1, round(PEAK_S * rate / HOP))
    local = np.lib.stride_tricks.sliding_window_view(
        np.pad(odf, near, mode="constant"), 2 * near + 1
    ).max(axis=1)
    return [int(k) for k in np.flatnonzero((odf >= local) & (odf > median + margin) & (odf > 0))]


def _rise_start(mono: np.ndarray, centre: int, rate: int, group: int) -> int:
    """Where the rise that the frame at ``centre`` saw begins.

    On a fine envelope of what the group hears (the first difference for mid and high, which a
    low tail barely moves; the signal for low), held at its peak over a period of the group's
    lowest sound (10 ms low, 1 ms else: a sine's own dips are no silence): the steepest rise in
    the frame's reach, then back to the last point under the level it had in the 20 ms before
    (its median: noise and a decaying tail) plus a tenth of the rise (at least
    :data:`RISE_DB`), less :data:`LEAD_S`.
    """
    hold = round((0.010 if group == 0 else 0.001) * rate)
    reach_lo = max(0, centre - FRAME // 2 - HOP)
    lo = max(0, reach_lo - round(0.02 * rate) - hold)
    hi = min(len(mono), centre + FRAME // 2)
    if hi - reach_lo < 4:
        return max(0, centre)
    seg = mono[lo:hi].astype(np.float64)
    if group > 0:
        seg = np.diff(seg, prepend=seg[:1])
    held = np.lib.stride_tricks.sliding_window_view(np.pad(np.abs(seg), (hold - 1, 0)), hold).max(
        axis=1
    )
    envelope = 20.0 * np.log10(held + 1e-9)
    step = max(1, round(0.001 * rate))
    first = reach_lo - lo
    slope = envelope[first + step :] - envelope[first : len(envelope) - step]
    steepest = first + step + int(np.argmax(slope))
    back = max(min(hold, steepest), steepest - round(0.02 * rate))  # past the hold's warm-up
    level = float(np.median(envelope[back : max(back + 1, steepest - step)]))
    peak = float(np.max(envelope[steepest : steepest + 4 * step + 1]))
    threshold = level + max(RISE_DB, 0.1 * (peak - level))
    quiet = np.flatnonzero(envelope[back : steepest + 1] <= threshold)
    start = back + int(quiet[-1]) + 1 if len(quiet) else steepest
    return max(0, lo + start - round(LEAD_S * rate))


def _is_new_sound(
    levels: np.ndarray, bands: np.ndarray, at: int, rate: int, floor: float = FLOOR_DB
) -> bool:
    """The group's level over :data:`RISE_S` after ``at`` stands :data:`RISE_DB` above the
    same span before it (frames of the band levels; a decay stepping to silence fails), and
    :data:`ABOVE_FLOOR_DB` above the group's floor in the loop (its quiet moments: a ripple
    of the noise between hits is no hit)."""
    if not len(bands):
        return False
    reach = max(1, round(RISE_S * rate / HOP))
    k = round(at / HOP)
    after = levels[k + 1 : k + 1 + reach, bands]
    before = levels[max(0, k - reach) : k, bands]
    if not len(after):
        return False
    if not len(before):
        return True
    gain = _db_mean(after) - _db_mean(before)
    return bool(gain >= RISE_DB and _db_mean(after) > max(FLOOR_DB + 10, floor + ABOVE_FLOOR_DB))


def _db_percentile(levels: np.ndarray, q: float) -> float:
    """The ``q``-th percentile over frames of a group's level (its bands' mean power), in dB."""
    group = 10.0 * np.log10(np.mean(10.0 ** (levels / 10.0), axis=1))
    return float(np.percentile(group, q))


def _db_mean(levels: np.ndarray) -> float:
    """The mean power of levels in dB, in dB."""
    return float(10.0 * np.log10(np.mean(10.0 ** (levels / 10.0))))


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
