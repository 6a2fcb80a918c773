"""``chop: markers`` and a chop's cut points kept: slices at the markers a file carries (WAV
``cue `` and ``smpl``, AIFF ``MARK``, written here by libsndfile itself, as sample editors
built on it write them), and a rebuild that cuts where the card's slices were cut.
"""

from __future__ import annotations

import ctypes
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from sp404d.audio.markers import read_markers
from tests.libsndfile import command
from tests.test_chop import FREQS, OUT, RATE, Env, _dominant, _hits, _quarters

SFC_SET_CUE, SFC_SET_INSTRUMENT = 0x10CF, 0x10D1


class _Cue(ctypes.Structure):
    _fields_ = [
        ("indx", ctypes.c_int32),
        ("position", ctypes.c_uint32),
        ("fcc_chunk", ctypes.c_int32),
        ("chunk_start", ctypes.c_int32),
        ("block_start", ctypes.c_int32),
        ("sample_offset", ctypes.c_uint32),
        ("name", ctypes.c_char * 256),
    ]


class _Cues(ctypes.Structure):
    _fields_ = [("cue_count", ctypes.c_uint32), ("cue_points", _Cue * 100)]


class _Loop(ctypes.Structure):
    _fields_ = [
        ("mode", ctypes.c_int),
        ("start", ctypes.c_uint32),
        ("end", ctypes.c_uint32),
        ("count", ctypes.c_uint32),
    ]


class _Instrument(ctypes.Structure):
    _fields_ = [
        ("gain", ctypes.c_int),
        *((name, ctypes.c_char) for name in ("basenote", "detune", "vlo", "vhi", "klo", "khi")),
        ("loop_count", ctypes.c_int),
        ("loops", _Loop * 16),
    ]


def write_marked(
    path: Path,
    x: np.ndarray,
    rate: int,
    cues: list[int] = (),  # type: ignore[assignment]
    loop: tuple[int, int] | None = None,
) -> None:
    """``x`` written by libsndfile with cue points (a WAV's ``cue ``, an AIFF's ``MARK``) and a
    sampler loop (a WAV's ``smpl``) at these frames."""
    fmt = "AIFF" if path.suffix in (".aif", ".aiff") else "WAV"
    with sf.SoundFile(str(path), "w", rate, x.shape[1], "PCM_16", format=fmt) as f:
        if cues:
            table = _Cues(cue_count=len(cues))
            for i, at in enumerate(cues):
                point = table.cue_points[i]
                point.indx, point.position, point.sample_offset = i + 1, at, at
                point.fcc_chunk = int.from_bytes(b"data", "little")
                point.name = f"M{i + 1}".encode()
            assert command(f, SFC_SET_CUE, table)
        if loop is not None:
            inst = _Instrument(loop_count=1)
            inst.loops[0].start, inst.loops[0].end, inst.loops[0].count = loop[0], loop[1], 0
            assert command(f, SFC_SET_INSTRUMENT, inst)
        f.write(x)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def _slices(env: Env, source: str) -> list[dict[str, Any]]:
    return sorted((r["slice"] for r in env.records(source)), key=lambda s: s["n"])


# --- reading markers ------------------------------------------------------------------------


def test_markers_written_by_libsndfile_are_read_from_wav_and_aiff(tmp_path: Path) -> None:
    x = np.zeros((RATE, 1))
    write_marked(tmp_path / "cue.wav", x, RATE, cues=[22050, 11025, 33075])
    write_marked(tmp_path / "mark.aif", x, RATE, cues=[100, 2000])
    write_marked(tmp_path / "loop.wav", x, RATE, loop=(4410, 39689))
    assert read_markers(tmp_path / "cue.wav") == (11025, 22050, 33075)
    assert read_markers(tmp_path / "mark.aif") == (100, 2000)
    # libsndfile's loop ends after its last frame; ``smpl`` keeps the last: read back as given.
    assert read_markers(tmp_path / "loop.wav") == (4410, 39689)
    sf.write(str(tmp_path / "plain.wav"), x, RATE)
    assert read_markers(tmp_path / "plain.wav") == ()


@settings(max_examples=200)
@given(tail=st.binary(max_size=400), chunk=st.sampled_from([b"cue ", b"smpl", b"MARK", b"data"]))
def test_any_chunk_after_the_header_gives_markers_or_none_never_an_error(
    tmp_path_factory: object, tail: bytes, chunk: bytes
) -> None:
    """A damaged size, a count larger than the chunk, a chunk cut short: no exception."""
    folder = tmp_path_factory.mktemp("m")  # type: ignore[attr-defined]
    for head, order in ((b"RIFF\0\0\0\0WAVE", "<"), (b"FORM\0\0\0\0AIFF", ">")):
        path = folder / "x.bin"
        size = struct.pack(order + "I", len(tail))
        path.write_bytes(head + chunk + size + tail)
        found = read_markers(path)
        assert isinstance(found, tuple) and all(isinstance(p, int) and p >= 0 for p in found)


# --- chop: markers ---------------------------------------------------------------------------


def test_a_loop_is_chopped_at_its_cue_points(env: Env) -> None:
    """Four tones, a cue point where each begins: four slices, each holding its tone."""
    marks = [RATE // 2, RATE, 3 * RATE // 2]
    write_marked(env.inbox / "beat.wav", _quarters(), RATE, cues=marks)
    (env.inbox / "beat.wav.yaml").write_text("chop: markers\n")
    env.convert()
    outs = env.outputs()
    assert outs == [f"beat_0{i}.wav" for i in range(1, 5)]
    for out, hz in zip(outs, FREQS, strict=True):
        y, rate = sf.read(str(env.outbox / out))
        assert abs(_dominant(y, rate) - hz) < 5, (out, hz)
    starts = [s["start_s"] for s in _slices(env, "beat.wav")]
    assert starts[0] == 0.0
    for got, want in zip(starts[1:], marks, strict=True):  # back to a zero crossing, at most 5 ms
        assert 0 <= want / RATE - got <= 0.0051, (got, want / RATE)


def test_an_aiffs_markers_chop_it_and_markers_n_keeps_the_first_n(env: Env) -> None:
    write_marked(env.inbox / "beat.aif", _quarters(), RATE, cues=[RATE // 2, RATE, 3 * RATE // 2])
    (env.inbox / "beat.aif.yaml").write_text("chop: markers 2\n")
    env.convert()
    assert env.outputs() == ["beat_01.wav", "beat_02.wav"]
    first, second = (sf.read(str(env.outbox / o)) for o in env.outputs())
    assert abs(_dominant(*first) - FREQS[0]) < 5
    assert abs(len(first[0]) / OUT - 0.5) < 0.006
    assert len(second[0]) / OUT > 1.4  # the rest of the loop


def test_a_file_without_markers_is_one_slice_with_a_warning(env: Env) -> None:
    env.write("plain.wav", _quarters(), "chop: markers\n")
    env.convert()
    assert env.outputs() == ["plain_01.wav"]
    (rec,) = env.records("plain.wav")
    assert rec["warning"] == "no markers found to chop at: one slice"


# --- rebuild keeps the cuts --------------------------------------------------------------------


def test_rebuild_cuts_where_the_card_was_cut_not_where_todays_detector_would(env: Env) -> None:
    """A card chopped by an older detector: its slices' records say where they were cut. The
    journal is edited as that detector would have left it (slice 2 starting 40 ms later), and
    rebuild makes that slice 2, not today's."""
    env.write("beat.wav", _hits(), "chop: onsets\n")
    env.convert("--layout", "kit")
    before = _slices(env, "beat.wav")
    assert len(before) > 2
    shift = 0.04
    lines = env.journal.read_text().splitlines()
    edited = []
    for line in lines:
        if line.startswith("[") and '"slice"' in line:
            entry = json.loads(line)
            part = entry[2]["slice"]
            if part["n"] == 1:
                part["end_s"] = round(part["end_s"] + shift, 6)
            elif part["n"] == 2:
                part["start_s"] = round(part["start_s"] + shift, 6)
            line = json.dumps(entry, separators=(",", ":"))
        edited.append(line)
    env.journal.write_text("\n".join(edited) + "\n")
    fresh = env.dir / "card"
    made = env.rebuild_to(fresh)
    assert made == env.outputs()
    lengths = [len(sf.read(str(fresh / m))[0]) for m in made]
    card = [len(sf.read(str(env.outbox / m))[0]) for m in made]
    frames = round(shift * OUT)
    assert lengths[0] == card[0] + frames and lengths[1] == card[1] - frames
    assert all((fresh / m).read_bytes() == (env.outbox / m).read_bytes() for m in made[2:])
