"""M4A (AAC or ALAC in an MP4 container), probed and named through the optional PyAV extra."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from sp404d.audio.info import M4A_HINT, NO_CHANNELS, STILL_COPYING, AudioInfo, check_rate
from sp404d.errors import RejectedError

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
        with av.open(str(path), metadata_errors="replace") as container:  # a UTF-16 tag
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
