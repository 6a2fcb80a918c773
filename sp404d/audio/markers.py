"""The markers a sample editor leaves in a file, for ``chop: markers``: a WAV's cue points
(``cue ``) and sampler loop points (``smpl``), an AIFF's markers (``MARK``), as frames of the
file's own rate. A few small reads of chunk headers; a file without markers has none."""

from __future__ import annotations

import struct
from pathlib import Path

MOST_CHUNKS = 64  # chunks looked at before giving up (a damaged size would walk forever)
MOST_MARKERS = 4096


def read_markers(path: Path) -> tuple[int, ...]:
    """The marker positions of a WAV or AIFF, sorted and unique (frames); () for anything
    else, or a file that cannot be read."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                found = _walk(f, "<", {b"cue ": _cue, b"smpl": _smpl})
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                found = _walk(f, ">", {b"MARK": _mark})
            else:
                return ()
    except OSError:
        return ()
    return tuple(sorted({p for p in found if p >= 0}))


def _walk(f: object, order: str, readers: dict[bytes, object]) -> list[int]:
    found: list[int] = []
    pos = 12
    for _ in range(MOST_CHUNKS):
        f.seek(pos)  # type: ignore[attr-defined]
        header = f.read(8)  # type: ignore[attr-defined]
        if len(header) < 8:
            break
        cid = header[:4]
        (size,) = struct.unpack(order + "I", header[4:])
        reader = readers.get(cid)
        if reader is not None:
            body = f.read(min(size, 16 + 24 * MOST_MARKERS))  # type: ignore[attr-defined]
            found += reader(body)  # type: ignore[operator]
        pos += 8 + size + (size & 1)
    return found


def _cue(body: bytes) -> list[int]:
    """WAV cue points: a count, then (id, position, chunk, chunk start, block start, sample
    offset) each; the sample offset is the frame."""
    if len(body) < 4:
        return []
    (count,) = struct.unpack_from("<I", body)
    count = min(count, (len(body) - 4) // 24)
    return [struct.unpack_from("<I", body, 4 + 24 * i + 20)[0] for i in range(count)]


def _smpl(body: bytes) -> list[int]:
    """A sampler's loops: each loop's start and the frame after its end."""
    if len(body) < 36:
        return []
    (count,) = struct.unpack_from("<I", body, 28)
    count = min(count, (len(body) - 36) // 24)
    found = []
    for i in range(count):
        start, end = struct.unpack_from("<II", body, 36 + 24 * i + 8)
        found += [start, end + 1]
    return found


def _mark(body: bytes) -> list[int]:
    """AIFF markers: a count, then (id, position, a Pascal-string name) each."""
    if len(body) < 2:
        return []
    (count,) = struct.unpack_from(">H", body)
    found, at = [], 2
    for _ in range(count):
        if at + 7 > len(body):
            break
        (position,) = struct.unpack_from(">I", body, at + 2)
        found.append(position)
        name_len = body[at + 6]
        at += 6 + 1 + name_len + ((1 + name_len) & 1)  # the name, padded to an even length
    return found
