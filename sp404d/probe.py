"""What an input file is, read from its content (never its extension), and whether it is whole.

libsndfile recognises WAV, AIFF, FLAC, OGG and MP3 by their bytes. M4A (AAC/ALAC in an MP4
container) is recognised by its ``ftyp`` box and decoded through the optional PyAV extra.
A WAV or AIFF whose header promises more audio than the file holds is a file still being copied
or a broken download: libsndfile quietly plays what is there, so the chunk sizes are checked here.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from sp404d.errors import RejectedError

M4A_HINT = "M4A/AAC/ALAC needs the optional decoder: pip install 'sp404d[m4a]'"


@dataclass(frozen=True)
class AudioInfo:
    """The facts about an input that decide how it is converted and recorded."""

    format: str  # WAV, AIFF, FLAC, OGG, MP3, M4A, ...
    subtype: str  # PCM_16, PCM_24, FLOAT, VORBIS, ...
    rate: int
    channels: int
    frames: int
    plain: bool = False  # only the chunks the SP-404MK2 surely takes (fmt/data, COMM/SSND)

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


def _head(path: Path, size: int = 64) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def is_m4a(head: bytes) -> bool:
    return len(head) >= 12 and head[4:8] == b"ftyp"


def _chunks(data: bytes, start: int, big_endian: bool) -> list[tuple[bytes, int, int]]:
    """(id, offset of the body, declared size) for each chunk header found in ``data``."""
    out = []
    fmt = ">I" if big_endian else "<I"
    pos = start
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        (size,) = struct.unpack(fmt, data[pos + 4 : pos + 8])
        out.append((cid, pos + 8, size))
        pos += 8 + size + (size & 1)
    return out


def _container_check(path: Path, file_size: int) -> tuple[bool, float | None]:
    """(plain, fraction of the promised audio present) for WAV/AIFF; (False, None) otherwise.

    Reads only chunk headers: a few small reads, whatever the file's size.
    """
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12:
            return False, None
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            big, data_id, allowed = False, b"data", {b"fmt ", b"data"}
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            big, data_id, allowed = True, b"SSND", {b"COMM", b"SSND"}
        else:
            return False, None
        fmt = ">I" if big else "<I"
        pos, present = 12, None
        ids: list[bytes] = []
        while pos + 8 <= file_size and len(ids) < 64:
            f.seek(pos)
            header = f.read(8)
            if len(header) < 8:
                break
            cid = header[:4]
            (size,) = struct.unpack(fmt, header[4:])
            ids.append(cid)
            if cid == data_id:
                # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back.
                if size in (0, 0xFFFFFFFF):
                    break
                present = min(1.0, (file_size - pos - 8) / size)
            # Go on past the audio: DAWs often append LIST/bext/iXML chunks after it.
            pos += 8 + size + (size & 1)
        plain = set(ids) <= allowed and data_id in ids
        if head[:4] == b"RIFF" and plain:
            plain = _plain_pcm_fmt(path, big)
        return plain, present


def _plain_pcm_fmt(path: Path, big: bool) -> bool:
    """True when the WAV's ``fmt `` chunk is plain PCM (tag 1), not WAVE_FORMAT_EXTENSIBLE."""
    with path.open("rb") as f:
        data = f.read(64)
    for cid, body, _size in _chunks(data, 12, big):
        if cid == b"fmt ":
            return data[body : body + 2] == b"\x01\x00"
    return False


def probe(path: Path) -> AudioInfo:
    """Identify ``path`` by content. Raises :class:`RejectedError` with a musician's reason."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RejectedError(f"cannot read the file: {exc.strerror or exc}") from None
    if size == 0:
        raise RejectedError("empty: the file has 0 bytes")
    head = _head(path)
    if is_m4a(head):
        from sp404d.decode import probe_m4a

        return probe_m4a(path)
    try:
        # Bytes, not str: names from old zips are not always valid UTF-8 (libsndfile takes bytes).
        info = sf.info(os.fsencode(path))
    except sf.LibsndfileError as exc:
        detail = str(exc).split(": ", 1)[-1].rstrip(".")
        if "not recognised" in detail.lower() or "unknown format" in detail.lower():
            raise RejectedError("not an audio file (the format is not recognised)") from None
        raise RejectedError(f"corrupt audio file: {detail}") from None
    except (RuntimeError, OSError) as exc:
        raise RejectedError(f"corrupt audio file: {exc}") from None
    plain, present = _container_check(path, size)
    if present is not None and present < 1.0:
        promised = info.frames / present / info.samplerate if present > 0 else 0.0
        raise RejectedError(
            f"truncated: the header promises {promised:.2f} s, the file holds "
            f"{info.duration:.2f} s (still copying, or a broken download?)"
        )
    if info.samplerate <= 0 or info.channels <= 0:
        raise RejectedError("corrupt audio file: no sample rate or channels in the header")
    if info.frames <= 0:
        raise RejectedError("empty: the file holds no audio")
    return AudioInfo(
        format=info.format,
        subtype=info.subtype,
        rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        plain=plain,
    )
