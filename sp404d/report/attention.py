"""What needs the user: files refused or failed since the last look, each with what to do.

``status`` leads with these, then remembers how far the user has looked (the last record's id,
and the refusals it showed, in ``JOURNAL.seen``), so the next look shows only what is new: not
the same refusal of the same file again (``convert`` run twice over a folder refuses a bad file
twice). A file that converted since its refusal (fixed, or retried) needs nothing.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sp404d.durable import replace_whole
from sp404d.journal import Journal

FIRST_LOOK_SCAN = 10_000  # records looked through when nothing was looked at before
SHOWN_KEPT = 2_000  # refusals remembered as shown

#: What to do about a refusal, by how its reason starts.
_HINTS = (
    ("too short", "pad it with silence (short_files: pad) or give a longer sample"),
    ("too long to chop", "chop takes loops up to 43 s: cut it shorter, or chop: off for it"),
    ("too long", "cut it shorter, or raise max_duration_s if the unit takes it"),
    ("truncated", "the file ends early: copy or download it again (or truncated: keep)"),
    ("corrupt audio file", "export or download the file again"),
    ("broken audio", "export the file again"),
    ("empty", "the file holds no sound: export it again"),
    ("unsupported audio encoding", "re-export it as PCM WAV, AIFF, FLAC or MP3"),
    ("not an audio file", "only audio files are converted; move it out of the inbox"),
    ("sidecar", "fix the sidecar file; it is read again when it changes"),
    ("bank ", "move a sample to another bank or pad (its sidecar's bank/pad)"),
    ("kit ", "start a new kit (its sidecar's or folder's kit name)"),
)


def hint(status: str | None, reason: str | None) -> str:
    """One line of what to do; a file is tried again on its own once it (or its sidecar)
    changes, and ``sp404d retry`` puts it back in the queue after anything else is fixed."""
    if status == "failed":
        return "fix the cause (the card, a permission), then: sp404d retry --failed"
    text = (reason or "").lower()
    for start, what in _HINTS:
        if text.startswith(start):
            return what
    return "fix the file or its sidecar (it is tried again when it changes), or sp404d retry"


def seen_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".seen")


@dataclass(frozen=True)
class Seen:
    """How far the user has looked: the last record id, when, and the refusals shown."""

    last_id: int = 0
    at: str | None = None
    shown: frozenset[tuple[str, str]] = frozenset()  # (source, reason)


def last_seen(journal: Path) -> Seen:
    try:
        data = json.loads(seen_path(journal).read_text(encoding="utf-8"))
        shown = frozenset((str(s), str(r)) for s, r in data.get("shown", []))
        return Seen(int(data["last_id"]), str(data.get("at")), shown)
    except (OSError, ValueError, KeyError, TypeError):
        return Seen()


def mark_seen(journal: Journal, seen: Seen, shown: list[Mapping[str, Any]]) -> None:
    """Remember the journal's last record as seen, with the refusals just shown (quietly: a
    read-only folder only costs the next look repeating this one)."""
    at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    pairs = [[str(r.get("source")), str(r.get("reason"))] for r in shown]
    pairs += [list(p) for p in seen.shown if list(p) not in pairs]
    data = {"last_id": journal.last_id, "at": at, "shown": pairs[:SHOWN_KEPT]}
    with contextlib.suppress(OSError):
        replace_whole(seen_path(journal.path), json.dumps(data).encode())


def needs_you(journal: Journal, seen: Seen) -> list[Mapping[str, Any]]:
    """Refused and failed jobs recorded since the last look that are still the latest word on
    their file and were not shown then, newest first."""
    found: list[Mapping[str, Any]] = []
    after_id = seen.last_id
    scan = journal.iter_newest()
    if not after_id:
        scan = islice(scan, FIRST_LOOK_SCAN)
    looked: set[str] = set()
    for rec in scan:
        if getattr(rec, "doc_id", 0) <= after_id:
            break
        source = str(rec.get("source"))
        if source in looked:
            continue
        looked.add(source)
        if (source, str(rec.get("reason"))) in seen.shown:
            continue
        if rec.get("status") in ("rejected", "failed"):
            latest = journal.latest_by_source(source)
            if latest is None or getattr(latest, "doc_id", None) == getattr(rec, "doc_id", None):
                found.append(rec)
    return found
