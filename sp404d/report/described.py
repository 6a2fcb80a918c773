"""A file's metadata as ``check`` and ``status --source`` say it: each value with where it came
from, what the file carries besides, the tag values left out and why, and what its sound was
heard to be (with how sure, and whether it is used)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sp404d.config import Rules, said
from sp404d.metadata import Metadata
from sp404d.pipeline.request import listened

LENGTH_GUESS = "a guess from the length; bpm_from_length: true uses it"
SKIPPED = ("origins", "shaping", "facts", "ignored")


def described(
    meta: Mapping[str, Any], heard: Mapping[str, Any] | None = None, *, source_word: str = ""
) -> list[str]:
    """Lines (indented four spaces) for a record's ``metadata`` (``Metadata.as_dict``) and the
    ``heard`` of its render; each origin after ``source_word`` (``[from path]``)."""
    origins = meta.get("origins") or {}
    lines = []
    for name, value in {**meta, **(meta.get("shaping") or {})}.items():
        if name in SKIPPED or value in (None, [], ()):
            continue
        origin = LENGTH_GUESS if name == "bpm_guess" else source_word + origins.get(name, "?")
        sure = (meta.get("facts") or {}).get(f"{name}_confidence")
        if sure is not None:
            origin += f", confidence {sure}"
        lines.append(f"    {name}: {said(value)}  [{origin}]")
    facts = {k: v for k, v in (meta.get("facts") or {}).items() if not k.endswith("_confidence")}
    if facts:
        what = []
        if "loop" in facts:
            what.append("a loop" if facts["loop"] else "a one-shot")
        if facts.get("beats"):
            what.append(f"{facts['beats']} beats")
        if facts.get("root"):
            what.append(f"root {facts['root']}")
        lines.append(f"    carries: {', '.join(what)}")
    lines += [f"    ignored: {why}" for why in meta.get("ignored") or ()]
    if heard:
        parts = []
        if "bpm" in heard:
            parts.append(f"{heard['bpm']} BPM (confidence {heard.get('bpm_confidence')})")
        if "key" in heard:
            parts.append(f"key {heard['key']} (confidence {heard.get('key_confidence')})")
        if parts:
            lines.append(f"    heard: {', '.join(parts)}  [analysis; use_analysis: true uses it]")
    return lines


def heard_now(source: Path, meta: Metadata, rules: Rules) -> dict[str, object]:
    """What ``check`` hears in a file whose BPM or key nothing gives (a decode, here), as its
    job will hear it (its rules' trim, mono, normalise and quality)."""
    if not rules.analysis:
        return {}
    bpm, key = meta.unheard()
    try:
        return listened(source, rules, bpm, key)
    except Exception:  # check says what the job would: the audio's own trouble is its line
        return {}
