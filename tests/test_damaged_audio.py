"""Damaged and implausible audio: refused with a reason a musician can act on, or converted
right. Real files only: written with soundfile (or PyAV), cut short, or headers crafted byte by
byte with struct, run through the real planner and job (``sp404d.pipeline.job.execute``)."""

from __future__ import annotations

import json
import struct
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from sp404d.audio import dsp
from sp404d.audio.probe import AudioInfo
from sp404d.config.loading import build_config
from sp404d.config.settings import Rules
from sp404d.errors import RejectedError
from sp404d.journal.journal import Journal
from sp404d.pipeline.job import _internal, check_duration, execute
from sp404d.pipeline.plan import Outcome, Plan
from sp404d.pipeline.planner import Planner, Request
from tests.conftest import (
    SP404D,
    fit_sine,
    journal_records,
    level_db,
    run_env,
    tone,
    write_audio,
)

# Every reason sp404d gives for a file it refuses starts with one of these.
REASONS = (
    "empty: ",
    "corrupt audio file: ",
    "corrupt M4A file: ",
    "not an audio file ",
    "sample rate ",
    "truncated: ",
    "too short: ",
    "too long: ",
    "unsupported audio encoding: ",
    "broken header: ",
    "broken audio: ",
)


def wav_bytes(
    audio: bytes,
    *,
    tag: int = 1,
    channels: int = 1,
    rate: int = 44100,
    bits: int = 16,
    block_align: int | None = None,
    byte_rate: int | None = None,
    fmt_extra: bytes = b"",
    fmt_size: int | None = None,
    data_size: int | None = None,
    riff_size: int | None = None,
    after: bytes = b"",
) -> bytes:
    """A WAV file byte by byte, every header field free to be wrong."""
    align = channels * bits // 8 if block_align is None else block_align
    rate_bytes = rate * align if byte_rate is None else byte_rate
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate_bytes % 2**32, align % 2**16, bits)
    fmt += fmt_extra
    size = len(fmt) if fmt_size is None else fmt_size
    fmt = fmt[:size].ljust(size, b"\0") + (b"\0" if size & 1 else b"")
    body = b"WAVE" + b"fmt " + struct.pack("<I", size) + fmt
    body += b"data" + struct.pack("<I", len(audio) if data_size is None else data_size) + audio
    body += after
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def pcm16(seconds: float, rate: int = 44100, dbfs: float = -6.0) -> bytes:
    return (tone(rate, 1000, dbfs, seconds)[:, 0] * 32767).astype("<i2").tobytes()


class Run:
    """The real planner and job on files in one inbox, as the daemon and convert run them."""

    def __init__(self, root: Path, **settings: Any) -> None:
        self.inbox = root / "in"
        self.inbox.mkdir(parents=True, exist_ok=True)
        raw = {"inbox": str(self.inbox), "outbox": str(root / "out")}
        self.config = build_config({**raw, "journal": str(root / "j.jsonl"), **settings})
        self.planner = Planner(Journal(self.config.journal))

    def __call__(self, source: Path) -> Outcome:
        plan = self.planner.plan(Request(source, self.inbox, self.config))
        assert isinstance(plan, Plan)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a numpy RuntimeWarning is a bug, not a detail
            return execute(plan)


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def output(outcome: Outcome) -> tuple[np.ndarray, int]:
    assert outcome.status == "done", outcome.reason
    assert outcome.output is not None
    info = sf.info(str(outcome.output))
    assert (info.samplerate, info.subtype) == (48000, "PCM_16")
    y, rate = sf.read(str(outcome.output), always_2d=True)
    return y, rate


def cut(path: Path, keep: float = 1 / 3) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def noise(seconds: float, rate: int = 44100, channels: int = 2) -> np.ndarray:
    return np.random.default_rng(7).uniform(-0.5, 0.5, (round(rate * seconds), channels))


class TestHugeFloats:
    """Finite float samples near float32's limit are overs like any other, not silence (the
    level, shape, streamed and clip paths are measured in test_render.py)."""

    def _huge(self, path: Path, rate: int = 44100, seconds: float = 0.5) -> Path:
        x = tone(rate, 1000, 0.0, seconds) * 3e38
        sf.write(str(path), x.astype(np.float32), rate, subtype="FLOAT")
        return path

    def test_a_tone_at_3e38_is_turned_down_to_full_scale_with_its_shape(self, run: Run) -> None:
        outcome = run(self._huge(run.inbox / "huge.wav"))
        y, rate = output(outcome)
        level = level_db(y[:, 0], rate, 1000)
        limit_db = 20 * np.log10(dsp.LIMIT_PEAK)
        assert limit_db - 0.1 < level <= limit_db + 0.01  # the limiter's level, not zeros
        amp, residual = fit_sine(y[:, 0], rate, 1000)
        assert 20 * np.log10((amp / np.sqrt(2)) / residual) > 85  # a sine, not a square
        assert outcome.render["gain_db"] < -700  # the turn-down is recorded
        assert outcome.render["clipped_samples"] == 0

    def test_no_warning_on_stderr(self, tmp_path: Path) -> None:
        (tmp_path / "in").mkdir()
        self._huge(tmp_path / "in" / "huge.wav")
        proc = subprocess.run(
            [
                *SP404D,
                "convert",
                str(tmp_path / "in"),
                "--outbox",
                str(tmp_path / "out"),
                "--journal",
                str(tmp_path / "j.jsonl"),
            ],
            env=run_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Warning" not in proc.stderr


class TestSampleRates:
    @pytest.mark.parametrize("rate", [0, 1, 999, 768_001, 2**32 - 1])
    def test_a_rate_no_recording_has_is_refused(self, run: Run, rate: int) -> None:
        """1 Hz made 200 frames into 200 s of output; 0 Hz gave libsndfile's internal text."""
        src = run.inbox / "odd.wav"
        src.write_bytes(wav_bytes(pcm16(0.2)[:400], rate=rate, byte_rate=2 * rate))
        outcome = run(src)
        assert (outcome.status, outcome.reason) == (
            "rejected",
            f"sample rate {rate} Hz in the header: not a real recording (broken file?)",
        )

    @pytest.mark.parametrize("rate", [1000, 768_000])
    def test_the_edges_of_real_rates_convert(self, run: Run, rate: int) -> None:
        src = run.inbox / "edge.wav"
        src.write_bytes(wav_bytes(pcm16(0.2, rate), rate=rate))
        y, _ = output(run(src))
        assert abs(len(y) - 0.2 * 48000) <= 2

    def test_an_aiff_rate_of_zero_is_refused_in_words(self, run: Run) -> None:
        comm = struct.pack(">hIh", 1, 100, 16) + bytes(10)  # 80-bit rate: 0
        body = b"AIFF" + b"COMM" + struct.pack(">I", 18) + comm
        body += b"SSND" + struct.pack(">I", 208) + bytes(208)
        src = run.inbox / "zero.aiff"
        src.write_bytes(b"FORM" + struct.pack(">I", len(body)) + body)
        outcome = run(src)
        assert (
            outcome.reason == "sample rate 0 Hz in the header: not a real recording (broken file?)"
        )


class TestTruncated:
    def test_a_cut_mp3_is_refused_by_default(self, run: Run) -> None:
        """The first third of a 10 s MP3 was `done` with 3.1 s and no word in the journal."""
        src = write_audio(
            run.inbox / "cut.mp3",
            44100,
            seconds=10.0,
            format="MP3",
            subtype="MPEG_LAYER_III",
            freq=440,
        )
        outcome = run(cut(src))
        assert outcome.status == "rejected"
        assert outcome.reason is not None
        assert outcome.reason.startswith(
            "truncated: the header promises 10.00 s, the file holds 3."
        )

    def test_truncated_keep_converts_what_is_there_and_records_it(self, tmp_path: Path) -> None:
        run = Run(tmp_path, truncated="keep")
        src = cut(
            write_audio(
                run.inbox / "cut.mp3", 44100, seconds=10.0, format="MP3", subtype="MPEG_LAYER_III"
            )
        )
        outcome = run(src)
        y, rate = output(outcome)
        facts = outcome.render["truncated"]
        assert facts["promised_s"] == 10.0 and 3.0 < facts["decoded_s"] < 3.4
        assert abs(len(y) / rate - facts["decoded_s"]) < 0.01
        assert outcome.render["warning"].startswith("truncated: the header promises 10.00 s")
        assert abs(level_db(y[:, 0], rate, 1000) - (-6.0)) < 0.5

    @pytest.mark.parametrize("overs", ["limit", "clip"])
    def test_long_files_streamed_are_judged_the_same(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overs: str
    ) -> None:
        """Long files stream (two passes with the limiter, one with clip): the cut is found
        either way, before a word is written or at the end of the one pass."""
        from sp404d.audio import render as render_mod

        monkeypatch.setattr(render_mod, "IN_MEMORY_FRAMES", 10_000)
        for policy in ("reject", "keep"):
            run = Run(tmp_path / policy, truncated=policy, overs=overs)
            src = run.inbox / "cut.mp3"
            sf.write(str(src), noise(10.0) * 0.5, 44100, format="MP3", subtype="MPEG_LAYER_III")
            outcome = run(cut(src))
            if policy == "reject":
                assert outcome.reason is not None
                assert outcome.reason.startswith("truncated: the header promises 10.00 s")
                assert not list((tmp_path / policy / "out").rglob("*.wav"))
            else:
                y, rate = output(outcome)
                assert abs(len(y) / rate - outcome.render["truncated"]["decoded_s"]) < 0.01

    def test_what_is_kept_still_meets_the_length_rules(self, tmp_path: Path) -> None:
        """Cut to a few frames, a 10 s MP3 is a too-short sample (or padded, with `pad`)."""
        for short_files in ("reject", "pad"):
            run = Run(tmp_path / short_files, truncated="keep", short_files=short_files)
            src = run.inbox / "cut.mp3"
            sf.write(str(src), noise(10.0), 44100, format="MP3", subtype="MPEG_LAYER_III")
            outcome = run(cut(src, keep=0.015))
            if short_files == "reject":
                assert outcome.reason is not None
                assert outcome.reason.startswith("too short: ")
            else:
                y, _ = output(outcome)
                assert len(y) == 4800 and outcome.render["truncated"]["promised_s"] == 10.0

    def test_the_setting_reaches_convert_from_the_config_file(self, tmp_path: Path) -> None:
        inbox = tmp_path / "in"
        cut(
            write_audio(
                inbox / "cut.mp3", 44100, seconds=10.0, format="MP3", subtype="MPEG_LAYER_III"
            )
        )
        (tmp_path / "c.yaml").write_text("truncated: keep\n")
        journal = tmp_path / "j.jsonl"
        proc = subprocess.run(
            [
                *SP404D,
                "convert",
                str(inbox),
                "--outbox",
                str(tmp_path / "out"),
                "--journal",
                str(journal),
                "--config",
                str(tmp_path / "c.yaml"),
            ],
            env=run_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        (rec,) = journal_records(journal)
        assert rec["status"] == "done" and rec["render"]["truncated"]["promised_s"] == 10.0
        assert rec["warning"] and rec["warning"].startswith("truncated:")
        status = subprocess.run(
            [*SP404D, "status", "--journal", str(journal)],
            env=run_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"warning: {rec['warning']}" in status.stdout  # what was kept is said

    def test_a_cut_ogg_says_truncated_not_empty(self, run: Run) -> None:
        """A tone compresses so well that its first third holds no whole audio page."""
        src = cut(
            write_audio(run.inbox / "cut.ogg", 44100, seconds=10.0, format="OGG", subtype="VORBIS")
        )
        outcome = run(src)
        assert (outcome.status, outcome.reason) == (
            "rejected",
            "truncated: the file ends before any audio (still copying, or a broken download?)",
        )

    def test_a_cut_ogg_with_audio_is_refused_or_kept(self, tmp_path: Path) -> None:
        """An OGG has no length in its header: the missing last page gives the cut away."""
        for policy in ("reject", "keep"):
            run = Run(tmp_path / policy, truncated=policy)
            src = run.inbox / "cut.ogg"
            sf.write(str(src), noise(10.0), 44100, format="OGG", subtype="VORBIS")
            outcome = run(cut(src))
            if policy == "reject":
                assert outcome.reason is not None
                assert outcome.reason.startswith("truncated: the file holds 3.")
                assert outcome.reason.endswith(
                    "s and ends mid-stream (still copying, or a broken download?)"
                )
            else:
                y, rate = output(outcome)
                assert outcome.render["truncated"]["promised_s"] is None
                assert 2.5 < len(y) / rate < 3.5

    @pytest.mark.parametrize(
        ("name", "fmt", "subtype"),
        [
            pytest.param("cut.flac", "FLAC", "PCM_16", id="flac"),
            pytest.param("cut.wav", "WAV", "PCM_24", id="wav"),
            pytest.param("cut48.wav", "WAV", "PCM_16", id="wav-48k-16bit"),
            pytest.param("cut.aiff", "AIFF", "PCM_16", id="aiff"),
        ],
    )
    def test_cut_lossless_files_are_refused_or_kept(
        self, tmp_path: Path, name: str, fmt: str, subtype: str
    ) -> None:
        """A cut FLAC made libsndfile fail with its own text; a cut 48 kHz/16-bit WAV kept must
        get a new header, not be copied with the old one promising the missing audio."""
        rate = 48000 if "48" in name else 44100
        for policy in ("reject", "keep"):
            run = Run(tmp_path / policy, truncated=policy)
            src = run.inbox / name
            sf.write(str(src), noise(4.0, rate), rate, format=fmt, subtype=subtype)
            outcome = run(cut(src))
            if policy == "reject":
                assert outcome.reason is not None
                assert outcome.reason.startswith("truncated: the header promises 4.00 s")
                continue
            y, out_rate = output(outcome)
            assert 1.1 < len(y) / out_rate < 1.4
            assert outcome.output is not None
            assert sf.info(str(outcome.output)).frames * 4 == outcome.output.stat().st_size - 44
            assert outcome.render["truncated"]["promised_s"] == 4.0

    def test_healthy_mp3s_never_trip_it(self, run: Run) -> None:
        for i, (rate, seconds, channels) in enumerate(
            [(44100, 0.12, 1), (48000, 1.0, 2), (32000, 3.3, 2), (22050, 0.5, 1), (8000, 2.0, 1)]
        ):
            src = write_audio(
                run.inbox / f"ok{i}.mp3",
                rate,
                seconds=seconds,
                channels=channels,
                format="MP3",
                subtype="MPEG_LAYER_III",
            )
            y, out_rate = output(run(src))
            assert abs(len(y) / out_rate - seconds) < 0.01

    def test_a_vbr_mp3_without_a_xing_tag_converts_whole(self, run: Run) -> None:
        """Without a Xing tag libsndfile guesses the length from the first frames' bitrate: a
        loud start made it stop after a fifth of the file (recorded done), a quiet start made
        the file look cut. Such an MP3 is decoded to its end and never called truncated."""
        av = pytest.importorskip("av")
        for order in ("loud-first", "quiet-first"):
            parts = [noise(3.0), np.zeros((3 * 44100, 2))]
            x = np.concatenate(parts if order == "loud-first" else parts[::-1])
            src = run.inbox / f"{order}.mp3"
            _write_vbr_mp3(av, src, x, 44100)
            guess = sf.info(str(src)).frames / 44100
            assert abs(guess - 6.0) > 1.0  # libsndfile's guess is far off: the case at hand
            y, rate = output(run(src))
            assert abs(len(y) / rate - 6.0) < 0.1

    def test_an_mp3_without_a_xing_tag_and_with_cover_art_converts(self, run: Run) -> None:
        """Such an MP3 is decoded through a pipe (no guessed length to stop at), where
        libsndfile cannot skip a big ID3v2 tag: sp404d leaves the tag out."""
        av = pytest.importorskip("av")
        plain = run.inbox / "plain.mp3"
        _write_vbr_mp3(av, plain, noise(2.0), 44100)
        art = 300_000  # an ID3v2.3 tag holding ~300 KB (cover art, or its padding)
        size = bytes((art >> s) & 0x7F for s in (21, 14, 7, 0))
        src = run.inbox / "tagged.mp3"
        src.write_bytes(b"ID3\x03\x00\x00" + size + bytes(art) + plain.read_bytes())
        y, rate = output(run(src))
        assert abs(len(y) / rate - 2.0) < 0.1

    def test_an_m4a_cut_short_is_refused_or_kept(self, tmp_path: Path) -> None:
        av = pytest.importorskip("av")
        for policy in ("reject", "keep"):
            run = Run(tmp_path / policy, truncated=policy)
            src = run.inbox / "cut.m4a"
            _write_m4a(av, src, noise(4.0), 44100, faststart=True)
            outcome = run(cut(src))
            if policy == "reject":
                assert outcome.reason is not None
                assert outcome.reason.startswith("truncated: the header promises 4.00 s")
            else:
                y, rate = output(outcome)
                assert 1.0 < len(y) / rate < 1.5

    def test_an_m4a_cut_before_its_index_says_truncated(self, run: Run) -> None:
        av = pytest.importorskip("av")
        src = run.inbox / "cut.m4a"
        _write_m4a(av, src, noise(4.0), 44100)  # the index (moov) at the end
        assert run(cut(src)).reason == (
            "truncated: the M4A file ends before its audio does "
            "(still copying, or a broken download?)"
        )


class TestReasons:
    def test_just_under_the_minimum_says_so(self, run: Run) -> None:
        """99.98 ms was "too short: 100 ms, minimum 100 ms"."""
        src = run.inbox / "hit.wav"
        sf.write(str(src), tone(48000, seconds=0.1)[:4799], 48000, subtype="PCM_24")
        assert run(src).reason == "too short: 99.98 ms, minimum 100 ms"

    @settings(max_examples=30)
    @given(frames=st.integers(1, 20_000), rate=st.sampled_from([8000, 44100, 48000, 96000]))
    def test_a_length_is_never_shown_on_the_wrong_side_of_its_limit(
        self, frames: int, rate: int
    ) -> None:
        info = AudioInfo("WAV", "PCM_16", rate, 1, frames)
        rules = Rules(outbox=Path("/nowhere"), min_duration_ms=100, max_duration_s=0.2)
        try:
            check_duration(info, rules)
        except RejectedError as exc:
            reason = exc.reason
            shown = float(reason.split()[2])
            if reason.startswith("too short"):
                assert frames * 1000 < 100 * rate and shown < 100
            else:
                assert frames > 0.2 * rate and shown > 0.2
        else:
            assert 100 * rate <= frames * 1000 and frames <= 0.2 * rate

    def test_a_garbage_m4a_gets_one_clean_line(self, run: Run) -> None:
        """FFmpeg's text carried an errno and the file's full path."""
        pytest.importorskip("av")
        src = run.inbox / "bad.m4a"
        junk = bytes(np.random.default_rng(3).integers(128, 256, 3000, dtype=np.uint8))
        src.write_bytes(struct.pack(">I", 24) + b"ftypM4A \0\0\0\0M4A isom" + junk)
        outcome = run(src)
        assert (outcome.status, outcome.reason) == (
            "rejected",
            "corrupt M4A file: its data cannot be decoded (broken file?)",
        )

    def test_libsndfile_texts_become_reasons(self, run: Run) -> None:
        cases = {
            "no-channels": (wav_bytes(pcm16(0.2), channels=0), "header says it has no channels"),
            "tag-0x1234": (wav_bytes(pcm16(0.2), tag=0x1234), "unsupported audio encoding"),
            "no-data": (wav_bytes(b"")[:-8], "audio data chunk is missing"),
        }
        for name, (data, words) in cases.items():
            src = run.inbox / f"{name}.wav"
            src.write_bytes(data)
            outcome = run(src)
            assert outcome.status == "rejected" and words in (outcome.reason or ""), outcome

    def test_the_catch_all_keeps_no_path_and_no_errno(self) -> None:
        exc = FileNotFoundError(2, "No such file or directory", "/home/me/in/Kick 01.wav")
        assert _internal(exc) == (
            "internal error: FileNotFoundError: No such file or directory: 'Kick 01.wav'"
        )
        assert _internal(ValueError("bad value at /tmp/x/y.wav: 3")) == (
            "internal error: ValueError: bad value at y.wav: 3"
        )
        assert _internal(RuntimeError()) == "internal error: RuntimeError"


class TestUnsizedData:
    """A recorder that never patched its header leaves data size 0 before all its audio."""

    def test_the_audio_after_a_zero_data_size_is_recovered_bit_exact(self, run: Run) -> None:
        audio = pcm16(0.5, 48000)
        src = run.inbox / "field.wav"
        src.write_bytes(wav_bytes(audio, rate=48000, data_size=0, riff_size=0))
        outcome = run(src)
        output(outcome)
        assert outcome.output is not None
        got = sf.read(str(outcome.output), dtype="int16")[0]
        assert np.array_equal(got, np.frombuffer(audio, "<i2"))
        assert outcome.render["recovered"] == "data size 0 in the header"
        assert "read the audio to the end of the file" in outcome.render["warning"]

    @pytest.mark.parametrize(
        ("subtype", "bits", "tag"),
        [("PCM_24", 24, 1), ("FLOAT", 32, 3), ("PCM_U8", 8, 1)],
    )
    def test_other_sample_formats_are_recovered_at_their_level(
        self, run: Run, subtype: str, bits: int, tag: int
    ) -> None:
        whole = run.inbox / f"whole_{subtype}.wav"
        sf.write(str(whole), tone(44100, seconds=0.5, channels=2), 44100, subtype=subtype)
        raw = whole.read_bytes()
        body = raw[raw.index(b"data") + 8 :]
        src = run.inbox / f"unsized_{subtype}.wav"
        src.write_bytes(wav_bytes(body, tag=tag, channels=2, bits=bits, data_size=0))
        whole.unlink()
        y, rate = output(run(src))
        assert abs(len(y) / rate - 0.5) < 0.01
        assert abs(level_db(y[:, 0], rate, 1000) - (-6.0)) < 0.3

    def test_an_empty_data_chunk_followed_by_a_chunk_stays_empty(self, run: Run) -> None:
        src = run.inbox / "empty.wav"
        listing = b"LIST" + struct.pack("<I", 4) + b"INFO"
        src.write_bytes(wav_bytes(b"", data_size=0, after=listing))
        assert run(src).reason == "empty: the file holds no audio"


# --- the property: any WAV header at all ends in one of three states, with a clean reason ---

_TAGS = st.sampled_from([1, 3, 6, 7, 2, 0x11, 0x31, 0x55, 0xFFFE]) | st.integers(0, 0xFFFF)
_SIZES = st.sampled_from(["exact", "zero", "max", "half", "double"]) | st.integers(0, 2**32 - 1)


def _size(choice: int | str, actual: int) -> int:
    named = {"exact": actual, "zero": 0, "max": 0xFFFFFFFF, "half": actual // 2}
    return named.get(choice, actual * 2) if isinstance(choice, str) else choice


@st.composite
def wav_files(draw: st.DrawFn) -> tuple[bytes, int, int]:
    tag = draw(_TAGS)
    channels = draw(st.sampled_from([1, 2, 6]) | st.integers(0, 0xFFFF))
    rate = draw(st.sampled_from([8000, 44100, 48000, 1000, 768_000]) | st.integers(0, 2**32 - 1))
    bits = draw(st.sampled_from([8, 16, 24, 32, 64]) | st.integers(0, 0xFFFF))
    consistent = draw(st.booleans())
    align = (channels * bits // 8) % 2**16 if consistent else draw(st.integers(0, 0xFFFF))
    byte_rate = (rate * align) % 2**32 if consistent else draw(st.integers(0, 2**32 - 1))
    extra = b""
    fmt_size = draw(st.sampled_from([16, 18, 40]) | st.integers(0, 64))
    if fmt_size > 16:
        sub = draw(st.sampled_from([1, 3]) | st.integers(0, 0xFFFF))
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        extra = struct.pack("<HHIH", 22, bits, 3, sub) + guid_tail
    audio = pcm16(0.4, 44100)[: draw(st.integers(0, 17_640))]  # real samples, any length
    data = wav_bytes(
        audio,
        tag=tag,
        channels=channels,
        rate=rate,
        bits=bits,
        block_align=align,
        byte_rate=byte_rate,
        fmt_extra=extra,
        fmt_size=fmt_size,
        data_size=_size(draw(_SIZES), len(audio)),
        riff_size=_size(draw(_SIZES), 36 + len(audio)),
    )
    return data, rate, len(audio)


@settings(max_examples=60)
@given(case=wav_files())
def test_any_wav_header_ends_done_rejected_or_failed_with_a_clean_reason(
    tmp_path: Path, case: tuple[bytes, int, int]
) -> None:
    data, rate, audio_bytes = case
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    run = Run(root)
    src = run.inbox / "fuzzed.wav"
    src.write_bytes(data)
    outcome = run(src)
    assert outcome.status in ("done", "rejected", "failed")
    if outcome.status != "done":
        reason = outcome.reason or ""
        assert reason and "\n" not in reason
        assert not reason.startswith("internal error"), reason
        assert str(root) not in reason and "/" not in reason, reason
        assert "errno" not in reason.lower(), reason
        assert outcome.status == "failed" or reason.startswith(REASONS), reason
        return
    y, _ = output(outcome)
    assert outcome.output is not None and json.dumps(outcome.render)
    # At most a few samples a byte (GSM packs five), stretched to 48 kHz; or padded to 100 ms.
    # A compressed stream (MP3 in a WAV) is decoded at its frames' own rate, not the header's.
    tag = int.from_bytes(data[20:22], "little")
    rate = max(rate, 1) if tag in (1, 3, 0xFFFE) else min(max(rate, 1), 8000)
    most = audio_bytes * 8 * 48000 / rate + 4800
    assert 4800 <= len(y) <= most, (len(y), rate, audio_bytes)


def _write_vbr_mp3(av: Any, path: Path, x: np.ndarray, rate: int) -> None:
    """An MP3 without a Xing tag (as stream rips and some cutters leave them), VBR."""
    from av.codec.context import Flags

    with av.open(str(path), "w", format="mp3", options={"write_xing": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.codec_context.flags = int(Flags.qscale)
        stream.codec_context.global_quality = 2 * 118  # lame -V2
        _encode(av, out, stream, x, rate, "fltp", 1152)


def _write_m4a(av: Any, path: Path, x: np.ndarray, rate: int, *, faststart: bool = False) -> None:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        stream = out.add_stream("aac", rate=rate, layout="stereo")
        _encode(av, out, stream, x, rate, "fltp", 1024)


def _encode(av: Any, out: Any, stream: Any, x: np.ndarray, rate: int, fmt: str, n: int) -> None:
    for start in range(0, len(x), n):
        block = np.ascontiguousarray(x[start : start + n].T.astype(np.float32))
        frame = av.AudioFrame.from_ndarray(block, format=fmt, layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
