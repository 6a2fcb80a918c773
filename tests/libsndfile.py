"""libsndfile itself, for what pysoundfile does not expose (``sf_command``): writing cue points
and loops, reading loop facts. The library pysoundfile's wheel ships, else the system's."""

from __future__ import annotations

import ctypes
import os

import _soundfile_data  # type: ignore[import-untyped]
import soundfile as sf

_BUNDLED = os.path.join(os.path.dirname(_soundfile_data.__file__), "libsndfile_x86_64.so")
LIB = ctypes.CDLL(_BUNDLED if os.path.exists(_BUNDLED) else "libsndfile.so.1")
LIB.sf_command.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]


def command(f: sf.SoundFile, cmd: int, data: ctypes.Structure) -> int:
    """``sf_command`` on an open SoundFile."""
    handle = int(sf._ffi.cast("intptr_t", f._file))
    return int(LIB.sf_command(handle, cmd, ctypes.byref(data), ctypes.sizeof(data)))
