"""Sound shaping for files too long to hold whole: the measures of :mod:`sp404d.audio.shape`,
taken a block at a time.

A long file is read in passes (:func:`sp404d.audio.render.render`'s streamed way): the first
finds where its sound starts and ends (trim) and how its channels fold; the second measures the
resampled output (true peak, loudness); the last writes it. Each meter here sees the blocks of
one pass in order and gives the same figure as its whole-file counterpart: the true peak by
a 4x soxr stream (no seams between blocks), the loudness by the K-weighting applied as an FIR
filter (its impulse response, from the same exact frequency response) by overlap-save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr

from sp404d.audio import shape

#: The K-weighting's impulse response: long enough that what is cut off is under -150 dB.
_K_TAPS = 1 << 14
_FFT = 1 << 16


@dataclass
class SoundSpan:
    """Pass one: the first and last frame above a threshold, the channels' energy and the
    energy of their mono fold (to judge a fold without holding the file)."""

    threshold: float  # linear
    frames: int = 0
    first: int | None = None
    last: int | None = None
    channel_energy: np.ndarray | None = None
    fold_energy: float = 0.0

    def add(self, block: np.ndarray) -> None:
        level = np.max(np.abs(block), axis=1)
        loud = np.flatnonzero(level > self.threshold)
        if len(loud):
            if self.first is None:
                self.first = self.frames + int(loud[0])
            self.last = self.frames + int(loud[-1])
        energy = np.square(block, dtype=np.float64).sum(axis=0)
        self.channel_energy = (
            energy if self.channel_energy is None else self.channel_energy + energy
        )
        mono = block.mean(axis=1, dtype=np.float64)
        self.fold_energy += float(np.dot(mono, mono))
        self.frames += len(block)

    @property
    def fold_drop_db(self) -> float:
        """As :func:`shape.fold_to_mono` measures it: the fold's RMS under the louder
        channel's."""
        if self.channel_energy is None or self.frames == 0:
            return 0.0
        loudest = float(self.channel_energy.max())
        if loudest <= 0:
            return 0.0
        if self.fold_energy <= 0:
            return 200.0
        return min(10 * math.log10(loudest / self.fold_energy), 200.0)


class TruePeak:
    """The true peak of a stream of 48 kHz blocks: the largest sample of it and of its 4x
    oversampled version (one soxr stream, so no block edge is missed)."""

    def __init__(self, rate: int, channels: int) -> None:
        self._up = soxr.ResampleStream(rate, rate * 4, channels, dtype="float32", quality="HQ")
        self._channels = channels
        self.value = 0.0

    def add(self, block: np.ndarray, last: bool = False) -> None:
        if len(block):
            self.value = max(self.value, float(np.max(np.abs(block))))
        up = self._up.resample_chunk(block.astype(np.float32), last=last)
        if len(up):
            self.value = max(self.value, float(np.max(np.abs(up))))

    def finish(self) -> float:
        self.add(np.zeros((0, self._channels), np.float32), last=True)
        return self.value


def _k_response() -> np.ndarray:
    """The K-weighting filters' impulse response at 48 kHz, ``_K_TAPS`` long."""
    impulse = np.zeros((_K_TAPS, 1))
    impulse[0, 0] = 1.0
    return shape.k_weighted(impulse)[:, 0]


class Loudness:
    """Integrated loudness of a stream of 48 kHz blocks, as :func:`shape.loudness` measures
    it whole: K-weighted by overlap-save, mean square per 100 ms, 400 ms gated blocks."""

    STEP = 4800  # 100 ms at 48 kHz

    def __init__(self, channels: int) -> None:
        self._kernel = np.fft.rfft(_k_response(), _FFT)
        self._history = np.zeros((_K_TAPS - 1, channels))
        self._pending = np.zeros((0, channels))
        self._power_tail = np.zeros(0)
        self._steps: list[float] = []  # summed power per 100 ms
        self._frames = 0

    def add(self, block: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, block.astype(np.float64)])
        hop = _FFT - (_K_TAPS - 1)
        while len(self._pending) >= hop:
            self._filter(self._pending[:hop])
            self._pending = self._pending[hop:]

    def _filter(self, chunk: np.ndarray) -> None:
        frame = np.concatenate([self._history, chunk])
        n = len(frame)
        out = np.fft.irfft(np.fft.rfft(frame, _FFT, axis=0) * self._kernel[:, None], _FFT, axis=0)
        weighted = out[_K_TAPS - 1 : n]
        self._history = frame[len(frame) - (_K_TAPS - 1) :]
        self._frames += len(chunk)
        power = np.concatenate([self._power_tail, np.square(weighted).sum(axis=1)])
        whole = len(power) // self.STEP * self.STEP
        self._steps += list(power[:whole].reshape(-1, self.STEP).sum(axis=1))
        self._power_tail = power[whole:]

    def finish(self) -> float:
        if len(self._pending):
            self._filter(self._pending)
            self._pending = self._pending[:0]
        block, step = 4, self.STEP
        if self._frames < block * step:  # shorter than one block: measured whole
            total = sum(self._steps) + float(self._power_tail.sum())
            blocks = np.array([total / self._frames if self._frames else 0.0])
        else:
            sums = np.concatenate([[0.0], np.cumsum(self._steps)])
            starts = np.arange(0, len(self._steps) - block + 1)
            blocks = (sums[starts + block] - sums[starts]) / (block * step)
        return shape.gated_loudness(blocks)
