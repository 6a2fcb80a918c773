"""How the configured folders sit relative to each other, and the configs refused for it.

A config that would feed sp404d its own files (an outbox inside an inbox: its outputs converted
again on every rescan) or hide an inbox from it (an inbox inside the outbox: never read) is
refused at start, naming both keys. Folders are compared resolved and, where they exist, by
identity on disk, so another spelling (a symlink, a bind mount, a case-insensitive disk) is seen.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from sp404d.errors import ConfigError


def real_path(path: Path) -> Path:
    """``path`` with symlinks and ``..`` resolved, as far as it exists."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path(os.path.normpath(path))


def within(child: Path, parent: Path) -> str | None:
    """How ``child`` sits in ``parent`` ("the same folder as", "inside"), or None if it does not.

    Compared resolved (symlinks, ``..``) and, where the folders exist, by identity on disk,
    which also sees another spelling on a case-insensitive filesystem or a bind mount.
    """
    real_child, real_parent = real_path(child), real_path(parent)
    if real_child == real_parent:
        return "the same folder as"
    if real_child.is_relative_to(real_parent):
        return "inside"
    try:
        target = os.stat(real_parent)
    except (OSError, ValueError):
        return None
    for depth, folder in enumerate([real_child, *real_child.parents]):
        try:
            st = os.stat(folder)
        except (OSError, ValueError):
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return "the same folder as" if depth == 0 else "inside"
    return None


def _must_be_folder(key: str, path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return  # not there (yet): created at start, or a card not mounted
    if stat.S_ISREG(mode):
        raise ConfigError(key, f"{path} is a file, not a folder")
    if not stat.S_ISDIR(mode):
        raise ConfigError(key, f"{path} is not a folder")


def check_folders(
    outbox: Path, inboxes: Sequence[tuple[str, Path]], archives: Sequence[tuple[str, Path]]
) -> None:
    """Refuse folders that would feed sp404d its own files, or hide an inbox from it.

    An outbox inside an inbox (its outputs converted again on every rescan), an inbox inside
    the outbox (never read), one folder listed twice or inside another (files taken twice), an
    archive holding an inbox (the archive is never read, so neither would the inbox be) or
    inside the outbox (sources on the card beside the outputs). An archive inside an inbox is
    fine: it is left out of the input.
    """
    _must_be_folder("outbox", outbox)
    for key, path in [*inboxes, *archives]:
        _must_be_folder(key.removesuffix(" (the default)"), path)
    for key, inbox in inboxes:
        name = key.removesuffix(" (the default)")
        if how := within(outbox, inbox):
            raise ConfigError(
                "outbox",
                f"{outbox} is {how} {key} ({inbox}): its outputs would be converted again; "
                "give an outbox outside every inbox",
            )
        if within(inbox, outbox):
            raise ConfigError(
                name,
                f"{inbox} is inside outbox ({outbox}): nothing in it would ever be taken; "
                "keep inboxes and the outbox apart",
            )
    for j, (key, inbox) in enumerate(inboxes):
        for other, earlier in inboxes[:j]:
            if (how := within(inbox, earlier)) == "the same folder as":
                raise ConfigError(key, f"{inbox} is the same folder as {other}; list it once")
            if how:
                raise ConfigError(
                    key,
                    f"{inbox} is inside {other} ({earlier}): its files would be taken twice; "
                    "list only one of them",
                )
            if within(earlier, inbox):
                raise ConfigError(
                    other,
                    f"{earlier} is inside {key} ({inbox}): its files would be taken twice; "
                    "list only one of them",
                )
    for key, archive in archives:
        for name, inbox in inboxes:
            if how := within(inbox, archive):
                what = f"holds {name}" if how == "inside" else f"is the same folder as {name}"
                raise ConfigError(
                    key,
                    f"{archive} {what} ({inbox}): the archive is never read, so that inbox "
                    "would not be either; give an archive outside every inbox, or inside one",
                )
        if how := within(archive, outbox):
            raise ConfigError(
                key,
                f"{archive} is {how} outbox ({outbox}): the sources would land beside the "
                "outputs, on the card; give an archive outside the outbox",
            )
