"""``sp404d rebuild``: one card made again from the journal, or repaired in place.

What a card should hold is the card model's word (:func:`sp404d.card.model.standing`): of each
source, its newest ``done`` job in that outbox. Each is made again at its place, with the rules
it was rendered with (its record's ``rules``: the inbox's settings after its folder file and
sidecar had their say), so an unchanged source gives byte-identical audio (the dither noise is
seeded by the file's hash). Sources that are gone or changed since are listed, never guessed at.
Into the card itself the same command repairs it: a file that is missing or differs from what
its source makes is written again, an identical one is left as it is, and a file whose record
predates recorded rules is left alone (today's config might render it differently).

Nothing is journaled: the journal keeps the history of the inbox, and the rebuilt outbox is
described by the lines printed. A copy (``--to``) takes from the card itself what no source
can make again (gone, or changed since: a refused redo leaves the earlier sample standing), so
the copy holds what the card holds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from sp404d.audio import dsp
from sp404d.card import Output
from sp404d.config import Config, Rules, rules_from_record
from sp404d.durable import fsync_dir
from sp404d.errors import JobError
from sp404d.metadata import Metadata
from sp404d.pipeline import Outcome, Piece, Plan
from sp404d.pipeline.outbox import TempFile, ensure_folder


@dataclass(frozen=True)
class Entry:
    """One output to make again: where it goes, from what, or why it cannot be."""

    source: str
    target: PurePosixPath  # below the outbox
    problem: str | None = None  # gone, changed, unreadable rules: listed, not rebuilt
    plan: Plan | None = None
    piece: int | None = None  # a slice of a chopped loop: which of the plan's pieces
    expected: int | None = None  # the bytes its job wrote, when recorded
    today: bool = False  # rendered with today's config: its record kept no rules


GONE = "the source is gone"
CHANGED = "the source changed since it was converted"


def _problem(rec: Mapping[str, Any], st: os.stat_result | None) -> str | None:
    if st is None:
        return GONE
    if (st.st_size, st.st_mtime_ns) != (rec.get("size"), rec.get("mtime_ns")):
        return CHANGED  # a redo refused keeps the card's sample of the earlier version
    return None


def _rules(
    rec: Mapping[str, Any], rel: PurePosixPath, config: Config, target: Path, removable: bool
) -> tuple[Rules, bool]:
    """The rules ``rec``'s output was rendered with (True: today's config stands in for rules
    an older record did not keep). Raises ValueError for recorded rules this version cannot
    read."""
    if "rules" in rec:
        return rules_from_record(rec["rules"], target, removable=removable), False
    root = Path(str(rec.get("root") or Path(str(rec["source"])).parent))
    meta = rec.get("metadata") or {}
    rules = config.for_inbox(root).rules().shaped(dict(meta.get("shaping") or {}))
    fmt = "aiff" if rel.suffix.lower() in (".aif", ".aiff") else "wav"  # as it was written
    facts = rec.get("slice") or {}
    chop = _chop_setting(str(facts.get("chop"))) if facts else None
    return replace(rules, outbox=target, outbox_removable=removable, format=fmt, chop=chop), True


def entries(
    outputs: Iterable[Output], config: Config, target: Path, *, removable: bool, in_place: bool
) -> list[Entry]:
    """What to make of each standing output, in the journal's order. ``in_place``: the target
    is the card itself, where a present file is only rewritten from recorded rules."""
    found: list[Entry] = []
    chops: dict[tuple[str, Any], list[tuple[int, int, Any, Any]]] = {}
    for output in outputs:
        rec = output.record or {}
        source, rel = str(rec["source"]), output.rel
        render = rec.get("render") or {}
        expected = render.get("bytes") if isinstance(render.get("bytes"), int) else None
        try:
            st: os.stat_result | None = os.stat(source)
        except OSError:
            st = None
        problem = _problem(rec, st)
        try:
            rules, today = _rules(rec, rel, config, target, removable)
        except ValueError as exc:
            problem = problem or f"its recorded settings cannot be read: {exc}"
            rules, today = config.rules(), False
        final = target.joinpath(*rel.parts)
        on_disk = final.exists()
        if problem is None and today and in_place and on_disk:
            problem = "recorded before sp404d kept a job's settings: left as it is"
        facts = rec.get("slice")
        if isinstance(facts, Mapping):
            n, of = facts.get("n"), facts.get("of")
            group = chops.setdefault((source, rec.get("started_at")), [])
            group.append((len(found), n if isinstance(n, int) else 0, of, _cut(facts)))
        if problem is not None or st is None:
            found.append(Entry(source, rel, problem, expected=expected))
            continue
        plan = Plan(
            source=Path(source),
            root=Path(str(rec.get("root") or Path(source).parent)),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            meta=Metadata.from_record(rec.get("metadata"), Path(source).stem),
            folder=rel.parent,
            stem=PurePosixPath(rel.name).stem,
            final=final,
            rules=rules,
            adopt=(final,) if on_disk else (),  # identical bytes: left as they are
            replaces=final if on_disk else None,  # different: written again
        )
        found.append(Entry(source, rel, None, plan, expected=expected, today=today))
    for members in chops.values():
        _chopped(found, sorted(members, key=lambda m: m[1]))
    return found


def _cut(facts: Mapping[str, Any]) -> tuple[int, int, bool, bool] | None:
    """Where a recorded slice was cut, in 48 kHz frames (None: its record did not say)."""
    start, end, faded = facts.get("start_s"), facts.get("end_s"), facts.get("faded")
    if not isinstance(start, (int, float)) or not isinstance(end, (int, float)):
        return None
    fades = list(faded) if isinstance(faded, list) and len(faded) == 2 else [False, False]
    rate = dsp.OUT_RATE
    return round(start * rate), round(end * rate), bool(fades[0]), bool(fades[1])


def _chopped(found: list[Entry], members: list[tuple[int, int, Any, Any]]) -> None:
    """Slices of a chopped loop are made by one plan that chops it again, at the cut points
    its record kept (today's onset detector may find others), each slice's entry pointing at
    its piece. Only a whole set can be made (slice n goes to the n-th piece)."""
    at = [i for i, _, _, _ in members]
    numbers = [n for _, n, _, _ in members]
    whole = numbers == list(range(1, len(members) + 1)) and all(
        of == len(members) for _, _, of, _ in members
    )
    cuts = [cut for _, _, _, cut in members]
    planned = [found[i].plan for i in at]
    if any(p is not None and p.rules.chop is None for p in planned):
        whole = False
    if not whole or any(p is None for p in planned):
        if not any(p is None and found[i].problem for i, p in zip(at, planned, strict=True)):
            why = "its loop's slices are not all on the card's record (another job took one)"
        else:
            why = next(str(found[i].problem) for i in at if found[i].problem)
        for i in at:
            if found[i].plan is not None:
                found[i] = replace(found[i], plan=None, problem=f"{why} (a slice of its loop)")
        return
    first = planned[0]
    assert first is not None
    pieces = tuple(Piece(p.final, adopt=p.adopt) for p in planned if p is not None)
    plan = replace(
        first,
        replaces=None,
        adopt=(),
        pieces=pieces,
        earlier=tuple(p.final for p in pieces if p.final.exists()),
        cuts=tuple(c for c in cuts if c is not None) if None not in cuts else (),
    )
    for piece, i in enumerate(at):
        found[i] = replace(found[i], plan=plan, piece=piece)


def _chop_setting(text: str) -> tuple[str, int] | None:
    from sp404d.config import settings_of

    check = next(s.check for s in settings_of(Rules) if s.name == "chop")
    result: tuple[str, int] | None = check(int(text) if text.isdigit() else text)
    return result


def _on_card(entry: Entry, card: Path | None) -> Path | None:
    """The card's own file of an output its source can no longer make (gone, or changed since:
    a refused redo leaves the earlier sample standing), when a copy is being made and the
    card holds that file whole (the size its job wrote; a record that kept none: not known)."""
    if card is None or entry.plan is not None or entry.problem is None:
        return None
    if not entry.problem.startswith((GONE, CHANGED)):
        return None
    there = card.joinpath(*entry.target.parts)
    try:
        size = there.stat().st_size
    except OSError:
        return None
    return there if size == entry.expected else None  # no size recorded: not known whole


def _copied(there: Path, entry: Entry, target: Path, *, removable: bool) -> str:
    """Copy the card's file into the copy, as outputs are written (a temp file, fsynced,
    renamed); the verdict."""
    note = there.with_suffix(".txt")  # write_txt's: it goes with its sample
    try:
        folder = ensure_folder(target, entry.target.parent, removable=removable)
        for path in (there, note) if note.is_file() else (there,):
            with TempFile(folder) as tmp:
                with open(path, "rb") as src, os.fdopen(os.dup(tmp.fd), "wb") as out:
                    shutil.copyfileobj(src, out)
                tmp.commit(folder / path.name)
        fsync_dir(folder)
    except (OSError, JobError) as exc:
        return f"failed: {getattr(exc, 'reason', exc)}"
    return f"copied from the card ({entry.problem})"


def compared(entry: Entry, target: Path, card: Path | None = None) -> str:
    """What a dry run says of one output, from what is on the target now (sizes compared
    with what its job wrote; the bytes are compared when it runs); ``card``: the card a copy
    is made of, whose file stands in for one its source can no longer make."""
    if entry.plan is None:
        if _on_card(entry, card) is not None:
            return f"would copy from the card ({entry.problem})"
        return f"not rebuilt: {entry.problem}"
    final = target.joinpath(*entry.target.parts)
    try:
        size: int | None = final.stat().st_size
    except OSError:
        size = None
    today = " (with today's config: its record kept no settings)" if entry.today else ""
    if size is None:
        return "would write" + today
    if entry.expected is not None and size != entry.expected:
        return f"would rewrite: {size} bytes on the card, its job wrote {entry.expected}"
    return "present (would be compared, rewritten if it differs)" + today


def verdict(entry: Entry, outcome: Outcome) -> str:
    """How one output ended, for the lines printed."""
    if outcome.status != "done":
        return f"{outcome.status}: {outcome.reason}"
    if entry.piece is not None:
        if entry.piece >= len(outcome.slices):
            return "not rebuilt: the loop gave fewer slices this time"
        rendered = outcome.slices[entry.piece].render
        if rendered.get("adopted"):
            return "ok (identical)"
        was = entry.plan is not None and entry.plan.pieces[entry.piece].final in entry.plan.earlier
        return "rewritten" if was else "written"
    if outcome.render.get("adopted"):
        return "ok (identical)"
    return "rewritten" if entry.plan is not None and entry.plan.replaces else "written"


def run(
    todo: list[Entry],
    execute_all: Callable[[list[Plan]], dict[Path, Outcome]],
    copy_of: tuple[Path, Path, bool] | None = None,
) -> list[tuple[Entry, str]]:
    """Make every entry that can be made (``execute_all`` runs plans, by source); return each
    entry with its verdict, in order. ``copy_of``: (card, target, removable) when the target
    is a copy: an output whose source is gone or changed is copied from the card, so the
    copy holds what the card holds."""
    plans = {id(e.plan): e.plan for e in todo if e.plan is not None}  # a chop's slices: one
    outcomes = execute_all(list(plans.values()))
    result = []
    for entry in todo:
        there = _on_card(entry, copy_of[0]) if copy_of else None
        if there is not None and copy_of is not None:
            result.append((entry, _copied(there, entry, copy_of[1], removable=copy_of[2])))
        elif entry.plan is None:
            result.append((entry, f"not rebuilt: {entry.problem}"))
        else:
            result.append((entry, verdict(entry, outcomes[entry.plan.source])))
    return result
