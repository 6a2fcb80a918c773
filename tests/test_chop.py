"""Chop: a loop cut into equal slices or at its onsets, onto consecutive names and pads.

Measured on generated signals: where each slice starts and ends (against where the signal was
built to change), what each holds, and that every audio promise of a plain conversion holds
for each slice (48 kHz, 16 bits, dithered, level, no clipping).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sp404d.audio import chop, onsets
from sp404d.config.loading import build_config
from sp404d.journal.journal import Journal
from sp404d.pipeline.intents import intents_path
from sp404d.pipeline.job import execute
from sp404d.pipeline.plan import Plan
from sp404d.pipeline.planner import Planner, Request
from sp404d.pipeline.scheduler import for_rerun
from tests.conftest import SP404D, journal_records, run_env
from tests.daemon_harness import DaemonFactory, ours, wait_for

RATE = 44100
OUT = 48000
HITS = (0.0, 0.25, 0.5, 0.8, 1.1, 1.5, 1.75)  # seconds: a 2 s loop's drum hits
FREQS = (220.0, 330.0, 440.0, 550.0)  # one tone a quarter: a 4-slice chop's slices


def _hits(rate: int = RATE, seconds: float = 2.0, at: tuple[float, ...] = HITS) -> np.ndarray:
    """Decaying 180 Hz hits at ``at`` on a faint noise floor, stereo (the right 1 dB lower)."""
    x = np.random.default_rng(7).normal(0, 0.001, round(seconds * rate))
    n = round(0.2 * rate)
    hit = 0.8 * np.sin(2 * np.pi * 180 * np.arange(n) / rate) * np.exp(-np.arange(n) / rate / 0.04)
    for when in at:
        i = round(when * rate)
        x[i : i + n] += hit[: len(x) - i]
    return np.stack([x, x * 0.89], axis=1)


def _quarters(rate: int = RATE) -> np.ndarray:
    """Four 0.5 s tones, one after the other: a slice's frequency says which quarter it holds."""
    t = np.arange(rate // 2) / rate
    mono = np.concatenate([0.5 * np.sin(2 * np.pi * f * t) for f in FREQS])
    return np.stack([mono, mono], axis=1)


def _dominant(y: np.ndarray, rate: int) -> float:
    mono = y.mean(axis=1) if y.ndim == 2 else y
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spectrum) * rate / len(mono))


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.inbox = tmp_path / "kit"  # a folder given to convert names the kit of its files
        self.inbox.mkdir()
        self.outbox = tmp_path / "out"
        self.journal = tmp_path / "j.jsonl"
        self.env = run_env(tmp_path / "home")

    def write(self, name: str, x: np.ndarray, sidecar: str | None = None) -> Path:
        path = self.inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x, RATE, subtype="PCM_24")
        if sidecar is not None:
            Path(f"{path}.yaml").write_text(sidecar)
        return path

    def run(self, command: str, *args: str, config: str = "") -> subprocess.CompletedProcess[str]:
        cfg = self.dir / "c.yaml"
        cfg.write_text(f"outbox: {self.outbox}\njournal: {self.journal}\n{config}")
        return subprocess.run(
            [*SP404D, command, str(self.inbox), "--config", str(cfg), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )

    def convert(self, *args: str, config: str = "") -> subprocess.CompletedProcess[str]:
        proc = self.run("convert", *args, config=config)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def rebuild_to(self, folder: Path) -> list[str]:
        """``sp404d rebuild --to folder``: the outputs it made there."""
        proc = subprocess.run(
            [*SP404D, "rebuild", "--to", str(folder), "--config", str(self.dir / "c.yaml")],
            capture_output=True,
            text=True,
            env=self.env,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav"))

    def outputs(self) -> list[str]:
        return sorted(p.relative_to(self.outbox).as_posix() for p in self.outbox.rglob("*.wav"))

    def records(self, source: str) -> list[dict[str, Any]]:
        return [r for r in journal_records(self.journal) if r["source"].endswith(source)]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


# --- where to cut: the pure functions ---------------------------------------------------------


def test_equal_cuts_are_exact_to_the_frame() -> None:
    assert chop.equal_cuts(96000, 4) == [24000, 48000, 72000]
    cuts = [0, *chop.equal_cuts(100_003, 16), 100_003]
    lengths = {b - a for a, b in itertools.pairwise(cuts)}
    assert lengths <= {6250, 6251}


def test_onsets_are_found_just_before_each_hit() -> None:
    x = _hits(OUT).astype(np.float32)
    starts, found = chop.onset_starts(x, OUT, 16, 4800)
    assert starts[0] == 0 and len(starts) == found == len(HITS)  # the first hit is at 0
    for cut, hit in zip(starts[1:], HITS[1:], strict=True):
        lead_ms = (hit * OUT - cut) / OUT * 1000
        assert 0 <= lead_ms <= 2 + onsets.LEAD_S * 1000, (cut, hit)  # before the attack
    parts = chop.slices_from(x, starts, OUT)
    assert not any(p.fade_in or p.fade_out for p in parts)  # quiet before each hit
    assert [p.start for p in parts[1:]] == [p.end for p in parts[:-1]]  # nothing lost between
    assert parts[0].start == 0 and parts[-1].end == len(x)


def test_onsets_are_new_sounds_not_changes_inside_a_decay() -> None:
    """8-bit hits: each decay ends in a step to digital silence, which changes the spectrum
    but brings no new sound; only the hits are cut at."""
    x = np.round(_hits(OUT) * 127) / 127
    starts, _ = chop.onset_starts(x.astype(np.float32), OUT, 16, 4800)
    assert len(starts) == len(HITS)
    assert all(abs(c / OUT - h) < 0.005 for c, h in zip(starts, HITS, strict=True))


def test_onsets_keep_the_strongest_and_respect_the_shortest_slice() -> None:
    x = _hits(OUT).astype(np.float32)
    assert len(chop.onset_starts(x, OUT, 4, 4800)[0]) == 4  # at most 4 slices
    # No slice under 0.3 s: hits 0.25 s apart cannot both start one.
    starts, _ = chop.onset_starts(x, OUT, 16, round(0.3 * OUT))
    cuts = [*starts, len(x)]
    assert min(b - a for a, b in itertools.pairwise(cuts)) >= 0.3 * OUT
    silence = np.zeros((OUT, 2), np.float32)
    assert chop.onset_starts(silence, OUT, 16, 4800) == ([0], 0)  # one slice, nothing found


def test_a_cut_inside_sound_is_faded_and_a_quiet_one_is_not() -> None:
    t = np.arange(OUT) / OUT
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t + 0.7)] * 2, axis=1).astype(np.float32)
    parts = chop.slices(x, [12_000], OUT, snapped=False)  # mid-waveform: 0.5 * sin(...) != 0
    assert parts[0].fade_out and parts[1].fade_in
    first, second = (chop.cut_out(x, p, OUT) for p in parts)
    assert abs(first[-1]).max() < 0.02 and abs(second[0]).max() < 1e-6
    snapped = chop.slices(x, [12_000], OUT, snapped=True)  # a zero crossing within 5 ms
    assert not snapped[1].fade_in and abs(x[snapped[1].start]).max() <= chop.QUIET
    assert 12_000 - snapped[1].start <= 0.005 * OUT


# --- convert ------------------------------------------------------------------------------------


def test_equal_slices_hold_their_quarters_in_order(env: Env) -> None:
    loop = env.write("Dusty Loop.wav", _quarters(), "chop: 4\n")
    before = loop.read_bytes()
    proc = env.convert()
    assert "1 file in" in proc.stdout and ": 1 done (4 slices)" in proc.stdout  # one job
    assert env.outputs() == [f"Dusty_Loop_0{i}.wav" for i in range(1, 5)]
    for i, freq in enumerate(FREQS, start=1):
        y, rate = sf.read(str(env.outbox / f"Dusty_Loop_0{i}.wav"))
        info = sf.info(str(env.outbox / f"Dusty_Loop_0{i}.wav"))
        assert (rate, info.subtype, info.channels) == (OUT, "PCM_16", 2)
        assert len(y) == OUT // 2  # 0.5 s at 48 kHz, to the frame
        assert abs(_dominant(y, rate) - freq) < 4
    records = env.records("Dusty Loop.wav")
    assert [r["slice"]["n"] for r in records] == [1, 2, 3, 4]
    assert {r["slice"]["of"] for r in records} == {4} and records[0]["slice"]["chop"] == "4"
    assert [r["slice"]["start_s"] for r in records] == [0.0, 0.5, 1.0, 1.5]
    assert records[-1]["slices"] == [str(env.outbox / o) for o in env.outputs()]
    assert all(r["render"]["dithered"] and r["render"]["clipped_samples"] == 0 for r in records)
    assert loop.read_bytes() == before  # the source is never touched
    history = subprocess.run(
        [*SP404D, "status", "--journal", str(env.journal), "--source", str(loop)],
        capture_output=True,
        text=True,
        env=env.env,
    )
    assert f"{loop}: 1 job\n" in history.stdout  # one job, its four records together
    assert "done: chopped into 4 slices (chop: 4)" in history.stdout
    assert f"    3: 1.000-1.500 s -> {env.outbox / 'Dusty_Loop_03.wav'}" in history.stdout


def test_slices_keep_the_level_of_the_whole(env: Env) -> None:
    """Chopping changes no level: each slice's samples are the plain conversion's, within
    dither, where no fade touches them."""
    env.write("loop.wav", _quarters())
    env.convert("--journal", str(env.dir / "plain.jsonl"))
    whole, _ = sf.read(str(env.outbox / "loop.wav"))
    Path(f"{env.inbox / 'loop.wav'}.yaml").write_text("chop: 4\n")
    env.convert()
    for i in range(4):
        y, _ = sf.read(str(env.outbox / f"loop_0{i + 1}.wav"))
        part = whole[i * OUT // 2 : (i + 1) * OUT // 2]
        inner = slice(round(0.005 * OUT), len(y) - round(0.005 * OUT))
        assert np.max(np.abs(y[inner] - part[inner])) < 3 / 32768  # dither: +-1 LSB each


def test_onsets_in_a_kit_take_consecutive_pads(env: Env) -> None:
    env.write("beat.wav", _hits(), "chop: onsets\n")
    env.write("kick.wav", _hits(at=(0.0,))[: RATE // 2])
    env.convert("--layout", "kit")
    # The chop at onsets is planned after the plain file, so it does not leave a hole.
    assert env.outputs() == ["kit/bank_A/pad_01_kick.wav"] + [
        f"kit/bank_A/pad_{p:02d}_beat_{i:02d}.wav" for i, p in enumerate(range(2, 9), start=1)
    ]
    records = env.records("beat.wav")
    starts = [r["slice"]["start_s"] for r in records]
    assert len(starts) == len(HITS) and starts[0] == 0.0
    for start, hit in zip(starts[1:], HITS[1:], strict=True):
        assert 0 <= hit - start <= 0.006, (start, hit)
    kits = subprocess.run(
        [*SP404D, "kits", "--json", "--config", str(env.dir / "c.yaml")],
        capture_output=True,
        text=True,
        env=env.env,
    )
    (kit,) = json.loads(kits.stdout)["kits"]
    pads = [p for bank in kit["banks"].values() for p in bank]
    assert [p["name"] for p in pads] == ["kick"] + [f"beat_{i:02d}" for i in range(1, 8)]
    assert abs(pads[1]["length_s"] - 0.25) < 0.01  # a slice's own length, not the loop's


def test_an_explicit_pad_starts_the_run_or_is_refused_naming_the_pad(env: Env) -> None:
    env.write("loop.wav", _quarters(), "chop: 4\nbank: B\npad: 15\n")
    env.convert("--layout", "kit")
    assert env.outputs() == [
        "kit/bank_B/pad_15_loop_01.wav",
        "kit/bank_B/pad_16_loop_02.wav",
        "kit/bank_C/pad_01_loop_03.wav",
        "kit/bank_C/pad_02_loop_04.wav",
    ]
    env.write("other.wav", _quarters(), "chop: 2\nbank: C\npad: 2\n")
    proc = env.run("convert", "--layout", "kit")
    assert proc.returncode == 1
    assert "pads C02-C03 of kit 'kit' for 2 slices: C02 is taken by" in proc.stdout


def test_a_re_chop_replaces_the_slices_and_chop_off_one_file(env: Env) -> None:
    sidecar = Path(f"{env.write('loop.wav', _quarters(), 'chop: 4' + chr(10))}.yaml")
    env.convert("--layout", "kit")
    sidecar.write_text("chop: 2\n")
    env.convert("--layout", "kit")
    assert env.outputs() == ["kit/bank_A/pad_01_loop_01.wav", "kit/bank_A/pad_02_loop_02.wav"]
    last = env.records("loop.wav")[-1]
    assert last["slice"] == {**last["slice"], "n": 2, "of": 2}
    # Slices 1 and 2 are rewritten in place (their names stay); 3 and 4 are removed.
    assert sorted(Path(p).name for p in last["removed"]) == [
        "pad_03_loop_03.wav",
        "pad_04_loop_04.wav",
    ]
    sidecar.write_text("chop: off\n")
    env.convert("--layout", "kit")
    assert env.outputs() == ["kit/bank_A/pad_01_loop.wav"]  # its first pad, one file


def test_a_changed_source_redoes_every_slice(env: Env) -> None:
    env.write("loop.wav", _quarters(), "chop: 4\n")
    env.convert()
    first = {o: (env.outbox / o).read_bytes() for o in env.outputs()}
    unchanged = env.convert()
    assert unchanged.stdout.rstrip().endswith(": 1 skipped"), unchanged.stdout
    env.write("loop.wav", _quarters()[::-1].copy())  # reversed: every slice differs
    env.convert()
    assert env.outputs() == sorted(first)
    assert all((env.outbox / o).read_bytes() != b for o, b in first.items())


def test_a_deleted_slice_is_made_again_by_convert(env: Env) -> None:
    env.write("loop.wav", _quarters(), "chop: 4\n")
    env.convert()
    (env.outbox / "loop_03.wav").unlink()
    env.convert()
    assert env.outputs() == [f"loop_0{i}.wav" for i in range(1, 5)]


def test_per_inbox_and_per_folder(env: Env) -> None:
    env.write("a.wav", _quarters())
    env.write("breaks/b.wav", _hits())
    (env.inbox / "breaks" / "sp404.yaml").write_text("chop: onsets 3\n")
    env.convert(config="chop: 2\n")
    assert env.outputs() == ["a_01.wav", "a_02.wav", "b_01.wav", "b_02.wav", "b_03.wav"]


def test_check_says_what_a_chop_would_do(env: Env) -> None:
    env.write("loop.wav", _quarters(), "chop: onsets 8\n")
    proc = env.run("check", "--layout", "kit")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pad_01_loop_01.wav .. pad_08_loop_08.wav" in proc.stdout
    assert "then: chop at its onsets into at most 8 slices" in proc.stdout
    assert "chop: onsets 8  [sidecar:loop.wav.yaml]" in proc.stdout


def test_names_keep_their_number_within_the_name_length(env: Env) -> None:
    env.write("An Extremely Long Loop Name From A Pack.wav", _quarters(), "chop: 4\n")
    env.convert("--layout", "kit")
    names = [Path(o).stem for o in env.outputs()]
    assert all(len(n) <= 23 for n in names)
    assert [n[-3:] for n in names] == ["_01", "_02", "_03", "_04"]


def test_slices_too_short_are_refused_or_padded(env: Env) -> None:
    env.write("blip.wav", _quarters()[:RATE], "chop: 16\n")  # 1 s: 62.5 ms slices
    proc = env.run("convert")
    assert proc.returncode == 1
    assert "chop 16: slices of 62 ms, minimum 100 ms" in proc.stdout
    assert not env.outbox.exists() or env.outputs() == []
    env.convert(config="short_files: pad\n")
    assert len(env.outputs()) == 16
    y, _ = sf.read(str(env.outbox / "blip_16.wav"))
    assert len(y) == round(0.1 * OUT)


def test_a_file_too_long_to_chop_is_refused(env: Env) -> None:
    path = env.inbox / "long.wav"
    sf.write(str(path), np.zeros((8000 * 300, 1), np.int16), 8000, subtype="PCM_16")
    Path(f"{path}.yaml").write_text("chop: 4\n")
    proc = env.run("convert")
    assert proc.returncode == 1
    assert "too long to chop: 5.0 min; chop takes files up to 43 s" in proc.stdout


def test_a_bad_chop_value_is_refused_in_the_settings_own_words(env: Env) -> None:
    env.write("loop.wav", _quarters(), "chop: 200\n")
    proc = env.run("convert")
    assert proc.returncode == 1
    assert "chop must be off, a number of equal slices (2 to 64), onsets" in proc.stdout
    bad = env.run("convert", config="chop: sometimes\n")
    assert bad.returncode == 2 and "chop" in bad.stderr


def test_rebuild_makes_the_same_slices_again(env: Env) -> None:
    env.write("beat.wav", _hits(), "chop: onsets\n")
    env.convert("--layout", "kit")
    fresh = env.dir / "card"
    made = env.rebuild_to(fresh)
    assert made == env.outputs()
    assert all((fresh / o).read_bytes() == (env.outbox / o).read_bytes() for o in made)


def test_slices_a_crash_left_unjournaled_are_adopted_not_duplicated(env: Env) -> None:
    """A run killed after renaming its slices, before their records: the intent notes name
    them, and the next run takes them back (same names and pads), not a second set."""
    loop = env.write("loop.wav", _quarters(), "chop: 4\n")
    env.convert("--layout", "kit")
    outputs = env.outputs()
    env.journal.unlink()  # no record of them, as after the crash
    notes = intents_path(env.journal)
    notes.write_text(
        "".join(
            json.dumps({"source": str(loop), "output": str(env.outbox / o)}) + "\n" for o in outputs
        )
    )
    env.convert("--layout", "kit")
    assert env.outputs() == outputs
    assert all(r["render"].get("adopted") for r in env.records("loop.wav"))


def test_the_daemon_chops_a_drop_and_redoes_it_when_its_sidecar_changes(
    daemon: DaemonFactory,
) -> None:
    d = daemon(layout="kit").start()
    staged = d.dir / "staged.wav"
    sf.write(str(staged), _quarters(), RATE, subtype="PCM_24")
    (d.inbox / "loop.wav.yaml").write_text(yaml.safe_dump({"chop": 4}))
    os.rename(staged, d.inbox / "loop.wav")
    d.wait_done(4)
    d.barrier()
    assert sorted(Path(o).name for o in d.outputs()) == [
        f"pad_0{i}_loop_0{i}.wav" for i in range(1, 5)
    ]
    (d.inbox / "loop.wav.yaml").write_text(yaml.safe_dump({"chop": 2}))
    d.wait_done(6)
    d.barrier("zz_barrier2.wav")
    assert sorted(Path(o).name for o in d.outputs()) == ["pad_01_loop_01.wav", "pad_02_loop_02.wav"]
    status = subprocess.run(
        [*SP404D, "status", "--journal", str(d.journal)], capture_output=True, text=True, env=d.env
    )
    assert "loop.wav [2/2]" in status.stdout
    assert len([r for r in ours(d.records()) if r["status"] == "done"]) == 6


def test_a_chop_run_again_after_its_worker_died_adopts_the_slices_it_renamed(
    tmp_path: Path,
) -> None:
    """The scheduler re-runs the plan of a worker that died: slices it had renamed into
    place are its own, taken back rather than refused as strangers."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    source = inbox / "loop.wav"
    sf.write(str(source), _quarters(), RATE, subtype="PCM_24")
    settings = {"inbox": str(inbox), "outbox": str(tmp_path / "out"), "chop": 4}
    config = build_config({**settings, "journal": str(tmp_path / "j.jsonl"), "layout": "kit"})
    with Journal(config.journal) as journal:
        plan = Planner(journal).plan(Request(source, inbox, config))
        assert isinstance(plan, Plan) and len(plan.pieces) == 4
        first = execute(plan)  # its outcome lost with the worker
        assert first.status == "done" and not first.render.get("adopted")
        again = execute(for_rerun(plan))
    assert again.status == "done", again.reason
    assert [s.output for s in again.slices] == [p.final for p in plan.pieces]
    assert all(s.render.get("adopted") for s in again.slices)


def test_a_loop_without_transients_is_one_slice_with_a_warning(env: Env) -> None:
    t = np.arange(RATE) / RATE
    pad = 0.3 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t / 0.5)  # a slow swell
    env.write("swell.wav", np.stack([pad, pad], axis=1), "chop: onsets\n")
    env.convert()
    assert env.outputs() == ["swell_01.wav"]
    (rec,) = env.records("swell.wav")
    assert rec["warning"] == "no transients found to chop at: one slice"
    assert rec["slice"]["of"] == 1


def test_two_loops_of_one_name_keep_their_slices_apart(env: Env) -> None:
    env.write("a/loop.wav", _quarters(), "chop: 4\n")
    env.write("b/loop.wav", _quarters()[::-1].copy(), "chop: 4\n")
    env.convert()
    assert env.outputs() == [f"loop_0{i}.wav" for i in range(1, 5)] + [
        f"loop_2_0{i}.wav" for i in range(1, 5)
    ]
    first = {r["output"] for r in env.records("a/loop.wav")}
    assert first == {str(env.outbox / f"loop_0{i}.wav") for i in range(1, 5)}
    env.convert()  # a re-run keeps each set where it is
    assert len(env.outputs()) == 8


def test_a_kit_name_length_too_short_for_slice_names_is_refused(env: Env) -> None:
    env.write("loop.wav", _quarters(), "chop: 4\n")
    proc = env.run("convert", "--layout", "kit", config="name_length: 10\n")
    assert proc.returncode == 1
    assert "chop in a kit needs name_length 11 or more" in proc.stdout
    env.convert("--layout", "kit", config="name_length: 11\n")
    assert env.outputs()[0] == "kit/bank_A/pad_01_l_01.wav"


def test_loops_chopped_at_onsets_in_one_kit_fill_its_pads_without_gaps(env: Env) -> None:
    """Each holds 16 pads while it runs; the next waits for it, so the kit stays one run:
    hit counts 4, 7 and 2 give pads 1-4, 5-11 and 12-13 after the plain file on pad 1."""
    env.write("a_four.wav", _hits(at=(0.0, 0.5, 1.0, 1.5)), "chop: onsets\n")
    env.write("b_seven.wav", _hits(), "chop: onsets\n")
    env.write("c_two.wav", _hits(at=(0.0, 1.0)), "chop: onsets\n")
    env.write("kick.wav", _hits(at=(0.0,))[: RATE // 2])
    proc = env.convert("--layout", "kit")
    assert "4 files in" in proc.stdout and ": 4 done" in proc.stdout
    pads = [int(Path(o).name[4:6]) for o in env.outputs()]
    names = [Path(o).name[7:] for o in env.outputs()]
    assert pads == list(range(1, 15))
    assert names[:6] == ["kick.wav", "a_four_01.wav", "a_four_02.wav", "a_four_03.wav",
                         "a_four_04.wav", "b_seven_01.wav"]  # fmt: skip
    assert names[-2:] == ["c_two_01.wav", "c_two_02.wav"]


def test_the_daemon_fills_a_kit_with_chopped_loops_without_gaps(daemon: DaemonFactory) -> None:
    d = daemon(layout="kit").start()
    staged = d.dir / "staged"
    staged.mkdir()
    for name, hits in (("a.wav", (0.0, 0.5, 1.0, 1.5)), ("b.wav", (0.0, 1.0))):
        sf.write(str(staged / name), _hits(at=hits), RATE, subtype="PCM_24")
        (staged / f"{name}.yaml").write_text("chop: onsets\n")
    os.rename(staged, d.inbox / "loops")
    d.wait_done(6)
    d.barrier()
    assert [Path(o).name for o in d.outputs() if o.endswith(".wav")] == [
        "pad_01_a_01.wav", "pad_02_a_02.wav", "pad_03_a_03.wav", "pad_04_a_04.wav",
        "pad_05_b_01.wav", "pad_06_b_02.wav",
    ]  # fmt: skip


def test_the_daemon_re_chops_a_loop_in_place_however_often(daemon: DaemonFactory) -> None:
    """In one daemon session: 4 equal slices, a kick after them, then at its onsets (5 hits,
    room for 4 before the kick: kept on its pads, with a warning), off, 2 slices, a retry. The
    loop keeps its first pad and its names never drift to ``_2``."""
    d = daemon(layout="kit").start()
    bank = d.outbox / "kit" / "bank_A"

    def shows(*names: str) -> None:
        wait_for(
            lambda: sorted(p.name for p in bank.glob("*.wav")) == sorted(names),
            f"bank A to hold {names} (log: {d.log_path})",
        )

    sidecar = d.inbox / "beat.wav.yaml"
    sidecar.write_text("chop: 4\n")
    staged = d.dir / "beat.wav"
    sf.write(str(staged), _hits(at=(0.0, 0.25, 0.5, 1.0, 1.5)), RATE, subtype="PCM_24")
    os.rename(staged, d.inbox / "beat.wav")
    four = [f"pad_0{i}_beat_0{i}.wav" for i in range(1, 5)]
    shows(*four)
    sf.write(str(staged), _hits(at=(0.0,))[: RATE // 2], RATE, subtype="PCM_24")
    os.rename(staged, d.inbox / "kick.wav")
    shows(*four, "pad_05_kick.wav")
    sidecar.write_text("chop: onsets\n")
    wait_for(
        lambda: any("room for 4 slices" in str(r.get("warning")) for r in d.records()),
        "the chop at onsets",
    )
    shows(*four, "pad_05_kick.wav")
    sidecar.write_text("chop: off\n")
    shows("pad_01_beat.wav", "pad_05_kick.wav")
    sidecar.write_text("chop: 2\n")
    shows("pad_01_beat_01.wav", "pad_02_beat_02.wav", "pad_05_kick.wav")
    done = len(d.by_status("done"))
    retry = subprocess.run(
        [*SP404D, "retry", "--config", str(d.config), str(d.inbox / "beat.wav")],
        capture_output=True,
        text=True,
        env=d.env,
    )
    assert retry.returncode == 0, retry.stdout + retry.stderr
    d.wait_done(done + 2)
    shows("pad_01_beat_01.wav", "pad_02_beat_02.wav", "pad_05_kick.wav")


def test_notes_beside_slices_say_which_part_and_go_with_them(env: Env) -> None:
    sidecar = Path(f"{env.write('loop.wav', _quarters(), 'chop: 4' + chr(10))}.yaml")
    env.convert(config="write_txt: true\nformat: aiff\n")
    assert env.outputs() == []  # .aif, not .wav
    names = sorted(p.name for p in env.outbox.iterdir())
    assert names == sorted([f"loop_0{i}.aif" for i in range(1, 5)] + [
        f"loop_0{i}.txt" for i in range(1, 5)
    ])  # fmt: skip
    note = (env.outbox / "loop_03.txt").read_text()
    assert "slice: 3 of 4, 1.000-1.500 s\n" in note and "chop: 4\n" in note
    sidecar.write_text("chop: 2\n")
    env.convert(config="write_txt: true\nformat: aiff\n")
    assert sorted(p.name for p in env.outbox.iterdir()) == [
        "loop_01.aif", "loop_01.txt", "loop_02.aif", "loop_02.txt",
    ]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.floats(0.05, 3.0),
    hits=st.lists(st.floats(0.0, 3.0), max_size=12),
    noise=st.floats(0.0, 0.5),
    channels=st.sampled_from([1, 2]),
    most=st.integers(2, 64),
    seed=st.integers(0, 2**16),
)
def test_onset_slices_tile_any_loop(
    seconds: float, hits: list[float], noise: float, channels: int, most: int, seed: int
) -> None:
    """Whatever the loop (silence, noise, clicks at any spacing, mono or stereo): the slices
    follow one another from the first frame to the last, at most ``most`` of them, none
    shorter than the minimum except a loop shorter than it."""
    frames = round(seconds * OUT)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, noise, (frames, channels)).astype(np.float32)
    for when in hits:
        at = round(when * OUT)
        x[at : at + 200] += 0.9
    least = 4800
    starts, _ = chop.onset_starts(x, OUT, most, least)
    parts = chop.slices_from(x, starts, OUT)
    assert 1 <= len(parts) <= most
    assert parts[-1].end == frames  # from the first sound (silence before it is no slice)
    assert parts[0].start == 0 or np.abs(x[: parts[0].start]).max() <= chop.QUIET
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    if len(parts) > 1:
        assert min(p.end - p.start for p in parts) >= least - round(chop.SNAP_MS * OUT / 1000)


def test_a_96k_loop_of_25_s_is_chopped_not_refused_as_over_43_s(env: Env) -> None:
    """The 43 s limit is of the 48 kHz output: a 25 s loop at 96 kHz (2.4M input frames) fits."""
    path = env.inbox / "hires.wav"
    sf.write(str(path), _hits(96000, 25.0, tuple(np.arange(0, 25, 0.5))), 96000, subtype="PCM_24")
    Path(f"{path}.yaml").write_text("chop: 8\n")
    env.convert()
    assert len(env.outputs()) == 8
