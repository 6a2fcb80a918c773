"""What an input file is, read from its content (never its extension), and whether it is whole.

libsndfile recognises WAV, AIFF, FLAC, OGG and MP3 by their bytes. M4A (AAC/ALAC in an MP4
container) is recognised by its ``ftyp`` box and decoded through the optional PyAV extra.

Headers are not taken on trust. A WAV or AIFF whose header promises more audio than the file
holds, or an OGG whose last page is missing, is a file still being copied or a broken download:
libsndfile quietly plays what is there, so the chunk sizes and pages are checked here (whether
such a file is refused is the ``truncated`` setting's call, in the job). A sample rate no
recording has, a WAV whose data size was never written, and libsndfile's own error texts each
get a reason a musician can act on.

Those reasons, PyAV's and libsndfile's alike, are written here once; :mod:`sp404d.audio.decode`
uses them for errors met while decoding, so it imports this module and never the other way.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- WAV and AIFF containers, read chunk by chunk -------------------------------------------

# WAV format tag and bits -> the libsndfile subtype that reads such samples as RAW.
_RAW_SUBTYPES = {
    (1, 8): "PCM_U8",
    (1, 16): "PCM_16",
    (1, 24): "PCM_24",
    (1, 32): "PCM_32",
    (3, 32): "FLOAT",
    (3, 64): "DOUBLE",
    (6, 8): "ALAW",
    (7, 8): "ULAW",
}
_EXTENSIBLE = 0xFFFE


@dataclass
class _Container:
    """What the chunk headers of a WAV or AIFF file say (each None when absent)."""

    kind: str  # WAV | AIFF
    ids: list[bytes]
    tag: int | None = None  # WAV format tag (the sub-format's, for EXTENSIBLE)
    channels: int | None = None
    rate: int | None = None
    bits: int | None = None
    block_align: int | None = None
    data_body: int | None = None  # offset of the audio bytes
    data_size: int | None = None  # as declared
    present: float | None = None  # fraction of the declared audio the file holds
    extensible: bool = False  # WAVE_FORMAT_EXTENSIBLE

    @property
    def plain(self) -> bool:
        allowed = {b"fmt ", b"data"} if self.kind == "WAV" else {b"COMM", b"SSND"}
        data_id = b"data" if self.kind == "WAV" else b"SSND"
        plain = set(self.ids) <= allowed and data_id in self.ids
        return plain and (self.kind == "AIFF" or (self.tag == 1 and not self.extensible))


def _aiff_rate(ext: bytes) -> int:
    """An AIFF COMM chunk's 80-bit IEEE extended sample rate, as a whole number (0 if absurd)."""
    exponent = struct.unpack(">H", ext[:2])[0] & 0x7FFF
    (mantissa,) = struct.unpack(">Q", ext[2:10])
    if mantissa == 0 or exponent == 0:
        return 0
    shift = exponent - 16383 - 63
    if shift > 40:  # far beyond any rate; keep the number printable
        return 2**40
    value = mantissa * 2.0**shift
    return int(value) if math.isfinite(value) else 0


def _container(path: Path, file_size: int) -> _Container | None:
    """The chunk facts of a WAV or AIFF; None for anything else.

    Reads only chunk headers and the format chunk: a few small reads, whatever the file's size.
    """
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12:
            return None
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            box, big, data_id = _Container("WAV", []), False, b"data"
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            box, big, data_id = _Container("AIFF", []), True, b"SSND"
        else:
            return None
        fmt = ">I" if big else "<I"
        pos = 12
        while pos + 8 <= file_size and len(box.ids) < 64:
            f.seek(pos)
            header = f.read(8)
            if len(header) < 8:
                break
            cid = header[:4]
            (size,) = struct.unpack(fmt, header[4:])
            box.ids.append(cid)
            if cid == b"fmt " and box.tag is None:
                _read_fmt(box, f.read(min(size, 40)))
            elif cid == b"COMM" and box.rate is None:
                _read_comm(box, f.read(min(size, 18)))
            elif cid == data_id and box.data_body is None:
                box.data_body, box.data_size = pos + 8, size
                # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back.
                if size in (0, 0xFFFFFFFF):
                    break
                box.present = min(1.0, (file_size - pos - 8) / size)
            # Go on past the audio: DAWs often append LIST/bext/iXML chunks after it.
            pos += 8 + size + (size & 1)
        return box


def _read_fmt(box: _Container, body: bytes) -> None:
    if len(body) < 16:
        return
    tag, box.channels, box.rate, _byte_rate, box.block_align, box.bits = struct.unpack(
        "<HHIIHH", body[:16]
    )
    if tag == _EXTENSIBLE:
        box.extensible = True
        if len(body) >= 26:
            (tag,) = struct.unpack("<H", body[24:26])  # the sub-format GUID's first two bytes
    box.tag = tag


def _read_comm(box: _Container, body: bytes) -> None:
    if len(body) < 18:
        return
    box.channels, _frames, box.bits = struct.unpack(">hIh", body[:8])
    box.rate = _aiff_rate(body[8:18])


def _looks_like_chunk(data: bytes) -> bool:
    """Four printable ASCII bytes: a chunk header (LIST, bext...), not the first audio bytes."""
    return len(data) == 4 and all(32 <= b < 127 for b in data)


def _recover_unsized(path: Path, box: _Container, file_size: int) -> AudioInfo | None:
    """A WAV whose data size says 0 with audio after it (a recorder that never patched its
    header): read the bytes to the end of the file as the ``fmt `` chunk describes them, as sox
    and most DAWs do. None when there is nothing there to recover (a really empty file)."""
    body = box.data_body or 0
    after = file_size - body
    if after <= 0:
        return None
    with path.open("rb") as f:
        f.seek(body)
        if _looks_like_chunk(f.read(4)):
            return None  # another chunk follows: the data chunk really is empty
    bits, channels, align = box.bits or 0, box.channels or 0, box.block_align or 0
    subtype = _RAW_SUBTYPES.get((box.tag or 0, bits))
    if subtype is None or not 1 <= channels <= 64 or align != channels * bits // 8:
        raise RejectedError(
            "broken header: the data size is 0 and the format chunk is not plain PCM or "
            "float, so the audio after it cannot be recovered (re-export the file)"
        )
    if after < align:
        return None  # not one whole frame: as empty as it looks
    return AudioInfo(
        format="WAV",
        subtype=subtype,
        rate=box.rate or 0,
        channels=channels,
        frames=after // align,
        raw_offset=body,
    )


# --- OGG and MP3: is the length known, is the stream whole ----------------------------------


def _ogg_complete(path: Path, file_size: int) -> bool:
    """False when an OGG stream ends without its last page (end-of-stream flag) or mid-page.

    Walks the page headers (a few hundred bytes each, one per ~4 KB of audio).
    """
    last_flags = None
    pos = 0
    with path.open("rb") as f:
        while pos < file_size:
            f.seek(pos)
            header = f.read(27)
            if len(header) < 27 or header[:4] != b"OggS":
                break  # anything after the last page is not ours to judge
            lacing = f.read(header[26])
            end = pos + 27 + len(lacing) + sum(lacing)
            if len(lacing) < header[26] or end > file_size:
                return False  # the file stops inside a page
            last_flags, pos = header[5], end
    return last_flags is None or bool(last_flags & 0x04)


def id3v2_size(head: bytes) -> int:
    """Bytes of the ID3v2 tag (cover art and all) at the start of an MP3, given its first 10."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    s = head[6:10]  # a "syncsafe" size: 7 bits a byte; a footer adds 10 bytes
    return 10 + (s[0] << 21 | s[1] << 14 | s[2] << 7 | s[3]) + (10 if head[5] & 0x10 else 0)


def _mp3_length_known(path: Path) -> bool:
    """True when the first MPEG frame carries a Xing/Info or VBRI tag: the encoder's count of
    frames. Without one, libsndfile's length is a guess from the file size and first bitrate
    (off by a factor of several for VBR), and it stops decoding at its guess."""
    with path.open("rb") as f:
        f.seek(id3v2_size(f.read(10)))
        data = f.read(1 << 16)
    i = data.find(b"\xff")
    while 0 <= i < len(data) - 40:
        if data[i + 1] & 0xE0 != 0xE0:
            i = data.find(b"\xff", i + 1)
            continue
        version, layer = (data[i + 1] >> 3) & 3, (data[i + 1] >> 1) & 3
        if version == 1 or layer == 0 or (data[i + 2] >> 4) in (0, 15):
            i = data.find(b"\xff", i + 1)
            continue  # reserved values: not a frame header
        mono = (data[i + 3] >> 6) == 3
        side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
        tag = data[i + 4 + side : i + 8 + side]
        return tag in (b"Xing", b"Info") or data[i + 36 : i + 40] == b"VBRI"
    return False


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


# --- M4A, through PyAV (FFmpeg's decoders) ---------------------------------------------------


def import_av() -> Any:
    """PyAV, the optional extra that decodes M4A; without it, a rejection saying how to add it."""
    try:
        import av
    except ImportError:
        raise RejectedError(M4A_HINT) from None
    return av


def _mp4_cut(path: Path) -> bool:
    """True when a top-level MP4 box (``mdat``, ``moov``...) runs past the end of the file."""
    size = path.stat().st_size
    pos = 0
    with path.open("rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            (length,) = struct.unpack(">I", header[:4])
            if not all(32 <= b < 127 for b in header[4:8]):
                return False  # not a box: junk, not a cut
            if length == 1 and len(header) == 16:
                (length,) = struct.unpack(">Q", header[8:16])
            elif length == 0:
                return False  # "to the end of the file"
            if length < 8:
                return False
            pos += length
    return pos > size


def m4a_reason(av: Any, exc: Exception, path: Path) -> str:
    """FFmpeg's errors carry an errno and the file's full path: say what happened instead."""
    if isinstance(exc, av.error.EOFError) or _mp4_cut(path):
        return f"truncated: the M4A file ends before its audio does ({STILL_COPYING})"
    if isinstance(exc, av.error.InvalidDataError):
        return "corrupt M4A file: its data cannot be decoded (broken file?)"
    return "corrupt M4A file: it cannot be decoded (broken file?)"


def _probe_m4a(path: Path) -> AudioInfo:
    """Facts about an M4A file, or a rejection that says how to enable M4A."""
    av = import_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise RejectedError("not an audio file (an MP4 container without audio)")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            channels = int(stream.codec_context.channels)
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = float(container.duration or 0) / 1_000_000
            codec = str(stream.codec_context.name).upper()
    except av.error.FFmpegError as exc:
        raise RejectedError(m4a_reason(av, exc, path)) from None
    check_rate(rate)
    if channels <= 0:
        raise RejectedError(NO_CHANNELS)
    frames = round(seconds * rate)
    if frames <= 0:
        raise RejectedError("empty: the file holds no audio")
    return AudioInfo(format="M4A", subtype=codec, rate=rate, channels=channels, frames=frames)


def probe(path: Path) -> AudioInfo:
    """Identify ``path`` by content. Raises :class:`RejectedError` with a musician's reason."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RejectedError(f"cannot read the file: {exc.strerror or 'read error'}") from None
    if size == 0:
        raise RejectedError("empty: the file has 0 bytes")
    head = _head(path)
    if is_m4a(head):
        return _probe_m4a(path)
    box = _container(path, size)
    if box is not None:
        # Before libsndfile: its complaint about a rate of 0 is "SF_INFO struct incomplete".
        if box.rate is not None:
            check_rate(box.rate)
        if box.channels is not None and box.channels <= 0:
            raise RejectedError(NO_CHANNELS)
        if box.kind == "WAV" and box.data_size == 0:
            recovered = _recover_unsized(path, box, size)
            if recovered is not None:
                return recovered
    try:
        # Bytes, not str: names from old zips are not always valid UTF-8 (libsndfile takes bytes).
        info = sf.info(os.fsencode(path))
    except sf.LibsndfileError as exc:
        if box is not None and box.tag is not None and box.tag not in _SNDFILE_WAV_TAGS:
            raise RejectedError(f"{_UNSUPPORTED} (WAV format tag 0x{box.tag:04X})") from None
        raise RejectedError(sndfile_reason(exc)) from None
    except (RuntimeError, OSError):
        raise RejectedError(DAMAGED_HEADER) from None
    if info.channels <= 0:
        raise RejectedError(NO_CHANNELS)
    check_rate(int(info.samplerate))
    frames = int(info.frames)
    truncated, promised = False, None
    if box is not None and box.present is not None and box.present < 1.0:
        truncated = True
        promised = round(frames / box.present) if box.present > 0 else None
        if promised is None or promised <= frames:
            promised = frames + 1  # a few bytes short of one frame: still short of the promise
    elif info.format == "OGG" and not _ogg_complete(path, size):
        truncated = True
    if frames <= 0:
        if truncated:
            rate = info.samplerate
            raise RejectedError(truncated_reason(0.0, promised / rate if promised else None))
        raise RejectedError("empty: the file holds no audio")
    return AudioInfo(
        format=info.format,
        subtype=info.subtype,
        rate=int(info.samplerate),
        channels=int(info.channels),
        frames=frames,
        plain=box is not None and box.plain,
        truncated=truncated,
        promised_frames=promised,
        exact_length=info.format != "MP3" or _mp3_length_known(path),
    )
