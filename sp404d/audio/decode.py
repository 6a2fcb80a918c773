"""Read an input as float32 blocks of shape (frames, channels), whatever its format.

Blocks keep memory bounded: a 30-minute file is never held whole. soundfile reads everything
libsndfile knows; M4A goes through PyAV (FFmpeg's decoders), an optional extra.

Two inputs need a way round libsndfile. A WAV whose data size was never written (see
:mod:`sp404d.audio.probe`) is read as RAW samples from its data offset to the end of the file.
An MP3 without a Xing tag has only a guessed length, and libsndfile stops at its guess, which
for VBR can be a fifth of the file: such an MP3 is fed to libsndfile through a pipe, where it
knows no length and decodes to the end.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf

from sp404d.audio.probe import AudioInfo, id3v2_size, import_av, m4a_reason, sndfile_reason
from sp404d.errors import RejectedError

BLOCK_FRAMES = 1 << 16
# After a decode error, the rest up to it is read again in steps this small, so all but a
# sliver of a cut file's audio is kept (soundfile drops the whole block a read fails in).
RESCUE_FRAMES = 1024


def _m4a_blocks(path: Path) -> Iterator[np.ndarray]:
    """Decoded frames; a decode error after some audio ends the stream there (a cut file: the
    caller compares what came with the header's length)."""
    av = import_av()
    decoded = 0
    try:
        with av.open(str(path), metadata_errors="replace") as container:  # a UTF-16 tag
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                data = frame.to_ndarray().astype(np.float32, copy=False)
                # Planar formats come as (channels, frames); packed as (1, frames*channels).
                if frame.format.is_planar:
                    block = np.ascontiguousarray(data.T)
                else:
                    block = data.reshape(-1, len(frame.layout.channels))
                decoded += len(block)
                yield block
    except av.error.FFmpegError as exc:
        if not decoded:
            raise RejectedError(m4a_reason(av, exc, path)) from None


class _Window(io.RawIOBase):
    """The bytes of ``f`` from ``start`` to its end, as a file of their own (for RAW reads)."""

    def __init__(self, f: IO[bytes], start: int) -> None:
        super().__init__()
        self._f, self._start = f, start
        self._end = f.seek(0, os.SEEK_END)
        f.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._f.tell() - self._start

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: self._start, os.SEEK_CUR: self._f.tell(), os.SEEK_END: self._end}
        return self._f.seek(max(self._start, base[whence] + offset)) - self._start

    def readinto(self, buffer: Any) -> int:
        return self._f.readinto(buffer)  # type: ignore[attr-defined,no-any-return]


@contextlib.contextmanager
def _piped(path: Path) -> Iterator[int]:
    """A pipe's read end carrying the file's bytes, fed by a thread (closed and joined after).

    An ID3v2 tag is left out: through a pipe libsndfile cannot skip a big one (cover art).
    """
    src = path.open("rb")
    src.seek(id3v2_size(src.read(10)))
    r, w = os.pipe()

    def feed() -> None:
        try:
            while chunk := src.read(1 << 16):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(w, view) :]
        except OSError:
            pass  # the reader stopped early and closed its end (EPIPE)
        finally:
            os.close(w)
            src.close()

    feeder = threading.Thread(target=feed, name="sp404d-decode-feed", daemon=True)
    feeder.start()
    try:
        yield r
    finally:
        os.close(r)  # a writer blocked on a full pipe now fails and ends
        feeder.join()


@contextlib.contextmanager
def _sndfile(path: Path, info: AudioInfo) -> Iterator[sf.SoundFile]:
    """The input opened in libsndfile the way its probe said it must be read."""
    if info.raw_offset is not None:
        with (
            path.open("rb") as raw,
            sf.SoundFile(
                _Window(raw, info.raw_offset),
                format="RAW",
                subtype=info.subtype,
                channels=info.channels,
                samplerate=info.rate,
                endian="LITTLE",
            ) as f,
        ):
            yield f
    elif not info.exact_length:
        with _piped(path) as fd, sf.SoundFile(fd, closefd=False) as f:
            yield f
    else:
        # Bytes, not str: names from old zips are not always valid UTF-8.
        with sf.SoundFile(os.fsencode(path)) as f:
            yield f


def read_blocks(
    path: Path, info: AudioInfo, dtype: str = "float32", frames: int = BLOCK_FRAMES
) -> Iterator[np.ndarray]:
    """Yield the file's samples in blocks of at most ``frames`` (M4A: as decoded)."""
    if info.format == "M4A":
        yield from _m4a_blocks(path)
        return
    done = 0
    try:
        with _sndfile(path, info) as f:
            for block in _blocks(f, frames, dtype):
                done += len(block)
                yield block
            return
    except sf.LibsndfileError as exc:
        error = exc
    # The decode broke off (a cut FLAC fails on the read that reaches its end). Where the file
    # can be opened again at a frame, read on from the last good block in small steps, and end
    # there: the caller compares what came with the header's length (``truncated``).
    if info.exact_length and info.raw_offset is None:
        try:
            with _sndfile(path, info) as f:
                f.seek(done)
                for block in _blocks(f, RESCUE_FRAMES, dtype):
                    done += len(block)
                    yield block
        except sf.LibsndfileError:
            pass
    if not done:
        raise RejectedError(sndfile_reason(error, reading=True)) from None


def _blocks(f: sf.SoundFile, frames: int, dtype: str) -> Iterator[np.ndarray]:
    while True:
        block = f.read(frames, dtype=dtype, always_2d=True)
        if not len(block):
            return
        yield block


def read_all(path: Path, info: AudioInfo) -> np.ndarray:
    """The whole file as one float32 array: the fast path for short samples (most drum hits)."""
    if info.format != "M4A" and info.raw_offset is None and info.exact_length:
        try:
            data, _rate = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
            return data  # type: ignore[no-any-return]
        except sf.LibsndfileError:
            pass  # read again in blocks, which keeps what comes before a decode error
    blocks = list(read_blocks(path, info))
    if not blocks:
        return np.zeros((0, info.channels), dtype=np.float32)
    return np.concatenate(blocks)
