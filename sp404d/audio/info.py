"""What a probe learns about an input (:class:`AudioInfo`), and the reasons it gives, in a
musician's words: written here once, for the probe and the decoder alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from sp404d.errors import RejectedError

M4A_HINT = "M4A/AAC/ALAC needs the optional decoder: pip install 'sp404d[m4a]'"
# Real recordings run from 8 kHz telephone audio to 768 kHz DXD-and-beyond; a header outside
# a generous margin around that is a damaged file, not a sample (1 Hz would make 200 frames
# into 200 seconds).
MIN_RATE = 1_000
MAX_RATE = 768_000
STILL_COPYING = "still copying, or a broken download?"


@dataclass(frozen=True)
class AudioInfo:
    """The facts about an input that decide how it is converted and recorded."""

    format: str  # WAV, AIFF, FLAC, OGG, MP3, M4A, ...
    subtype: str  # PCM_16, PCM_24, FLOAT, VORBIS, ...
    rate: int
    channels: int
    frames: int  # what the file holds, as far as its header says (see exact_length)
    plain: bool = False  # only the chunks the SP-404MK2 surely takes (fmt/data, COMM/SSND)
    truncated: bool = False  # the file ends before the audio its container promises
    promised_frames: int | None = None  # what a truncated file's header promised, if it says
    exact_length: bool = True  # False: ``frames`` is an estimate (an MP3 without a Xing tag)
    raw_offset: int | None = None  # a WAV whose data size was never written: audio from here

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "subtype": self.subtype,
            "rate": self.rate,
            "channels": self.channels,
            "frames": self.frames,
            "duration_s": round(self.duration, 6),
        }


def shown(value: float, limit: float, *, digits: int = 0) -> str:
    """``value`` with the fewest decimals (at least ``digits``) that keep it on its own side of
    ``limit``: 99.98 against 100 is "99.98", never a self-contradicting "100"."""
    for d in range(digits, 7):
        text = f"{value:.{d}f}"
        if (float(text) < limit) == (value < limit) and float(text) != limit:
            return text
    return repr(value)


def truncated_reason(held_s: float, promised_s: float | None) -> str:
    """One line for a file that ends before its audio does."""
    if promised_s is None:
        if held_s <= 0:
            return f"truncated: the file ends before any audio ({STILL_COPYING})"
        return f"truncated: the file holds {held_s:.2f} s and ends mid-stream ({STILL_COPYING})"
    promised = f"{promised_s:.2f}"
    if held_s <= 0:
        return f"truncated: the header promises {promised} s, the file holds no audio"
    held = shown(held_s, float(promised), digits=2)
    return f"truncated: the header promises {promised} s, the file holds {held} s ({STILL_COPYING})"


def corrupt(detail: str) -> str:
    """The reason for a file whose bytes are not the audio they claim to be: worded once, the
    same whichever check or library found the damage."""
    return f"corrupt audio file: {detail}"


NO_CHANNELS = corrupt("the header says it has no channels")
DAMAGED_HEADER = corrupt("the header is damaged (broken file?)")


def _head(path: Path, size: int = 64) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def is_m4a(head: bytes) -> bool:
    return len(head) >= 12 and head[4:8] == b"ftyp"


def check_rate(rate: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise RejectedError(
            f"sample rate {rate} Hz in the header: not a real recording (broken file?)"
        )


# --- libsndfile's errors, in words -----------------------------------------------------------

_UNSUPPORTED = "unsupported audio encoding: re-export it as PCM WAV, AIFF, FLAC or MP3"
# The WAV format tags libsndfile decodes (PCM, float, A-law, mu-law, the ADPCMs, GSM, MPEG).
_SNDFILE_WAV_TAGS = frozenset({0x01, 0x02, 0x03, 0x06, 0x07, 0x11, 0x14, 0x31, 0x40, 0x50, 0x55})
_SNDFILE_REASONS = {
    1: "not an audio file (the format is not recognised)",
    2: "cannot read the file",
    4: _UNSUPPORTED,
    18: _UNSUPPORTED,
    32: NO_CHANNELS,
    33: corrupt("the header claims more channels than any recording has"),
    71: corrupt("the audio data chunk is missing"),
}


def sndfile_reason(exc: sf.LibsndfileError, *, reading: bool = False) -> str:
    """A musician's reason for a libsndfile error (its own texts are for programmers)."""
    text = exc.error_string.lower()
    if "not recognised" in text or "unknown format" in text:
        return _SNDFILE_REASONS[1]
    if exc.code in _SNDFILE_REASONS:
        return _SNDFILE_REASONS[exc.code]
    if reading:
        return corrupt("the audio breaks off where the decoder cannot read it")
    return DAMAGED_HEADER
