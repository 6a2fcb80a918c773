"""The BPM and key a file carries inside it: its tags, read by mutagen (ID3 ``TBPM``/``TKEY`` in
MP3 and in the ``id3 `` chunk of WAV and AIFF; Vorbis comments ``BPM``, ``TEMPO``,
``INITIALKEY``, ``KEY`` in FLAC and OGG; ``tmpo`` and the iTunes ``initialkey`` atom in M4A),
and the chunks loop libraries write, which tag libraries do not read: a WAV's ``acid`` (tempo,
root note, one-shot or loop; the layout libsndfile reads) and an AIFF's Apple Loops ``basc``
(beats, key, time signature: the tempo is its beats over its length).

A value that is no BPM or key (``fast``, 0, 9999, NaN, ``H-moll``) never refuses the file: it
is left out with a one-line note (:attr:`Carried.ignored`). Tags that cannot be read at all
(a damaged frame, a file that is no audio) are none: the job judges the audio itself.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen
import soundfile as sf

from sp404d.audio.chunks import read_chunks
from sp404d.audio.tonality import NOTES  # one spelling of the twelve notes
from sp404d.values.fields import parse_bpm, parse_key

#: (field, tag name as each format spells it), most specific first.
VORBIS = (("bpm", "bpm"), ("bpm", "tempo"), ("key", "initialkey"), ("key", "key"))
MP4 = (
    ("bpm", "tmpo"),
    ("key", "----:com.apple.iTunes:initialkey"),
    ("key", "----:com.apple.iTunes:KEY"),
)
ID3 = (("bpm", "TBPM"), ("key", "TKEY"))
UNKNOWN = frozenset({"o", "0", "0.0"})  # ID3's "off key", a tempo of 0: said, not wrong


@dataclass(frozen=True)
class Carried:
    """What a file says of itself: ``layers`` of (origin, {field: value}), most trusted first
    (``tag:TBPM``, ``acid``, ``apple loop``); ``facts`` (``loop``: False for a one-shot,
    ``beats``, ``root``); and the values ``ignored``, each with why."""

    layers: tuple[tuple[str, dict[str, Any]], ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()


def read_carried(path: Path) -> Carried:
    """Everything ``path`` carries; nothing for a file without tags or chunks, or gone.

    Kept per file version (size and mtime): the daemon's rescan reads the metadata of every
    file in its inboxes each time, and opening each to parse its tags cost 0.16 ms a file."""
    try:
        st = os.stat(path)
    except OSError:
        return Carried()
    return _read_carried(os.fspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1 << 16)
def _read_carried(name: str, size: int, mtime_ns: int) -> Carried:
    path = Path(name)
    layers: list[tuple[str, dict[str, Any]]] = []
    ignored: list[str] = []
    facts: dict[str, Any] = {}
    for origin, name, values in _tags(path):
        _take(layers, ignored, f"tag:{origin}", name, values)
    kind, chunks = read_chunks(path, frozenset({b"acid", b"basc"}))
    if kind == "wav" and b"acid" in chunks:
        _acid(chunks[b"acid"], layers, facts, ignored)
    if kind == "aiff" and b"basc" in chunks:
        _basc(chunks[b"basc"], path, layers, facts, ignored)
    return Carried(tuple(layers), facts, tuple(ignored))


def _take(
    layers: list[tuple[str, dict[str, Any]]],
    ignored: list[str],
    origin: str,
    name: str,
    values: Any,
) -> None:
    """The first of ``values`` (a tag may hold several) that is a BPM or key; else a note on
    the first, unless it says "unknown" (0, ID3's ``o``: nothing to complain about)."""
    texts = [str(v).strip() for v in (values if isinstance(values, list) else [values])]
    for text in texts:
        value = parse_bpm(text) if name == "bpm" else parse_key(text)
        if value is not None:
            layers.append((origin, {name: value}))
            return
    text = texts[0] if texts else ""
    if text.lower() in UNKNOWN or not text:
        return
    shown = text if len(text) <= 20 else text[:19] + "…"
    what = "a BPM from 20 to 999" if name == "bpm" else "a key (Am, C#, 8A)"
    ignored.append(f"{origin} {shown!r} is not {what}: ignored")


def _tags(path: Path) -> list[tuple[str, str, list[Any]]]:
    """(tag name, field, its values) of the BPM and key tags ``path`` holds."""
    if not path.is_file():
        return []
    try:
        audio = mutagen.File(os.fspath(path))
    except Exception:  # no tags it knows, or damaged ones: the job judges the audio itself
        return []
    tags = getattr(audio, "tags", None)
    if not tags:
        return []
    found: list[tuple[str, str, Any]] = []
    if hasattr(tags, "getall"):  # ID3, in an MP3, a WAV or an AIFF
        for name, frame in ID3:
            texts = [text for tag in tags.getall(frame) for text in tag.text]
            if texts:
                found.append((frame, name, texts))
    elif type(tags).__name__ == "MP4Tags":
        for name, atom in MP4:
            values = list(tags.get(atom) or [])
            if name == "key":
                values = [bytes(v).decode("utf-8", "replace") for v in values]
            if values:
                found.append((atom.rpartition(":")[2], name, values))
    else:  # Vorbis comments: FLAC, OGG
        for name, key in VORBIS:
            if values := list(tags.get(key) or []):
                found.append((key.upper(), name, values))
    return found


def _acid(
    body: bytes,
    layers: list[tuple[str, dict[str, Any]]],
    facts: dict[str, Any],
    ignored: list[str],
) -> None:
    """flags (u32: 1 one-shot, 2 root note set), root note (u16), ?, ? (f32), beats (u32),
    meter denominator, numerator (u16), tempo (f32), little-endian."""
    if len(body) < 24:
        ignored.append("its acid chunk is cut short: ignored")
        return
    flags, root, _, _, beats, _, _, tempo = struct.unpack_from("<IHHfIHHf", body)
    one_shot = bool(flags & 1)
    facts["loop"] = not one_shot
    if beats:
        facts["beats"] = beats
    if flags & 2 and root < 128:
        facts["root"] = NOTES[root % 12]
    if one_shot:  # a one-shot's tempo field is whatever the editor left there
        return
    _take(layers, ignored, "acid", "bpm", repr(tempo) if not math.isfinite(tempo) else tempo)


def _basc(
    body: bytes,
    path: Path,
    layers: list[tuple[str, dict[str, Any]]],
    facts: dict[str, Any],
    ignored: list[str],
) -> None:
    """version, beats (u32), root note, scale (1 minor, 2 major), time signature (u16 each),
    loop type (u16: 0 loop, 1 one-shot), big-endian."""
    if len(body) < 18:
        ignored.append("its Apple Loops chunk is cut short: ignored")
        return
    _, beats, root, scale, _, denominator, kind = struct.unpack_from(">IIHHHHH", body)
    facts["loop"] = kind == 0
    if beats:
        facts["beats"] = beats
    if scale in (1, 2) and root < 128:
        layers.append(("apple loop", {"key": NOTES[root % 12] + ("m" if scale == 1 else "")}))
    if kind != 0 or not beats or not denominator:
        return
    try:
        seconds = sf.info(os.fsencode(path)).duration
    except Exception:  # the audio itself is judged by the job
        return
    if seconds > 0:
        _take(
            layers, ignored, "apple loop", "bpm", round(beats * 4 / denominator * 60 / seconds, 2)
        )
