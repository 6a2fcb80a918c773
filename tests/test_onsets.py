"""``chop: onsets`` on the cases that lost hits (issue 21), each on a generated loop whose hits
are placed to the sample: a hat a sixteenth after a snare, kicks between and under hats, a
pedal hat's slow rise, hats over a chord and over hiss, leading silence, ghost notes and the
sensitivity that keeps or drops them. The figures on real one-shots are bench/bench_onsets.py's.

A slice must start before its hit (never in its attack) and close to it: at most 2 ms after the
true onset, at most :data:`EARLY_MS` before it (the cut moves back to a quiet sample, a zero
crossing of a held chord, up to ``chop.SNAP_MS``).
"""

from __future__ import annotations

import numpy as np
import pytest

from sp404d.audio import chop, onsets

R = 48000
EARLY_MS = chop.SNAP_MS + onsets.LEAD_S * 1000 + 1.0
LATE_MS = 2.0
MIN_SLICE = round(0.1 * R)


def _noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, n)


def _decay(n: int, decay_s: float, rise_s: float = 0.0) -> np.ndarray:
    t = np.arange(n) / R
    shape: np.ndarray = np.exp(-t / decay_s)
    return shape * np.minimum(1.0, t / rise_s) if rise_s else shape


def kick(level: float = 0.9) -> np.ndarray:
    """A sine swept from 150 to 50 Hz, decaying over 120 ms: all its energy under 250 Hz."""
    n = round(0.3 * R)
    t = np.arange(n) / R
    hz = 50 + 100 * np.exp(-t / 0.03)
    out: np.ndarray = level * np.sin(2 * np.pi * np.cumsum(hz) / R) * _decay(n, 0.12)
    return out


def snare(level: float = 0.7, seed: int = 1) -> np.ndarray:
    """A 190 Hz body and a white rattle decaying over 90 ms (it covers the hats' band)."""
    n = round(0.25 * R)
    body = np.sin(2 * np.pi * 190 * np.arange(n) / R) * _decay(n, 0.05)
    out: np.ndarray = level * (body + 0.5 * _noise(n, seed) * _decay(n, 0.09)) / 1.5
    return out


def hat(
    level: float = 0.2, seed: int = 2, rise_s: float = 0.0, decay_s: float = 0.03
) -> np.ndarray:
    """Noise between 6 and 16 kHz (a closed hat's sizzle); ``rise_s``: a pedal hat's slow rise."""
    n = round(0.15 * R)
    spectrum = np.fft.rfft(_noise(n, seed))
    hz = np.fft.rfftfreq(n, 1 / R)
    spectrum[(hz < 6000) | (hz > 16000)] = 0
    out: np.ndarray = level * 1.6 * np.fft.irfft(spectrum, n) * _decay(n, decay_s, rise_s)
    return out


def loop(
    seconds: float, hits: list[tuple[float, np.ndarray]], bed: np.ndarray | None = None
) -> np.ndarray:
    """The sounds at their times (s), over ``bed``; float32, as the chop sees the output."""
    x = np.zeros(round(seconds * R)) if bed is None else bed.copy()
    for at, sound in hits:
        i = round(at * R)
        x[i : i + len(sound)] += sound[: len(x) - i]
    return x.astype(np.float32)


def starts_of(x: np.ndarray, sensitivity: str = "mid") -> list[int]:
    return chop.onset_starts(x, R, 64, MIN_SLICE, sensitivity)[0]


def assert_each_hit_starts_a_slice(starts: list[int], truth: list[float]) -> None:
    """One slice per hit, each from at most EARLY_MS before to at most LATE_MS after it."""
    assert len(starts) == len(truth), ([round(s / R, 4) for s in starts], truth)
    for start, hit in zip(starts, truth, strict=True):
        off_ms = (start / R - hit) * 1000
        assert -EARLY_MS <= off_ms <= LATE_MS, (round(start / R, 4), hit, off_ms)


def test_a_hat_a_sixteenth_after_a_snare_is_its_own_slice() -> None:
    """The first detector cut at half the window's peak, inside the snare's tail, and then
    found the hat no louder than that tail."""
    hits, truth = [], []
    for bar in range(4):
        at = 0.1 + bar * 0.5
        hits += [(at, snare(seed=bar)), (at + 0.12, hat(0.2, seed=10 + bar))]
        truth += [at, at + 0.12]
    assert_each_hit_starts_a_slice(starts_of(loop(2.2, hits)), truth)


def test_kicks_between_hats_are_found_as_surely_as_the_hats() -> None:
    """A kick rises in a few low bands only: summed over the spectrum it scored a tenth of a
    hat and fell under the threshold."""
    hats = [i * 0.25 for i in range(8)]
    kicks = [0.375, 1.125]
    hits = [(t, hat(seed=i)) for i, t in enumerate(hats)] + [(t, kick()) for t in kicks]
    assert_each_hit_starts_a_slice(starts_of(loop(2.2, hits)), sorted(hats + kicks))


def test_a_kick_under_a_hat_is_one_hit_not_two() -> None:
    hats = [i * 0.25 for i in range(8)]
    hits = [(t, hat(seed=i)) for i, t in enumerate(hats)] + [(0.0, kick()), (1.0, kick())]
    assert_each_hit_starts_a_slice(starts_of(loop(2.2, hits)), hats)


@pytest.mark.parametrize("rise_ms", [10, 20, 30])
def test_a_pedal_hats_slow_rise_is_cut_before_it_not_halfway_up(rise_ms: int) -> None:
    """Half the window's peak placed these 20-33 ms late: the slice lost the attack."""
    truth = [0.3 + i * 0.4 for i in range(4)]
    hits = [(t, hat(0.3, seed=i, rise_s=rise_ms / 1000, decay_s=0.05)) for i, t in enumerate(truth)]
    assert_each_hit_starts_a_slice(starts_of(loop(1.9, hits)), truth)


def test_hats_over_a_held_chord_are_each_found() -> None:
    """Over a pad every hat of a loop was rejected as no louder than before. The chord sounds
    from the start, so the loop's first slice is the chord before the first hat."""
    t = np.arange(round(2.2 * R)) / R
    chord = 0.15 * np.sum([np.sin(2 * np.pi * hz * t) for hz in (220.0, 277.2, 329.6)], axis=0)
    truth = [0.2 + i * 0.25 for i in range(8)]
    hits = [(at, hat(seed=i)) for i, at in enumerate(truth)]
    starts = starts_of(loop(2.2, hits, bed=chord))
    assert starts[0] == 0
    assert_each_hit_starts_a_slice(starts[1:], truth)


@pytest.mark.parametrize("hiss", [0.005, 0.02, 0.05])
def test_hiss_under_a_beat_cuts_nowhere_but_at_the_hits(hiss: float) -> None:
    """White noise (tape, vinyl) stirs by several dB within 15 ms under 250 Hz: a kick must
    stand out of it, not a stir of it. The loudest bed here is -26 dBFS."""
    truth = [0.2 + i * 0.25 for i in range(8)]
    hits = [(at, hat(seed=i)) for i, at in enumerate(truth)] + [(0.2, kick()), (0.95, kick())]
    bed = hiss * _noise(round(2.2 * R), 99)
    starts = starts_of(loop(2.2, hits, bed=bed))
    assert starts[0] == 0  # the hiss before the first hit: a slice of its own (100 ms)
    assert_each_hit_starts_a_slice(starts[1:], truth)


def test_leading_silence_is_no_slice_so_n_slices_hold_n_hits() -> None:
    truth = [0.4 + i * 0.3 for i in range(4)]
    x = loop(1.8, [(t, snare(seed=i)) for i, t in enumerate(truth)])
    starts, found = chop.onset_starts(x, R, 4, MIN_SLICE)
    assert found == 4
    assert_each_hit_starts_a_slice(starts, truth)
    parts = chop.slices_from(x[:, None], starts, R)
    assert len(parts) == 4 and parts[-1].end == len(x)
    assert all(np.abs(x[p.start : p.start + round(0.02 * R)]).max() > 0.1 for p in parts)


def test_sensitivity_keeps_ghost_notes_softest_and_drops_them_hardest() -> None:
    """Snares with ghost notes 24 dB under them, as the MK2's AUTO MARK soft/mid/hard."""
    truth = [0.05 + i * 0.25 for i in range(8)]
    levels = [0.7 if i % 2 == 0 else 0.7 * 10 ** (-24 / 20) for i in range(8)]
    x = loop(
        2.2, [(t, snare(lv, seed=i)) for i, (t, lv) in enumerate(zip(truth, levels, strict=True))]
    )
    counts = {s: len(starts_of(x, s)) for s in onsets.SENSITIVITIES}
    assert counts["soft"] >= counts["mid"] >= counts["hard"]
    assert_each_hit_starts_a_slice(starts_of(x, "soft"), truth)
    assert_each_hit_starts_a_slice(starts_of(x, "hard"), truth[::2])


def test_a_44k_loop_is_cut_at_the_same_hits() -> None:
    """The chop runs on the 48 kHz output, but the detector takes any rate."""
    truth = [0.1 + i * 0.3 for i in range(5)]
    x = loop(1.8, [(t, snare(seed=i)) for i, t in enumerate(truth)])
    rate = 44100
    y = np.interp(np.arange(round(len(x) * rate / R)) * R / rate, np.arange(len(x)), x)
    found = onsets.detect(y.astype(np.float32), rate)
    assert len(found) == len(truth)
    assert all(
        -EARLY_MS <= (o.at / rate - t) * 1000 <= LATE_MS for o, t in zip(found, truth, strict=True)
    )
