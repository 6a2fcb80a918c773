"""Metadata for one audio file: its sidecar, the folder files above it, its path, then defaults.

Every source is optional and each fills only the fields the sources before it left open:

1. **Sidecars** beside the file, most specific first: ``NAME.EXT.yaml``, ``NAME.EXT.yml``,
   ``NAME.yaml``, ``NAME.yml``. All that exist are read, so a shared ``kick.yaml`` can give the
   BPM while ``kick.wav.yaml`` gives the title.
2. **Folder files** (``sp404.yaml``) from the file's folder up to the inbox, nearest first. They
   set defaults for everything below them; they may not set ``title`` or ``pad`` (every file
   below would get the same one).
3. **The path**: genre, kit, bank, pad, BPM and key read from folder and file names.
4. **Defaults** from the config (same rules as a folder file).

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

import difflib
import math
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Any

from sp404d.errors import FailedError, RejectedError
from sp404d.pathtext import readable

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

FIELDS: tuple[str, ...] = ("title", "genre", "bpm", "key", "tags", "kit", "bank", "pad")
FOLDER_FILE = "sp404.yaml"
MAX_SIDECAR_BYTES = 64 * 1024

METADATA_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")
# Sidecar names, most specific first; {name} is "kick.wav", {stem} is "kick".
SIDECAR_FORMS: tuple[str, ...] = ("{name}.yaml", "{name}.yml", "{stem}.yaml", "{stem}.yml")

# Fields a folder file or the config defaults may not set, and why (shown to the user).
PER_FILE_ONLY: Mapping[str, str] = MappingProxyType(
    {
        "title": "every file below would get the same title; put it in the file's sidecar",
        "pad": "every file below would claim the same pad; use a sidecar or a leading number "
        "in the file name (07_snare.wav)",
    }
)


# --------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class Metadata:
    """What sp404d knows about one file, and where each value came from.

    ``origins`` maps a field to ``"sidecar:<file name>"``, ``"folder:<folder file relative to
    the inbox>"``, ``"path"`` or ``"default"``. It has an entry for every field some source
    decided, including one a sidecar or folder file set to empty (``key:``), so the journal can
    say why a value is missing. ``title`` always has a value and an origin.
    """

    title: str
    genre: str | None = None
    bpm: float | None = None
    key: str | None = None
    tags: tuple[str, ...] = ()
    kit: str | None = None
    bank: str | None = None
    pad: int | None = None
    origins: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # A private copy: a caller's dict must not change our origins behind our back. A plain
        # dict (not a MappingProxyType) because plans cross to worker processes by pickle.
        object.__setattr__(self, "origins", dict(self.origins))

    def as_dict(self) -> dict[str, Any]:
        """The fields plus ``"origins"``, as plain JSON-friendly values (for the journal)."""
        return {
            "title": self.title,
            "genre": self.genre,
            "bpm": self.bpm,
            "key": self.key,
            "tags": list(self.tags),
            "kit": self.kit,
            "bank": self.bank,
            "pad": self.pad,
            "origins": dict(self.origins),
        }


# --------------------------------------------------------------------------------------------
# Value rules: one row per field. A converter returns the clean value, or None if it refuses.

_BANK_RE = re.compile(r"^(?:bank[\s_-]*)?([a-j])$", re.IGNORECASE)
_BPM_TEXT_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:bpm)?$", re.IGNORECASE)
_PAD_TEXT_RE = re.compile(r"^\d{1,3}$")

# A key: letter, optional accidental, optional quality, optionally separated. "m" in any case
# means minor (all-caps sample names write A minor as "AM"); write "maj" for major.
_ACCIDENTAL = r"#|♯|♭|sharp|flat|b"
_QUALITY = r"minor|min|m|major|maj"
_KEY_VALUE_RE = re.compile(
    rf"^(?P<letter>[a-g])[\s_-]*(?P<acc>{_ACCIDENTAL})?[\s_-]*(?P<quality>{_QUALITY})?$",
    re.IGNORECASE,
)
_KEY_TOKEN_RE = re.compile(
    rf"^(?P<letter>[a-g])(?P<acc>{_ACCIDENTAL})?(?P<quality>{_QUALITY})?$", re.IGNORECASE
)
_SHARPS = frozenset({"#", "♯", "sharp"})
_MINORS = frozenset({"m", "min", "minor"})
_QUALITY_WORDS = frozenset({"min", "minor", "maj", "major"})


def _clean_text(value: object, max_len: int) -> str | None:
    """One line of text; whole numbers are accepted as text (``title: 808``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not 1 <= len(text) <= max_len:
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        return None
    return text


def _is_path_safe(text: str) -> bool:
    """No separator and not only dots, also after NFKC folding (a full-width solidus is ``/``)."""
    for form in (text, unicodedata.normalize("NFKC", text)):
        if "/" in form or "\\" in form or not form.strip(". "):
            return False
    return True


def _text(max_len: int, *, path_part: bool = False) -> Callable[[object], str | None]:
    def convert(value: object) -> str | None:
        text = _clean_text(value, max_len)
        if text is None or (path_part and not _is_path_safe(text)):
            return None
        return text

    return convert


def _bpm(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        match = _BPM_TEXT_RE.match(value.strip())
        if match is None:
            return None
        value = float(match.group(1))
    if not isinstance(value, int | float) or not 20 <= value <= 999:  # NaN fails this too
        return None
    return float(value)


def parse_key(text: str) -> str | None:
    """``"c# minor"`` -> ``"C#m"``, ``"Bb"`` -> ``"Bb"``, ``"F sharp"`` -> ``"F#"``; else None.

    The normal form is the letter in upper case, ``#`` or ``b``, and ``m`` for minor; major has
    no suffix. Enharmonic spellings are kept as written (``Gb`` stays ``Gb``).
    """
    match = _KEY_VALUE_RE.match(text.strip())
    if match is None:
        return None
    return _normalise_key(match["letter"], match["acc"], match["quality"])


def _normalise_key(letter: str, accidental: str | None, quality: str | None) -> str:
    acc = (accidental or "").lower()
    sign = "#" if acc in _SHARPS else ("b" if acc else "")
    minor = "m" if (quality or "").lower() in _MINORS else ""
    return letter.upper() + sign + minor


def _key(value: object) -> str | None:
    return parse_key(value) if isinstance(value, str) else None


def _tags(value: object) -> tuple[str, ...] | None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return None
    tags: list[str] = []
    for item in items:
        tag = _clean_text(item, 64)
        if tag is None:
            return None
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _bank(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _BANK_RE.match(value.strip())
    return match.group(1).upper() if match else None


def _pad(value: object) -> int | None:
    if isinstance(value, str) and _PAD_TEXT_RE.match(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        return None
    return value


@dataclass(frozen=True)
class FieldRule:
    """How one metadata key is checked; ``expects`` completes "bpm must be ..."."""

    name: str
    expects: str
    convert: Callable[[object], Any]


_NAME_RULE = "a name of 1 to 64 characters without / or \\"
RULES: Mapping[str, FieldRule] = MappingProxyType(
    {
        rule.name: rule
        for rule in (
            FieldRule("title", "one line of text, 1 to 200 characters", _text(200)),
            FieldRule("genre", _NAME_RULE, _text(64, path_part=True)),
            FieldRule("bpm", "a number from 20 to 999", _bpm),
            FieldRule("key", "a musical key like C, F#, Bbm or A minor", _key),
            FieldRule("tags", "a list of short texts (or one text)", _tags),
            FieldRule("kit", _NAME_RULE, _text(64, path_part=True)),
            FieldRule("bank", "one letter from A to J", _bank),
            FieldRule("pad", "a whole number from 1 to 16", _pad),
        )
    }
)
assert tuple(RULES) == FIELDS


class _InvalidError(Exception):
    """A value broke a rule; the message names the key and says what was expected."""


def _show(value: object) -> str:
    """A value as the user wrote it in YAML, short and on one line."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 42 else text[:39] + "..."


def _validate(raw: Mapping[Any, Any], *, shared: str | None) -> dict[str, Any]:
    """Check every key of one source; ``shared`` names a source that applies to many files
    ("a folder file", "defaults"), which may not set ``PER_FILE_ONLY`` fields.

    Keys are matched case-insensitively. The result keeps an explicit empty value as None.
    """
    allowed = [name for name in FIELDS if shared is None or name not in PER_FILE_ONLY]
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.strip().lower() if isinstance(key, str) else key
        if shared is not None and name in PER_FILE_ONLY:
            raise _InvalidError(f"{name} cannot be set in {shared}: {PER_FILE_ONLY[name]}")
        if name not in allowed:
            close = difflib.get_close_matches(str(name), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _InvalidError(
                f"unknown key {_show(key)}{hint}; allowed keys: {', '.join(allowed)}"
            )
        if name in clean:
            raise _InvalidError(f"{name} is given twice")
        if value is None:
            if name != "title":  # an empty title means "use the file name"
                clean[name] = None
            continue
        rule = RULES[name]
        converted = rule.convert(value)
        if converted is None:
            raise _InvalidError(f"{name} must be {rule.expects}, got {_show(value)}")
        clean[name] = converted
    return clean


def parse_defaults(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check a ``defaults:`` mapping from the config with the folder-file rules.

    Returns clean values (empty ones dropped); running it again on its own output gives the
    same result. Raises ValueError("<where>: <what is wrong>").
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: must be a mapping of metadata fields, e.g. {{genre: hiphop}}")
    try:
        clean = _validate(values, shared="defaults")
    except _InvalidError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return {name: value for name, value in clean.items() if value is not None}


# --------------------------------------------------------------------------------------------
# Metadata files on disk


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_source(path: Path, label: str, *, shared: str | None) -> dict[str, Any] | None:
    """Read and check one sidecar or folder file; None if it is not (or no longer) there.

    ``label`` ("sidecar kick.wav.yaml") starts every reason. A file that vanishes between the
    look and the read counts as absent; any other OS error is a FailedError (worth a retry).
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO named like a sidecar must not block us
            return None
        if info.st_size > MAX_SIDECAR_BYTES:
            raise RejectedError(_too_big(label, info.st_size))
        with path.open("rb") as handle:
            data = handle.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FailedError(_one_line(f"{label} cannot be read: {exc.strerror or exc}")) from None
    if len(data) > MAX_SIDECAR_BYTES:  # it grew after stat()
        raise RejectedError(_too_big(label, len(data)))
    from sp404d import safeyaml  # here, not at the top: PyYAML only when a sidecar exists

    try:
        try:
            raw = safeyaml.parse(data)
        except safeyaml.InvalidYamlError as exc:
            raise _InvalidError(str(exc)) from None
        if raw is None:  # empty, or only comments
            return {}
        if not isinstance(raw, dict):
            raise _InvalidError(f"must be a mapping of keys like 'bpm: 92', got {_show(raw)}")
        return _validate(raw, shared=shared)
    except _InvalidError as exc:
        raise RejectedError(_one_line(f"{label}: {exc}")) from None


def _too_big(label: str, size: int) -> str:
    return f"{label} is {math.ceil(size / 1024)} KB, limit {MAX_SIDECAR_BYTES // 1024} KB"


def sidecar_candidates(source: Path) -> tuple[Path, ...]:
    """``NAME.EXT.yaml``, ``NAME.EXT.yml``, ``NAME.yaml``, ``NAME.yml``, most specific first.

    Names are exact (case as in the audio file's name). ``sp404.yaml`` is never a sidecar: for
    ``sp404.wav`` it is still the folder file.
    """
    names = [form.format(name=source.name, stem=source.stem) for form in SIDECAR_FORMS]
    unique = dict.fromkeys(name for name in names if name != FOLDER_FILE)
    return tuple(source.parent / name for name in unique)


def is_metadata_file(path: Path) -> bool:
    """True for names ending ``.yaml``/``.yml`` (any case): sidecars, folder files, and YAML the
    user keeps nearby. The watcher must not treat them as audio."""
    return path.name.lower().endswith(METADATA_SUFFIXES)


@dataclass(frozen=True)
class MetadataScope:
    """The audio files one metadata file can change; the daemon re-does them when it appears,
    changes or goes away.

    A sidecar applies to files in its own folder whose ``sidecar_candidates`` include it
    (``kick.yaml`` -> ``kick.wav``, ``kick.aif``...); a folder file (``recursive``) applies to
    everything below its folder. Paths are compared as given: pass them in the same form
    (both absolute) as the metadata file.
    """

    metadata_file: Path
    folder: Path
    recursive: bool

    def matches(self, audio: Path) -> bool:
        """Whether ``audio`` (a file path, not necessarily existing) is in scope."""
        if is_metadata_file(audio):
            return False
        if self.recursive:
            return self.folder in audio.parents
        return audio.parent == self.folder and self.metadata_file in sidecar_candidates(audio)

    def audio_files(self) -> tuple[Path, ...]:
        """Existing files in scope, sorted. Apply your own audio-type and ignore rules on top."""
        try:
            found = self.folder.rglob("*") if self.recursive else self.folder.iterdir()
            return tuple(sorted(p for p in found if self.matches(p) and p.is_file()))
        except FileNotFoundError:
            return ()


def audio_for_metadata_file(path: Path) -> MetadataScope:
    """Which audio files ``path`` (a sidecar or ``sp404.yaml``) can change.

    Raises ValueError for a file that is not a metadata file (see ``is_metadata_file``).
    """
    if not is_metadata_file(path):
        raise ValueError(f"{path.name} is not a metadata file (.yaml or .yml)")
    return MetadataScope(metadata_file=path, folder=path.parent, recursive=path.name == FOLDER_FILE)


# --------------------------------------------------------------------------------------------
# Path inference


_TOKEN_SPLIT_RE = re.compile(r"[\s_.\-()\[\]{},+]+")
# A leading pad number: "07_snare", "7 snare", "07-snare", "01". The word after it is kept to
# catch counts that are not pads ("4_bars", "16 steps").
_PAD_RE = re.compile(r"^(?P<num>\d{1,3})(?:[\s_.\-]+(?P<next>[^\s_.\-]*)|$)")
NOT_PAD_WORDS = frozenset(
    {"bar", "bars", "beat", "beats", "step", "steps", "bit", "bpm", "hz", "khz", "k", "ms", "s",
     "sec", "secs"}
)  # fmt: skip
_BPM_RES = (
    # "92bpm", "92_bpm", "92 BPM", "92.5bpm", "loop.120bpm"; not the "20" of "1.20bpm" or "120".
    re.compile(r"(?<!\d)(?<!\d\.)(?P<num>\d{2,3}(?:\.\d+)?)[\s_.\-]?bpm(?![a-z])", re.IGNORECASE),
    # "bpm92", "bpm_120", "BPM 92.5"
    re.compile(r"(?<![a-z])bpm[\s_.\-]?(?P<num>\d{2,3}(?:\.\d+)?)(?!\d)", re.IGNORECASE),
)
BPM_FROM_NAME = (40.0, 300.0)
# Tokens shaped like keys that usually are not, compared as written: FM synthesis, AM radio,
# the EBM genre. "Fm" or "fm" is still F minor.
NOT_KEYS = frozenset({"FM", "AM", "EBM"})
# Signs that make a lone token a key ("F#", "E♭"); a plain "b" does not: ab, db, eb, bb.
_BARE_SIGNS = frozenset({"#", "♯", "sharp", "♭", "flat"})


def _is_bank_folder(name: str) -> bool:
    return _BANK_RE.match(name.strip()) is not None


def _folder_name(name: str, rule: str) -> str | None:
    value: str | None = RULES[rule].convert(name)
    return value


def _pad_from_name(stem: str) -> tuple[int, tuple[int, int]] | None:
    match = _PAD_RE.match(stem)
    if match is None or (match["next"] or "").lower() in NOT_PAD_WORDS:
        return None
    pad = int(match["num"])
    return (pad, match.span("num")) if 1 <= pad <= 16 else None


def _bpm_from_name(stem: str) -> tuple[float, tuple[int, int]] | None:
    matches = sorted((m for rx in _BPM_RES for m in rx.finditer(stem)), key=lambda m: m.start())
    low, high = BPM_FROM_NAME
    for match in matches:
        bpm = float(match["num"])
        if low <= bpm <= high:
            return bpm, match.span()
    return None


def _key_from_name(stem: str) -> str | None:
    """The first token (or token pair) that states a key, normalised; None if none does.

    Single tokens need a quality (``Am``, ``C#min``, ``Bbmaj``) or a sharp (``F#``); a bare
    ``A`` or ``Bb`` is too often a word or an abbreviation. A following quality word works
    (``F#_minor``, ``A minor``), as do ``key_C`` and ``in_G`` (``in`` needs a capital, a sign
    or a quality, so "made_in_a_day" is not A major).
    """
    tokens = [t for t in _TOKEN_SPLIT_RE.split(stem) if t]
    for i, token in enumerate(tokens):
        after = [t.lower() for t in tokens[i + 1 : i + 3]]
        marker = token.lower()
        if marker in ("key", "in") and i + 1 < len(tokens):
            match = _KEY_TOKEN_RE.match(tokens[i + 1])
            if match is not None:
                quality = match["quality"] or (
                    after[1] if len(after) > 1 and after[1] in _QUALITY_WORDS else None
                )
                stated = marker == "key" or tokens[i + 1][0].isupper()
                if stated or match["acc"] or quality:
                    return _normalise_key(match["letter"], match["acc"], quality)
        if token in NOT_KEYS:
            continue
        match = _KEY_TOKEN_RE.match(token)
        if match is None:
            continue
        if match["quality"]:
            return _normalise_key(match["letter"], match["acc"], match["quality"])
        if after and after[0] in _QUALITY_WORDS:
            return _normalise_key(match["letter"], match["acc"], after[0])
        if (match["acc"] or "").lower() in _BARE_SIGNS:
            return _normalise_key(match["letter"], match["acc"], None)
    return None


def _cut(stem: str, spans: Sequence[tuple[int, int]]) -> str:
    """Remove spans from a name and mend the separators around each cut."""
    marked = stem
    for start, end in sorted(spans, reverse=True):
        marked = marked[:start] + "\0" + marked[end:]

    def mend(match: re.Match[str]) -> str:
        if match.start() == 0 or match.end() == len(marked):
            return ""
        separators = match.group(0).replace("\0", "")
        return separators[:1] or " "

    return re.sub(r"[\s_.\-\0]*\0[\s_.\-\0]*", mend, marked)


def infer_from_path(relative: PurePath) -> dict[str, Any]:
    """Values read from a path relative to the inbox (a pure function, no file access).

    - ``genre``: the first folder, unless it is a bank folder.
    - ``kit``: the nearest folder that is not a bank folder (with one folder, genre and kit
      are the same name; the layout picks which it uses).
    - ``bank``: the nearest folder named ``A``..``J``, ``bank_A``, ``Bank A``, ``bank-a``.
    - ``pad``: a leading 1-16 in the file name, before a separator (``07_snare``, ``7 snare``,
      ``01.wav``), unless the next word is a count (``4_bars``, ``16 steps``).
    - ``bpm``: a 40-300 number next to "bpm" (``92bpm``, ``92 BPM``, ``bpm_120``, ``92.5bpm``).
    - ``key``: see ``_key_from_name``.
    - ``title``: the stem without the pad number and the BPM token (they are shown in front
      of the name by ``names``); the whole stem if nothing else is left.

    Folder names that would not pass the sidecar rules (too long, only dots) give no value.
    Bytes that are not UTF-8 are read as the characters they most likely meant
    (``pathtext.readable``), so the values are text a musician can read.
    """
    relative = PurePath(readable(str(relative)))
    folders = relative.parent.parts
    values: dict[str, Any] = {}
    if folders and not _is_bank_folder(folders[0]):
        values["genre"] = _folder_name(folders[0], "genre")
    for folder in reversed(folders):
        if _is_bank_folder(folder):
            values.setdefault("bank", _bank(folder))
        elif "kit" not in values:
            values["kit"] = _folder_name(folder, "kit")
    stem = relative.stem
    spans: list[tuple[int, int]] = []
    if (pad := _pad_from_name(stem)) is not None:
        values["pad"], span = pad
        spans.append(span)
    if (bpm := _bpm_from_name(stem)) is not None:
        values["bpm"], span = bpm
        spans.append(span)
    values["key"] = _key_from_name(stem)
    values["title"] = _cut(stem, spans).strip() or stem
    return {name: value for name, value in values.items() if value is not None}


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


def read_metadata(source: Path, root: Path, defaults: Mapping[str, Any] | None = None) -> Metadata:
    """Everything known about ``source``, from its sidecars, folder files, path and defaults.

    ``root`` is the inbox (or the folder given to ``convert``): folder files are looked for
    from ``source``'s folder up to and including ``root``, never above, and path inference
    only reads folders below it. A source outside ``root`` gets its sidecars and what its file
    name says, nothing from folders.

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
    layers.append(("path", infer_from_path(relative)))
    if defaults:
        layers.append(("default", parse_defaults(defaults, "defaults")))

    chosen: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in FIELDS:
        for origin, values in layers:
            if name in values:
                chosen[name], origins[name] = values[name], origin
                break
    return Metadata(
        title=chosen["title"],
        genre=chosen.get("genre"),
        bpm=chosen.get("bpm"),
        key=chosen.get("key"),
        tags=chosen.get("tags") or (),
        kit=chosen.get("kit"),
        bank=chosen.get("bank"),
        pad=chosen.get("pad"),
        origins=origins,
    )
