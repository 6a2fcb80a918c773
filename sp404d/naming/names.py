"""Names on the card: ASCII, FAT32-safe, short enough for the unit, and unique in their folder.

Every path part sp404d writes (a file's stem, a folder from ``genre`` or ``kit`` metadata) goes
through the same steps, in this order:

1. :func:`ascii_text`: NFC, then transliteration with ``anyascii`` (``Café`` -> ``Cafe``,
   ``カメラ`` -> ``kamera``, ``北京`` -> ``BeiJing``); emoji are dropped. The SP-404MK2 shows any
   other character as ``_`` and then refuses the file ("Unsupported File"), so dropping
   accented letters (``Caf``) is not an option.
2. :data:`SANITIZE_RULES`: a table of (regex, replacement) rules, applied in order, that leaves
   only :data:`SAFE_CHARS`. It is data, as in beets' ``CHAR_REPLACE``, so a reader can check it.
3. Truncation to a length in characters (all ASCII by then, so characters are bytes), after
   which the ends are cleaned again, as beets' ``legalize_path`` does.
4. A fallback for names with nothing left, and a ``_`` after names Windows reserves
   (:data:`RESERVED_NAMES`).

Decisions worth knowing:

* **Metadata cannot leave the outbox.** ``/`` and ``\\`` become ``_``, leading dots are
  stripped, and a part is never empty, so ``..``, ``../../etc`` and ``/abs`` all become a plain
  name inside the folder they were meant for.
* **The FAT rules are met by construction**, not by checking: no ``<>:"/\\|?*``, no control
  characters, no trailing dot or space, no reserved name. Length is the caller's ``max_len``
  (23 for stems, 64 for folders by default), far below FAT's 255.
* **No ``~`` ever.** FAT32 gives long names 8.3 aliases such as ``KICKDR~1.WAV``, and sp404d's
  temp files are ``~SXXXXXX.TMP``: a generated name can never look like either.
* **Case never tells two files apart.** FAT32 treats ``Kick.wav`` and ``kick.wav`` as one file,
  so :func:`unique_filename` compares :func:`fold` keys. That key is deliberately coarser than
  the card's own rule: a false match costs a ``_2``, a missed one would overwrite a sample.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from anyascii import anyascii

from sp404d.pathtext import readable

__all__ = [
    "EDGE_CHARS",
    "RESERVED_NAMES",
    "SAFE_CHARS",
    "SANITIZE_RULES",
    "ascii_text",
    "fold",
    "is_reserved",
    "safe_component",
    "sample_stem",
    "unique_filename",
]

#: Every character a generated name may hold. Conservative on purpose: what the unit displays,
#: what FAT32 stores, and what no shell or sync client treats specially.
SAFE_CHARS = re.compile(r"[A-Za-z0-9_\-+#().]+")

#: Characters a name may not start or end with: a leading ``.`` hides the file on macOS and
#: Linux, FAT drops trailing dots and spaces, and ``_``/``-`` at the ends are leftovers of
#: replaced characters that only waste the unit's 23.
EDGE_CHARS = "_.- "

#: Rules applied in order to ASCII text; what remains matches :data:`SAFE_CHARS`.
SANITIZE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Apostrophes join a word rather than split it: "Don't Stop" -> "Dont_Stop".
    (re.compile(r"['`]"), ""),
    # "Drum & Bass" -> "Drum+Bass": keeps the meaning in one character.
    (re.compile(r"\s*&\s*"), "+"),
    # A run of whitespace is one word gap.
    (re.compile(r"\s+"), "_"),
    # Everything outside the safe set: the separators / and \, FAT's forbidden <>:"|?*,
    # ~ (8.3 aliases), $ and % (shells), and any other punctuation.
    (re.compile(r"[^A-Za-z0-9_\-+#().]"), "_"),
    # "Artist - Title" -> "Artist-Title": a dash already separates, and every character counts.
    (re.compile(r"_*-[-_]*"), "-"),
    (re.compile(r"_{2,}"), "_"),
)

#: Device names Windows (and so many FAT tools) will not use as a file or folder name, with or
#: without an extension: ``con.wav`` and ``nul.tar.gz`` are reserved too. COM0 and LPT0 are in
#: Microsoft's current list.
RESERVED_NAMES: frozenset[str] = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}
)

_SOKUON = frozenset("ッっ")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_SPACE = re.compile(r"[\t\n\v\f\r]")


def _transliterate(ch: str, out: str, following: str) -> str:
    """``out`` (anyascii's form of ``ch``) adjusted by what follows it in the text.

    Emoji are dropped: anyascii spells them ``:thumbsup:``, noise in a 23-character name. Small
    tsu doubles the next consonant, so that "キック" reads "kikku" rather than "kitku".
    """
    if len(out) > 2 and out[0] == out[-1] == ":":
        return ""
    if ch in _SOKUON and following[:1].isalpha() and following[0] not in "aeiou":
        return following[0]
    return out


def ascii_text(text: str) -> str:
    """``text`` as printable ASCII: NFC-normalised, transliterated, control characters removed.

    Tabs and line breaks become spaces (they separated words); other control characters and
    emoji are dropped. The result may be empty and may still hold characters that are unsafe in
    a path (``/``, ``:``): this is the readable form, :func:`safe_component` the storable one.
    NFC comes first because macOS hands out decomposed names, and decomposed Hangul would not
    transliterate as whole syllables.
    """
    text = unicodedata.normalize("NFC", readable(text))  # a name's non-UTF-8 bytes: see pathtext
    parts = [anyascii(ch) for ch in text] + [""]
    out = "".join(_transliterate(ch, parts[i], parts[i + 1]) for i, ch in enumerate(text))
    return _CONTROL.sub("", _CONTROL_SPACE.sub(" ", out))


def _sanitize(text: str) -> str:
    """ASCII text through :data:`SANITIZE_RULES`; the ends are left to the caller."""
    for pattern, replacement in SANITIZE_RULES:
        text = pattern.sub(replacement, text)
    return text


def _cut(text: str, max_len: int) -> str:
    """At most ``max_len`` characters, without an edge character left at the cut."""
    return text[:max_len].rstrip(EDGE_CHARS)


def is_reserved(name: str) -> bool:
    """True when FAT/Windows reserves ``name``: the part before its first dot is a device name."""
    return name.partition(".")[0].upper() in RESERVED_NAMES


def _unreserve(name: str, max_len: int) -> str:
    """``name``, or with ``_`` after its reserved device part (``CON`` -> ``CON_``,
    ``nul.txt`` -> ``nul_.txt``), still within ``max_len``."""
    if not is_reserved(name):
        return name
    base, _, rest = name.partition(".")
    base = base[: max_len - 1] + "_"
    rest = _cut(rest, max(0, max_len - len(base) - 1))
    return f"{base}.{rest}" if rest else base


def _check_len(max_len: int) -> None:
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, not {max_len}")


def _clean(text: str, max_len: int) -> str:
    """Sanitised, stripped at both ends and cut to ``max_len``; possibly empty or reserved."""
    return _cut(_sanitize(ascii_text(text)).strip(EDGE_CHARS), max_len)


def _clean_or_fallback(text: str, max_len: int, fallback: str) -> str:
    """:func:`_clean` of ``text``, or of ``fallback`` when nothing of ``text`` survives."""
    name = _clean(text, max_len) or _clean(fallback, max_len)
    if not name:
        raise ValueError(f"fallback {fallback!r} has no safe characters")
    return name


def safe_component(text: str, *, max_len: int = 64, fallback: str = "untitled") -> str:
    """One FAT32- and SP-404-safe path part: a folder name, or a file stem without extension.

    Guaranteed: only :data:`SAFE_CHARS`, 1 to ``max_len`` characters, no leading ``.``, ``_``
    or ``-``, no trailing ``.``, ``_``, ``-`` or space (except the ``_`` that un-reserves a
    device name), never a reserved name, never ``.`` or ``..``. ``fallback`` (made safe the same
    way) is used when nothing of ``text`` survives, e.g. for an emoji-only title.
    """
    _check_len(max_len)
    return _unreserve(_clean_or_fallback(text, max_len, fallback), max_len)


def _clean_prefix(prefix: str) -> str:
    """A prefix made safe, keeping its trailing separator (``pad_07_`` stays ``pad_07_``)."""
    return _sanitize(ascii_text(prefix)).lstrip(EDGE_CHARS)


def sample_stem(
    title: str, *, prefix: str = "", max_len: int = 23, fallback: str = "sample"
) -> str:
    """The stem of an output file: ``prefix`` whole, then as much of ``title`` as fits.

    The unit shows 23 characters, so the end of the title is what gets cut, never the pad or BPM
    prefix a musician sorts by. A prefix of ``max_len`` or more is itself cut (without a dangling
    ``_``), and the title is then left out. The result meets every guarantee of
    :func:`safe_component` with the same ``max_len``.
    """
    _check_len(max_len)
    head = _clean_prefix(prefix)
    room = max_len - len(head)
    if room < 1:
        return _unreserve(_cut(head, max_len), max_len)
    stem = head + _clean_or_fallback(title, room, fallback)
    # Only the start of a name can make it reserved: "pad_07_CON" is fine, "CON" alone is not.
    return _unreserve(stem, max_len)


def fold(name: str) -> str:
    """The key under which FAT32 (and Windows, and exFAT) sees two names as one file.

    Upper-casing *and* case-folding, after NFC and without trailing dots and spaces (which Windows
    drops): coarser than any of those filesystems' own rules, on purpose. Two names with equal
    keys are treated as the same file; the price of a false match is only a ``_2``.
    """
    return unicodedata.normalize("NFC", name).rstrip(". ").upper().casefold()


def unique_filename(stem: str, ext: str, taken: Collection[str], *, max_len: int = 23) -> str:
    """``stem + ext``, or ``stem_2 + ext``, ``stem_3 + ext``... whichever is free in ``taken``.

    ``taken`` holds the :func:`fold` keys of the names already in the folder and of those planned
    there (for the ASCII names sp404d writes, ``str.casefold()`` gives the same keys). It is used
    as is, not re-folded, so a planner can keep one set per folder and ask thousands of times
    without copying it. A suffixed
    stem is shortened to fit ``max_len`` (or the stem's own length, if the caller chose a longer
    one): ``Very_Long_Sample_Name_X`` becomes ``Very_Long_Sample_Name_2``, then ``..._Nam_10``.
    ``stem`` is expected to come from :func:`sample_stem` or :func:`safe_component`; the suffix
    keeps it safe, since ``X_n`` is never a reserved name. Two sources that clean to the same
    name therefore never overwrite each other.
    """
    _check_len(max_len)
    if fold(stem + ext) not in taken:
        return stem + ext
    limit = max(max_len, len(stem))
    n = 2
    while True:
        suffix = f"_{n}"
        base = _cut(stem, limit - len(suffix)) if limit > len(suffix) else ""
        # Without room for any of the stem, the number alone still names a distinct file.
        candidate = f"{base}{suffix}{ext}" if base else f"{n}{ext}"
        if fold(candidate) not in taken:
            return candidate
        n += 1
