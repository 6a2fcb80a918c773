"""Metadata for one audio file: its sidecar, the folder files above it, its path, then defaults.

Every source is optional and each fills only the fields the sources before it left open:

1. **Sidecars** beside the file, most specific first: ``NAME.EXT.yaml``, ``NAME.EXT.yml``,
   ``NAME.yaml``, ``NAME.yml``. All that exist are read, so a shared ``kick.yaml`` can give the
   BPM while ``kick.wav.yaml`` gives the title.
2. **Folder files** (``sp404.yaml``) from the file's folder up to the inbox, nearest first. They
   set defaults for everything below them; they may not set ``title`` or ``pad`` (every file
   below would get the same one).
3. **What the file carries**: BPM and key tags, a WAV's acid chunk, Apple Loops' facts
   (:mod:`~sp404d.metadata.carried`), each with its origin (``tag:TBPM``, ``acid``).
4. **The path**: genre, kit, bank, pad, BPM and key read from folder and file names.
5. **Defaults** from the config (same rules as a folder file).

BPM and key heard in the sound (:mod:`sp404d.audio.tempo`, :mod:`sp404d.audio.tonality`) come
after all of these, in the job: recorded, and used only with ``use_analysis``.

A value written empty in a sidecar or folder file (``key:``) means "none" and stops later
sources from filling it in: the way to silence a wrong guess from the file name. ``title`` is
the exception: it always has a value, the file name's stem when nothing else gives one.

Metadata files are untrusted input. YAML is parsed by a safe loader that refuses anchors and
aliases (no "billion laughs"), any tag beyond plain text, numbers, booleans, lists and mappings
(no ``!!python/object``), deep nesting and duplicate keys, after a size check
(``MAX_SIDECAR_BYTES``). The dialect is tuned for musicians: only ``true``/``false`` are
booleans (a title ``On`` or ``No`` stays text), numbers with leading zeros are decimal
(``pad: 08`` is 8), and dates stay text.

``genre`` and ``kit`` become folder names in some layouts, so they are refused here when they
contain ``/`` or ``\\`` (also in full-width or other compatibility forms) or are only dots. That
is defence in depth: ``names``/``layout`` still sanitise every path part. ``title`` only ever
becomes part of a file name and is free text ("AC/DC riff"); ``names`` sanitises it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from sp404d.metadata.base import (
    FIELDS,
    FOLDER_FILE,
    MAX_SIDECAR_BYTES,
    SHAPING_KEYS,
    Metadata,
)
from sp404d.metadata.carried import read_carried
from sp404d.metadata.files import (
    MetadataScope,
    _read_source,
    audio_for_metadata_file,
    is_metadata_file,
    sidecar_candidates,
)
from sp404d.metadata.path import infer_from_path, kit_of_folder
from sp404d.pathtext import readable
from sp404d.values import parse_defaults, parse_key

__all__ = [
    "FIELDS",
    "FOLDER_FILE",
    "MAX_SIDECAR_BYTES",
    "Metadata",
    "MetadataScope",
    "audio_for_metadata_file",
    "infer_from_path",
    "is_metadata_file",
    "parse_defaults",
    "parse_key",
    "read_metadata",
    "sidecar_candidates",
]

# --------------------------------------------------------------------------------------------
# Putting it together


def _relative(source: Path, root: Path) -> tuple[Path, PurePath] | None:
    """(root, source relative to root), lexically first, then with symlinks resolved."""
    base = Path(os.path.abspath(root))
    try:
        return base, Path(os.path.abspath(source)).relative_to(base)
    except ValueError:
        pass
    try:
        base = root.resolve()
        return base, source.resolve().relative_to(base)
    except (ValueError, OSError):
        return None


def read_metadata(
    source: Path,
    root: Path,
    defaults: Mapping[str, Any] | None = None,
    *,
    name_root: bool = False,
) -> Metadata:
    """Everything known about ``source``, from its sidecars, folder files, path and defaults.

    ``root`` is the inbox (or the folder given to ``convert``): folder files are looked for
    from ``source``'s folder up to and including ``root``, never above, and path inference
    only reads folders below it. A source outside ``root`` gets its sidecars and what its file
    name says, nothing from folders. ``name_root``: where no folder below ``root`` names a kit,
    ``root``'s own name does (a kit folder given to ``convert`` stays that kit).

    Raises RejectedError for a bad sidecar or folder file (the reason names the file and the
    key), FailedError if one exists but cannot be read, and ValueError for bad ``defaults``
    (they are normally checked by the config already, with ``parse_defaults``).
    """
    layers: list[tuple[str, Mapping[str, Any]]] = []
    for sidecar in sidecar_candidates(source):
        found = _read_source(sidecar, f"sidecar {sidecar.name}", shared=None)
        if found is not None:
            layers.append((f"sidecar:{sidecar.name}", found))
    located = _relative(source, root)
    if located is None:
        relative: PurePath = PurePath(source.name)
    else:
        base, relative = located
        parts = relative.parent.parts
        for depth in range(len(parts), -1, -1):
            folder_file = base.joinpath(*parts[:depth], FOLDER_FILE)
            shown = folder_file.relative_to(base).as_posix()
            found = _read_source(folder_file, f"folder file {shown}", shared="a folder file")
            if found is not None:
                layers.append((f"folder:{shown}", found))
    carried = read_carried(source)
    layers += carried.layers  # tags and loop chunks: under the musician's files, over the name
    from_path = infer_from_path(relative)
    if name_root and located is not None and "kit" not in from_path:  # no folder below names one
        kit = kit_of_folder(readable(located[0].name))
        if kit is not None:
            from_path["kit"] = kit
    layers.append(("path", from_path))
    if defaults:
        layers.append(("default", parse_defaults(defaults, "defaults")))

    chosen: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in FIELDS:
        for origin, values in layers:
            if name in values:
                chosen[name], origins[name] = values[name], origin
                break
    shaping: dict[str, Any] = {}
    for name in SHAPING_KEYS:
        for origin, values in layers:
            if name in values and values[name] is not None:
                shaping[name], origins[name] = values[name], origin
                break
    return Metadata(
        shaping=shaping,
        title=chosen["title"],
        genre=chosen.get("genre"),
        bpm=chosen.get("bpm"),
        key=chosen.get("key"),
        tags=chosen.get("tags") or (),
        kit=chosen.get("kit"),
        bank=chosen.get("bank"),
        pad=chosen.get("pad"),
        origins=origins,
        facts=carried.facts,
        ignored=carried.ignored,
    )
