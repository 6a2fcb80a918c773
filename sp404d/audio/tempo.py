"""The tempo a loop plays at, heard from its sound: numpy only, about half a millisecond per
second of audio.

1. **Where sounds begin**: the loop at 12 kHz, in 21 ms frames every 10.7 ms; each frame's rise
   in energy (to the power 0.3: a loud hit counts more than a quiet one, not a hundred times
   more) over 16 log-spaced bands, summed and smoothed over 21 ms: an onset envelope. A pad's
   or a voice's envelope rises all the time, a beat's now and then: an envelope whose peaks
   do not stand 1.8 times over its median has no tempo, nor a sound in which the onset finder
   (:mod:`sp404d.audio.onsets`) hears fewer than three new sounds (two tones beating slowly;
   asked last, only where the peaks do not make the hits plain, and of the first seconds first).
2. **How regularly**: the envelope's autocorrelation, read between frames at the beat period
   of every candidate tempo (0.1 BPM apart, 40 to 240) and its multiples (MIREX counts a
   tempo right within 4%; a frame every 5.3 ms got one loop in 280 more, at twice the work).
   Swing and pickups shift some hits off the grid; the beat's period is still the strongest.
3. **Which octave**: 60 and 120 BPM are the same pulse. A musician counts the one in 60-180
   at which the low bands (kick, snare body) hit every beat, near 100 BPM rather than far
   from it (hats on every eighth make the double tempo as regular, but not in the low bands);
   and where two octaves both fit, the one at which the snare's crack (1.5-5 kHz) answers the
   kick's body (under 120 Hz) one beat later: the backbeat, kick on one and snare on two.

The answer comes with a confidence, how alike the envelope is one beat later (0 to 1: a drum
machine's loop near 1, a pad or a voice near 0); under :data:`MIN_CONFIDENCE`, and for a sound
too short to hold two beats, there is none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sp404d.audio import onsets
from sp404d.audio.dsp import at_rate, percentile, spectra

RATE = 12_000
FRAME = 256  # 21 ms
HOP = 128  # 10.7 ms: 93.75 frames a second, read between frames
BANDS = 16
LOWEST_HZ = 40.0
LOW_HZ = 1000.0  # the low bands: kick, snare body, bass
SNARE_HZ = (1500.0, 5000.0)  # a snare's crack: over the kick, under most of the hats
BACKBEAT = 0.15
KICK_HZ = 120.0  # a kick's body, under the snare's
COMPRESS = 0.3  # energy to this power: a loud hit counts more than a quiet one, not 100x more
SLOWEST, FASTEST = 40.0, 240.0  # the candidates, BPM
STEP_BPM = 0.1
MULTIPLES = (1, 2, 3, 4)
MULTIPLE_WEIGHTS = (1.0, 0.5, 0.33, 0.25)
MOST_OF_LENGTH = 0.75  # lags past this share of the envelope are read from too few frames
PREFERRED = (60.0, 180.0)  # where a musician places the beat
BEAT_SHARE = 0.6
CENTRE_BPM, SPREAD = 100.0, 1.5
MIN_SECONDS = 1.5
MIN_PEAKINESS = 1.8  # the envelope's 95th percentile over its median (pads: 1.3-1.6)
MIN_HITS = 3
CHECK_S = (1.0, 3.0)  # the onset check's first listens, then all: a loop's first beats
SURE_PEAKINESS = 16.0  # over this, hits are plain: no onset check (beating tones: up to 11.2)
LOCAL_S = 0.5
SMOOTH_FRAMES = 2  # 21 ms
MIN_CONFIDENCE = 0.25


@dataclass(frozen=True)
class Tempo:
    bpm: float
    confidence: float


@dataclass(frozen=True)
class Envelopes:
    """Onset envelopes at ``RATE / HOP`` frames a second: of the whole sound, of its low bands
    (kick, snare body, bass), of the snare's crack and of the kick's body alone."""

    whole: np.ndarray
    low: np.ndarray
    snare: np.ndarray
    kick: np.ndarray


def envelopes(x: np.ndarray) -> Envelopes:
    """The onset envelopes of ``x`` (at :data:`RATE`)."""
    if len(x) < FRAME:
        empty = np.zeros(0)
        return Envelopes(empty, empty, empty, empty)
    spectrum = spectra(x, FRAME, HOP)
    power = spectrum.real**2 + spectrum.imag**2
    energy = np.add.reduceat(power, _STARTS, axis=1)  # no BLAS: its threads fight the pool
    kick = power[:, 1:_KICK_BINS].sum(axis=1)
    smooth = np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES  # a beating of two close tones is no pulse

    def rises(e: np.ndarray) -> np.ndarray:
        levels = (e / (e.max() + 1e-20)) ** COMPRESS
        out: np.ndarray = np.maximum(np.diff(levels, axis=0, prepend=levels[:1]), 0.0)
        return out

    def smoothed(r: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.convolve(r, smooth, mode="same")
        return out

    rise = rises(energy)
    return Envelopes(
        smoothed(rise.sum(axis=1)),
        smoothed(rise[:, _LOW].sum(axis=1)),
        smoothed(rise[:, _MID].sum(axis=1)),
        smoothed(rises(kick)),
    )


def _edges() -> np.ndarray:
    return np.geomspace(LOWEST_HZ, RATE / 2, BANDS + 1)


def _centres() -> np.ndarray:
    edges = _edges()
    centres: np.ndarray = np.sqrt(edges[:-1] * edges[1:])
    return centres


def _starts() -> np.ndarray:
    """The first FFT bin of each band (each band at least one bin wide)."""
    freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE)
    first = np.searchsorted(freqs, _edges()[:-1])
    starts: np.ndarray = np.maximum(first, np.arange(BANDS) + int(first[0]))
    return starts


def autocorrelation(env: np.ndarray) -> np.ndarray:
    """How alike the envelope is to itself at every lag (frames), 1 at lag 0; unbiased, so a
    long lag is not worth less for having fewer frames to compare."""
    width = max(1, round(LOCAL_S * RATE / HOP))  # less its local mean: a held sound is no pulse
    env = env - np.convolve(env, np.ones(width) / width, mode="same")
    n = len(env)
    size = _fft_size(2 * n)
    ac = np.fft.irfft(np.abs(np.fft.rfft(env, size)) ** 2, size)[:n]
    out: np.ndarray = ac / (ac[0] + 1e-12) * n / np.maximum(n - np.arange(n), 1)
    return out


def at_bpm(ac: np.ndarray, bpm: np.ndarray | float) -> np.ndarray:
    """The autocorrelation at the beat period of ``bpm``, read between frames (0 past
    :data:`MOST_OF_LENGTH` of it)."""
    lag = 60.0 * RATE / HOP / np.asarray(bpm, dtype=np.float64)
    inside = lag < len(ac) * MOST_OF_LENGTH
    out: np.ndarray = np.where(inside, np.interp(lag, np.arange(len(ac)), ac), 0.0)
    return out


def strengths(ac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate tempo (BPM) and how strongly the envelope repeats at its beat and the
    beat's multiples."""
    bpms = np.arange(SLOWEST, FASTEST + STEP_BPM / 2, STEP_BPM)
    score = sum(w * at_bpm(ac, bpms / k) for k, w in zip(MULTIPLES, MULTIPLE_WEIGHTS, strict=True))
    return bpms, np.asarray(score)


def estimate(mono: np.ndarray, rate: int) -> Tempo | None:
    """The loop's tempo, or None: too short, no pulse, or not sure enough."""
    seconds = len(mono) / rate
    if seconds < MIN_SECONDS or not np.any(mono):
        return None
    x = at_rate(mono, rate, RATE)  # its beat and its hits as plain, for a quarter of the work
    heard = envelopes(x)
    env = heard.whole
    if len(env) < 8 or not np.any(env):
        return None
    peakiness = percentile(env, 95) / (percentile(env, 50) + 1e-12)
    if peakiness < MIN_PEAKINESS:  # a pad, a voice, a swell: its envelope rises all the time,
        return None  # a beat's now and then
    ac = autocorrelation(env)
    if not _may_repeat(ac):  # a hit and its decay: no octave to choose
        return None
    bpms, score = strengths(ac)
    bpm = _refined(ac, _octave(heard, float(bpms[int(np.argmax(score))])))
    confidence = float(np.clip(at_bpm(ac, bpm), 0.0, 1.0))  # how alike one beat is to the next
    if confidence < MIN_CONFIDENCE:
        return None
    # Last, as the costliest test, and only of a pulse that would be the answer:
    if peakiness < SURE_PEAKINESS and not _new_sounds(x):
        return None  # two tones beating slowly pulse like hits, but no new sound begins
    return Tempo(round(bpm, 1), round(confidence, 2))


def _refined(ac: np.ndarray, bpm: float) -> float:
    """``bpm`` read to a fraction of a frame: the autocorrelation's peak nearest the largest
    multiple of the beat that fits (four beats measured are four times as fine as one), placed
    by a parabola through its three frames. Read between frames only, a steady 120 BPM was
    119.7 (the nearest whole frame)."""
    lag = 60.0 * RATE / HOP / bpm
    for beats in (4, 2, 1):
        k = round(lag * beats)
        if k + 3 > len(ac) * MOST_OF_LENGTH or k < 3:
            continue
        j = k - 2 + int(np.argmax(ac[k - 2 : k + 3]))
        before, top, after = (float(v) for v in ac[j - 1 : j + 2])
        bend = before - 2 * top + after
        if not (bend < 0 and top >= max(before, after)):
            continue
        peak = (j + 0.5 * (before - after) / bend) / beats
        if abs(peak - lag) <= 0.02 * lag:
            return 60.0 * RATE / HOP / peak
    return bpm


def _may_repeat(ac: np.ndarray) -> bool:
    """Whether any beat period from :data:`FASTEST` to :data:`SLOWEST` repeats as surely as
    :data:`MIN_CONFIDENCE` asks: the confidence is read between these frames, so it cannot be
    more (the answer is the same without this; the octave rules are not run for nothing)."""
    lo = int(60.0 * RATE / HOP / FASTEST)
    hi = int(np.ceil(60.0 * RATE / HOP / SLOWEST)) + 1
    return bool(len(ac) > lo and ac[lo:hi].max() >= MIN_CONFIDENCE)


def _new_sounds(x: np.ndarray) -> bool:
    """Whether :data:`MIN_HITS` new sounds begin in ``x`` (at :data:`RATE`): in its first
    second, else its first three (a loop's first beats), else in all of it (one that opens
    on silence, or holds its hits far apart)."""
    for seconds in CHECK_S:
        head = x[: round(seconds * RATE)]
        if onsets.begin(head, RATE, MIN_HITS):
            return True
        if len(head) == len(x):
            return False
    return onsets.begin(x, RATE, MIN_HITS)


def _octave(heard: Envelopes, bpm: float) -> float:
    """The octave of ``bpm`` a musician counts, in :data:`PREFERRED`: of those at which the
    low bands repeat nearly as strongly as at the best (weighed by how near
    :data:`CENTRE_BPM`), the one at which the snare answers the kick a beat later (the
    backbeat: kick on one, snare on two); else the one whose snare repeats every two beats and
    not every beat; else the fastest."""
    candidates = [bpm * f for f in (0.25, 0.5, 1.0, 2.0, 4.0, 1 / 3, 2 / 3, 1.5, 3.0)]
    inside = [c for c in candidates if PREFERRED[0] <= c <= PREFERRED[1]] or [bpm]
    beat_ac = autocorrelation(heard.low if np.any(heard.low) else heard.whole)
    repeat = {
        c: float(at_bpm(beat_ac, c)) * float(np.exp(-0.5 * (np.log2(c / CENTRE_BPM) / SPREAD) ** 2))
        for c in inside
    }
    top = max(repeat.values())
    if not top > 0:  # nothing repeats in the low bands: the strongest pulse's own octave
        return max(inside, key=lambda c: (repeat[c], -abs(c - bpm)))
    passing = [c for c in inside if repeat[c] >= BEAT_SHARE * top]
    octaves = [c for c in passing if round(np.log2(c / bpm), 6).is_integer()] or passing
    if len(passing) > 1 and np.any(heard.kick) and np.any(heard.snare):
        answer = _after(heard.kick, heard.snare)  # the snare, how long after the kick
        backbeat = {
            c: float(at_bpm(answer, c) - (at_bpm(answer, 2 * c) + at_bpm(answer, c / 2)) / 2)
            for c in octaves
        }
        best = max(octaves, key=lambda c: backbeat[c])
        if backbeat[best] >= 0:
            return best
    if len(passing) > 1 and np.any(heard.snare):
        snare_ac = autocorrelation(heard.snare)
        two = {c: float(at_bpm(snare_ac, c / 2) - at_bpm(snare_ac, c)) for c in passing}
        best = max(passing, key=lambda c: two[c])
        if two[best] >= BACKBEAT:
            return best
    return max(passing)


def _fft_size(n: int) -> int:
    """The power of two from ``n`` up: a correlation padded past twice its length is the same,
    and every loop's transform then has a plan numpy made before (odd lengths cost up to ten
    times as much, and a new plan each)."""
    return 1 << (n - 1).bit_length()


def _after(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """How alike ``then`` is to ``first`` at every lag after it (a cross-correlation, 1 for
    the same shape, unbiased as :func:`autocorrelation`)."""
    n = len(first)
    a, b = first - first.mean(), then - then.mean()
    size = _fft_size(2 * n)
    xc = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)[:n]
    scale = np.sqrt(float((a**2).sum() * (b**2).sum())) + 1e-12
    out: np.ndarray = xc / scale * n / np.maximum(n - np.arange(n), 1)
    return out


_STARTS = _starts()
_KICK_BINS = int(KICK_HZ * FRAME / RATE) + 1  # FFT bins 1 to this: 47 and 94 Hz
_LOW = _centres() < LOW_HZ
_MID = (_centres() >= SNARE_HZ[0]) & (_centres() < SNARE_HZ[1])
