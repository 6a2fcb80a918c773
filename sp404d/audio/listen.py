"""What a sample's sound says of its BPM and key (:mod:`~sp404d.audio.tempo`,
:mod:`~sp404d.audio.tonality`), as the journal records it: each value with its confidence, and
nothing where the analysis is not sure. Run on samples already decoded for the render, so the
file is not read twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soxr

from sp404d.audio import tempo, tonality
from sp404d.audio.decode import read_all
from sp404d.audio.dsp import OUT_RATE, at_rate, fold_channels
from sp404d.audio.probe import AudioInfo

#: Longer files are takes, not loops or notes: not listened to (and not held in memory for it).
#: The render's limit for a file held whole, in seconds: the same files either way.
MOST_SECONDS = (1 << 21) / 48_000
#: Shorter sounds have neither a tempo nor a key (a hit): not decoded, mixed or framed for it.
LEAST_SECONDS = min(tempo.MIN_SECONDS, tonality.MIN_SECONDS)
SOUNDING_DB = -60.0  # under the sound's peak: its silence, or a tail too quiet to say anything
KEEP_S = 0.5


def hear(x: np.ndarray, rate: int, bpm: bool, key: bool) -> dict[str, object]:
    """``{"bpm": 92.0, "bpm_confidence": 0.71, "key": "Am", "key_confidence": 0.6}``, each
    pair only when asked for and found; ``x`` is frames x channels, float."""
    if not (bpm or key) or len(x) < LEAST_SECONDS * rate:
        return {}
    mono = sounding(at_rate(x, rate, tempo.RATE), tempo.RATE)  # once, for both
    heard: dict[str, object] = {}
    if bpm and (found := tempo.estimate(mono, tempo.RATE)) is not None:
        heard.update(bpm=found.bpm, bpm_confidence=found.confidence)
    if key and (sung := tonality.estimate(mono, tempo.RATE)) is not None:
        heard.update(key=sung.key, key_confidence=sung.confidence)
    return heard


def sounding(mono: np.ndarray, rate: int) -> np.ndarray:
    """``mono`` from :data:`KEEP_S` before its first sample within :data:`SOUNDING_DB` of its
    peak to as long after its last: a hit's long silent tail holds no beat and no note, and
    listening to it was most of the work on a sample library (a loop's pickup and the rest
    at its end are kept up to that long: on the benchmark's loops, the same tempo each)."""
    level = np.abs(mono)
    loud = np.flatnonzero(level > float(level.max(initial=0.0)) * 10 ** (SOUNDING_DB / 20))
    if not len(loud):
        return mono[:0]
    keep = round(KEEP_S * rate)
    return mono[max(0, int(loud[0]) - keep) : int(loud[-1]) + 1 + keep]


def hear_file(path: Path, info: AudioInfo, bpm: bool, key: bool) -> dict[str, object]:
    """:func:`hear` on a file as a render without shaping hears it: decoded, folded (a 5.1's
    LFE left out), at 48 kHz through the render's resampler; nothing for one not
    :func:`listenable`. For a file copied or written sample for sample, the samples as they
    are (:func:`sp404d.audio.render.heard_as_rendered` says which files those are)."""
    if not (bpm or key) or not listenable(info):
        return {}
    x = fold_channels(read_all(path, info))
    if info.rate != OUT_RATE:
        x = soxr.resample(x, info.rate, OUT_RATE, quality="HQ")
    return hear(x, OUT_RATE, bpm, key)


def listenable(info: AudioInfo) -> bool:
    """Whether a file is listened to at all: its length known, from :data:`LEAST_SECONDS` to
    :data:`MOST_SECONDS`."""
    return (
        info.exact_length and LEAST_SECONDS * info.rate <= info.frames <= MOST_SECONDS * info.rate
    )
