"""Chop a loop into slices for consecutive pads: where to cut, as pure functions on samples.

Two ways: ``equal`` (N slices of the same length, to the frame, so they stay in time with the
loop's tempo) and ``onsets`` (at the loop's transients, found by spectral flux, as drum
chopping tools do). A cut at a transient is moved back to the quietest sample in the few
milliseconds before it (a zero crossing, for a single tone), so the slice starts before its
attack and without a click; a cut that finds no quiet sample there, and every equal cut inside
sound, gets a short fade instead. Everything runs on the 48 kHz output samples, before dither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME = 1024  # spectral flux: window, ~21 ms at 48 kHz
HOP = 256  # ~5 ms: the detector's time resolution, before the cut is refined
SNAP_MS = 5.0  # a cut looks this far back for a quiet sample
QUIET = 0.01  # -40 dBFS: quiet enough to cut at without a fade
FADE_IN_MS = 1.0  # short: the attack of the slice's hit must survive it
FADE_OUT_MS = 2.0
MIN_GAP_MS = 50.0  # onsets closer than this are one sound
RISE_DB = 3.0  # an onset is a new sound: this much louder after it than before
RISE_WINDOW_MS = 20.0


@dataclass(frozen=True)
class Slice:
    """One slice of the loop: frames ``[start, end)`` of the output samples, and whether its
    ends were faded (a cut inside sound)."""

    start: int
    end: int
    fade_in: bool = False
    fade_out: bool = False


def equal_cuts(frames: int, count: int) -> list[int]:
    """The inner cut points of ``count`` equal slices (each within a frame of the others)."""
    return [round(k * frames / count) for k in range(1, count)]


def onset_strength(mono: np.ndarray) -> np.ndarray:
    """Spectral flux a hop: how much new energy each frame brings (log magnitudes, rises
    only). Frames are centred on ``k * HOP``."""
    padded = np.concatenate([np.zeros(FRAME // 2, np.float32), mono, np.zeros(FRAME, np.float32)])
    count = 1 + (len(padded) - FRAME) // HOP
    window = np.hanning(FRAME).astype(np.float32)
    strength = np.zeros(count, dtype=np.float64)
    previous: np.ndarray | None = None
    for at in range(0, count, 512):  # in blocks: a 43 s loop's spectrogram would be 80 MB
        idx = (np.arange(at, min(count, at + 512)) * HOP)[:, None] + np.arange(FRAME)[None, :]
        mags = np.log1p(100.0 * np.abs(np.fft.rfft(padded[idx] * window, axis=1)))
        stacked = mags if previous is None else np.vstack([previous, mags])
        rises = np.maximum(np.diff(stacked, axis=0), 0.0).sum(axis=1)
        first = at + 1 if previous is None else at  # frame 0 has nothing before it
        strength[first : first + len(rises)] = rises
        previous = mags[-1:]
    return strength


def onset_cuts(x: np.ndarray, rate: int, most: int, min_frames: int) -> list[int]:
    """Inner cut points at the loop's strongest transients: at most ``most`` slices, none
    shorter than ``min_frames`` (nor than :data:`MIN_GAP_MS`)."""
    mono = x.mean(axis=1, dtype=np.float64).astype(np.float32) if x.ndim == 2 else x
    gap = max(min_frames, round(MIN_GAP_MS * rate / 1000))
    strength = onset_strength(mono)
    if len(strength) < 3 or strength.max() <= 0:
        return []
    # A peak: the local maximum over +-2 hops, above a threshold that follows the flux's own
    # level (median over ~0.3 s) and a floor relative to the loudest onset.
    span = max(1, round(0.15 * rate / HOP))
    padded = np.pad(strength, span, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * span + 1)
    local = np.median(windows, axis=1)
    floor = 0.1 * strength.max()
    near = np.lib.stride_tricks.sliding_window_view(np.pad(strength, 2, mode="constant"), 5)
    peaks = [
        k
        for k in range(1, len(strength))
        if strength[k] == near[k].max() and strength[k] > max(floor, 1.5 * local[k])
    ]
    # Strongest first, each at least a gap from those kept, from the start and from the end.
    kept: list[int] = []
    for k in sorted(peaks, key=lambda k: (-strength[k], k)):
        cut = _attack(mono, k * HOP, rate)
        if cut < gap or len(mono) - cut < gap or any(abs(cut - c) < gap for c in kept):
            continue
        if not _louder_after(mono, cut, rate):  # a change in a decay, not a new sound
            continue
        kept.append(cut)
        if len(kept) == most - 1:
            break
    return sorted(kept)


def _louder_after(mono: np.ndarray, cut: int, rate: int) -> bool:
    """Whether the sound after ``cut`` is at least :data:`RISE_DB` louder than before it."""
    width = round(RISE_WINDOW_MS * rate / 1000)
    before = mono[max(0, cut - width) : cut].astype(np.float64)
    after = mono[cut : cut + width].astype(np.float64)
    if not len(before) or not len(after):
        return True
    level_before = float(np.mean(np.square(before)))
    return float(np.mean(np.square(after))) > level_before * 10 ** (RISE_DB / 10)


def _attack(mono: np.ndarray, centre: int, rate: int) -> int:
    """Where the sound that makes the flux peak at ``centre`` starts: the first sample of the
    detector's window that reaches half its loudest, less a millisecond of lead-in."""
    lo = max(0, centre - FRAME // 2 - HOP)
    hi = min(len(mono), centre + FRAME // 2)
    window = np.abs(mono[lo:hi])
    if not len(window) or window.max() <= 0:
        return centre
    first = lo + int(np.argmax(window >= 0.5 * window.max()))
    return max(0, first - round(rate / 1000))


def snap(x: np.ndarray, cut: int, rate: int) -> tuple[int, bool]:
    """Where to cut near ``cut``: the latest quiet frame (every channel under :data:`QUIET`) in
    the :data:`SNAP_MS` before it, else the quietest there; and whether it is quiet enough to
    cut at without a fade."""
    lo = max(1, cut - round(SNAP_MS * rate / 1000))
    level = np.abs(x[lo : cut + 1]).max(axis=1)
    quiet = np.flatnonzero(level <= QUIET)
    if len(quiet):
        return lo + int(quiet[-1]), True
    return lo + len(level) - 1 - int(np.argmin(level[::-1])), False


def slices(x: np.ndarray, cuts: list[int], rate: int, *, snapped: bool) -> list[Slice]:
    """The slices between ``cuts``; with ``snapped`` each cut first moves back to a quiet
    frame (:func:`snap`). A cut inside sound fades both slices it parts."""
    bounds: list[tuple[int, bool]] = []
    for cut in cuts:
        if snapped:
            bounds.append(snap(x, cut, rate))
        else:
            bounds.append((cut, bool(np.abs(x[cut]).max() <= QUIET)))
    points = [0, *[b for b, _ in bounds], len(x)]
    clean = [True, *[q for _, q in bounds], True]
    return [
        Slice(points[i], points[i + 1], fade_in=not clean[i], fade_out=not clean[i + 1])
        for i in range(len(points) - 1)
        if points[i + 1] > points[i]
    ]


def cut_out(x: np.ndarray, part: Slice, rate: int) -> np.ndarray:
    """The samples of one slice, with the fades its cuts call for."""
    y = x[part.start : part.end].copy()
    if part.fade_in:
        n = min(len(y), round(FADE_IN_MS * rate / 1000))
        y[:n] *= np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)[:, None]
    if part.fade_out:
        n = min(len(y), round(FADE_OUT_MS * rate / 1000))
        y[len(y) - n :] *= np.linspace(1.0, 0.0, n + 1, dtype=np.float32)[1:, None]
    return y
