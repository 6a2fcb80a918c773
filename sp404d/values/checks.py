"""The checks of every value a musician writes, in a config or a sidecar: each takes the raw
YAML value and returns the typed one, or raises ValueError saying what is allowed.

One place for them, so a setting and the same key in a sidecar or folder file (``chop: 16``,
``trim: off``) are read alike; :mod:`sp404d.config.settings` declares the settings with them and
:mod:`sp404d.values.fields` the metadata fields.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
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


def choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).lower() if isinstance(value, str) else None
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}; got {shown(value)}")
        return text

    return check


WORDS = {"yes": True, "on": True, "no": False, "off": False}


def boolean(value: Any) -> bool:
    # yes/no/on/off: YAML 1.1 habits, which the strict loader reads as plain text.
    if isinstance(value, str) and value.lower() in WORDS:
        return WORDS[value.lower()]
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false; got {shown(value)}")
    return value


@dataclass(frozen=True)
class Number:
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


def number(low: float, high: float, *, integer: bool = False) -> Number:
    return Number(low, high, integer)


def patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a list of file name patterns, e.g. ['*.bak', 'drafts/*']")
    return tuple(value)


def trim(value: Any) -> tuple[float, float] | None:
    """``{threshold_db: -60, keep_ms: 5}`` (either key may be left out), or ``off``."""
    if value in (False, "off", None):
        return None
    if not isinstance(value, dict) or set(value) - {"threshold_db", "keep_ms"}:
        raise ValueError(f"must be off or {{threshold_db: -60, keep_ms: 5}}; got {shown(value)}")
    try:
        threshold = number(-120, -1)(value.get("threshold_db", -60))
    except ValueError as exc:
        raise ValueError(f"threshold_db {exc}") from None
    try:
        keep = number(0, 1000)(value.get("keep_ms", 5))
    except ValueError as exc:
        raise ValueError(f"keep_ms {exc}") from None
    return (float(threshold), float(keep))


def normalize(value: Any) -> tuple[str, float] | None:
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


SENSITIVITIES = ("soft", "mid", "hard")


def chop(value: Any) -> tuple[str, int] | None:
    """``16`` (equal slices), ``onsets`` (at its hits, at most 16 slices), ``onsets 8`` (at
    most 8), ``onsets 8 soft`` (or ``hard``: how hard a hit must be; ``mid`` by default),
    ``markers`` (at the markers the file carries, at most 16; ``markers 32``), or ``off``.

    As ``(way, most)``: ``("equal", 16)``, ``("onsets", 16)``, ``("onsets soft", 8)``,
    ``("markers", 16)``."""
    if value in (False, "off", None):
        return None
    words = [w.lower() for w in str(value).split()] if isinstance(value, (int, str)) else []
    if value is True:
        words = []
    count: Any = None
    way = ""
    if len(words) == 1 and words[0].isdigit():
        way, count = "equal", int(words[0])
    elif words and words[0] in ("onsets", "markers") and len(words) <= 3:
        way, rest = words[0], words[1:]
        count = 16
        if rest and rest[0].isdigit():
            count = int(rest.pop(0))
        if way == "onsets" and rest and rest[0] in SENSITIVITIES:
            sensitivity = rest.pop(0)
            way = way if sensitivity == "mid" else f"onsets {sensitivity}"
        if rest:
            count = None
    if count is not None and 2 <= count <= CHOP_MOST:
        return (way, count)
    raise ValueError(
        f"must be off, a number of equal slices (2 to {CHOP_MOST}), onsets, onsets N, "
        f"onsets N soft|mid|hard, or markers, e.g. 16; got {shown(value)}"
    )


def chop_said(way: str, count: int) -> str:
    """A chop as ``check`` says it: ``chop at its onsets into at most 16 slices (soft)``."""
    if way == "equal":
        return f"chop into {count} equal slices"
    if way == "markers":
        return f"chop at its markers into at most {count} slices"
    return f"chop at its onsets into at most {count} slices" + (
        f" ({way.split()[1]})" if " " in way else ""
    )


#: The shaping checks a sidecar or folder file shares with the settings of those names.
CHANNELS = ("keep", "mono")
FOLD_CANCELS = ("stereo", "fold")
mono_below_s = number(0, 86_400)
