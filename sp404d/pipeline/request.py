"""What planning takes and gives besides plans: a request, a job that ended while planning, a
file that waits; the digest of a job's inputs; what a done record stands for."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import soundfile as sf

from sp404d.audio import heard_as_rendered, probe
from sp404d.config import Config, Rules
from sp404d.metadata import Metadata, bpm_from_length
from sp404d.pipeline.job import sound_spec
from sp404d.pipeline.plan import Outcome


@dataclass(frozen=True)
class Request:
    """A file to convert, the folder its metadata is read relative to, and its settings."""

    source: Path
    root: Path
    config: Config
    again: bool = False  # retried by the user (sp404d retry): planned even if nothing changed
    # Where the file was before a move or rename the daemon saw (a kit folder renamed): the
    # samples of that path's job are this file's own, if it has that job's very bytes.
    moved_from: Path | None = None
    # The root is a folder given to ``convert`` (not an inbox): its name is the kit of files
    # no folder below it names one, so a kit folder converted by itself keeps its kit name.
    name_root: bool = False


@dataclass(frozen=True)
class Early:
    """A job that ended while planning (bad sidecar, pad taken, unchanged).

    ``settled``: the source's last final job had these very inputs, and ``outcome`` repeats how
    it ended (``skipped``: converted already; ``rejected``: still refused, for that reason).
    ``convert`` records it; the daemon does not (nothing happened), and only repeats the
    aftercare of a converted one.
    """

    request: Request
    outcome: Outcome
    meta: Metadata | None = None
    size: int | None = None
    mtime_ns: int | None = None
    inputs: str | None = None
    settled: bool = False


@dataclass(frozen=True)
class Deferred:
    """A kit's file that waits: a loop is being chopped at its onsets in the same kit, holding
    as many pads as it may give. Planned again once that job has ended (it gives back the
    pads it did not use), so the kit's pads stay in one run."""

    request: Request


def input_id(config: Config, meta: Metadata | None, error: str | None = None) -> str:
    """Everything besides the file's bytes that decides a job's result, as one digest.

    The metadata (or the reason it could not be read), the layout, the name length and the
    output settings. A source whose size, mtime and input id match its last final record needs
    no new job; a changed sidecar or folder file changes the id and re-does the file, whether
    it changed while sp404d ran or while it was down.
    """
    payload = {
        "meta": meta.as_dict() if meta is not None else None,
        "error": error,
        "layout": config.layout,
        "name_length": config.name_length,
        "rules": config.fingerprint(),
        "max_duration_s": config.max_duration_s,
    }
    if config.bpm_from_length:  # only when on: every other file's id stays as it was
        payload["bpm_from_length"] = True
    if config.use_analysis:
        payload["use_analysis"] = True
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def listened(source: Path, rules: Rules, bpm: bool, key: bool) -> dict[str, object]:
    """What the job will hear in ``source`` under ``rules`` (its trim, mono, normalise,
    quality and chop: the samples it writes), for ``check`` and the planner: the same to the
    last decimal. Raises what reading or rendering it would."""
    spec = replace(sound_spec(rules), hear_bpm=bpm, hear_key=key)
    return heard_as_rendered(source, probe(source), spec)


def with_heard(meta: Metadata, request: Request, rules: Rules) -> Metadata:
    """With ``use_analysis``, the BPM and key heard in the sound of a file that nothing else
    gives them to (origin ``analysis``, the confidence in ``facts``); the file is decoded for
    it here, before the job decodes it again."""
    config = request.config
    if not (config.use_analysis and config.analysis):
        return meta
    bpm, key = meta.unheard()
    # A length guess is weaker than what the sound says: analysis may replace it.
    guessed = meta.origins.get("bpm") == "length" and meta.facts.get("loop") is not False
    bpm = bpm or guessed
    if not (bpm or key):
        return meta
    try:
        heard = listened(request.source, rules, bpm, key)
    except Exception:  # not audio it can read: the job says what it is
        return meta
    found: dict[str, Any] = {name: heard[name] for name in ("bpm", "key") if name in heard}
    if not found:
        return meta
    confidence = {f"{n}_confidence": heard[f"{n}_confidence"] for n in found}
    return replace(
        meta,
        **found,
        origins={**meta.origins, **{name: "analysis" for name in found}},
        facts={**meta.facts, **confidence},
    )


def with_length_bpm(meta: Metadata, request: Request) -> Metadata:
    """A loop with no BPM from anywhere gets one guessed from its length (a header read):
    used as its BPM with ``bpm_from_length``, otherwise only recorded as ``bpm_guess``."""
    if meta.bpm is not None or "bpm" in meta.origins:  # given, or cleared on purpose (bpm:)
        return meta
    if meta.facts.get("loop") is False:  # a one-shot, says its acid or Apple Loops chunk
        return meta
    try:
        seconds = sf.info(os.fsencode(request.source)).duration
    except Exception:  # not a file libsndfile reads: no guess (the job says what it is)
        return meta
    guess = bpm_from_length(float(seconds))
    if guess is None:
        return meta
    if request.config.bpm_from_length:
        return replace(meta, bpm=guess, origins={**meta.origins, "bpm": "length"})
    return replace(meta, bpm_guess=guess, origins={**meta.origins, "bpm_guess": "length"})


def outputs_of(rec: Mapping[str, Any] | None) -> list[str]:
    """The outputs a done record stands for: a chopped loop's slices (on its last slice's
    record), else its one output."""
    if not rec:
        return []
    slices = rec.get("slices")
    if isinstance(slices, list) and all(isinstance(p, str) for p in slices) and slices:
        return list(slices)
    output = rec.get("output")
    return [str(output)] if output else []


#: The shortest name_length a kit's slices fit in: ``pad_01_`` + a letter + ``_01``.
KIT_CHOP_NAME = 11


def claim_order(request: Request, meta: Metadata | Early) -> int:
    """Explicit pads first; a loop chopped at its onsets last (it holds as many pads as it may
    give until it has run, and gives back those it did not use)."""
    if not isinstance(meta, Metadata):
        return 1
    if meta.pad is not None:
        return 0
    chop = meta.shaping.get("chop", request.config.chop)
    return 2 if chop and chop[0] != "equal" else 1
