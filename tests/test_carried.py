"""BPM and key a file carries: tags written by FFmpeg (through PyAV) and by mutagen, the WAV
``acid`` chunk and Apple Loops' ``basc`` written by hand and read back by libsndfile as well;
values that are no BPM or key left out with a reason, never a refusal; and where a tag stands
among the sidecar, the folder file and the name.
"""

from __future__ import annotations

import ctypes
import importlib
import math
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from sp404d.metadata import read_metadata
from sp404d.metadata.carried import read_carried
from sp404d.values import parse_key
from tests.conftest import SP404D, journal_records, run_env
from tests.libsndfile import command

av = pytest.importorskip("av")
RATE = 44100


def tone(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(round(seconds * rate)) / rate)).astype(
        np.float32
    )


def write_ffmpeg(path: Path, codec: str, tags: dict[str, str], rate: int = RATE) -> Path:
    """``path`` encoded by FFmpeg's libraries with ``tags`` as the container's metadata."""
    fmt = {".mp3": "mp3", ".flac": "flac", ".ogg": "ogg", ".m4a": "ipod"}[path.suffix]
    with av.open(str(path), "w", format=fmt) as out:
        out.metadata.update(tags)
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(tone(rate=rate)[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def chunked(path: Path, chunk: bytes, body: bytes, *, aiff: bool = False) -> Path:
    """``path`` (written by libsndfile) with one more chunk, its container's size mended."""
    sf.write(str(path), tone(2.0), RATE, format="AIFF" if aiff else "WAV", subtype="PCM_16")
    data = bytearray(path.read_bytes())
    order = ">" if aiff else "<"
    data += chunk + struct.pack(order + "I", len(body)) + body + (b"\0" if len(body) & 1 else b"")
    data[4:8] = struct.pack(order + "I", len(data) - 8)
    path.write_bytes(bytes(data))
    return path


def acid(tempo: float, *, one_shot: bool = False, root: int | None = None) -> bytes:
    flags = (1 if one_shot else 0) | (2 if root is not None else 0)
    return struct.pack("<IHHfIHHf", flags, root or 0, 0x8000, 0.0, 8, 4, 4, tempo)


def basc(beats: int, root: int, scale: int, loop: bool = True) -> bytes:
    return struct.pack(">IIHHHHH", 1, beats, root, scale, 4, 4, 0 if loop else 1) + b"\0" * 66


class _LoopInfo(ctypes.Structure):  # libsndfile's SF_LOOP_INFO
    _fields_ = [
        ("time_sig_num", ctypes.c_short),
        ("time_sig_den", ctypes.c_short),
        ("loop_mode", ctypes.c_int),
        ("num_beats", ctypes.c_int),
        ("bpm", ctypes.c_float),
        ("root_key", ctypes.c_int),
        ("future", ctypes.c_int * 6),
    ]


def libsndfile_loop(path: Path) -> _LoopInfo:
    """What libsndfile itself reads of a file's loop facts (SFC_GET_LOOP_INFO)."""
    info = _LoopInfo()
    with sf.SoundFile(str(path)) as f:
        assert command(f, 0x10E0, info) == 1
    return info


def mutagen(module: str) -> Any:
    """A mutagen module, untyped as mutagen is."""
    return importlib.import_module(f"mutagen.{module}")


def layers(path: Path) -> dict[str, Any]:
    return {origin: values for origin, values in read_carried(path).layers}


# --- tags, as other tools write them ----------------------------------------------------------


def test_id3_bpm_and_key_in_an_mp3_written_by_ffmpeg(tmp_path: Path) -> None:
    path = write_ffmpeg(tmp_path / "a.mp3", "libmp3lame", {"TBPM": "92", "TKEY": "A minor"})
    assert layers(path) == {"tag:TBPM": {"bpm": 92.0}, "tag:TKEY": {"key": "Am"}}


def test_vorbis_comments_in_flac_and_ogg_written_by_ffmpeg(tmp_path: Path) -> None:
    flac = write_ffmpeg(tmp_path / "a.flac", "flac", {"BPM": "120", "INITIALKEY": "8A"})
    assert layers(flac) == {"tag:BPM": {"bpm": 120.0}, "tag:INITIALKEY": {"key": "Am"}}
    ogg = write_ffmpeg(tmp_path / "a.ogg", "libopus", {"TEMPO": "87.5", "KEY": "C♯m"}, 48000)
    assert layers(ogg) == {"tag:TEMPO": {"bpm": 87.5}, "tag:KEY": {"key": "C#m"}}


def test_m4a_tempo_atom_from_ffmpeg_and_key_atom_from_mutagen(tmp_path: Path) -> None:
    mp4 = mutagen("mp4")
    path = write_ffmpeg(tmp_path / "a.m4a", "aac", {"tmpo": "96"})
    assert layers(path) == {"tag:tmpo": {"bpm": 96.0}}
    tagged = mp4.MP4(path)
    tagged.tags["----:com.apple.iTunes:initialkey"] = [mp4.MP4FreeForm(b"Bbmaj")]
    tagged.save()
    assert layers(path)["tag:initialkey"] == {"key": "Bb"}


@pytest.mark.parametrize("fmt", ["WAV", "AIFF"])
def test_id3_chunk_of_a_wav_and_an_aiff(tmp_path: Path, fmt: str) -> None:
    id3 = mutagen("id3")
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(str(path), tone(), RATE, format=fmt)
    audio = mutagen("wave").WAVE(path) if fmt == "WAV" else mutagen("aiff").AIFF(path)
    audio.add_tags()
    audio.tags.add(id3.TBPM(text=["128"]))
    audio.tags.add(id3.TKEY(text=["Ebm"]))
    audio.save()
    assert layers(path) == {"tag:TBPM": {"bpm": 128.0}, "tag:TKEY": {"key": "Ebm"}}
    assert len(sf.read(str(path))[0]) == RATE  # still audio libsndfile reads


# --- chunks no tag library reads --------------------------------------------------------------


def test_an_acid_chunk_gives_the_tempo_libsndfile_reads_and_the_root(tmp_path: Path) -> None:
    path = chunked(tmp_path / "loop.wav", b"acid", acid(93.5, root=57))
    assert libsndfile_loop(path).bpm == pytest.approx(93.5)
    carried = read_carried(path)
    assert carried.layers == (("acid", {"bpm": 93.5}),)
    assert carried.facts == {"loop": True, "beats": 8, "root": "A"}


def test_an_acid_one_shot_has_no_tempo(tmp_path: Path) -> None:
    path = chunked(tmp_path / "hit.wav", b"acid", acid(120.0, one_shot=True))
    assert read_carried(path).layers == () and read_carried(path).facts["loop"] is False


def test_apple_loops_basc_gives_the_key_and_the_tempo_of_its_beats(tmp_path: Path) -> None:
    path = chunked(tmp_path / "loop.aif", b"basc", basc(4, 57, 1), aiff=True)  # 4 beats in 2 s
    assert libsndfile_loop(path).bpm == pytest.approx(120.0)
    carried = read_carried(path)
    assert carried.layers == (("apple loop", {"key": "Am"}), ("apple loop", {"bpm": 120.0}))
    assert carried.facts == {"loop": True, "beats": 4}


def test_a_chunk_cut_short_is_a_note_not_a_refusal(tmp_path: Path) -> None:
    path = chunked(tmp_path / "loop.wav", b"acid", b"\x00" * 10)
    assert read_carried(path).ignored == ("its acid chunk is cut short: ignored",)


# --- bad values ------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", ["fast", "0", "9999", "NaN", "-120", ""])
def test_a_bpm_tag_that_is_no_bpm_is_left_out_with_a_reason(tmp_path: Path, bpm: str) -> None:
    path = write_ffmpeg(tmp_path / "a.mp3", "libmp3lame", {"TBPM": bpm, "TKEY": "Am"})
    carried = read_carried(path)
    assert [o for o, _ in carried.layers] == ["tag:TKEY"]
    if bpm in ("", "0"):  # no frame for an empty value; 0 is how many tools say "unknown"
        assert carried.ignored == ()
    else:
        assert carried.ignored == (f"tag:TBPM {bpm!r} is not a BPM from 20 to 999: ignored",)


def test_the_first_good_value_of_a_tag_counts_and_a_list_is_no_decimal(tmp_path: Path) -> None:
    id3 = mutagen("id3")
    path = write_ffmpeg(tmp_path / "a.mp3", "libmp3lame", {})
    tags = id3.ID3(path)
    tags.add(id3.TBPM(text=["fast", "128"]))
    tags.add(id3.TKEY(text=["H-moll", "Am"]))
    tags.save(path)
    assert layers(path) == {"tag:TBPM": {"bpm": 128.0}, "tag:TKEY": {"key": "Am"}}
    flac = write_ffmpeg(tmp_path / "a.flac", "flac", {"BPM": "120,130"})
    assert read_carried(flac).ignored == ("tag:BPM '120,130' is not a BPM from 20 to 999: ignored",)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("Am", "Am"),
        ("A minor", "Am"),
        ("A#m", "A#m"),
        ("Bbmaj", "Bb"),
        ("8A", "Am"),
        ("8B", "C"),
        ("12A", "Dbm"),
        ("F♯", "F#"),
        ("E♭ minor", "Ebm"),
        ("c# min", "C#m"),
    ],
)
def test_keys_are_spelled_one_way(written: str, key: str) -> None:
    assert parse_key(written) == key


def test_the_id3_off_key_marker_is_no_key_and_no_complaint(tmp_path: Path) -> None:
    path = write_ffmpeg(tmp_path / "a.mp3", "libmp3lame", {"TKEY": "o"})
    assert read_carried(path) == read_carried(tmp_path / "nothing.mp3")


@settings(max_examples=60, deadline=None)
@given(bpm=st.text(max_size=30), key=st.text(max_size=30))
def test_any_tag_text_gives_a_value_or_a_one_line_reason(
    tmp_path_factory: Any, bpm: str, key: str
) -> None:
    id3 = mutagen("id3")
    path = tmp_path_factory.mktemp("t") / "a.mp3"
    path.write_bytes(b"")
    tags = id3.ID3()
    tags.add(id3.TBPM(text=[bpm]))
    tags.add(id3.TKEY(text=[key]))
    tags.save(path)
    path.write_bytes(path.read_bytes() + b"\xff\xfb\x90\x00" + b"\0" * 413)  # one MP3 frame
    carried = read_carried(path)
    for _, values in carried.layers:
        for name, value in values.items():
            assert (20 <= value <= 999) if name == "bpm" else parse_key(value) == value
    assert all("\n" not in why and why.endswith("ignored") for why in carried.ignored)


# --- where a tag stands ----------------------------------------------------------------------


def test_sidecar_over_folder_file_over_tag_over_name(tmp_path: Path) -> None:
    folder = tmp_path / "in" / "loops"
    folder.mkdir(parents=True)
    path = write_ffmpeg(folder / "loop 100bpm Gm.mp3", "libmp3lame", {"TBPM": "92", "TKEY": "Am"})
    meta = read_metadata(path, tmp_path / "in")
    assert (meta.bpm, meta.origins["bpm"], meta.key, meta.origins["key"]) == (
        92.0,
        "tag:TBPM",
        "Am",
        "tag:TKEY",
    )
    (folder / "sp404.yaml").write_text("bpm: 95\n")
    assert read_metadata(path, tmp_path / "in").origins["bpm"] == "folder:loops/sp404.yaml"
    Path(f"{path}.yaml").write_text("bpm: 99\nkey:\n")  # an empty key: none, whatever the tag
    meta = read_metadata(path, tmp_path / "in")
    assert (meta.bpm, meta.key, meta.origins["key"]) == (
        99.0,
        None,
        "sidecar:loop 100bpm Gm.mp3.yaml",
    )


def convert_one(tmp_path: Path, config: str = "") -> dict[str, Any]:
    """``sp404d convert`` of ``tmp_path/in`` (holding one file): its record."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"outbox: {tmp_path / 'out'}\njournal: {tmp_path / 'j.jsonl'}\n{config}")
    proc = subprocess.run(
        [*SP404D, "convert", str(tmp_path / "in"), "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=run_env(tmp_path / "home"),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (rec,) = journal_records(tmp_path / "j.jsonl")
    return rec


def test_convert_names_and_records_by_the_tag(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    write_ffmpeg(inbox / "loop.mp3", "libmp3lame", {"TBPM": "92", "TKEY": "fast"})
    rec = convert_one(tmp_path, "layout: bpm\n")
    assert Path(rec["output"]).relative_to(tmp_path / "out").as_posix() == "90-110/92bpm_loop.wav"
    assert rec["metadata"]["origins"]["bpm"] == "tag:TBPM"
    assert rec["metadata"]["ignored"] == ["tag:TKEY 'fast' is not a key (Am, C#, 8A): ignored"]
    assert math.isclose(rec["metadata"]["bpm"], 92.0)


def test_an_acid_one_shot_gets_no_tempo_guessed_or_heard(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    chunked(inbox / "hit.wav", b"acid", acid(120.0, one_shot=True))  # 2 s: a whole bar at 120
    rec = convert_one(tmp_path)
    assert rec["metadata"]["facts"] == {"loop": False, "beats": 8}
    assert "bpm_guess" not in rec["metadata"]
    assert "bpm" not in (rec["render"].get("heard") or {})


def test_a_retagged_file_is_read_again(tmp_path: Path) -> None:
    """The tags are kept per version of the file (for the daemon's rescans), not per name."""
    path = write_ffmpeg(tmp_path / "a.mp3", "libmp3lame", {"TBPM": "92"})
    assert layers(path) == {"tag:TBPM": {"bpm": 92.0}}
    id3 = mutagen("id3")
    tags = id3.ID3(path)
    tags.add(id3.TBPM(text=["140"]))
    tags.save(path)
    assert layers(path) == {"tag:TBPM": {"bpm": 140.0}}
