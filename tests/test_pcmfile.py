"""The PCM writer: the same bytes libsndfile writes, in blocks, for WAV and AIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sp404d.audio.pcmfile import PcmWriter


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(("fmt", "container"), [("wav", "WAV"), ("aiff", "AIFF")])
def test_bytes_match_libsndfile_whatever_the_blocks(
    tmp_path: Path, fmt: str, container: str, channels: int
) -> None:
    rng = np.random.default_rng(7)
    samples = rng.integers(-32768, 32767, size=(4801, channels), dtype=np.int16)
    reference = tmp_path / "ref"
    sf.write(reference, samples, 48000, subtype="PCM_16", format=container)
    ours = tmp_path / "ours"
    ours.touch()
    with PcmWriter(ours, fmt, channels) as out:
        for start in range(0, len(samples), 1000):
            out.write(samples[start : start + 1000])
        out.write(samples[:0])  # an empty block changes nothing
    assert ours.read_bytes() == reference.read_bytes()
    back, rate = sf.read(ours, dtype="int16", always_2d=True)
    assert rate == 48000
    np.testing.assert_array_equal(back, samples)


def test_an_existing_file_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    path.write_bytes(b"x" * 10_000)
    with PcmWriter(path, "wav", 1) as out:
        out.write(np.zeros((10, 1), dtype=np.int16))
    assert path.stat().st_size == 44 + 20
