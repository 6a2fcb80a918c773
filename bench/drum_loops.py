"""Drum loops built from real one-shots, with the time of every hit known.

The one-shots are those of the Debian package hydrogen-drumkits (``apt install
hydrogen-drumkits``: 14 kits, acoustic and electronic, CC and GPL licensed), each trimmed to
where its sound begins (-40 dB under its peak: what sp404d counts as quiet enough to cut at;
some recordings carry a room's hiss at -50), so a hit placed at ``t`` begins at ``t``; over a
pad or a noise bed, where it rises out of the bed's peaks (as an annotator hears an onset: the
part of a slow pedal hat under the bed is in no one's reach, and a hat that never rises out of
the bed's peaks is no onset at all). Every
loop is seeded and so the same from run to run: 1-4 bars, 70-170 BPM, mono or stereo, 44.1 or
48 kHz, a kit's kick, snare or clap, closed, pedal and open hats, toms, percussion, ghost notes,
flams, timing a few ms off the grid, sometimes a pad or a noise bed under it and silence before.

Each true onset carries the cases it belongs to (``hat after louder``, ``kick``, ``pedal hat``,
``clap``, ``ghost``, ``over bed``, ``after lead-in``, ``flam``), so a benchmark can say where
a detector loses its hits. Hits closer than :data:`SAME_ONSET_S` are one onset (a flam, or two
drums struck together): no slice can part them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

KITS = Path("/usr/share/hydrogen/data/drumkits")
SAME_ONSET_S = 0.030
MIN_APART_S = 0.100  # the shortest slice sp404d makes: hits closer are not asked of anyone
ROLES = (
    ("pedal", r"pedal|foot|hh_p\b|\bpd\b"),
    ("open", r"open|ohh|hhopen|\bho_|hat_op|\bop\b"),
    ("hat", r"closed|chh|hat|hh"),
    ("kick", r"kick|\bbd|bassdrum"),
    ("clap", r"clap"),
    ("snare", r"snare|\bsd_|\bsn_|_sn_"),
    ("tom", r"tom|\bft_|\bt[12]_"),
    ("perc", r"cowbell|clave|bongo|conga|djembe|agogo|stick|cajon|bell"),
)


@dataclass
class Loop:
    """A loop's samples (frames x channels, float), its rate, and its true onsets (s) with the
    cases each belongs to."""

    name: str
    x: np.ndarray
    rate: int
    onsets: list[float]
    cases: list[set[str]] = field(default_factory=list)


def one_shots(rate: int) -> dict[str, dict[str, list[np.ndarray]]]:
    """Every kit's one-shots by role, mono float at ``rate``, trimmed to where they begin."""
    if not KITS.is_dir():
        raise SystemExit(f"needs the one-shots of hydrogen-drumkits in {KITS}")
    kits: dict[str, dict[str, list[np.ndarray]]] = {}
    for kit in sorted(KITS.iterdir()):
        for path in sorted(kit.iterdir()):
            if path.suffix.lower() not in (".wav", ".flac", ".aif", ".aiff"):
                continue
            role = _role(path.stem)
            if role is None:
                continue
            try:
                y, sr = sf.read(str(path), dtype="float64", always_2d=True)
            except (RuntimeError, sf.LibsndfileError):
                continue
            mono = y.mean(axis=1)
            if sr != rate:
                mono = soxr.resample(mono, sr, rate)
            shot = _from_onset(mono, rate)
            if shot is not None:
                kits.setdefault(kit.name, {}).setdefault(role, []).append(shot)
    return kits


def _role(stem: str) -> str | None:
    name = re.sub(r"[-_ .]+", "_", stem.lower())
    name = re.sub(r"(?<=[a-z])(?=\d)", "_", name)
    spaced = name.replace("_", " ")
    for role, pattern in ROLES:
        if re.search(pattern, spaced) or re.search(pattern, name):
            return role
    return None


def _from_onset(mono: np.ndarray, rate: int) -> np.ndarray | None:
    peak = float(np.abs(mono).max(initial=0.0))
    if peak < 1e-4:
        return None
    loud = np.flatnonzero(np.abs(mono) >= peak * 10 ** (-40 / 20))
    shot = mono[loud[0] : loud[-1] + 1] / peak
    most = round(1.5 * rate)
    if len(shot) > most:  # long cymbals: faded out over their last 0.3 s
        shot = shot[:most].copy()
        fade = round(0.3 * rate)
        shot[-fade:] *= np.linspace(1.0, 0.0, fade)
    return shot if len(shot) > rate // 100 else None


def make_loops(count: int = 60, seed: int = 21) -> list[Loop]:
    """``count`` loops, the same each run."""
    rng = np.random.default_rng(seed)
    shots = {rate: one_shots(rate) for rate in (44100, 48000)}
    return [_loop(i, rng, shots) for i in range(count)]


def _pick(
    rng: np.random.Generator, kits: dict[str, dict[str, list[np.ndarray]]], kit: str, role: str
) -> np.ndarray | None:
    pool = kits[kit].get(role) or [s for k in kits.values() for s in k.get(role, [])]
    return pool[int(rng.integers(len(pool)))] if pool else None


def _loop(i: int, rng: np.random.Generator, shots: dict[int, dict]) -> Loop:
    rate = int(rng.choice([44100, 48000]))
    kits = shots[rate]
    kit = str(rng.choice(sorted(k for k, roles in kits.items() if {"kick", "hat"} <= set(roles))))
    bpm = float(rng.uniform(70, 170))
    sixteenth = 60.0 / bpm / 4
    bars = int(rng.integers(1, 5))
    while bars > 1 and bars * 16 * 60.0 / bpm / 4 > 10.0:
        bars -= 1
    lead = float(rng.choice([0.0, 0.0, 0.0, rng.uniform(0.05, 0.6)]))
    fine_hats = sixteenth >= MIN_APART_S * 1.1 and rng.random() < 0.5
    hits: list[tuple[float, str, float]] = []  # (time, role, gain dB)
    patterns = ([0, 8], [0, 6, 8], [0, 3, 8, 11], [0, 10], [0, 7, 10])
    kick_steps = patterns[int(rng.integers(len(patterns)))]
    backbeat = "clap" if rng.random() < 0.25 else "snare"
    hat = "pedal" if rng.random() < 0.2 else "hat"
    roomy = sixteenth >= MIN_APART_S * 1.1  # every 16th can be a slice of its own
    for bar in range(bars):
        for step in range(16):
            t = lead + (bar * 16 + step) * sixteenth
            free = roomy or step % 2 == 0
            if step in kick_steps and free:
                hits.append((t, "kick", float(rng.uniform(-3, 0))))
            if step in (4, 12):
                hits.append((t, backbeat, float(rng.uniform(-4, 0))))
                if rng.random() < 0.08:  # a flam: the grace note just before
                    hits.append((t - float(rng.uniform(0.015, 0.025)), backbeat, -12.0))
            if step % 2 == 0 or fine_hats:
                if step == 14 and rng.random() < 0.3:
                    hits.append((t, "open", float(rng.uniform(-10, -5))))
                else:
                    hits.append((t, hat, float(rng.uniform(-14, -6))))
            elif free and rng.random() < 0.15:
                hits.append((t, "snare", float(rng.uniform(-24, -15))))  # a ghost note
            if free and bar == bars - 1 and step >= 12 and rng.random() < 0.3:
                hits.append((t, "tom", float(rng.uniform(-6, -1))))
            if free and rng.random() < 0.05:
                hits.append((t, "perc", float(rng.uniform(-12, -4))))
    hits = [(t + float(rng.normal(0, 0.003)) if t > lead else t, r, g) for t, r, g in hits]
    length = lead + bars * 16 * sixteenth + 0.3
    bed = str(rng.choice(["", "", "", "pad", "noise"]))
    stereo = bool(rng.random() < 0.6)
    x = np.zeros((round(length * rate), 2))
    pans = {r: float(rng.uniform(-0.6, 0.6)) for r, _ in ROLES}
    under = _bed(bed, len(x), rate, rng, start=round(lead * rate)) if bed else None
    floor = float(np.percentile(np.abs(under[:, 0]), 99)) if under is not None else 0.0
    placed: list[tuple[float, str, float]] = []
    for t, role, gain in sorted(hits):
        shot = _pick(rng, kits, kit, role)
        if shot is None:
            continue
        at = round(t * rate)
        n = min(len(shot), len(x) - at)
        if n <= 0:
            continue
        pan = pans[role]
        level = 10 ** (gain / 20)
        x[at : at + n, 0] += shot[:n] * level * np.sqrt(0.5 - pan / 2)
        x[at : at + n, 1] += shot[:n] * level * np.sqrt(0.5 + pan / 2)
        heard = np.flatnonzero(np.abs(shot[:n]) * level >= max(level * 0.01, floor))
        if len(heard):  # else it never rises out of the bed: a sound in it, not a hit
            placed.append(((at + int(heard[0])) / rate, role, gain))
    if under is not None:
        x += under
    x *= 10 ** (-0.5 / 20) / np.abs(x).max()
    if not stereo:
        x = x.mean(axis=1, keepdims=True)
    onsets, cases = _truth(placed, lead, bed)
    name = f"{i:02d}_{kit.split()[0][:10]}_{bpm:.0f}bpm_{bars}bar_{rate // 1000}k"
    return Loop(name, x.astype(np.float32), rate, onsets, cases)


def _bed(kind: str, n: int, rate: int, rng: np.random.Generator, start: int) -> np.ndarray:
    t = np.arange(n) / rate
    if kind == "pad":
        root = float(rng.uniform(110, 220))
        y = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5, 2.0)) / 4
        y = y * np.minimum(1.0, t / 0.3) * 10 ** (-14 / 20)
    else:
        white = rng.normal(0, 1, n)
        y = np.convolve(white, np.ones(8) / 8, mode="same") * 10 ** (-24 / 20)
    y[:start] = 0.0
    return np.stack([y, y], axis=1)


def _truth(
    placed: list[tuple[float, str, float]], lead: float, bed: str
) -> tuple[list[float], list[set[str]]]:
    """The true onsets (hits within :data:`SAME_ONSET_S` are one), each with its cases."""
    onsets: list[float] = []
    groups: list[list[tuple[float, str, float]]] = []
    for hit in sorted(placed):
        if groups and hit[0] - groups[-1][0][0] < SAME_ONSET_S:
            groups[-1].append(hit)
        else:
            groups.append([hit])
    cases: list[set[str]] = []
    for k, group in enumerate(groups):
        t = group[0][0]
        loudest = max(group, key=lambda h: h[2])
        said: set[str] = set()
        roles = {h[1] for h in group}
        if roles & {"hat", "pedal", "open"} and not roles & {"kick", "snare", "clap", "tom"}:
            earlier = [h for g in groups[max(0, k - 3) : k] for h in g if t - h[0] < 0.2]
            if any(h[2] > loudest[2] + 3 for h in earlier):
                said.add("hat after louder")
        if "kick" in roles:
            said.add("kick")
        if "pedal" in roles:
            said.add("pedal hat")
        if "clap" in roles:
            said.add("clap")
        if loudest[2] <= -15:
            said.add("ghost")
        if bed:
            said.add("over bed")
        if k == 0 and lead > 0:
            said.add("after lead-in")
        if len(group) > 1 and group[-1][0] - t > 0.010:
            said.add("flam")
        onsets.append(t)
        cases.append(said)
    keep = [0]
    for k in range(1, len(onsets)):  # hits closer than a slice: the louder one is asked
        if onsets[k] - onsets[keep[-1]] >= MIN_APART_S:
            keep.append(k)
    return [onsets[k] for k in keep], [cases[k] for k in keep]


def write(folder: Path, loops: list[Loop]) -> None:
    """The loops as 24-bit WAVs with their onsets beside them (one per line), to listen to."""
    folder.mkdir(parents=True, exist_ok=True)
    for loop in loops:
        sf.write(str(folder / f"{loop.name}.wav"), loop.x, loop.rate, subtype="PCM_24")
        (folder / f"{loop.name}.txt").write_text("".join(f"{t:.4f}\n" for t in loop.onsets))
