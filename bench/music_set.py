"""Loops with a known tempo and tonal samples with a known key, for bench/bench_analysis.py.

Tempo: drum loops from the real one-shots of hydrogen-drumkits (:mod:`drum_loops`), 60-180
BPM, with what defeats a guess from the length: swing (every other 16th late by up to a third),
a pickup (a few 16ths before the first downbeat), and a tail that is not whole bars (the last
hit's decay, 0.1-0.9 of a beat). No half-time grooves: one at T (snare on 3, hats in eighths)
is the same sound as a groove at T/2 with sixteenth hats, which only MIREX's Acc2 can score.

Key: tonal samples in all 24 keys, made of harmonic tones (a piano-like decay, 6 partials,
random brightness): chord progressions (I-IV-V-I, i-iv-V-i, i-VI-III-VII), a bass line, or a
melody of the key's scale over a drone; 2-8 s, some with drums under them. The truth is the
key the progression was written in.
"""

from __future__ import annotations

from dataclasses import dataclass

import drum_loops
import numpy as np

NOTES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)


@dataclass
class Sample:
    name: str
    x: np.ndarray  # frames, float
    rate: int
    bpm: float | None = None
    key: str | None = None  # "A" or "Am"


def tempo_loops(count: int = 60, seed: int = 22) -> list[Sample]:
    rng = np.random.default_rng(seed)
    shots = drum_loops.one_shots(44100)
    kits = sorted(k for k, roles in shots.items() if {"kick", "hat"} <= set(roles))
    out = []
    for i in range(count):
        kit = kits[int(rng.integers(len(kits)))]
        bpm = float(rng.uniform(60, 180))
        out.append(_groove(i, rng, shots, kit, bpm))
    return out


def _groove(
    i: int,
    rng: np.random.Generator,
    shots: dict[str, dict[str, list[np.ndarray]]],
    kit: str,
    bpm: float,
) -> Sample:
    rate = 44100
    beat = 60.0 / bpm
    six = beat / 4
    swing = float(rng.choice([0.0, 0.0, rng.uniform(0.1, 0.33)]))
    bars = int(rng.integers(1, 5))
    while bars > 1 and bars * 4 * beat > 12:
        bars -= 1
    pickup = int(rng.choice([0, 0, 1, 2, 3])) * six
    feel = str(rng.choice(["straight", "straight", "busy"]))
    hits: list[tuple[float, str, float]] = []
    for bar in range(bars):
        for step in range(16):
            t = pickup + (bar * 16 + step) * six + (swing * six if step % 2 else 0.0)
            kick, snare = step in ((0, 6, 8) if feel == "busy" else (0, 8)), step in (4, 12)
            if kick:
                hits.append((t, "kick", 0.0))
            if snare:
                hits.append((t, "snare", -1.0))
            if step % 2 == 0 or feel == "busy":
                hits.append((t, "hat", float(rng.uniform(-14, -6))))
    for k in range(int(pickup / six + 0.5)):
        hits.append((k * six, "hat" if k else "snare", -8.0))
    tail = float(rng.uniform(0.1, 0.9)) * beat
    length = pickup + bars * 4 * beat + tail
    x = np.zeros(round(length * rate))
    for t, role, gain in hits:
        pool = shots[kit].get(role) or shots[kit].get("clap") or shots[kit]["kick"]
        shot = pool[int(rng.integers(len(pool)))]
        at = round(t * rate)
        n = min(len(shot), len(x) - at)
        if n > 0:
            x[at : at + n] += shot[:n] * 10 ** (gain / 20)
    x *= 0.9 / max(np.abs(x).max(), 1e-9)
    return Sample(f"{i:02d}_{bpm:.1f}bpm_{feel}_sw{swing:.2f}", x.astype(np.float32), rate, bpm=bpm)


def _tone(
    midi: float, seconds: float, rate: int, rng: np.random.Generator, bright: float
) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = np.zeros_like(t)
    for k in range(1, 7):
        if f0 * k < rate / 2:
            y += bright ** (k - 1) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28))
    return y * np.exp(-t / rng.uniform(0.6, 2.0)) * np.minimum(1.0, t / 0.005)


def key_samples(seed: int = 23) -> list[Sample]:
    """One or two samples in each of the 24 keys."""
    rng = np.random.default_rng(seed)
    out = []
    for tonic in range(12):
        for minor in (False, True):
            for _ in range(2):
                out.append(_tonal(len(out), rng, tonic, minor))
    return out


def _tonal(i: int, rng: np.random.Generator, tonic: int, minor: bool) -> Sample:
    rate = 44100
    scale = MINOR_SCALE if minor else MAJOR_SCALE
    kind = str(rng.choice(["chords", "chords", "bass", "melody"]))
    beat = 60.0 / float(rng.uniform(70, 140))
    bright = float(rng.uniform(0.3, 0.8))
    base = 48 + tonic if tonic < 7 else 36 + tonic
    progs = [(0, 3, 4, 0), (0, 5, 3, 4)] if not minor else [(0, 3, 4, 0), (0, 5, 2, 6)]
    prog = progs[int(rng.integers(len(progs)))]
    events: list[tuple[float, float, float]] = []  # (time, midi, gain)
    t = 0.0
    for degree in prog:
        root = base + scale[degree]
        if kind == "chords":
            third = base + scale[(degree + 2) % 7] + (12 if degree + 2 >= 7 else 0)
            fifth = base + scale[(degree + 4) % 7] + (12 if degree + 4 >= 7 else 0)
            if minor and degree == 4:  # the dominant's raised leading tone
                third += 1
            for m in (root, third, fifth):
                events.append((t, m, 0.5))
            events.append((t, root - 12, 0.6))
        elif kind == "bass":
            for b in range(4):
                step = int(rng.choice([0, 0, 4, 7 % 7]))
                events.append((t + b * beat, base - 12 + scale[(degree + step) % 7], 0.8))
        else:
            events.append((t, base - 12, 0.4))  # a drone on the tonic
            for b in range(4):
                events.append((t + b * beat, base + 12 + scale[int(rng.integers(7))], 0.5))
        t += 4 * beat
    x = np.zeros(round((t + 1.0) * rate))
    for at, midi, gain in events:
        y = _tone(midi, min(2.5, t + 1.0 - at), rate, rng, bright) * gain
        i0 = round(at * rate)
        n = min(len(y), len(x) - i0)
        x[i0 : i0 + n] += y[:n]
    x *= 0.9 / np.abs(x).max()
    key = NOTES[tonic] + ("m" if minor else "")
    return Sample(f"{i:02d}_{key}_{kind}", x.astype(np.float32), rate, key=key)
