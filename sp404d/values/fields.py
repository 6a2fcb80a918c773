"""The value rules of metadata: what each field may hold, checked and cleaned the same way
whether it comes from a sidecar, a folder file or the config's defaults."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sp404d.values import checks

FIELDS: tuple[str, ...] = ("title", "genre", "bpm", "key", "tags", "kit", "bank", "pad")
#: Settings a sidecar or folder file may set over the inbox's: sound shaping, and the layout
#: (a folder of a flat inbox may be a kit).
SHAPING_KEYS: tuple[str, ...] = (
    "trim",
    "normalize",
    "channels",
    "mono_below_s",
    "fold_cancels",
    "chop",
    "layout",
)
# Fields a folder file or the config defaults may not set, and why (shown to the user).
PER_FILE_ONLY: Mapping[str, str] = MappingProxyType(
    {
        "title": "every file below would get the same title; put it in the file's sidecar",
        "pad": "every file below would claim the same pad; use a sidecar or a leading number "
        "in the file name (07_snare.wav)",
    }
)

# --------------------------------------------------------------------------------------------
# Value rules: one row per field. A converter returns the clean value, or None if it refuses.

BANK_RE = re.compile(r"^(?:bank[\s_-]*)?([a-j])$", re.IGNORECASE)
_BPM_TEXT_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:bpm)?$", re.IGNORECASE)
_PAD_TEXT_RE = re.compile(r"^\d{1,3}$")
_DECIMAL_COMMA_RE = re.compile(r"^(\d+),(\d{1,2})$")

# A key: letter, optional accidental, optional quality, optionally separated. "m" in any case
# means minor (all-caps sample names write A minor as "AM"); write "maj" for major.
_ACCIDENTAL = r"#|♯|♭|sharp|flat|b"
_QUALITY = r"minor|min|m|major|maj"
_KEY_VALUE_RE = re.compile(
    rf"^(?P<letter>[a-g])[\s_-]*(?P<acc>{_ACCIDENTAL})?[\s_-]*(?P<quality>{_QUALITY})?$",
    re.IGNORECASE,
)
_CAMELOT_RE = re.compile(r"^(1[0-2]|[1-9])\s*([ab])$", re.IGNORECASE)
_CAMELOT_MINOR = ("Abm", "Ebm", "Bbm", "Fm", "Cm", "Gm", "Dm", "Am", "Em", "Bm", "F#m", "Dbm")
_CAMELOT_MAJOR = ("B", "F#", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E")
CAMELOT = {
    **{(n + 1, "A"): k for n, k in enumerate(_CAMELOT_MINOR)},
    **{(n + 1, "B"): k for n, k in enumerate(_CAMELOT_MAJOR)},
}
KEY_TOKEN_RE = re.compile(
    rf"^(?P<letter>[a-g])(?P<acc>{_ACCIDENTAL})?(?P<quality>{_QUALITY})?$", re.IGNORECASE
)
_SHARPS = frozenset({"#", "♯", "sharp"})
_MINORS = frozenset({"m", "min", "minor"})
QUALITY_WORDS = frozenset({"min", "minor", "maj", "major"})


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


def parse_bpm(value: object) -> float | None:
    """A BPM from 20 to 999 as a number or text (``92``, ``\"92.5 BPM\"``); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip().lstrip("\ufeff")  # full-width, BOM
        text = _DECIMAL_COMMA_RE.sub(r"\1.\2", text)  # 92,5 as Europe writes it; not 120,130
        match = _BPM_TEXT_RE.match(text)
        if match is None:
            return None
        value = float(match.group(1))
    if not isinstance(value, int | float) or not 20 <= value <= 999:  # NaN fails this too
        return None
    return float(value)


def parse_key(text: str) -> str | None:
    """``"c# minor"`` -> ``"C#m"``, ``"Bb"`` -> ``"Bb"``, ``"F sharp"`` -> ``"F#"``, the Camelot
    ``"8A"`` -> ``"Am"``; else None.

    The normal form is the letter in upper case, ``#`` or ``b``, and ``m`` for minor; major has
    no suffix. Enharmonic spellings are kept as written (``Gb`` stays ``Gb``).
    """
    text = unicodedata.normalize("NFKC", text).strip().lstrip("\ufeff").strip()
    camelot = _CAMELOT_RE.match(text)
    if camelot is not None:  # DJ software's wheel: 8A is A minor, 8B C major
        number, letter = int(camelot[1]), camelot[2].upper()
        return CAMELOT.get((number, letter))
    match = _KEY_VALUE_RE.match(text)
    if match is None:
        return None
    return normalise_key(match["letter"], match["acc"], match["quality"])


def normalise_key(letter: str, accidental: str | None, quality: str | None) -> str:
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


def bank_letter(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = BANK_RE.match(value.strip())
    return match.group(1).upper() if match else None


def _pad(value: object) -> int | None:
    if isinstance(value, str) and _PAD_TEXT_RE.match(value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        return None
    return value


def _layout(value: object) -> str | None:
    text = value.strip().lower() if isinstance(value, str) else None
    return text if text in checks.LAYOUTS else None


@dataclass(frozen=True)
class FieldRule:
    """How one metadata key is checked; ``expects`` completes "bpm must be ..."."""

    name: str
    expects: str
    convert: Callable[[object], Any]


#: The checks of the shaping keys, the very ones the settings of those names use.
_SHAPING_CHECKS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "trim": checks.trim,
        "normalize": checks.normalize,
        "channels": checks.choice(*checks.CHANNELS),
        "mono_below_s": checks.mono_below_s,
        "fold_cancels": checks.choice(*checks.FOLD_CANCELS),
        "chop": checks.chop,
    }
)


def _setting(name: str) -> Callable[[object], Any]:
    """A shaping key checked as the setting of that name is; ``off`` is kept as False."""

    def convert(value: object) -> Any:
        if value is False or (isinstance(value, str) and value.lower() == "off"):
            return False if name in ("trim", "normalize", "chop") else None
        check = _SHAPING_CHECKS[name]
        try:
            return check(value)
        except ValueError as exc:  # the setting's own words: they say what is expected
            raise InvalidValueError(f"{name} {exc}") from None

    return convert


_NAME_RULE = "a name of 1 to 64 characters without / or \\"
RULES: Mapping[str, FieldRule] = MappingProxyType(
    {
        rule.name: rule
        for rule in (
            FieldRule("title", "one line of text, 1 to 200 characters", _text(200)),
            FieldRule("genre", _NAME_RULE, _text(64, path_part=True)),
            FieldRule("bpm", "a number from 20 to 999", parse_bpm),
            FieldRule("key", "a musical key like C, F#, Bbm or A minor", _key),
            FieldRule("tags", "a list of short texts (or one text)", _tags),
            FieldRule("kit", _NAME_RULE, _text(64, path_part=True)),
            FieldRule("bank", "one letter from A to J", bank_letter),
            FieldRule("pad", "a whole number from 1 to 16", _pad),
            FieldRule("trim", "off or {threshold_db: -60, keep_ms: 5}", _setting("trim")),
            FieldRule("normalize", "off or peak DB, e.g. peak -1", _setting("normalize")),
            FieldRule("channels", "keep or mono", _setting("channels")),
            FieldRule("mono_below_s", "seconds, 0 for every file", _setting("mono_below_s")),
            FieldRule("fold_cancels", "stereo or fold", _setting("fold_cancels")),
            FieldRule("chop", "off, a number of slices (e.g. 16) or onsets", _setting("chop")),
            FieldRule("layout", "flat, genre, bpm or kit", _layout),
        )
    }
)
assert tuple(RULES) == FIELDS + SHAPING_KEYS


class InvalidValueError(Exception):
    """A value broke a rule; the message names the key and says what was expected."""


def shown_value(value: object) -> str:
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


def validate_fields(raw: Mapping[Any, Any], *, shared: str | None) -> dict[str, Any]:
    """Check every key of one source; ``shared`` names a source that applies to many files
    ("a folder file", "defaults"), which may not set ``PER_FILE_ONLY`` fields.

    Keys are matched case-insensitively. The result keeps an explicit empty value as None.
    """
    keys = FIELDS + SHAPING_KEYS
    allowed = [name for name in keys if shared is None or name not in PER_FILE_ONLY]
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.strip().lower() if isinstance(key, str) else key
        if shared is not None and name in PER_FILE_ONLY:
            raise InvalidValueError(f"{name} cannot be set in {shared}: {PER_FILE_ONLY[name]}")
        if name not in allowed:
            close = difflib.get_close_matches(str(name), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidValueError(
                f"unknown key {shown_value(key)}{hint}; allowed keys: {', '.join(allowed)}"
            )
        if name in clean:
            raise InvalidValueError(f"{name} is given twice")
        if value is None:
            if name != "title":  # an empty title means "use the file name"
                clean[name] = None
            continue
        rule = RULES[name]
        converted = rule.convert(value)
        if converted is None:
            raise InvalidValueError(f"{name} must be {rule.expects}, got {shown_value(value)}")
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
        clean = validate_fields(values, shared="defaults")
    except InvalidValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return {name: value for name, value in clean.items() if value is not None}
