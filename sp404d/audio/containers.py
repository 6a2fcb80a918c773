"""Checking a file's own bytes where libsndfile takes a header on trust: WAV and AIFF chunk
sizes against the file's size, a WAV whose data size was never written, an OGG's last page,
an MP3's length tag."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

from sp404d.audio.info import AudioInfo
from sp404d.errors import RejectedError

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
