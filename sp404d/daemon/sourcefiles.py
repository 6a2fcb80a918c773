"""What happens to a source file after its job, and the note a rejected file gets.

Sources are kept by default. ``on_done: move`` or ``delete`` act only after the output and its
journal record are on disk. A rejected file stays where it is and, with ``error_files`` on,
gets ``NAME.EXT.error.txt`` beside it: in a synced inbox that note travels back to the laptop or
phone the file came from. The note goes once the file converts or disappears.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sp404d.durable import replace_whole
from sp404d.metadata import METADATA_SUFFIXES, SIDECAR_FORMS
from sp404d.naming import fold
from sp404d.pathtext import printable

ERROR_SUFFIX = ".error.txt"


def error_note(source: Path) -> Path:
    return source.with_name(source.name + ERROR_SUFFIX)


def write_error_note(source: Path, reason: str) -> bool:
    """Write (or refresh) the note; False when the inbox is read-only or gone."""
    note = error_note(source)
    text = printable(  # a name (or a reason quoting one) may hold bytes that are not UTF-8
        f"sp404d could not convert {source.name}:\n{reason}\n\n"
        f"Fix the file (or its sidecar) and it is tried again; this note then goes away.\n"
    )
    try:
        if note.read_text(encoding="utf-8").startswith(text):
            return True  # unchanged: do not churn a synced folder
    except (OSError, ValueError):
        pass
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        replace_whole(note, f"{text}({stamp})\n".encode())
    except (OSError, ValueError):
        return False
    return True


def remove_error_note(source: Path) -> None:
    with contextlib.suppress(OSError):
        error_note(source).unlink()


def dispose(source: Path, inbox: Path, on_done: str, archive: Path | None) -> Path | None:
    """Keep, move or delete a converted source. Returns where it went (None: kept/deleted)."""
    if on_done == "keep":
        return None
    if on_done == "delete":
        source.unlink(missing_ok=True)
        remove_error_note(source)
        return None
    if archive is None:
        return None
    try:
        rel = source.relative_to(inbox)
    except ValueError:
        rel = Path(source.name)
    target = archive / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    taken = {fold(n) for n in os.listdir(target.parent)}
    n = 1
    while fold(target.name) in taken:
        n += 1
        target = target.with_name(f"{source.stem}_{n}{source.suffix}")
    shutil.move(source, target)
    _move_sidecars(source, target)
    return target


def _move_sidecars(source: Path, target: Path) -> None:
    """A moved source's sidecars go with it, named after where it went (so they still apply
    there): ``kick.wav.yaml`` always; ``kick.yaml`` only if no other file of the folder shares
    the stem. A sidecar that cannot be moved stays where it was (its source is safe already)."""
    folder = source.parent
    try:
        others = {
            Path(n).stem.casefold()
            for n in os.listdir(folder)
            if not n.lower().endswith(METADATA_SUFFIXES)
        }
    except OSError:
        return
    for form in SIDECAR_FORMS:
        sidecar = folder / form.format(name=source.name, stem=source.stem)
        if "{stem}" in form and source.stem.casefold() in others:
            continue  # another file (kick.aif) reads it too
        moved = target.parent / form.format(name=target.name, stem=target.stem)
        if not sidecar.is_file() or moved.exists():
            continue
        with contextlib.suppress(OSError):
            shutil.move(sidecar, moved)
