"""Every setting, declared once: its key, default, check, description and where it applies.

A setting is a field of :class:`Rules` (what each job follows; sent with it to a worker) or of
:class:`sp404d.config.loading.Config` (which extends Rules with the service's own settings),
declared with :func:`setting`, as gunicorn declares its settings. The YAML keys, the per-inbox
overrides, the command-line flags and ``config/sp404d.example.yaml`` are all read from those
fields, so a new setting is one entry and nothing can drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sp404d.values import parse_defaults
from sp404d.values.checks import (
    CHANNELS,
    FOLD_CANCELS,
    FORMATS,
    OVERS_POLICIES,
    QUALITIES,
    SHORT_POLICIES,
    TRUNCATED_POLICIES,
    Number,
    boolean,
    check_path,
    choice,
    chop,
    mono_below_s,
    normalize,
    number,
    trim,
)


def said(value: Any) -> Any:
    """A setting's value as a config writes it: ``off``, ``16``, ``onsets 8``, ``peak -1``,
    ``{threshold_db: -60, keep_ms: 5}`` (from the typed value, or its JSON form in a record)."""
    if value is False:
        return "off"
    if isinstance(value, (list, tuple)) and len(value) == 2:
        first, second = value
        if first == "equal":
            return str(second)
        if isinstance(first, str) and first.startswith("onsets "):  # ("onsets soft", 8)
            return f"onsets {second} {first.split()[1]}"
        if isinstance(first, str):
            return f"{first} {second:g}"
        return f"{{threshold_db: {first:g}, keep_ms: {second:g}}}"  # trim
    return value


def defaults_check(value: Any) -> Mapping[str, Any]:
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
    checker = choice(*check) if isinstance(check, tuple) else check
    kind: type = str
    if checker is check_path:
        kind = Path
    elif isinstance(checker, Number):
        kind = int if checker.integer else float
    meta = {"setting": (checker, doc, per_inbox, flag, choices, kind, default, example)}
    if required:
        return field(metadata=meta)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


@functools.cache
def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings declared on a dataclass (and its bases), in declaration order (read once
    a class: every plan asks)."""
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
        boolean,
        "The outbox is on removable media (an SD card): "
        "never create it, write only while it is mounted, wait while it is away.",
    )
    format: str = setting(
        "wav", FORMATS, "wav | aiff (16-bit PCM, 48 kHz).", per_inbox=True, flag=True
    )
    quality: str = setting("hq", QUALITIES, "soxr quality: hq (default) or vhq.")
    min_duration_ms: int = setting(
        100,
        number(1, 10_000, integer=True),
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
        number(1, 24 * 3600),
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
        boolean,
        "Use a BPM guessed from a loop's length (a whole number of bars at 60-180 BPM) when "
        "nothing else gives one; otherwise the guess is only recorded (bpm_guess).",
        per_inbox=True,
    )
    analysis: bool = setting(
        True,
        boolean,
        "Listen for the BPM of loops and the key of tonal samples that carry neither (no "
        "sidecar, tag or name gives one): recorded with a confidence (check, status --source).",
        per_inbox=True,
    )
    use_analysis: bool = setting(
        False,
        boolean,
        "Use the BPM and key heard in the sound for the layout, names and notes when nothing "
        "else gives them; otherwise they are only recorded. Decodes each such file once more.",
        per_inbox=True,
    )
    write_txt: bool = setting(
        False, boolean, "Write NAME.txt with the metadata beside each output.", per_inbox=True
    )
    trim: tuple[float, float] | None = setting(
        None,
        trim,
        "Cut leading and trailing silence below threshold_db, keeping keep_ms before the first "
        "sound and after the last (a short fade where the cut is inside sound); off by default.",
        per_inbox=True,
        example="{threshold_db: -60, keep_ms: 5}",
    )
    normalize: tuple[str, float] | None = setting(
        None,
        normalize,
        "peak -1: the output's true peak to -1 dBTP; lufs -14: its integrated loudness to "
        "-14 LUFS (ITU-R BS.1770-4). The overs rule still has the last word. Off by default.",
        per_inbox=True,
        example="peak -1",
    )
    channels: str = setting(
        "keep",
        CHANNELS,
        "mono: fold stereo to mono (half the memory on the unit); a fold whose sides cancel "
        "stays stereo, with a warning.",
        per_inbox=True,
    )
    mono_below_s: float = setting(
        0,
        mono_below_s,
        "With channels: mono, fold only files shorter than this (one-shots); 0: every file.",
        per_inbox=True,
    )
    fold_cancels: str = setting(
        "stereo",
        FOLD_CANCELS,
        "With channels: mono, a file whose channels cancel when folded (one phase-inverted): "
        "stereo keeps it stereo, fold folds it anyway; a warning either way.",
        per_inbox=True,
    )

    chop: tuple[str, int] | None = setting(
        None,
        chop,
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
        """Just the job's rules (of a :class:`~sp404d.config.loading.Config`, also Rules)."""
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
