"""Chop a loop into slices for consecutive pads: where to cut, as pure functions on samples.

Two ways: ``equal`` (N slices of the same length, to the frame, so they stay in time with the
loop's tempo) and ``onsets`` (at the loop's hits, found by :mod:`sp404d.audio.onsets`), or at
the markers the file carries. A cut at a hit is moved back to the latest quiet sample in the
few milliseconds before it, so the slice starts before its attack and without a click; a hit
over another's tail is cut one short fade-in before it (the fade ends where the hit begins),
as is every equal cut inside sound. Everything runs on the 48 kHz output samples, before dither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sp404d.audio import dsp, onsets

SNAP_MS = 5.0  # a cut looks this far back for a quiet sample
QUIET = 0.01  # -40 dBFS: quiet enough to cut at without a fade
FADE_IN_MS = 1.0  # short: the attack of the slice's hit must survive it
FADE_OUT_MS = 2.0
MIN_GAP_MS = 50.0  # onsets closer than this are one sound


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


def onset_starts(
    x: np.ndarray, rate: int, most: int, min_frames: int, sensitivity: str = "mid"
) -> tuple[list[int], int]:
    """Where the slices of a loop chopped at its onsets begin, at most ``most``, none shorter
    than ``min_frames`` (nor than :data:`MIN_GAP_MS`); and how many sounds were found.

    A hit at the very start begins the first slice; sound before the first hit (a loop that
    starts in a tail) is a slice of its own; silence before it is none (N slices, N hits). When
    there are more sounds than room, the strongest are kept.
    """
    mono = dsp.mix_down(x)
    gap = max(min_frames, round(MIN_GAP_MS * rate / 1000))
    kept: list[onsets.Onset] = []
    for onset in sorted(onsets.detect(mono, rate, sensitivity), key=lambda o: -o.strength):
        if len(mono) - onset.at < gap or any(abs(onset.at - k.at) < gap for k in kept):
            continue
        kept.append(onset)
    kept.sort(key=lambda o: o.at)
    lead = kept[0].at if kept else len(mono)
    if kept and np.abs(x[:lead]).max(initial=0.0) > QUIET:  # sound (in any channel) before it:
        if lead >= gap:  # a slice of its own
            kept.insert(0, onsets.Onset(0, float("inf")))
        else:  # too short for one: the first slice starts at the loop's start
            kept[0] = onsets.Onset(0, float("inf"))
    found = len(kept)
    if kept:  # where the loop's sound begins is always a start, whatever is left out after it
        kept[0] = onsets.Onset(kept[0].at, float("inf"))
    if found > most:
        kept = sorted(sorted(kept, key=lambda o: -o.strength)[:most], key=lambda o: o.at)
    return [o.at for o in kept] or [0], found  # no hit at all: the loop is one slice


def marker_starts(
    frames: int, markers: tuple[int, ...], most: int, min_frames: int
) -> tuple[list[int], int]:
    """Where the slices of a loop chopped at its markers begin: at 0 and at each marker (frames
    of the 48 kHz output), none closer than ``min_frames`` to the one before or to the end; at
    most ``most``, the first ones. And how many there were."""
    starts = [0]
    for at in markers:
        if at - starts[-1] >= min_frames and frames - at >= min_frames:
            starts.append(at)
    return starts[:most], len(starts)


def snap(x: np.ndarray, cut: int, rate: int) -> tuple[int, bool]:
    """Where to cut near ``cut``: the latest quiet frame (every channel under :data:`QUIET`) in
    the :data:`SNAP_MS` before it; else (a hit over another's tail) one fade-in before it, so
    the fade ends where the hit begins. And whether it is quiet enough to cut without a fade."""
    lo = max(1, cut - round(SNAP_MS * rate / 1000))
    level = np.abs(x[lo : cut + 1]).max(axis=1)
    quiet = np.flatnonzero(level <= QUIET)
    if len(quiet):
        return lo + int(quiet[-1]), True
    return max(lo, cut - round(FADE_IN_MS * rate / 1000)), False


def slices(x: np.ndarray, cuts: list[int], rate: int, *, snapped: bool) -> list[Slice]:
    """The slices between ``cuts`` (inner cut points: the first slice starts at 0); with
    ``snapped`` each cut first moves back to a quiet frame (:func:`snap`). A cut inside sound
    fades both slices it parts."""
    return _between(x, [0, *cuts], rate, snapped=snapped)


def slices_from(x: np.ndarray, starts: list[int], rate: int) -> list[Slice]:
    """The slices beginning at ``starts`` (:func:`onset_starts`), each to the next, the last
    to the end; each start moved back to a quiet frame first. What comes before the first
    start (silence) is no slice."""
    return _between(x, starts, rate, snapped=True)


def _between(x: np.ndarray, starts: list[int], rate: int, *, snapped: bool) -> list[Slice]:
    bounds: list[tuple[int, bool]] = []
    for cut in starts:
        if cut == 0:
            bounds.append((0, True))
        elif snapped:
            bounds.append(snap(x, cut, rate))
        else:
            bounds.append((cut, bool(np.abs(x[cut]).max() <= QUIET)))
    points = [b for b, _ in bounds] + [len(x)]
    clean = [q for _, q in bounds] + [True]
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
