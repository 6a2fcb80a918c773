"""File names as text, whatever bytes the OS allowed in them.

Linux names are bytes. A sample pack zipped on Windows and unzipped here often has Latin-1 or
CP1252 bytes (``Caf\\xe9.wav``) that are not UTF-8. Python hands such a name over with each
undecodable byte ``0xNN`` as the lone surrogate ``U+DCNN`` (PEP 383, ``surrogateescape``), and
``os.fsencode`` turns it back into the very same bytes. sp404d keeps that form everywhere:

- **stored**: the journal (JSON) writes the surrogate as the escape ``\\udcNN``; reading it back
  and calling ``os.fsencode`` gives the original bytes, so the record still names the file;
- **shown**: :func:`printable` spells each such byte ``\\xNN`` (``Caf\\xe9.wav``): never a
  UnicodeEncodeError, whatever the terminal's locale, and unambiguous;
- **turned into a sample name**: :func:`readable` guesses the characters the bytes stood for
  (CP1252, then Latin-1), so ``Caf\\xe9`` becomes ``Café`` and then ``Cafe`` on the card.
"""

from __future__ import annotations

import re

_ESCAPED = re.compile("[\udc80-\udcff]+")


def has_undecodable(text: str) -> bool:
    """True when ``text`` came from a name with bytes that are not UTF-8."""
    return _ESCAPED.search(text) is not None


def printable(text: str) -> str:
    """``text`` safe to print or write as UTF-8: each undecodable byte as ``\\xNN``."""
    if not has_undecodable(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _guess(match: re.Match[str]) -> str:
    raw = bytes(ord(ch) - 0xDC00 for ch in match.group())
    try:
        return raw.decode("cp1252")  # what Windows writes for Western names
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # every byte is a character here


def readable(text: str) -> str:
    """The characters an undecodable name most likely meant (``Caf\\xe9`` -> ``Café``)."""
    return _ESCAPED.sub(_guess, text)
