"""One job, executed in a worker process: hash, probe, validate, render, commit atomically.

The parent plans (metadata, placement, a reserved name) and records; this module does the slow,
parallel part and returns a frozen :class:`Outcome`. Every failure stays inside its job and
comes back as a status with a reason; nothing here touches the journal.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from sp404d.audio import AudioInfo, RenderSpec, Slice, dsp, render_chopped, shown, truncated_reason
from sp404d.audio.markers import read_markers
from sp404d.audio.probe import probe
from sp404d.audio.render import render
from sp404d.config import Rules, said
from sp404d.durable import fsync_dir
from sp404d.errors import FailedError, JobError, RejectedError
from sp404d.pipeline.converted import converted
from sp404d.pipeline.outbox import TempFile, ensure_folder, same_bytes, write_reason
from sp404d.pipeline.plan import Outcome, Plan, SliceDone, Status


def hash_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def job_key(sha256: str, plan: Plan) -> str:
    """Same content, same place (outbox, folder, name), same output settings: the same job
    (idempotency). The outbox counts: a second card gets its own copy."""
    text = f"{sha256}|{plan.folder.as_posix().casefold()}|{plan.stem.casefold()}|" + (
        f"{plan.rules.extension}|{plan.rules.fingerprint()}|{plan.rules.outbox}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def check_duration(info: AudioInfo, rules: Rules) -> int:
    """Raise for an input the unit cannot take; return the frames to pad short ones to.

    Lengths are compared in whole frames, and shown with as many decimals as it takes to be on
    the side of the limit they are on (a 99.98 ms file is "99.98 ms", not "100 ms").
    """
    if info.truncated and rules.truncated == "reject":
        promised = info.promised_frames / info.rate if info.promised_frames else None
        raise RejectedError(truncated_reason(info.duration, promised))
    least = rules.min_duration_ms
    if info.frames * 1000 < least * info.rate:
        if rules.short_files == "reject":
            ms = shown(info.duration * 1000, least)
            raise RejectedError(f"too short: {ms} ms, minimum {least} ms")
        return round(least * dsp.OUT_RATE / 1000)
    most = rules.max_duration_s
    if info.frames > most * info.rate:
        if most % 60 == 0:
            length, limit = (
                f"{shown(info.duration / 60, most / 60, digits=1)} min",
                f"{most / 60:.0f} min",
            )
        else:
            length, limit = f"{shown(info.duration, most, digits=1)} s", f"{most:g} s"
        raise RejectedError(f"too long: {length}, the SP-404MK2 takes {limit} at most")
    return 0


_PATH = re.compile(r"(?<![\w.])/[^\s'\":]+")
_ERRNO = re.compile(r"\[Errno -?\d+\]\s*|\berrno\s*-?\d+:?\s*", re.IGNORECASE)


def _internal(exc: Exception) -> str:
    """The catch-all's reason: one line, its paths cut to their last part, no errno."""
    text = (str(exc).splitlines() or [""])[0]
    text = _ERRNO.sub("", text)
    text = _PATH.sub(lambda m: PurePosixPath(m.group()).name or "/", text)
    text = text.strip(" :")[:200]
    return f"internal error: {type(exc).__name__}" + (f": {text}" if text else "")


def _seed(sha256: str) -> int:
    return int(sha256[:16], 16)


def execute(plan: Plan) -> Outcome:
    """Run one planned job to its end, its output durable. Never raises: every failure is an
    Outcome with a reason."""
    return execute_many((plan,))[0]


def execute_many(plans: tuple[Plan, ...]) -> list[Outcome]:
    """Several jobs in one trip to a worker (the parent sends small files in chunks).

    A group commit: each output is renamed into place as its job ends, and each folder written
    into is fsynced once, at the end, before any job is reported done. Only then are the
    outputs they replace removed: a power cut in between leaves the old sample, never neither.
    """
    outcomes = _sync_folders([_execute(plan) for plan in plans])
    return _remove_replaced(plans, outcomes)


def _sync_folders(outcomes: list[Outcome]) -> list[Outcome]:
    written = [
        path.parent
        for o in outcomes
        if o.status == "done"
        for path in (o.output, *(s.output for s in o.slices))
        if path is not None
    ]
    failed: dict[Path, str] = {}
    for folder in dict.fromkeys(written):
        try:
            fsync_dir(folder)
        except OSError as exc:
            failed[folder] = write_reason(exc, folder)
    if not failed:
        return outcomes
    return [_unsynced(o, failed) for o in outcomes]


def _unsynced(outcome: Outcome, failed: dict[Path, str]) -> Outcome:
    """A done job with an output in a folder whose fsync failed is failed, for that reason."""
    if outcome.status != "done":
        return outcome
    for path in (outcome.output, *(s.output for s in outcome.slices)):
        if path is not None and path.parent in failed:
            return replace(outcome, status="failed", reason=failed[path.parent])
    return outcome


def _remove_replaced(plans: tuple[Plan, ...], outcomes: list[Outcome]) -> list[Outcome]:
    """Delete the earlier outputs the finished jobs supersede (``Outcome.replaced`` on entry:
    what to delete, with ``Plan.earlier``; on return: what was there and deleted), then fsync
    their folders."""
    result: list[Outcome] = []
    folders: list[Path] = []
    for plan, outcome in zip(plans, outcomes, strict=True):
        old = outcome.replaced
        if outcome.status != "done":
            result.append(replace(outcome, replaced=None) if old is not None else outcome)
            continue
        kept = {outcome.output, *(s.output for s in outcome.slices)}
        # The new notes (kick.aif's is kick.txt) stay; an old one goes, written or not now.
        notes = {p.with_suffix(".txt") for p in kept if p is not None and plan.rules.write_txt}
        stale = [p for p in (old, *plan.earlier) if p is not None and p not in kept]
        gone = []
        for path in stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                gone.append(path)
            if path.with_suffix(".txt") not in notes:  # the note we wrote beside it, if any
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path.with_suffix(".txt"))
            folders.append(path.parent)
        result.append(
            replace(
                outcome,
                replaced=old if old in gone else None,
                removed=tuple(p for p in gone if p != old),
            )
        )
    for folder in dict.fromkeys(folders):
        with contextlib.suppress(OSError):  # the new output is durable already
            fsync_dir(folder)
    return result


def _execute(plan: Plan) -> Outcome:
    start = time.perf_counter()
    facts: dict[str, Any] = {"sha256": None, "key": None, "info": None}

    def ended(status: Status, reason: str | None, **more: Any) -> Outcome:
        return Outcome(status, reason, **facts, **more, elapsed_s=time.perf_counter() - start)

    try:
        return _run(plan, facts, ended)
    except JobError as exc:
        return ended("failed" if exc.retry else "rejected", exc.reason)
    except MemoryError:
        return ended("failed", "out of memory converting this file")
    except OSError as exc:
        if not plan.source.exists():
            return ended("failed", "the source file vanished before it could be converted")
        return ended("failed", write_reason(exc, plan.rules.outbox / plan.folder))
    except Exception as exc:  # a bug, or a library's surprise: it costs one job, nothing more
        if plan.rules.outbox_removable and not plan.rules.outbox.is_dir():
            return ended("failed", f"outbox {plan.rules.outbox} vanished while writing")
        return ended("failed", _internal(exc))


def _run(plan: Plan, facts: dict[str, Any], ended: Callable[..., Outcome]) -> Outcome:
    try:
        facts["sha256"] = sha = hash_file(plan.source)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise  # vanished: said so by the caller
        raise FailedError(f"cannot read the file: {exc.strerror or 'read error'}") from None
    facts["key"] = key = job_key(sha, plan)
    if plan.journal is not None and plan.known_until and not plan.pieces:  # a chop is redone
        earlier = converted(plan.journal, key, plan.known_until)
        if earlier is not None:
            return ended("skipped", "already converted", output=earlier)
    facts["info"] = info = probe(plan.source)
    min_frames = check_duration(info, plan.rules)
    if plan.pieces:
        return _chopped(plan, info, min_frames, _seed(sha), ended)
    folder = ensure_folder(plan.rules.outbox, plan.folder, removable=plan.rules.outbox_removable)
    if plan.final.parent != folder or plan.final.name in ("", ".", "..") or "/" in plan.final.name:
        # The planner's names are safe by construction; this is the last word if one is not.
        raise FailedError(f"refusing to write {plan.final}: not a file in {folder}")
    output, result = _write(plan, info, folder, min_frames, _seed(sha))
    if plan.rules.write_txt:
        _write_txt(plan, output, folder)
    # The earlier output this one supersedes goes once the new one is durable (execute_many).
    stale = plan.replaces if plan.replaces is not None and plan.replaces != output else None
    return ended("done", None, output=output, render=result, replaced=stale)


def sound_spec(rules: Rules) -> RenderSpec:
    """What of ``rules`` shapes the samples a job writes (and hears): its quality, trim, mono,
    normalise and chop. ``check`` and the planner listen through it too."""
    return RenderSpec(
        fmt=rules.format,
        quality=rules.quality,
        overs=rules.overs,
        truncated=rules.truncated,
        trim=rules.trim,
        normalize=rules.normalize,
        mono=rules.channels == "mono",
        mono_below_s=rules.mono_below_s,
        fold_cancels=rules.fold_cancels,
        chop=rules.chop,
    )


def _spec(plan: Plan, min_frames: int, seed: int, info: AudioInfo | None = None) -> RenderSpec:
    rules = plan.rules
    chop_at_markers = info is not None and rules.chop is not None and rules.chop[0] == "markers"
    bpm, key = plan.meta.unheard()
    return replace(
        sound_spec(rules),
        min_frames=min_frames,
        seed=seed,
        recheck=lambda decoded: check_duration(decoded, rules),
        markers=_markers(plan, info) if chop_at_markers and info is not None else (),
        cuts=plan.cuts,
        slice_min_frames=round(rules.min_duration_ms * dsp.OUT_RATE / 1000),
        pad_slices=rules.short_files != "reject",
        hear_bpm=rules.analysis and bpm,
        hear_key=rules.analysis and key,
    )


def _markers(plan: Plan, info: AudioInfo) -> tuple[int, ...]:
    """The file's markers as frames of the 48 kHz output."""
    return tuple(round(p * dsp.OUT_RATE / info.rate) for p in read_markers(plan.source))


def _chopped(
    plan: Plan, info: AudioInfo, min_frames: int, seed: int, ended: Callable[..., Outcome]
) -> Outcome:
    """Render a loop's slices into locked temp files, then adopt identical files already in
    place or rename each into its piece's name: nothing is renamed until every slice is
    rendered, so a refusal leaves the outbox as it was."""
    folders = []
    for piece in plan.pieces:
        rel = PurePosixPath(piece.final.parent.relative_to(plan.rules.outbox).as_posix())
        folder = ensure_folder(plan.rules.outbox, rel, removable=plan.rules.outbox_removable)
        if piece.final.parent != folder or piece.final.name in ("", ".", ".."):
            raise FailedError(f"refusing to write {piece.final}: not a file in {folder}")
        folders.append(folder)
    spec = _spec(plan, min_frames, seed, info)
    with contextlib.ExitStack() as stack:
        temps = [stack.enter_context(TempFile(folder)) for folder in folders]
        made = render_chopped(plan.source, info, [t.path for t in temps], spec)
        ours = {*plan.earlier, *(p for p in (plan.replaces,) if p is not None)}
        for piece in plan.pieces[: len(made)]:
            if piece.final.exists() and piece.final not in ours and piece.final not in piece.adopt:
                raise FailedError(
                    f"{piece.final.name} appeared in the outbox meanwhile; will retry"
                )
        done: list[SliceDone] = []
        count = len(made)
        for i, ((part, result), piece, tmp) in enumerate(
            zip(made, plan.pieces, temps, strict=False)
        ):
            render = {
                **result.as_dict(),
                "bytes": os.stat(tmp.path).st_size,
                "slice": _slice_facts(part, i, count, plan.rules),
            }
            adopted = next((e for e in piece.adopt if same_bytes(tmp.path, e)), None)
            if adopted is not None:
                done.append(SliceDone(adopted, part.start, part.end, {**render, "adopted": True}))
                continue
            tmp.commit(piece.final)
            done.append(SliceDone(piece.final, part.start, part.end, render))
    if plan.rules.write_txt:
        for slice_done in done:
            folder = slice_done.output.parent
            _write_txt(plan, slice_done.output, folder, slice_done.render.get("slice"))
    return ended("done", None, output=done[0].output, render=done[0].render, slices=tuple(done))


def _slice_facts(part: Slice, index: int, count: int, rules: Rules) -> dict[str, Any]:
    """What the journal keeps about a slice: which one, of how many, cut how and where."""
    assert rules.chop is not None
    way, asked = rules.chop
    return {
        "n": index + 1,
        "of": count,
        "chop": str(said((way, asked))),
        "start_s": round(part.start / dsp.OUT_RATE, 6),
        "end_s": round(part.end / dsp.OUT_RATE, 6),
        "faded": [part.fade_in, part.fade_out],
    }


def _write(
    plan: Plan, info: AudioInfo, folder: Path, min_frames: int, seed: int
) -> tuple[Path, dict[str, Any]]:
    """Render into a locked temp file, then adopt an identical existing file or commit."""
    with TempFile(folder) as tmp:
        result = render(plan.source, info, tmp.path, _spec(plan, min_frames, seed))
        facts = {**result.as_dict(), "bytes": os.stat(tmp.path).st_size}
        # A run killed after its rename but before its journal record left this very file:
        # the output is deterministic, so identical bytes mean it is ours. Adopt it.
        for existing in plan.adopt:
            if same_bytes(tmp.path, existing):
                return existing, {**facts, "adopted": True}
        if plan.final.exists() and plan.final != plan.replaces:
            raise FailedError(f"{plan.final.name} appeared in the outbox meanwhile; will retry")
        tmp.commit(plan.final)
    return plan.final, facts


def _write_txt(plan: Plan, output: Path, folder: Path, part: dict[str, Any] | None = None) -> None:
    """``NAME.txt`` beside the output: the metadata a musician may want on the computer (and
    for a slice, which part of the loop it is)."""
    meta = {**plan.meta.as_dict(), **{k: said(v) for k, v in plan.meta.shaping.items()}}
    lines = [f"source: {plan.source.name}"]
    if part is not None:
        lines.append(
            f"slice: {part['n']} of {part['of']}, {part['start_s']:.3f}-{part['end_s']:.3f} s"
        )
    lines += [
        f"{k}: {v}"
        for k, v in meta.items()
        if k not in ("origins", "shaping") and v not in (None, [], ())
    ]
    txt = output.with_suffix(".txt")
    with TempFile(folder) as tmp:
        os.write(tmp.fd, ("\n".join(lines) + "\n").encode("ascii", "replace"))
        tmp.commit(txt)
