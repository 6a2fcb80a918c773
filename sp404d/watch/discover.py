"""Which files under a folder are candidates for conversion.

Audio is recognised by content later (``probe``), so this only leaves out what is surely not a
sample: sync-client temp files and OS junk (``ignore``), sidecars and folder files, sp404d's own
``.error.txt`` notes, a handful of document and image types musicians keep beside their samples,
and the outbox itself when it sits inside the folder being scanned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath

from sp404d.metadata import is_metadata_file
from sp404d.watch.ignore import HIDDEN_REASON, ignore_reason, is_ignored

# Kept beside samples, never audio: skipped quietly instead of rejected one by one.
NOT_AUDIO_SUFFIXES = frozenset(
    {
        ".txt",
        ".md",
        ".pdf",
        ".rtf",
        ".doc",
        ".docx",
        ".nfo",
        ".url",
        ".webloc",
        ".lnk",
        ".jpg",
        ".jpeg",
        ".png",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".webp",
        ".svg",
        ".json",
        ".xml",
        ".html",
        ".htm",
        ".csv",
        ".log",
        ".ini",
        ".cfg",
        ".toml",
        ".asd",
        ".reapeaks",
        ".pk",
        ".sfk",  # DAW peak and analysis files
    }
)


def is_candidate(path: Path, root: Path, extra_ignore: Sequence[str] = ()) -> bool:
    """True when ``path`` (below ``root``) should be handed to the pipeline."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    if is_ignored(rel, extra_ignore) or is_metadata_file(path):
        return False
    return path.suffix.lower() not in NOT_AUDIO_SUFFIXES


#: Why ``walk`` passed over something a musician may have meant to convert (the reasons a
#: ``passed`` collector gets). Junk named by a specific ignore rule, sidecars, documents and
#: images, user ``ignore:`` patterns, the outbox, archive and journal are left out quietly.
HIDDEN = "hidden name"
NOT_REGULAR = "not a regular file"
BROKEN_LINK = "broken link"
LINKED_FOLDER = "linked folder, not followed"

PassedOver = list[tuple[Path, str]]


def walk(
    root: Path,
    *,
    exclude: Sequence[Path] = (),
    extra_ignore: Sequence[str] = (),
    passed: PassedOver | None = None,
) -> Iterator[Path]:
    """Candidate files below ``root``, in a stable, case-insensitive name order.

    Symlinked folders are not followed (a loop, or a link to the outbox, would never end);
    ``exclude`` folders (the outbox, an archive) are skipped with everything below them, and
    ``exclude`` files (the journal and its side files) are never candidates, nor is any
    ``NAME.*`` beside an excluded file that exists. Folders an ignore
    rule matches are not entered. ``passed``, if given, collects ``(path, reason)`` for what
    a musician may have meant to convert but is not taken: hidden names, FIFOs, sockets and
    devices, broken links, linked folders. One ``scandir`` per folder; a file is only
    ``stat``-ed when the folder entry does not tell its type (a symlink).
    """
    real_root = _real(root)
    skip = {_real(p) for p in exclude}
    # An excluded file (the journal) takes its side files with it: NAME.* in its folder.
    siblings: dict[Path, tuple[str, ...]] = {}
    for path in skip:
        if path.is_file():
            siblings[path.parent] = (*siblings.get(path.parent, ()), path.name + ".")
    found: list[Path] = []
    # (folder as given, the same folder resolved, its parts below root)
    stack: list[tuple[Path, Path, tuple[str, ...]]] = [(root, real_root, ())]
    while stack:
        here, real_here, parts = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = list(it)
        except OSError:
            continue
        beside = siblings.get(real_here, ())
        for entry in entries:
            name = entry.name
            path, real = here / name, real_here / name
            if real in skip or (beside and name.startswith(beside)):
                continue
            reason = ignore_reason(PurePath(*parts, name), extra_ignore)
            if reason is not None:
                if reason == HIDDEN_REASON and passed is not None:
                    passed.append((path, HIDDEN))
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((path, real, (*parts, name)))
                    continue
                if entry.is_symlink() and entry.is_dir():
                    if passed is not None:
                        passed.append((path, LINKED_FOLDER))
                    continue
                if is_metadata_file(path) or path.suffix.lower() in NOT_AUDIO_SUFFIXES:
                    continue
                if entry.is_file():
                    found.append(path)
                elif passed is not None:
                    broken = entry.is_symlink() and not os.path.exists(entry.path)
                    passed.append((path, BROKEN_LINK if broken else NOT_REGULAR))
            except OSError:
                continue  # gone meanwhile
    found.sort(key=lambda p: str(p).casefold())
    yield from found


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return Path(os.path.normpath(path))
