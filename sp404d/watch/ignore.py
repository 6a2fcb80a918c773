"""Names in the inbox that are never processed: temp files, placeholders and OS junk.

An inbox is usually a synced folder, and every sync client, browser and OS leaves names there
that are not (yet) a sample. The rules are data, one :class:`IgnoreRule` per name with the tool
that makes it, so a reader can check them and a user can extend them (``ignore:`` in the config,
extra glob patterns).

Decisions worth knowing:

* **Every component is checked.** A rule that matches a folder (``.stversions``,
  ``$RECYCLE.BIN``) ignores everything below it.
* **Anything hidden is ignored.** A name starting with ``.`` anywhere below the inbox is skipped
  (the last rule of :data:`DEFAULT_IGNORE`). Most temp names of sync tools are hidden, and a
  musician never meant to convert a hidden file; the specific rules before it exist to give a
  useful reason when ``convert -v`` lists what it passed over. Only paths *below* the inbox
  count, so an inbox inside ``~/.local`` works.
* **Matching ignores case on every OS.** The junk comes from Windows and macOS clients whatever
  the OS sp404d runs on (``THUMBS.DB`` from a FAT card shows up on Linux too), and no real
  sample differs from a junk name by case alone.
* **Conflict copies are processed.** ``kick.sync-conflict-20240101-120000-ABCDEFG.wav``
  (Syncthing) or ``kick (conflicted copy 2024-01-01).wav`` (Dropbox) are complete files holding
  one of the user's versions; skipping them silently would lose that version. Add
  ``"*.sync-conflict-*"`` to ``ignore:`` to skip them.
* **A leading ``~`` is not a temp marker by itself.** ``~my_tilde_name.wav`` is a sample. The
  OneDrive Linux client *skips* ``~*`` by default but does not create such names; the tilde
  names tools do create (``~$doc``, ``~syncthing~*.tmp``, ``~S*.TMP``) have rules of their own.
* **Only whole-name suffixes count.** ``*.part`` ignores ``kick.wav.part`` but not
  ``foo.part.wav``; ``*.tmp`` ignores ``x.tmp`` but not ``loop.tmp.wav``.

Names cannot catch everything: Firefox's 0-byte placeholder and rsync ``--inplace`` use the
final name, so the watcher still waits for a settled size and decode-checks the file.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

__all__ = ["DEFAULT_IGNORE", "HIDDEN_REASON", "IgnoreRule", "ignore_reason", "is_ignored"]


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """A glob as a case-insensitive regex; cached because every event checks every rule."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


@dataclass(frozen=True)
class IgnoreRule:
    """A glob (:mod:`fnmatch` syntax) for one path component, and why such names are skipped."""

    pattern: str
    reason: str

    def matches(self, name: str) -> bool:
        """True when ``name`` (one component, no separators) matches, ignoring case."""
        return _compile(self.pattern).match(name) is not None


#: The reason of the catch-all rule: a name hidden by its leading dot and by nothing more
#: specific. ``convert`` tells about such files (a musician may have expected ``.kick.wav``
#: converted); the junk the other rules name is not news.
HIDDEN_REASON = "hidden file or folder"

#: Checked in order; the first rule that matches gives the reason. The catch-all for hidden
#: names is last, so the specific rules above it name the tool.
DEFAULT_IGNORE: tuple[IgnoreRule, ...] = (
    # Syncthing: downloads to a temp name, then renames; keeps old versions in .stversions.
    IgnoreRule(".syncthing.*.tmp", "Syncthing temp file"),
    IgnoreRule("~syncthing~*.tmp", "Syncthing temp file (Windows)"),
    IgnoreRule(".stversions", "Syncthing old versions folder"),
    IgnoreRule(".stfolder", "Syncthing folder marker"),
    IgnoreRule(".stignore", "Syncthing ignore list"),
    # sp404d itself: temp files while writing (~S<random>.TMP) and the reason files written
    # next to rejected inputs. After Syncthing: ~syncthing~*.tmp matches ~S*.TMP.
    IgnoreRule("~S*.TMP", "sp404d temp file"),
    IgnoreRule("*.error.txt", "sp404d reason file"),
    # Dropbox: stages downloads in .dropbox.cache; .dropbox marks the Dropbox root.
    IgnoreRule(".dropbox.cache", "Dropbox staging folder"),
    IgnoreRule(".dropbox", "Dropbox marker file"),
    # Office and LibreOffice lock files (Nextcloud/ownCloud exclude them too).
    IgnoreRule("~$*", "Microsoft Office lock file"),
    IgnoreRule(".~lock.*", "LibreOffice lock file"),
    # Nextcloud/ownCloud: downloads to .NAME.~<hex>; partial transfers end in .part/.filepart.
    IgnoreRule(".*.~*", "Nextcloud/ownCloud download in progress"),
    IgnoreRule("*.part", "partial download (Nextcloud/ownCloud, Firefox)"),
    IgnoreRule("*.filepart", "partial transfer (Nextcloud/ownCloud, WinSCP)"),
    # OneDrive (Linux client): downloads to NAME.partial; *.tmp is its default skip as well.
    IgnoreRule("*.partial", "OneDrive download in progress"),
    IgnoreRule("*.tmp", "temporary file (OneDrive and others)"),
    # Browsers: Chrome .crdownload, Safari .download (a bundle folder); Firefox .part above.
    IgnoreRule("*.crdownload", "Chrome download in progress"),
    IgnoreRule("*.download", "Safari download in progress"),
    # iCloud Drive before macOS Sonoma: .NAME.icloud stands in for a file not downloaded yet.
    IgnoreRule(".*.icloud", "iCloud placeholder (file not downloaded)"),
    # macOS.
    IgnoreRule(".DS_Store", "macOS Finder metadata"),
    IgnoreRule("._*", "macOS resource fork (AppleDouble)"),
    IgnoreRule("Icon\r", "macOS custom folder icon"),
    IgnoreRule(".Spotlight-V100", "macOS Spotlight index"),
    IgnoreRule(".fseventsd", "macOS file event log"),
    IgnoreRule(".Trashes", "macOS trash"),
    IgnoreRule(".TemporaryItems", "macOS temporary items"),
    # Windows.
    IgnoreRule("Thumbs.db", "Windows thumbnail cache"),
    IgnoreRule("desktop.ini", "Windows folder settings"),
    IgnoreRule("$RECYCLE.BIN", "Windows recycle bin"),
    IgnoreRule("System Volume Information", "Windows system folder"),
    # Linux desktops: per-user trash on removable drives (.Trash-1000).
    IgnoreRule(".Trash-*", "Linux trash"),
    # rsync: writes .NAME.XXXXXX (six random characters), then renames.
    IgnoreRule(".*.??????", "rsync temp file"),
    # Everything hidden, whatever made it (see the module docstring).
    IgnoreRule(".*", HIDDEN_REASON),
)


def _extra_reason(parts: Sequence[str], extra: Iterable[str]) -> str | None:
    """The reason from the user's ``ignore:`` patterns, or None.

    A pattern without ``/`` is tried on every component, like the defaults. One with ``/`` is
    tried on the path from the inbox (``drafts/old``, ``stems/*/bounce*``) and on each folder
    above the file, so a folder pattern covers its contents; ``*`` may cross folders there.
    """
    for raw in extra:
        pattern = raw.strip().strip("/")
        if not pattern:
            continue
        regex = _compile(pattern)
        candidates: Iterable[str]
        if "/" in pattern:
            candidates = ("/".join(parts[: i + 1]) for i in range(len(parts)))
        else:
            candidates = iter(parts)
        if any(regex.match(candidate) for candidate in candidates):
            return f"matches ignore pattern {raw!r} from the config"
    return None


def ignore_reason(relpath: PurePath, extra: Sequence[str] = ()) -> str | None:
    """Why ``relpath`` is not processed (``convert`` says so); None when it should be.

    ``relpath`` is relative to the inbox: an absolute path raises ``ValueError``, because the
    folders *above* the inbox (``~/.local/share/...``) must not count as hidden components.
    """
    if relpath.is_absolute() or relpath.anchor:
        raise ValueError(f"ignore rules need a path relative to the inbox, got {relpath}")
    parts = relpath.parts
    for name in parts:
        if _any_default().match(name):  # one regex for the common case: nothing matches
            return next(rule.reason for rule in DEFAULT_IGNORE if rule.matches(name))
    return _extra_reason(parts, extra)


@functools.cache
def _any_default() -> re.Pattern[str]:
    either = "|".join(f"(?:{fnmatch.translate(rule.pattern)})" for rule in DEFAULT_IGNORE)
    return re.compile(either, re.IGNORECASE)


def is_ignored(relpath: PurePath, extra: Sequence[str] = ()) -> bool:
    """True when ``relpath`` (relative to the inbox) must never be processed."""
    return ignore_reason(relpath, extra) is not None
