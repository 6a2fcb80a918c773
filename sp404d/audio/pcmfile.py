"""16-bit PCM WAV and AIFF at 48 kHz, written straight to a file.

The SP-404MK2 wants the plainest files there are: WAV with a 16-byte ``fmt `` chunk and a ``data``
chunk, AIFF with ``COMM`` and ``SSND``. These headers are byte for byte what libsndfile writes,
but libsndfile also fsyncs on every close and then rewrites the header, so a temp file needed
two fsyncs; writing them here leaves exactly one, the commit's.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType

import numpy as np

from sp404d.errors import RejectedError

RATE = 48_000
_MAX_DATA = 0xFFFF_FFFF - 64  # the size fields are 32 bits
# 48000 as an IEEE 754 80-bit extended float, AIFF's sample-rate field.
_AIFF_RATE_48K = bytes.fromhex("400ebb80000000000000")


def wav_header(channels: int, data_bytes: int) -> bytes:
    block = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, RATE, RATE * block, block, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def aiff_header(channels: int, data_bytes: int) -> bytes:
    frames = data_bytes // (channels * 2)
    comm = struct.pack(">hIh", channels, frames, 16) + _AIFF_RATE_48K
    return (
        b"FORM"
        + struct.pack(">I", 4 + 8 + len(comm) + 8 + 8 + data_bytes)
        + b"AIFF"
        + b"COMM"
        + struct.pack(">I", len(comm))
        + comm
        + b"SSND"
        + struct.pack(">III", 8 + data_bytes, 0, 0)
    )


class PcmWriter:
    """Append int16 blocks of shape (frames, channels); the header is completed on close."""

    def __init__(self, path: Path, fmt: str, channels: int) -> None:
        self.channels, self.data_bytes = channels, 0
        self._header = aiff_header if fmt == "aiff" else wav_header
        self._dtype = ">i2" if fmt == "aiff" else "<i2"
        self._fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            self._put(self._header(channels, 0))
        except BaseException:
            os.close(self._fd)
            raise

    def _put(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def write(self, samples: np.ndarray) -> None:
        flat = np.ascontiguousarray(samples, dtype=self._dtype).reshape(-1)
        data = flat.view(np.uint8).data
        if self.data_bytes + len(data) > _MAX_DATA:
            raise RejectedError("too long: the output would pass the 4 GB limit of WAV and AIFF")
        self._put(data)
        self.data_bytes += len(data)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            os.pwrite(self._fd, self._header(self.channels, self.data_bytes), 0)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PcmWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
