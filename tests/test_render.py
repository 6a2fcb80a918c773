"""Audio quality, measured on generated tones: rate, depth, channels, header, level, dither,
aliasing, overs, and the bit-exact paths."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sp404d.audio import dsp
from sp404d.audio import render as render_mod
from sp404d.audio.probe import probe
from sp404d.audio.render import RenderSpec, render
from sp404d.errors import RejectedError
from tests.conftest import fit_sine, level_db, tone, write_audio


def convert(src: Path, tmp_path: Path, **kw: object) -> tuple[Path, render_mod.RenderResult]:
    dst = tmp_path / ("out.aif" if kw.get("fmt") == "aiff" else "out.wav")
    dst.touch()
    result = render(src, probe(src), dst, RenderSpec(**kw))  # type: ignore[arg-type]
    return dst, result


def chunk_ids(path: Path) -> list[bytes]:
    data = path.read_bytes()
    big = data[:4] == b"FORM"
    ids, pos = [], 12
    while pos + 8 <= len(data):
        ids.append(data[pos : pos + 4])
        (size,) = struct.unpack(">I" if big else "<I", data[pos + 4 : pos + 8])
        pos += 8 + size + (size & 1)
    return ids


RATES = [22050, 44100, 48000, 96000, 192000]
SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]


class TestFormats:
    @pytest.mark.parametrize("rate", RATES, ids=[f"{r // 1000}k" for r in RATES])
    @pytest.mark.parametrize("subtype", SUBTYPES)
    def test_any_rate_and_depth_becomes_48k_16bit_at_the_same_level(
        self, tmp_path: Path, rate: int, subtype: str
    ) -> None:
        """Every rate and sample format in gives 48 kHz / 16-bit PCM out, level kept."""
        src = write_audio(tmp_path / "in.wav", rate, subtype=subtype, seconds=0.3)
        out, _ = convert(src, tmp_path)
        info = sf.info(str(out))
        assert (info.samplerate, info.subtype, info.format) == (48000, "PCM_16", "WAV")
        y, _ = sf.read(str(out))
        tolerance = 0.25 if subtype == "PCM_U8" else 0.02
        assert abs(level_db(y, 48000, 1000) - (-6.0)) < tolerance
        assert abs(len(y) - 0.3 * 48000) <= 2

    @pytest.mark.parametrize(
        ("channels", "expected"),
        [
            pytest.param(1, 1, id="mono"),
            pytest.param(2, 2, id="stereo"),
            pytest.param(6, 2, id="5.1"),
            pytest.param(3, 2, id="3ch"),
            pytest.param(8, 2, id="7.1"),
        ],
    )
    def test_channels(self, tmp_path: Path, channels: int, expected: int) -> None:
        """Mono stays mono, stereo stays stereo, more channels fold down to stereo."""
        src = write_audio(tmp_path / "in.wav", 44100, channels=channels, subtype="PCM_24")
        out, result = convert(src, tmp_path)
        y, _ = sf.read(str(out), always_2d=True)
        assert y.shape[1] == expected == result.channels
        assert np.max(np.abs(y)) <= 1.0

    def test_fold_down_keeps_front_channels_and_never_overs(self, tmp_path: Path) -> None:
        """A full-scale 5.1 file folds to stereo without clipping; L reaches only the left."""
        data = np.zeros((24000, 6))
        data[:, 0] = tone(48000, 1000, -1.0, 0.5)[:, 0]  # left only
        src = tmp_path / "surround.wav"
        sf.write(str(src), data, 48000, subtype="PCM_24")
        out, result = convert(src, tmp_path)
        y, _ = sf.read(str(out))
        assert level_db(y[:, 0], 48000, 1000) > -20
        assert level_db(y[:, 1], 48000, 1000) < -90
        assert result.clipped_samples == 0

    def test_wav_header_is_plain_pcm(self, tmp_path: Path) -> None:
        """WAV out: a plain `fmt ` chunk (format tag 1, not EXTENSIBLE), no LIST/bext chunks."""
        src = write_audio(tmp_path / "in.wav", 96000, channels=2, subtype="PCM_24", format="WAV")
        out, _ = convert(src, tmp_path)
        assert chunk_ids(out) == [b"fmt ", b"data"]
        data = out.read_bytes()
        assert data[20:22] == b"\x01\x00"  # WAVE_FORMAT_PCM
        assert struct.unpack("<H", data[34:36])[0] == 16  # bits per sample

    def test_aiff_output(self, tmp_path: Path) -> None:
        """The aiff format gives a 48 kHz / 16-bit AIFF with only COMM and SSND."""
        src = write_audio(tmp_path / "in.flac", 44100, subtype="PCM_24", format="FLAC")
        out, _ = convert(src, tmp_path, fmt="aiff")
        info = sf.info(str(out))
        assert (info.format, info.samplerate, info.subtype) == ("AIFF", 48000, "PCM_16")
        assert chunk_ids(out) == [b"COMM", b"SSND"]

    @pytest.mark.parametrize(
        ("name", "fmt", "subtype"),
        [
            pytest.param("a.flac", "FLAC", "PCM_16", id="flac"),
            pytest.param("a.ogg", "OGG", "VORBIS", id="ogg"),
            pytest.param("a.mp3", "MP3", "MPEG_LAYER_III", id="mp3"),
            pytest.param("a.aiff", "AIFF", "PCM_24", id="aiff"),
            pytest.param("a.aifc", "AIFF", "FLOAT", id="aifc-float"),
            pytest.param("a.wav", "WAVEX", "PCM_24", id="wav-extensible"),
        ],
    )
    def test_decodes_by_content(self, tmp_path: Path, name: str, fmt: str, subtype: str) -> None:
        """Compressed and other containers decode, even under a misleading name."""
        src = write_audio(tmp_path / name, 44100, subtype=subtype, format=fmt, seconds=0.5)
        misnamed = src.rename(tmp_path / "misnamed.WAV")
        out, _ = convert(misnamed, tmp_path)
        y, rate = sf.read(str(out))
        assert rate == 48000
        assert abs(level_db(y, 48000, 1000) - (-6.0)) < 0.5


class TestExact:
    def test_plain_48k_16bit_wav_is_copied_bit_exact(self, tmp_path: Path) -> None:
        """A file that already is what the unit wants is copied byte for byte."""
        src = write_audio(tmp_path / "in.wav", 48000, channels=2)
        out, result = convert(src, tmp_path)
        assert result.method == "copy"
        assert out.read_bytes() == src.read_bytes()

    def test_48k_16bit_samples_survive_a_container_change(self, tmp_path: Path) -> None:
        """48 kHz/16-bit AIFF to WAV, or WAVE_FORMAT_EXTENSIBLE: samples unchanged, no dither."""
        for fmt in ("AIFF", "WAVEX"):
            src = write_audio(tmp_path / f"in_{fmt}", 48000, format=fmt)
            out, result = convert(src, tmp_path)
            assert result.method == "exact" and not result.dithered
            a, _ = sf.read(str(src), dtype="int16")
            b, _ = sf.read(str(out), dtype="int16")
            assert np.array_equal(a, b)
            assert chunk_ids(out) == [b"fmt ", b"data"]

    def test_output_is_reproducible(self, tmp_path: Path) -> None:
        """Same input and seed, same bytes: how a re-run recognises its own earlier output."""
        src = write_audio(tmp_path / "in.wav", 44100, subtype="PCM_24")
        a, _ = convert(src, tmp_path, seed=7)
        first = a.read_bytes()
        b, _ = convert(src, tmp_path, seed=7)
        assert b.read_bytes() == first


class TestQuality:
    def test_dither_leaves_no_harmonic_distortion_on_a_quiet_tone(self, tmp_path: Path) -> None:
        """A -90 dBFS tone keeps its 3rd harmonic far down (undithered rounding: ~-111 dBFS)."""
        src = write_audio(tmp_path / "in.wav", 44100, dbfs=-90.0, seconds=2.0, subtype="PCM_24")
        out, result = convert(src, tmp_path)
        assert result.dithered
        y, _ = sf.read(str(out))
        assert level_db(y, 48000, 3000) < -125
        assert abs(level_db(y, 48000, 1000) - (-90.0)) < 1.0

    def test_dither_noise_is_tpdf_sized(self, tmp_path: Path) -> None:
        """Digital silence at 24-bit plus tiny noise comes out with about 1 LSB rms of dither."""
        rng = np.random.default_rng(0)
        src = tmp_path / "quiet.wav"
        sf.write(str(src), rng.normal(0, 1e-7, (96000, 1)), 44100, subtype="PCM_24")
        out, _ = convert(src, tmp_path)
        y, _ = sf.read(str(out), dtype="int16")
        rms_lsb = float(np.sqrt(np.mean(y.astype(float) ** 2)))
        assert 0.3 < rms_lsb < 0.7  # TPDF on a non-zero signal: about 0.41-0.58 LSB rms

    def test_snr_of_a_loud_tone_is_that_of_dithered_16bit(self, tmp_path: Path) -> None:
        """1 kHz at -1 dBFS, 44.1k/24 -> 48k/16: SNR near the 92 dB limit of dithered 16-bit."""
        src = write_audio(tmp_path / "in.wav", 44100, dbfs=-1.0, seconds=2.0, subtype="PCM_24")
        out, _ = convert(src, tmp_path)
        y, _ = sf.read(str(out))
        amp, resid = fit_sine(y, 48000, 1000)
        assert 20 * np.log10((amp / np.sqrt(2)) / resid) > 90

    def test_no_aliasing_from_96k(self, tmp_path: Path) -> None:
        """A 30 kHz tone at 96 kHz must vanish, not fold back to 18 kHz."""
        src = write_audio(tmp_path / "in.wav", 96000, freq=30000, seconds=1.0, subtype="PCM_24")
        out, _ = convert(src, tmp_path)
        y, _ = sf.read(str(out))
        assert level_db(y, 48000, 18000) < -110

    def test_passband_is_flat_at_19k(self, tmp_path: Path) -> None:
        """A 19 kHz tone keeps its level through 44.1 -> 48 kHz."""
        src = write_audio(tmp_path / "in.wav", 44100, freq=19000, seconds=1.0, subtype="PCM_24")
        out, _ = convert(src, tmp_path)
        y, _ = sf.read(str(out))
        assert abs(level_db(y, 48000, 19000) - (-6.0)) < 0.05


class TestOvers:
    def _hot(self, tmp_path: Path) -> Path:
        """A full-scale square-ish wave: resampling makes inter-sample peaks past 0 dBFS."""
        t = np.arange(44100) / 44100
        x = np.clip(3 * np.sin(2 * np.pi * 1000 * t), -1, 1) * 0.9999
        src = tmp_path / "hot.wav"
        sf.write(str(src), x, 44100, subtype="FLOAT")
        return src

    def test_limit_turns_down_just_enough_and_records_it(self, tmp_path: Path) -> None:
        """The default policy: no sample clips, and the gain applied is in the result."""
        out, result = convert(self._hot(tmp_path), tmp_path)
        assert -3.0 < result.gain_db < 0.0
        assert result.clipped_samples == 0
        y = sf.read(str(out), dtype="int16")[0].astype(int)
        assert y.min() > -32768  # nothing pinned to the rail
        assert np.max(np.abs(y)) >= 32700  # turned down just enough: the peak still near 0 dBFS

    def test_clip_policy_counts_clipped_samples(self, tmp_path: Path) -> None:
        """overs: clip keeps the level and says how many samples were clipped."""
        _, result = convert(self._hot(tmp_path), tmp_path, overs="clip")
        assert result.gain_db == 0.0
        assert result.clipped_samples > 0

    def test_streamed_and_whole_paths_agree(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Long files stream in blocks (two passes when limiting); the result matches."""
        src = self._hot(tmp_path)
        whole, r1 = convert(src, tmp_path)
        a, _ = sf.read(str(whole))
        monkeypatch.setattr(render_mod, "IN_MEMORY_FRAMES", 1000)
        streamed, r2 = convert(src, tmp_path)
        b, _ = sf.read(str(streamed))
        assert abs(len(a) - len(b)) <= 1
        assert abs(r1.gain_db - r2.gain_db) < 0.01
        n = min(len(a), len(b))
        assert np.max(np.abs(a[:n] - b[:n])) < 1e-3


class TestHugeFloats:
    """Finite float samples near float32's limit (3e38): soxr overflowed on them and the file
    came out as zeros with a numpy warning. They are an over like any other."""

    def _huge(self, tmp_path: Path, seconds: float = 0.5) -> Path:
        src = tmp_path / "huge.wav"
        sf.write(
            str(src),
            (tone(44100, 1000, 0.0, seconds) * 3e38).astype(np.float32),
            44100,
            subtype="FLOAT",
        )
        return src

    @pytest.mark.filterwarnings("error")
    @pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
    def test_limit_turns_it_down_to_the_limiter_level_with_its_shape(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
    ) -> None:
        if streamed:
            monkeypatch.setattr(render_mod, "IN_MEMORY_FRAMES", 1000)
        out, result = convert(self._huge(tmp_path), tmp_path)
        y, _ = sf.read(str(out))
        limit_db = 20 * np.log10(dsp.LIMIT_PEAK)
        assert limit_db - 0.1 < level_db(y, 48000, 1000) <= limit_db + 0.01
        amp, resid = fit_sine(y, 48000, 1000)
        assert 20 * np.log10((amp / np.sqrt(2)) / resid) > 85  # a sine, dither its only noise
        assert result.gain_db < -700 and result.clipped_samples == 0
        assert result.peak_dbfs is not None and -0.1 < result.peak_dbfs <= 0

    @pytest.mark.filterwarnings("error")
    @pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
    def test_clip_pins_it_to_the_rail_and_counts(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
    ) -> None:
        if streamed:
            monkeypatch.setattr(render_mod, "IN_MEMORY_FRAMES", 1000)
        out, result = convert(self._huge(tmp_path), tmp_path, overs="clip")
        y = sf.read(str(out), dtype="int16")[0].astype(int)
        assert result.gain_db == 0.0 and result.clipped_samples > len(y) // 2
        assert y.max() == 32767 and y.min() == -32768

    def test_an_ordinary_over_is_untouched_by_the_guard(self, tmp_path: Path) -> None:
        """Peaks up to +96 dB over full scale are limited as before, bit for bit."""
        src = tmp_path / "loud.wav"
        sf.write(str(src), tone(44100, 1000, 40.0), 44100, subtype="FLOAT")
        out, result = convert(src, tmp_path)
        y, _ = sf.read(str(out))
        assert -40.5 < result.gain_db < -39.5
        assert abs(level_db(y, 48000, 1000) - 20 * np.log10(dsp.LIMIT_PEAK)) < 0.1


class TestBroken:
    def test_nan_samples_are_rejected(self, tmp_path: Path) -> None:
        """A float file holding NaN is refused with a reason, not converted to noise."""
        x = tone(44100)
        x[100] = np.nan
        src = tmp_path / "nan.wav"
        sf.write(str(src), x, 44100, subtype="FLOAT")
        with pytest.raises(RejectedError, match="NaN or infinite"):
            convert(src, tmp_path)


class TestDitherNoise:
    def test_tpdf_noise_is_triangular_of_plus_minus_one_lsb(self) -> None:
        noise = dsp.tpdf_noise(np.random.default_rng(5), (500_000, 2)).ravel()
        assert noise.dtype == np.float32 and noise.min() > -1 and noise.max() < 1
        assert abs(float(noise.mean())) < 0.003
        assert abs(float(noise.var()) - 1 / 6) < 0.002  # TPDF of +-1 LSB: variance 1/6
        assert abs(float(np.mean(np.abs(noise) < 0.5)) - 0.75) < 0.003  # triangle, not flat
        left, right = noise[0::2], noise[1::2]
        assert abs(float(np.corrcoef(left, right)[0, 1])) < 0.01  # channels independent

    def test_a_known_peak_with_room_skips_work_not_accuracy(self) -> None:
        """The limiter's known peak spares the clip passes; the samples come out the same."""
        for loudest in (0.9, 1.3):  # fits as it is; needs the limiter's turn-down
            x = np.random.default_rng(1).uniform(-loudest, loudest, (48000, 2)).astype(np.float32)
            top = dsp.peak(x)
            gain = dsp.limit_gain(top)
            plain, overs = dsp.quantise(x, np.random.default_rng(9), gain)
            hinted, overs_hinted = dsp.quantise(x, np.random.default_rng(9), gain, top)
            np.testing.assert_array_equal(plain, hinted)
            assert overs == overs_hinted == 0
