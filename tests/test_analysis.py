"""BPM and key heard in the sound: generated loops and tonal samples whose tempo and key are
known, what gets no answer (a pad, a drum hit, a lone note), and how the pipeline records and
uses what it heard. The figures on real one-shots are bench/bench_analysis.py's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from sp404d.audio import dsp, hear, tempo, tonality
from sp404d.audio.listen import hear_file, sounding
from sp404d.audio.probe import probe
from sp404d.audio.render import RenderSpec, render
from tests.conftest import SP404D, journal_records, run_env
from tests.test_onsets import hat, kick, snare

R = 48000
NOTES = tonality.NOTES


def groove(
    bpm: float, bars: int = 2, swing: float = 0.0, pickup: int = 0, tail: float = 0.4
) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, hats in eighths (every other one late by ``swing``
    of a sixteenth); ``pickup`` sixteenths of hats before the first bar; a tail of ``tail``
    beats: a length no whole number of bars."""
    six = 60.0 / bpm / 4
    start = pickup * six
    hits = [(k * six, hat(0.15, seed=k)) for k in range(pickup)]
    for step in range(16 * bars):
        t = start + step * six + (swing * six if step % 4 == 2 else 0.0)
        if step % 8 == 0:
            hits.append((t, kick()))
        if step % 8 == 4:
            hits.append((t, snare(seed=step)))
        if step % 2 == 0:
            hits.append((t, hat(0.2, seed=100 + step)))
    x = np.zeros(round((start + (16 * bars + 4 * tail) * six) * R))
    for at, sound in hits:
        i = round(at * R)
        x[i : i + len(sound)] += sound[: len(x) - i]
    return x.astype(np.float32)


def note(midi: float, seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * R)) / R
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    rng = np.random.default_rng(seed)
    y = sum(
        0.6**k / (k + 1) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 6))
        for k in range(6)
    )
    out: np.ndarray = np.asarray(y) * np.exp(-t / 1.2) * np.minimum(1.0, t / 0.005)
    return out


def progression(tonic: int, minor: bool, beat: float = 0.5) -> np.ndarray:
    """i-iv-V-i (or I-IV-V-I) in close position with the root in the bass, a bar each."""
    scale = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    base = 48 + tonic
    x = np.zeros(round(17 * beat * R))
    for bar, degree in enumerate((0, 3, 4, 0)):
        chord = [scale[(degree + s) % 7] + 12 * ((degree + s) // 7) for s in (0, 2, 4)]
        if minor and degree == 4:
            chord[1] += 1  # the dominant's leading tone
        at = round(bar * 4 * beat * R)
        for i, step in enumerate([chord[0] - 12, *chord]):
            y = note(base + step, 4 * beat + 0.5, seed=bar * 4 + i)
            x[at : at + len(y)] += y[: len(x) - at]
    out: np.ndarray = (0.5 * x / np.abs(x).max()).astype(np.float32)
    return out


# --- tempo ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bpm", "swing", "pickup"),
    [
        (62.0, 0.0, 0),  # slow: hats in eighths make 124 as regular; the backbeat says 62
        (72.0, 0.0, 0),
        (93.0, 0.3, 2),
        (128.0, 0.0, 1),
        (150.0, 0.15, 0),
        (174.0, 0.0, 3),  # fast: the kick and snare every beat say 174, not 87
    ],
)
def test_a_loops_tempo_is_heard_within_four_percent(bpm: float, swing: float, pickup: int) -> None:
    heard = tempo.estimate(groove(bpm, swing=swing, pickup=pickup), R)
    assert heard is not None and abs(heard.bpm - bpm) / bpm <= 0.04, heard
    assert 0 < heard.confidence <= 1


@pytest.mark.parametrize("bpm", [90.0, 120.0, 128.0, 140.0, 160.0, 174.0])
def test_a_steady_tempo_is_read_to_a_fraction_of_a_bpm(bpm: float) -> None:
    """Names carry the BPM to a tenth (``120bpm_``, not ``119.7bpm_``): the beat period is
    read between frames of the envelope, not at the nearest one (every 10.7 ms: 120 BPM fell
    on 119.7)."""
    heard = tempo.estimate(groove(bpm), R)
    assert heard is not None and abs(heard.bpm - bpm) <= 0.25, heard


def test_the_same_loop_at_another_rate_is_the_same_tempo() -> None:
    x = groove(110.0)
    y = np.interp(np.arange(round(len(x) * 44100 / R)) * R / 44100, np.arange(len(x)), x)
    a, b = tempo.estimate(x, R), tempo.estimate(y.astype(np.float32), 44100)
    assert a is not None and b is not None and abs(a.bpm - b.bpm) <= 1.0


def test_a_full_mix_has_the_tempo_of_its_drums() -> None:
    drums = groove(97.0, bars=4)
    keys = progression(2, False, beat=60 / 97)[: len(drums)]
    mix = drums[: len(keys)] + 1.2 * keys
    heard = tempo.estimate(mix.astype(np.float32), R)
    assert heard is not None and abs(heard.bpm - 97.0) <= 97 * 0.04, heard


@pytest.mark.parametrize("apart_hz", [57.0, 13.0, 8.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
def test_two_tones_beating_are_no_tempo(apart_hz: float) -> None:
    """A detuned pad pulses as its tones beat: regular, but no new sound ever begins."""
    t = np.arange(4 * R) / R
    pad = 0.3 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * (220 + apart_hz) * t))
    assert tempo.estimate((pad * np.minimum(1, t / 0.5)).astype(np.float32), R) is None


def test_no_tempo_for_a_held_chord_a_hit_or_silence() -> None:
    chord = sum(note(m, 3.0) for m in (57, 60, 64))
    assert tempo.estimate((0.2 * np.asarray(chord)).astype(np.float32), R) is None
    assert tempo.estimate(np.concatenate([kick(), np.zeros(R)]).astype(np.float32), R) is None
    assert tempo.estimate(np.zeros(3 * R, np.float32), R) is None


def test_silence_around_a_sound_is_not_listened_to() -> None:
    """A hit's long silent tail holds no beat and no note: only the sound and half a second on
    each side are listened to (a loop's pickup and its last bar's rest stay its length)."""
    x = groove(104.0, pickup=2)
    padded = np.concatenate([np.zeros(4 * R), x, np.zeros(9 * R)]).astype(np.float32)
    kept = sounding(padded, R)
    assert len(x) - R // 10 <= len(kept) <= len(x) + R
    heard = hear(padded[:, None], R, True, False)
    assert heard["bpm"] == pytest.approx(104.0, rel=0.04), heard
    assert len(sounding(np.zeros(R, np.float32), R)) == 0


# --- key ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tonic", "minor"), [(0, False), (9, True), (6, False), (3, True), (7, True)]
)
def test_a_progressions_key_is_heard(tonic: int, minor: bool) -> None:
    heard = tonality.estimate(progression(tonic, minor), R)
    assert heard is not None and heard.key == NOTES[tonic] + ("m" if minor else ""), heard


@pytest.mark.parametrize("sound", ["kick", "snare", "hat", "note"])
def test_drum_hits_and_a_lone_note_get_no_key(sound: str) -> None:
    x = {"kick": kick(), "snare": snare(), "hat": hat(), "note": note(57, 3.0)}[sound]
    assert tonality.estimate(x.astype(np.float32), R) is None


def tone_over_noise(seed: int) -> np.ndarray:
    """A bass hit: one tone between notes and its noise, decaying (the convert benchmark's)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(float(rng.uniform(2, 12)) * R)) / R
    body = 0.7 * np.sin(2 * np.pi * rng.uniform(40, 200) * t) + rng.normal(0, 0.2, len(t))
    out: np.ndarray = (body * np.exp(-t * rng.uniform(4, 30)) * 0.8).astype(np.float32)
    return out


def test_one_tone_over_noise_gets_no_key() -> None:
    """The noise's small peaks, each far under the tone, fell on the other eleven notes and
    summed to a chord (seeds 37 and 41 were heard in a key): only peaks within 36 dB of their
    frame's loudest count."""
    heard = {s: tonality.estimate(tone_over_noise(s), R) for s in range(60)}
    assert {s: k for s, k in heard.items() if k is not None} == {}


def test_notes_too_short_to_say_a_key_are_not_listened_to() -> None:
    """A chord stab under 1.6 s was never heard surely enough to name its key: none is said."""
    stab = sum(note(m, 1.5, seed=m) for m in (48, 52, 55, 36))
    assert tonality.estimate(np.asarray(stab, dtype=np.float32), R) is None
    longer = sum(note(m, 2.5, seed=m) for m in (48, 52, 55, 36))
    assert tonality.estimate(np.asarray(longer, dtype=np.float32), R) is not None


@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=60),
    q=st.floats(0.0, 100.0),
)
def test_the_percentile_is_numpys(values: list[float], q: float) -> None:
    """Analysis reads percentiles by a partition (numpy's loads numpy.ma in every worker)."""
    x = np.array(values)
    if not values:
        assert np.isnan(dsp.percentile(x, q))
        return
    assert dsp.percentile(x, q) == pytest.approx(float(np.percentile(x, q)), rel=1e-9, abs=1e-9)


def test_listening_loads_no_module_a_worker_has_not_already(tmp_path: Path) -> None:
    """Workers are forked with what the parent imported; a module loaded on the first listen is
    loaded again in every worker of every run (numpy.ma: 10 ms each)."""
    code = (
        "import sys; import sp404d.pipeline.job; import numpy as np\n"
        "from sp404d.audio import hear\n"
        "before = set(sys.modules)\n"
        "x = np.zeros((96000, 2), np.float32); x[::6000] = 0.9\n"
        "x[:, 0] += np.sin(np.arange(96000) / 7.0).astype(np.float32) * 0.1\n"
        "hear(x, 48000, True, True)\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=run_env(tmp_path),
    )
    assert out.stdout.strip() == "[]", out.stdout


def _check_and_job(src: Path, spec_min_frames: int = 0) -> tuple[dict[str, object], Any]:
    info = probe(src)
    dst = src.with_suffix(".out.wav")
    dst.touch()
    spec = RenderSpec(hear_bpm=True, hear_key=True, min_frames=spec_min_frames)
    return hear_file(src, info, True, True), render(src, info, dst, spec).heard or {}


@pytest.mark.parametrize(
    ("rate", "subtype", "ext"), [(44100, "PCM_24", "wav"), (R, "PCM_16", "flac")]
)
def test_a_short_file_padded_on_the_card_is_heard_as_check_hears_it(
    tmp_path: Path, rate: int, subtype: str, ext: str
) -> None:
    """A 1.3 s loop padded to 3 s (``min_duration_ms``, ``short_files: pad``): the job heard
    the padding too, and said a tempo ``check`` did not (too short to hold one)."""
    x = groove(140.0, bars=1, tail=0.0)[: round(1.3 * R)]
    y = np.interp(np.arange(round(len(x) * rate / R)) * R / rate, np.arange(len(x)), x)
    src = tmp_path / f"short.{ext}"
    sf.write(src, y, rate, subtype=subtype)
    check, job = _check_and_job(src, spec_min_frames=3 * R)
    assert check == job == {}


def test_a_surround_files_lfe_is_left_out_by_check_as_by_the_job(tmp_path: Path) -> None:
    """5.1 folds to stereo without its LFE: drums only there are no tempo, for either."""
    drums, chord = groove(120.0, bars=2), progression(9, True)[: len(groove(120.0, bars=2))]
    n = min(len(drums), len(chord))
    x = np.stack([chord[:n], chord[:n], chord[:n], drums[:n], 0 * chord[:n], 0 * chord[:n]], 1)
    src = tmp_path / "surround.wav"
    sf.write(src, 0.4 * x, R, subtype="PCM_16")
    check, job = _check_and_job(src)
    assert check == job
    assert "bpm" not in job


# --- the pipeline ---------------------------------------------------------------------------


class Box:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.inbox = tmp_path / "in"
        self.inbox.mkdir()
        self.journal = tmp_path / "j.jsonl"

    def run(self, command: str, config: str = "") -> str:
        cfg = self.dir / "c.yaml"
        cfg.write_text(f"outbox: {self.dir / 'out'}\njournal: {self.journal}\n{config}")
        proc = subprocess.run(
            [*SP404D, command, str(self.inbox), "--config", str(cfg)],
            capture_output=True,
            text=True,
            env=run_env(self.dir / "home"),
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def record(self, name: str) -> dict[str, Any]:
        (rec,) = [r for r in journal_records(self.journal) if r["source"].endswith(name)]
        return rec


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def test_what_is_heard_is_recorded_not_used(box: Box) -> None:
    sf.write(str(box.inbox / "groove.wav"), groove(96.0), R, subtype="PCM_24")
    sf.write(str(box.inbox / "keys.wav"), progression(9, True), R, subtype="PCM_24")
    box.run("convert", "layout: bpm\n")
    groove_rec, keys_rec = box.record("groove.wav"), box.record("keys.wav")
    assert abs(groove_rec["render"]["heard"]["bpm"] - 96.0) <= 96 * 0.04
    assert keys_rec["render"]["heard"]["key"] == "Am"
    assert groove_rec["metadata"]["bpm"] is None and keys_rec["metadata"]["key"] is None
    assert "unknown_bpm" in groove_rec["output"]


def test_use_analysis_places_and_names_by_what_is_heard(box: Box) -> None:
    sf.write(str(box.inbox / "groove.wav"), groove(128.0), R, subtype="PCM_24")
    box.run("convert", "layout: bpm\nuse_analysis: true\n")
    rec = box.record("groove.wav")
    meta = rec["metadata"]
    assert meta["origins"]["bpm"] == "analysis" and abs(meta["bpm"] - 128) <= 128 * 0.04
    assert 0 < meta["facts"]["bpm_confidence"] <= 1
    assert Path(rec["output"]).parent.name == "110-130"


def test_a_given_bpm_is_not_listened_for_and_analysis_off_hears_nothing(box: Box) -> None:
    sf.write(str(box.inbox / "groove.wav"), groove(100.0), R, subtype="PCM_24")
    (box.inbox / "groove.wav.yaml").write_text("bpm: 100\n")
    sf.write(str(box.inbox / "other.wav"), groove(100.0), R, subtype="PCM_24")
    box.run("convert")
    assert "bpm" not in (box.record("groove.wav")["render"].get("heard") or {})
    box.journal.unlink()
    box.run("convert", "analysis: false\n")
    assert "heard" not in box.record("other.wav")["render"]


def test_check_says_what_it_hears_and_where_each_value_comes_from(box: Box) -> None:
    sf.write(str(box.inbox / "groove.wav"), groove(90.0), R, subtype="PCM_24")
    out = box.run("check")
    line = next(t for t in out.splitlines() if "heard:" in t)
    assert "BPM (confidence" in line and "use_analysis: true uses it" in line
    bpm = float(line.split("heard: ")[1].split(" BPM")[0])
    assert abs(bpm - 90) <= 90 * 0.04


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(["noise", "dc", "clicks", "square", "silence", "sweep"]),
    seconds=st.floats(0.0, 6.0),
    rate=st.sampled_from([8000, 11025, 22050, 44100, 48000, 96000]),
    level=st.floats(0.0, 1.0),
    channels=st.integers(1, 3),
)
def test_anything_heard_is_an_answer_or_none_never_an_error(
    kind: str, seconds: float, rate: int, level: float, channels: int
) -> None:
    """Whatever the sound: a BPM from 60 to 180 and a key, with confidences in (0, 1], or
    nothing; never an exception (a job must not fail for what its sound says)."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(n)
    mono = {
        "noise": rng.normal(0, 1, n),
        "dc": np.ones(n),
        "clicks": (np.arange(n) % max(1, rate // 3) == 0).astype(float),
        "square": np.sign(np.sin(2 * np.pi * 3 * t)),
        "silence": np.zeros(n),
        "sweep": np.sin(2 * np.pi * (50 + 500 * t) * t),
    }[kind] * level
    x = np.stack([mono] * channels, axis=1).astype(np.float32)
    heard = hear(x, rate, True, True)
    assert set(heard) <= {"bpm", "bpm_confidence", "key", "key_confidence"}
    if "bpm" in heard:
        assert 60 <= float(heard["bpm"]) <= 180 and 0 < float(heard["bpm_confidence"]) <= 1  # type: ignore[arg-type]
    if "key" in heard:
        assert heard["key"] in {n + m for n in NOTES for m in ("", "m")}


def test_use_analysis_settles_a_converted_file_and_check_agrees_with_the_job(box: Box) -> None:
    """The plan's analysis is not part of the input id: a second run finds the file settled
    (no new job) instead of listening again; and a 44.1 kHz loop is heard the same by
    ``check`` (the file) as by the job (its 48 kHz render)."""
    y = groove(104.0)
    x44 = np.interp(np.arange(round(len(y) * 44100 / R)) * R / 44100, np.arange(len(y)), y)
    sf.write(str(box.inbox / "groove.wav"), x44.astype(np.float32), 44100, subtype="PCM_24")
    said = box.run("check", "use_analysis: true\nlayout: bpm\n")
    box.run("convert", "use_analysis: true\nlayout: bpm\n")
    rec = box.record("groove.wav")
    assert f"bpm: {rec['metadata']['bpm']}  [analysis" in said
    assert abs(rec["metadata"]["bpm"] - 104) <= 104 * 0.04
    out = box.run("convert", "use_analysis: true\nlayout: bpm\n")
    assert "1 skipped" in out
    assert [r["status"] for r in journal_records(box.journal)] == ["done", "skipped"]


def test_check_hears_what_the_job_hears_under_trim_normalise_mono_and_vhq(box: Box) -> None:
    """The job listens to the samples it writes (trimmed, normalised, folded, resampled at
    its quality); check listened to the file as it was, and their confidences parted in the
    second decimal. Now the same, to the last digit, for a loop and a progression."""
    lead = np.zeros(round(0.8 * R), np.float32)
    loop = np.concatenate([lead, groove(97.0, pickup=1)])
    x44 = np.interp(np.arange(round(len(loop) * 44100 / R)) * R / 44100, np.arange(len(loop)), loop)
    sf.write(str(box.inbox / "groove.wav"), np.stack([x44, 0.7 * x44], 1), 44100, subtype="PCM_24")
    sf.write(str(box.inbox / "keys.wav"), progression(4, True), R, subtype="PCM_24")
    config = (
        "trim: {threshold_db: -40, keep_ms: 2}\nnormalize: lufs -14\nchannels: mono\nquality: vhq\n"
    )
    said = box.run("check", config)
    box.run("convert", config)
    for name in ("groove.wav", "keys.wav"):
        heard = box.record(name)["render"]["heard"]
        parts = []
        if "bpm" in heard:
            parts.append(f"{heard['bpm']} BPM (confidence {heard['bpm_confidence']})")
        if "key" in heard:
            parts.append(f"key {heard['key']} (confidence {heard['key_confidence']})")
        assert parts and f"heard: {', '.join(parts)}  [analysis" in said, (name, heard, said)


def test_a_long_96k_file_is_heard_by_check_only_where_the_job_hears_it(box: Box) -> None:
    """30 s at 96 kHz is over the render's in-memory limit in input frames: streamed, and not
    listened to, unless it is chopped (a chop holds up to 43 s of output whole). check heard
    the raw file either way."""
    loop = np.tile(groove(120.0, bars=2, tail=0.0), 8)[: 30 * R]
    x96 = np.repeat(loop, 2)  # 96 kHz: a sample-and-hold is loud enough a loop for this
    sf.write(str(box.inbox / "long.wav"), x96, 96000, subtype="PCM_24")
    sf.write(str(box.inbox / "chopped.wav"), x96, 96000, subtype="PCM_24")
    (box.inbox / "chopped.wav.yaml").write_text("chop: 4\ntrim: {threshold_db: -30}\n")
    said = box.run("check")
    box.run("convert")
    assert "heard" not in box.record("long.wav")["render"]
    chopped = [r for r in journal_records(box.journal) if r["source"].endswith("chopped.wav")]
    heard = chopped[0]["render"]["heard"]
    line = f"heard: {heard['bpm']} BPM (confidence {heard['bpm_confidence']})"
    assert said.count("heard:") == 1 and line in said, said


def test_a_chopped_loop_records_its_tempo_on_its_slices_as_check_says(box: Box) -> None:
    sf.write(str(box.inbox / "beat.wav"), groove(112.0), R, subtype="PCM_24")
    (box.inbox / "beat.wav.yaml").write_text("chop: 4\n")
    said = box.run("check")
    box.run("convert")
    heard = {r["render"]["heard"]["bpm"] for r in journal_records(box.journal) if r.get("slice")}
    assert len(heard) == 1 and f"heard: {heard.pop()} BPM" in said
