"""What an input file is, read from its content (never its extension), and whether it is whole.

libsndfile recognises WAV, AIFF, FLAC, OGG and MP3 by their bytes. M4A (AAC/ALAC in an MP4
container) is recognised by its ``ftyp`` box and decoded through the optional PyAV extra.

Headers are not taken on trust. A WAV or AIFF whose header promises more audio than the file
holds, or an OGG whose last page is missing, is a file still being copied or a broken download:
libsndfile quietly plays what is there, so the chunk sizes and pages are checked here (whether
such a file is refused is the ``truncated`` setting's call, in the job). A sample rate no
recording has, a WAV whose data size was never written, and libsndfile's own error texts each
get a reason a musician can act on.

Those reasons, PyAV's and libsndfile's alike, are written once, in :mod:`sp404d.audio.info`;
the container checks are in :mod:`sp404d.audio.containers`, M4A in :mod:`sp404d.audio.m4a`.
:mod:`sp404d.audio.decode` uses the same reasons for errors met while decoding.
"""

from __future__ import annotations

import os
from pathlib import Path

import soundfile as sf

from sp404d.audio.containers import (
    _container,
    _mp3_length_known,
    _ogg_complete,
    _recover_unsized,
    id3v2_size,
)
from sp404d.audio.info import (
    _SNDFILE_WAV_TAGS,
    _UNSUPPORTED,
    DAMAGED_HEADER,
    NO_CHANNELS,
    AudioInfo,
    _head,
    check_rate,
    corrupt,
    is_m4a,
    shown,
    sndfile_reason,
    truncated_reason,
)
from sp404d.audio.m4a import _probe_m4a, import_av, m4a_reason
from sp404d.errors import RejectedError

__all__ = [
    "DAMAGED_HEADER",
    "NO_CHANNELS",
    "AudioInfo",
    "corrupt",
    "id3v2_size",
    "import_av",
    "m4a_reason",
    "probe",
    "shown",
    "sndfile_reason",
    "truncated_reason",
]


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
