"""The chunks of a WAV (RIFF) or AIFF (FORM) file, read by their headers: a few small reads,
whatever the file's length. For what sample editors and libraries leave beside the audio
(markers, loop facts), which libsndfile reads only in part."""

from __future__ import annotations

import struct
from pathlib import Path

MOST_CHUNKS = 64  # chunks looked at before giving up (a damaged size would walk forever)
MOST_BYTES = 1 << 17  # of one chunk's body: no marker or loop chunk is near this


def read_chunks(path: Path, wanted: frozenset[bytes]) -> tuple[str, dict[bytes, bytes]]:
    """The container (``"wav"``, ``"aiff"`` or ``""``) and the body of the first chunk of
    each ``wanted`` id it holds (cut to :data:`MOST_BYTES`); nothing for a file that cannot
    be read or is neither."""
    found: dict[bytes, bytes] = {}
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                kind, order = "wav", "<"
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                kind, order = "aiff", ">"
            else:
                return "", found
            pos = 12
            for _ in range(MOST_CHUNKS):
                f.seek(pos)
                header = f.read(8)
                if len(header) < 8:
                    break
                cid = header[:4]
                (size,) = struct.unpack(order + "I", header[4:])
                if cid in wanted and cid not in found:
                    found[cid] = f.read(min(size, MOST_BYTES))
                pos += 8 + size + (size & 1)
    except OSError:
        return "", {}
    return kind, found
