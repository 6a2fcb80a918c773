"""The key a tonal sample is in, heard from its sound: numpy only.

1. **Which notes sound**: the sample at 12 kHz in 340 ms frames (3 Hz apart: two semitones
   at 65 Hz are 4 Hz apart); in each frame only the spectral peaks that stand out of their
   neighbourhood count (a drum's noise or a hat's hiss spreads over every note and raises none),
   and of those only the ones near the frame's loudest (a noise floor's are no notes), each on
   its nearest note from C2 to C7, summed into 12 pitch classes (a chroma), the lower
   octaves weighted up (the bass says more about the key than the sparkle).
2. **Which key fits**: the chroma is correlated with the 24 rotations of Krumhansl and
   Kessler's major and minor key profiles (Temperley's and Albrecht and Shanahan's scored
   lower on the benchmark's samples) and the best is the key.
3. **Whether to say it**: the confidence is the best correlation's margin over the best of
   the keys that are not its relative (a relative major and minor share every note; a margin
   over them would always be small). Under :data:`MIN_CONFIDENCE`, when little of the sound
   is in peaks (a drum), and for a sound under :data:`MIN_SECONDS`, there is no key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sp404d.audio.dsp import at_rate, spectra

RATE = 12_000
FRAME = 4096
HOP = 4096  # frames side by side: as sure on four sets of samples as half-overlapped, half the work
LOWEST_MIDI, HIGHEST_MIDI = 28, 96  # E1 to C7
#: Peaks this far under their frame's loudest, or the sample's, are not notes: a noise floor's
#: hundreds of small peaks, compressed, summed over the other eleven notes to a chord (one
#: tone over noise was heard in a key in 18 of 300 of the convert benchmark's hits).
FRAME_RANGE_DB = 36.0
RANGE_DB = 42.0
PEAK_DB = 6.0  # a peak stands this far over the mean of its neighbourhood, in dB
NEIGHBOURHOOD = 31  # bins
MIN_TONAL_SHARE = 0.25  # of the energy in that range, in peaks: under it, a drum or noise
MIN_CONFIDENCE = 0.08
STRONG_SHARE = 0.25
MOST_NOTES = (3, 7)  # strong pitch classes a key is heard in
#: Shorter sounds get no key: a chord stab of 1.5 s or a progression's first 1.4 s was never
#: heard surely enough to say one (0 of 120 in bench/bench_analysis.py's sets; one of 2 s, 24
#: of 24 right), and listening to every short drum hit cost as much as the loops.
MIN_SECONDS = 1.6
OPENING_WEIGHT = 2.0  # the first quarter counts thrice: a loop opens on its tonic
LOW_WEIGHT = 1.0
POWER = 0.5  # magnitudes compressed: a loud note does not drown the others
NOTES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl and Kessler (1982), the probe-tone ratings.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Key:
    key: str  # "Am", "C#"
    confidence: float


def chroma(mono: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """The sample's 12 pitch classes (C first), summed over time; and the share of its energy
    in spectral peaks (near 1 for notes, low for drums and noise)."""
    x = at_rate(mono, rate, RATE)
    if len(x) < FRAME:
        x = np.concatenate([x, np.zeros(FRAME - len(x), np.float32)])
    mags = np.abs(spectra(x, FRAME, HOP)[:, _LO:_HI])
    count = len(mags)
    level = 20 * np.log10(mags + 1e-9)
    local = _running_mean(level, NEIGHBOURHOOD)
    peak = (level >= local + PEAK_DB) & (mags >= np.roll(mags, 1, axis=1))
    peak &= mags >= np.roll(mags, -1, axis=1)
    peak &= level >= level.max(axis=1, keepdims=True) - FRAME_RANGE_DB
    peak &= level >= level.max() - RANGE_DB
    energy = float((mags**2).sum())
    tonal = float((mags[peak] ** 2).sum()) / energy if energy > 0 else 0.0
    opening = np.where(np.arange(count) < max(1, count // 4), 1.0 + OPENING_WEIGHT, 1.0)
    weight = opening @ np.where(peak, mags**POWER, 0.0) * _BASS_WEIGHT
    out: np.ndarray = np.bincount(_CLASSES, weight, minlength=12)
    return out, tonal


def _running_mean(level: np.ndarray, width: int) -> np.ndarray:
    """Each bin's neighbourhood mean (per frame), by cumulative sums: a median's robustness
    costs ten times as much, and a peak over its neighbours' mean in dB is as telling."""
    half = width // 2
    padded = np.pad(level, ((0, 0), (half + 1, half)), mode="edge")
    summed = np.cumsum(padded, axis=1)
    out: np.ndarray = (summed[:, width:] - summed[:, :-width]) / width
    return out


def estimate(mono: np.ndarray, rate: int) -> Key | None:
    """The sample's key, or None: a drum, noise, a lone note, or not sure enough."""
    if len(mono) < MIN_SECONDS * rate or not np.any(mono):
        return None
    profile, tonal = chroma(mono, rate)
    if tonal < MIN_TONAL_SHARE or not np.any(profile):
        return None
    notes = int((profile >= STRONG_SHARE * profile.max()).sum())
    if not MOST_NOTES[0] <= notes <= MOST_NOTES[1]:  # a lone note, or a drum's noise on every note
        return None
    scores = _scores(profile)
    best = int(np.argmax(scores))
    relative = 12 + (best + 9) % 12 if best < 12 else (best - 12 + 3) % 12  # C <-> Am
    others = [s for i, s in enumerate(scores) if i not in (best, relative)]
    margin = float(scores[best] - max(others))
    if margin < MIN_CONFIDENCE:
        return None
    name = NOTES[best % 12] + ("m" if best >= 12 else "")
    return Key(name, round(min(1.0, margin / 0.5), 2))


def _standard(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x - x.mean(axis=-1, keepdims=True)) / (x.std(axis=-1, keepdims=True) + 1e-12)
    return out


#: Every key's profile, standardised: rows 0-11 major (C first), 12-23 minor.
_KEYS = _standard(
    np.stack([np.roll(MAJOR, t) for t in range(12)] + [np.roll(MINOR, t) for t in range(12)])
)
#: The FFT bins from E1 to C7, each bin's pitch class, and how much its octave counts.
_MIDI = 69 + 12 * np.log2(np.maximum(np.fft.rfftfreq(FRAME, 1.0 / RATE), 1e-3) / 440.0)
_LO = int(np.searchsorted(_MIDI, LOWEST_MIDI - 0.5))
_HI = int(np.searchsorted(_MIDI, HIGHEST_MIDI + 0.5))
_NOTES = np.round(_MIDI[_LO:_HI]).astype(int)
_CLASSES = _NOTES % 12
_BASS_WEIGHT = 1.0 + LOW_WEIGHT * (HIGHEST_MIDI - _NOTES) / 24.0


def _scores(profile: np.ndarray) -> np.ndarray:
    """The correlation of ``profile`` with each major key (0-11, C first), then each minor."""
    out: np.ndarray = _KEYS @ _standard(profile) / 12.0
    return out
