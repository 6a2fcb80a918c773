"""Which files under a folder are candidates for conversion.

Audio is recognised by content later (``probe``), so this only leaves out what is surely not a
sample: sync-client temp files and OS junk (``ignore``), sidecars and folder files, sp404d's own
``.error.txt`` notes, a handful of document and image types musicians keep beside their samples,
and the outbox itself when it sits inside the folder being scanned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from sp404d.ignore import is_ignored
from sp404d.metadata import is_metadata_file

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


def walk(
    root: Path, *, exclude: Sequence[Path] = (), extra_ignore: Sequence[str] = ()
) -> Iterator[Path]:
    """Candidate files below ``root``, in a stable, case-insensitive name order.

    Symlinked folders are not followed (a loop, or a link to the outbox, would never end);
    ``exclude`` folders (the outbox, an archive) are skipped with everything below them.
    """
    skip = {p.resolve() for p in exclude}
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(root):
        here = Path(dirpath)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in skip)
        for name in files:
            path = here / name
            if path.is_file() and is_candidate(path, root, extra_ignore):
                found.append(path)
    found.sort(key=lambda p: str(p).casefold())
    yield from found
