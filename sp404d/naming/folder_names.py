"""The names in an output folder, as FAT32 tells them apart: what is on disk and what this
session has reserved there."""

from __future__ import annotations

import os
from pathlib import Path

from sp404d.naming.names import fold, unique_filename


def folders_in(outbox: Path) -> dict[str, str]:
    """The folders at the top of the outbox, by :func:`fold` key (the first by name if the
    outbox, on a case-sensitive disk, holds several spellings of one)."""
    try:
        names = sorted(e.name for e in os.scandir(outbox) if e.is_dir())
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name in names:
        found.setdefault(fold(name), name)
    return found


class FolderNames:
    """The names in one output folder: what was on disk at first look, plus reservations."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            on_disk = os.listdir(folder)
        except OSError:
            on_disk = []
        self.taken = {fold(n) for n in on_disk}
        self._on_disk = {fold(n): n for n in on_disk}

    def saw(self, name: str) -> None:
        """``name`` is on disk now (an output of a job that then failed)."""
        self.taken.add(fold(name))
        self._on_disk[fold(name)] = name

    def variants(self, stem: str, ext: str, max_len: int) -> tuple[Path, ...]:
        """Files already on disk under the names this stem would get (``stem``, ``stem_2``...).

        Walks the same sequence ``unique_filename`` hands out, so shortened stems
        (``Very_Long_Sample_Nam_10``) are found too; stops at the first name not on disk.
        """
        found: list[Path] = []
        seen: set[str] = set()
        while True:
            name = fold(unique_filename(stem, ext, seen, max_len=max_len))
            if name not in self._on_disk:
                return tuple(found)
            found.append(self.folder / self._on_disk[name])
            seen.add(name)


def chop_base(
    names: FolderNames, stem: str, ext: str, room: int, count: int, ours: set[str]
) -> str:
    """The base of a chop's names in a folder: ``stem`` (``loop_01``..), else ``stem_2``
    (``loop_2_01``..) and so on, the first whose ``count`` names are all free or among ``ours``
    (fold keys of the source's own earlier outputs): two loops of one name never interleave
    their slices."""
    tried: set[str] = set()
    while True:
        base = unique_filename(stem, "", tried, max_len=room)
        tried.add(fold(base))
        wanted = [fold(f"{base}_{i:02d}{ext}") for i in range(1, count + 1)]
        if all(w not in names.taken or w in ours for w in wanted):
            return base
