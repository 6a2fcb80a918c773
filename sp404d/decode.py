"""Read an input as float32 blocks of shape (frames, channels), whatever its format.

Blocks keep memory bounded: a 30-minute file is never held whole. soundfile reads everything
libsndfile knows; M4A goes through PyAV (FFmpeg's decoders), an optional extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from sp404d.errors import RejectedError
from sp404d.probe import M4A_HINT, AudioInfo

BLOCK_FRAMES = 1 << 16


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise RejectedError(M4A_HINT) from None
    return av


def probe_m4a(path: Path) -> AudioInfo:
    """Facts about an M4A file, or a rejection that says how to enable M4A."""
    av = _import_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise RejectedError("not an audio file (an MP4 container without audio)")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate)
            channels = int(stream.codec_context.channels)
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = float(container.duration or 0) / 1_000_000
            codec = str(stream.codec_context.name).upper()
    except av.error.FFmpegError as exc:
        raise RejectedError(f"corrupt M4A file: {exc}") from None
    frames = round(seconds * rate)
    if frames <= 0:
        raise RejectedError("empty: the file holds no audio")
    return AudioInfo(format="M4A", subtype=codec, rate=rate, channels=channels, frames=frames)


def _m4a_blocks(path: Path) -> Iterator[np.ndarray]:
    av = _import_av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                data = frame.to_ndarray().astype(np.float32, copy=False)
                # Planar formats come as (channels, frames); packed as (1, frames*channels).
                if frame.format.is_planar:
                    yield np.ascontiguousarray(data.T)
                else:
                    yield data.reshape(-1, len(frame.layout.channels))
    except av.error.FFmpegError as exc:
        raise RejectedError(f"corrupt M4A file: {exc}") from None


def read_blocks(
    path: Path, info: AudioInfo, dtype: str = "float32", frames: int = BLOCK_FRAMES
) -> Iterator[np.ndarray]:
    """Yield the file's samples in blocks of at most ``frames`` (M4A: as decoded)."""
    if info.format == "M4A":
        yield from _m4a_blocks(path)
        return
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            while True:
                block = f.read(frames, dtype=dtype, always_2d=True)
                if not len(block):
                    return
                yield block
    except sf.LibsndfileError as exc:
        raise RejectedError(f"corrupt audio file: {str(exc).split(': ', 1)[-1]}") from None


def read_all(path: Path, info: AudioInfo) -> np.ndarray:
    """The whole file as one float32 array: the fast path for short samples (most drum hits)."""
    if info.format == "M4A":
        blocks = list(_m4a_blocks(path))
        if not blocks:
            return np.zeros((0, info.channels), dtype=np.float32)
        return np.concatenate(blocks)
    try:
        data, _rate = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise RejectedError(f"corrupt audio file: {str(exc).split(': ', 1)[-1]}") from None
    return data  # type: ignore[no-any-return]
