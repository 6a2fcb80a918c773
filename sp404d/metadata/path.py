"""Metadata read from a path, as sample packs are laid out: genre from the first folder, kit
from the nearest one that is not a bank folder, bank and pad, BPM and key from names."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from sp404d.pathtext import readable
from sp404d.values.fields import (
    BANK_RE,
    KEY_TOKEN_RE,
    QUALITY_WORDS,
    RULES,
    bank_letter,
    normalise_key,
)

# --------------------------------------------------------------------------------------------
# Path inference


_TOKEN_SPLIT_RE = re.compile(r"[\s_.\-()\[\]{},+]+")
_TOKEN_RE = re.compile(r"[^\s_.\-()\[\]{},+]+")  # what _TOKEN_SPLIT_RE leaves
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
    return BANK_RE.match(name.strip()) is not None


def _bare(name: str) -> str:
    """A folder name without the BPM and key it may state (``Boom Bap 90bpm``: ``Boom Bap``);
    empty for a folder that states only those (``90 BPM``, ``C minor``)."""
    spans = [m.span() for rx in _BPM_RES for m in rx.finditer(name)]
    if (key := _key_in_name(name)) is not None:
        spans.append(key[1])
    return _cut(name, spans).strip(" _.-") if spans else name


def kit_of_folder(name: str) -> str | None:
    """The kit a folder's own name gives (``Dusty Kit 90bpm``: ``Dusty Kit``), or None for a
    bank folder or one that names no kit."""
    if not _bare(name) or _is_bank_folder(name):
        return None
    return _folder_name(name, "kit")


def _folder_name(name: str, rule: str) -> str | None:
    """A genre or kit from a folder name (see :func:`_bare`); None if it is not a valid one."""
    value: str | None = RULES[rule].convert(_bare(name))
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


BPM_FROM_LENGTH = (60, 180)  # the tempos a length is read as
BARS = (1, 2, 4, 8, 16, 32)  # of 4/4
LENGTH_TOLERANCE = 0.005


def bpm_from_length(seconds: float) -> float | None:
    """The whole-number tempo at which ``seconds`` is a whole number of 4/4 bars, within 0.5%,
    among 60-180 BPM; of several, the one nearest 120 (a 5.33 s loop is 2 bars at 90 rather
    than 4 at 180). None for a length that fits no tempo (one-shots, most takes)."""
    if seconds <= 0:
        return None
    low, high = BPM_FROM_LENGTH
    found = []
    for bars in BARS:
        exact = 240.0 * bars / seconds
        bpm = round(exact)
        if low <= bpm <= high and abs(exact - bpm) <= LENGTH_TOLERANCE * bpm:
            found.append(bpm)
    return float(min(found, key=lambda b: abs(b - 120))) if found else None


def strip_bpm(title: str) -> str:
    """``title`` without its BPM tokens (``Loop 92bpm`` -> ``Loop``), found as the path's BPM
    is found, so the name never says the BPM twice once the layout puts it in front."""
    spans = [m.span() for rx in _BPM_RES for m in rx.finditer(title)]
    return _cut(title, spans) if spans else title


def _key_in_name(stem: str) -> tuple[str, tuple[int, int]] | None:
    """The first token (or token pair) that states a key, normalised, with where it is in
    ``stem``; None if none does.

    Single tokens need a quality (``Am``, ``C#min``, ``Bbmaj``) or a sharp (``F#``); a bare
    ``A`` or ``Bb`` is too often a word or an abbreviation. A following quality word works
    (``F#_minor``, ``A minor``), as do ``key_C`` and ``in_G`` (``in`` needs a capital, a sign
    or a quality, so "made_in_a_day" is not A major).
    """
    found = list(_TOKEN_RE.finditer(stem))
    tokens = [m.group() for m in found]

    def at(first: int, last: int, key: str) -> tuple[str, tuple[int, int]]:
        return key, (found[first].start(), found[min(last, len(found) - 1)].end())

    for i, token in enumerate(tokens):
        after = [t.lower() for t in tokens[i + 1 : i + 3]]
        marker = token.lower()
        if marker in ("key", "in") and i + 1 < len(tokens):
            match = KEY_TOKEN_RE.match(tokens[i + 1])
            if match is not None:
                quality = match["quality"] or (
                    after[1] if len(after) > 1 and after[1] in QUALITY_WORDS else None
                )
                stated = marker == "key" or tokens[i + 1][0].isupper()
                if stated or match["acc"] or quality:
                    last = i + 1 + (not match["quality"] and quality is not None)
                    return at(i, last, normalise_key(match["letter"], match["acc"], quality))
        if token in NOT_KEYS:
            continue
        match = KEY_TOKEN_RE.match(token)
        if match is None:
            continue
        if match["quality"]:
            return at(i, i, normalise_key(match["letter"], match["acc"], match["quality"]))
        if after and after[0] in QUALITY_WORDS:
            return at(i, i + 1, normalise_key(match["letter"], match["acc"], after[0]))
        if (match["acc"] or "").lower() in _BARE_SIGNS:
            return at(i, i, normalise_key(match["letter"], match["acc"], None))
    return None


def _key_from_name(stem: str) -> str | None:
    found = _key_in_name(stem)
    return found[0] if found else None


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
    - ``bpm``: a 40-300 number next to "bpm" (``92bpm``, ``92 BPM``, ``bpm_120``, ``92.5bpm``),
      in the file name, else in the folders, nearest first (``Loops/90 BPM/``).
    - ``key``: see ``_key_in_name``; the file name, else the folders (``Keys - C minor/``).
    - ``genre`` and ``kit`` from a folder name lose its BPM and key (``Boom Bap 90bpm``).
    - ``title``: the stem without the pad number and the BPM token (they are shown in front
      of the name by ``names``); the whole stem if nothing else is left.

    Folder names that would not pass the sidecar rules (too long, only dots) give no value.
    Bytes that are not UTF-8 are read as the characters they most likely meant
    (``pathtext.readable``), so the values are text a musician can read.
    """
    relative = PurePath(readable(str(relative)))
    folders = relative.parent.parts
    values: dict[str, Any] = {}
    named = [f for f in folders if _bare(f)]  # a folder like "90 BPM" names no genre or kit
    if named and not _is_bank_folder(named[0]):
        values["genre"] = _folder_name(named[0], "genre")
    for folder in reversed(named):
        if _is_bank_folder(folder):
            values.setdefault("bank", bank_letter(folder))
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
    for folder in reversed(folders):  # then the folders, nearest first
        if "bpm" not in values and (found := _bpm_from_name(folder)) is not None:
            values["bpm"] = found[0]
        if values.get("key") is None:
            values["key"] = _key_from_name(folder)
    values["title"] = _cut(stem, spans).strip() or stem
    return {name: value for name, value in values.items() if value is not None}
