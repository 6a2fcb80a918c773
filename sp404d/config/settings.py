"""Every setting, declared once: its key, default, check, description and where it applies.

A setting is a field of :class:`Rules` (what each job follows; sent with it to a worker) or of
:class:`sp404d.config.loading.Config` (which extends Rules with the service's own settings), declared
with :func:`setting`, as gunicorn declares its settings. The YAML keys, the per-inbox overrides,
the command-line flags and ``config/sp404d.example.yaml`` are all read from those fields, so a
new setting is one entry and nothing can drift apart.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

LAYOUTS = ("flat", "genre", "bpm", "kit")
FORMATS = ("wav", "aiff")
QUALITIES = ("hq", "vhq")
SHORT_POLICIES = ("reject", "pad")
OVERS_POLICIES = ("limit", "clip")
TRUNCATED_POLICIES = ("reject", "keep")
DISPOSITIONS = ("keep", "move", "delete")
LOG_FORMATS = ("auto", "console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def said(value: Any) -> Any:
    """A setting's value as a config writes it: ``off``, ``16``, ``onsets 8``, ``peak -1``,
    ``{threshold_db: -60, keep_ms: 5}`` (from the typed value, or its JSON form in a record)."""
    if value is False:
        return "off"
    if isinstance(value, (list, tuple)) and len(value) == 2:
        first, second = value
        if first == "equal":
            return str(second)
        if isinstance(first, str):
            return f"{first} {second:g}"
        return f"{{threshold_db: {first:g}, keep_ms: {second:g}}}"  # trim
    return value


def shown(value: Any, limit: int = 60) -> str:
    """``value`` for a one-line message: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- checks: each takes the raw YAML value and returns the typed one or raises ValueError ---


def check_path(value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a folder or file path (text)")
    if _CONTROL.search(value):
        raise ValueError(f"must be a path without control characters; got {shown(value)}")
    # Absolute, so the journal's paths stay meaningful whatever folder a later command runs in.
    path = Path(os.path.expandvars(os.path.expanduser(value.strip()))).absolute()
    if _CONTROL.search(str(path)):  # from an environment variable
        raise ValueError(f"must be a path without control characters; got {shown(str(path))}")
    return path


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).lower() if isinstance(value, str) else None
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}; got {shown(value)}")
        return text

    return check


_WORDS = {"yes": True, "on": True, "no": False, "off": False}


def _bool(value: Any) -> bool:
    # yes/no/on/off: YAML 1.1 habits, which the strict loader reads as plain text.
    if isinstance(value, str) and value.lower() in _WORDS:
        return _WORDS[value.lower()]
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false; got {shown(value)}")
    return value


@dataclass(frozen=True)
class _Number:
    """A number from ``low`` to ``high`` (a whole one if ``integer``)."""

    low: float
    high: float
    integer: bool = False

    def __call__(self, value: Any) -> float:
        ok = isinstance(value, int) if self.integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or not self.low <= value <= self.high:
            kind = "a whole number" if self.integer else "a number"
            raise ValueError(
                f"must be {kind} from {self.low:g} to {self.high:g}; got {shown(value)}"
            )
        return value  # type: ignore[no-any-return]


def _number(low: float, high: float, *, integer: bool = False) -> _Number:
    return _Number(low, high, integer)


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a list of file name patterns, e.g. ['*.bak', 'drafts/*']")
    return tuple(value)


def _trim(value: Any) -> tuple[float, float] | None:
    """``{threshold_db: -60, keep_ms: 5}`` (either key may be left out), or ``off``."""
    if value in (False, "off", None):
        return None
    if not isinstance(value, dict) or set(value) - {"threshold_db", "keep_ms"}:
        raise ValueError(f"must be off or {{threshold_db: -60, keep_ms: 5}}; got {shown(value)}")
    try:
        threshold = _number(-120, -1)(value.get("threshold_db", -60))
    except ValueError as exc:
        raise ValueError(f"threshold_db {exc}") from None
    try:
        keep = _number(0, 1000)(value.get("keep_ms", 5))
    except ValueError as exc:
        raise ValueError(f"keep_ms {exc}") from None
    return (float(threshold), float(keep))


def _normalize(value: Any) -> tuple[str, float] | None:
    """``peak -1`` (the output's true peak, dBTP), ``lufs -14`` (integrated loudness,
    ITU-R BS.1770-4), or ``off``."""
    if value in (False, "off", None):
        return None
    words = str(value).split() if isinstance(value, str) else []
    if len(words) == 2 and words[0].lower() in ("peak", "lufs"):
        try:
            target = float(words[1])
        except ValueError:
            target = math.nan
        if -40 <= target <= 0:
            return (words[0].lower(), target)
    raise ValueError(
        f"must be off, peak DB or lufs DB (from -40 to 0), e.g. peak -1; got {shown(value)}"
    )


CHOP_MOST = 64  # slices of one loop: four banks of pads


def _chop(value: Any) -> tuple[str, int] | None:
    """``16`` (equal slices), ``onsets`` (at its transients, at most 16 slices), ``onsets 8``
    (at most 8), or ``off``."""
    if value in (False, "off", None):
        return None
    words = str(value).split() if isinstance(value, (int, str)) and value is not True else []
    count: Any = None
    if len(words) == 1 and words[0].isdigit():
        way, count = "equal", int(words[0])
    elif words and words[0].lower() == "onsets" and len(words) <= 2:
        way = "onsets"
        count = 16 if len(words) == 1 else (int(words[1]) if words[1].isdigit() else None)
    if count is not None and 2 <= count <= CHOP_MOST:
        return (way, count)
    raise ValueError(
        f"must be off, a number of equal slices (2 to {CHOP_MOST}), onsets, or onsets N "
        f"(at most N slices), e.g. 16; got {shown(value)}"
    )


def _defaults(value: Any) -> Mapping[str, Any]:
    from sp404d.metadata.read import parse_defaults  # the metadata stack, only when it is used

    if not isinstance(value, dict):
        raise ValueError("must be a mapping of metadata fields, e.g. {genre: hiphop}")
    return parse_defaults(value, "config defaults")


# --- the declaration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One config key, as read from its field: default, check, description, where it applies.

    ``default`` None with ``required``: worked out when the config is built (the outbox and the
    journal's default folders). ``choices`` and ``kind`` shape its command-line flag, if any.
    """

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str
    per_inbox: bool = False
    flag: bool = False
    choices: tuple[str, ...] = ()
    kind: type = str
    example: str | None = None  # shown, commented out, in the example file (no default value)


def setting(
    default: Any,
    check: Callable[[Any], Any] | tuple[str, ...],
    doc: str,
    *,
    per_inbox: bool = False,
    flag: bool = False,
    required: bool = False,
    example: str | None = None,
) -> Any:
    """A dataclass field that is a setting. ``check`` may be a tuple of allowed words.

    ``required``: no default on the dataclass (it is always given when a config is built).
    """
    choices = check if isinstance(check, tuple) else ()
    checker = _choice(*check) if isinstance(check, tuple) else check
    kind: type = str
    if checker is check_path:
        kind = Path
    elif isinstance(checker, _Number):
        kind = int if checker.integer else float
    meta = {"setting": (checker, doc, per_inbox, flag, choices, kind, default, example)}
    if required:
        return field(metadata=meta)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings declared on a dataclass (and its bases), in declaration order."""
    found = []
    for f in fields(cls):
        if "setting" not in f.metadata:
            continue
        check, doc, per_inbox, flag, choices, kind, default, example = f.metadata["setting"]
        if f.default is not MISSING:
            default = f.default
        found.append(Setting(f.name, default, check, doc, per_inbox, flag, choices, kind, example))
    return tuple(found)


@dataclass(frozen=True, kw_only=True)
class Rules:
    """The settings each job follows, sent with it to a worker: small and picklable."""

    outbox: Path = setting(
        None,
        check_path,
        "Where converted files go. On an SD card: <card>/IMPORT.",
        flag=True,
        required=True,
    )
    outbox_removable: bool = setting(
        False,
        _bool,
        "The outbox is on removable media (an SD card): "
        "never create it, write only while it is mounted, wait while it is away.",
    )
    format: str = setting(
        "wav", FORMATS, "wav | aiff (16-bit PCM, 48 kHz).", per_inbox=True, flag=True
    )
    quality: str = setting("hq", QUALITIES, "soxr quality: hq (default) or vhq.")
    min_duration_ms: int = setting(
        100,
        _number(1, 10_000, integer=True),
        "Shortest sample the unit takes reliably.",
        per_inbox=True,
    )
    short_files: str = setting(
        "reject",
        SHORT_POLICIES,
        "What to do with files under min_duration_ms: reject, or pad with silence.",
        per_inbox=True,
    )
    max_duration_s: float = setting(
        960,
        _number(1, 24 * 3600),
        "Longest input accepted; the unit takes about 16 minutes.",
        per_inbox=True,
    )
    overs: str = setting(
        "limit",
        OVERS_POLICIES,
        "Peaks past full scale after resampling: limit (turn the file down just enough, "
        "recorded as gain_db) or clip (recorded as clipped_samples).",
        per_inbox=True,
    )
    truncated: str = setting(
        "reject",
        TRUNCATED_POLICIES,
        "A file that ends before its header says (a broken download, a copy cut short): "
        "reject it, or keep what it holds (recorded as truncated in the journal).",
        per_inbox=True,
    )
    bpm_from_length: bool = setting(
        False,
        _bool,
        "Use a BPM guessed from a loop's length (a whole number of bars at 60-180 BPM) when "
        "nothing else gives one; otherwise the guess is only recorded (bpm_guess).",
        per_inbox=True,
    )
    write_txt: bool = setting(
        False, _bool, "Write NAME.txt with the metadata beside each output.", per_inbox=True
    )
    trim: tuple[float, float] | None = setting(
        None,
        _trim,
        "Cut leading and trailing silence below threshold_db, keeping keep_ms before the first "
        "sound and after the last (a short fade where the cut is inside sound); off by default.",
        per_inbox=True,
        example="{threshold_db: -60, keep_ms: 5}",
    )
    normalize: tuple[str, float] | None = setting(
        None,
        _normalize,
        "peak -1: the output's true peak to -1 dBTP; lufs -14: its integrated loudness to "
        "-14 LUFS (ITU-R BS.1770-4). The overs rule still has the last word. Off by default.",
        per_inbox=True,
        example="peak -1",
    )
    channels: str = setting(
        "keep",
        ("keep", "mono"),
        "mono: fold stereo to mono (half the memory on the unit); a fold whose sides cancel "
        "stays stereo, with a warning.",
        per_inbox=True,
    )
    mono_below_s: float = setting(
        0,
        _number(0, 86_400),
        "With channels: mono, fold only files shorter than this (one-shots); 0: every file.",
        per_inbox=True,
    )
    fold_cancels: str = setting(
        "stereo",
        ("stereo", "fold"),
        "With channels: mono, a file whose channels cancel when folded (one phase-inverted): "
        "stereo keeps it stereo, fold folds it anyway; a warning either way.",
        per_inbox=True,
    )

    chop: tuple[str, int] | None = setting(
        None,
        _chop,
        "16: cut each file into 16 equal slices onto consecutive pads (NAME_01..16); onsets "
        "(or onsets 8): cut at its transients, at most 16 (8) slices. Off by default.",
        per_inbox=True,
        example="16",
    )

    @property
    def extension(self) -> str:
        return ".wav" if self.format == "wav" else ".aif"

    def fingerprint(self) -> str:
        """The settings that change the output's bytes; part of every job key."""
        return (
            f"{self.format}|{self.quality}|{self.overs}|{self.min_duration_ms}|{self.short_files}"
            # Only when not the default, so that adding the setting re-does no finished job.
            + ("" if self.truncated == "reject" else f"|truncated={self.truncated}")
            + "".join(f"|{k}={v}" for k, v in self.shaping().items())
        )

    def shaping(self) -> dict[str, Any]:
        """The sound shaping asked for (nothing by default)."""
        asked: dict[str, Any] = {}
        if self.trim is not None:
            asked["trim"] = self.trim
        if self.normalize is not None:
            asked["normalize"] = self.normalize
        if self.channels == "mono":
            asked["mono"] = self.mono_below_s or "all"
            if self.fold_cancels != "stereo":
                asked["fold_cancels"] = self.fold_cancels
        if self.chop is not None:
            asked["chop"] = self.chop
        return asked

    def rules(self) -> Rules:
        """Just the job's rules (of a :class:`~sp404d.config.loading.Config`, which is also Rules)."""
        return Rules(**{s.name: getattr(self, s.name) for s in settings_of(Rules)})

    def shaped(self, shaping: Mapping[str, Any]) -> Rules:
        """These rules with a sidecar's or folder file's shaping over them (``False``: off)."""
        if not shaping:
            return self
        known = {s.name for s in settings_of(Rules)}
        over: dict[str, Any] = {
            k: None if v is False else v for k, v in shaping.items() if k in known
        }
        return replace(self, **over) if over else self

    def as_record(self) -> dict[str, Any]:
        """The rules a job was rendered with, for its record (JSON values): with the source's
        bytes they make its output again, byte for byte (``sp404d rebuild``). Where the outbox
        is and whether it is a card are the record's ``outbox``, not rendering rules."""
        return {
            s.name: list(v) if isinstance(v := getattr(self, s.name), tuple) else v
            for s in settings_of(Rules)
            if s.name not in _PLACE
        }


#: Rules that say where a job writes, not how it renders.
_PLACE = ("outbox", "outbox_removable")


def rules_from_record(data: Any, outbox: Path, *, removable: bool = False) -> Rules:
    """The :class:`Rules` a record's ``rules`` (:meth:`Rules.as_record`) stand for, writing
    below ``outbox``. Raises ValueError for rules this version cannot read (a field it does
    not know, a value of the wrong shape)."""
    if not isinstance(data, dict):
        raise ValueError("the record holds no rules")
    known = {s.name: s for s in settings_of(Rules)}
    values: dict[str, Any] = {"outbox": outbox, "outbox_removable": removable}
    for name, value in data.items():
        if name not in known or name in _PLACE:
            raise ValueError(f"rules of another version: {name!r}")
        default = known[name].default
        if isinstance(value, list):
            value = tuple(value)
        elif (
            value is not None
            and default is not None
            and type(value) is not type(default)
            and not (isinstance(default, float) and isinstance(value, int))
        ):
            raise ValueError(f"rule {name} is {value!r}")
        values[name] = value
    try:
        return Rules(**values)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
