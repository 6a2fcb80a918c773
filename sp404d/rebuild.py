"""``sp404d rebuild``: a card made again from the journal, or repaired in place.

Every source whose latest job is ``done`` is converted again to the same place (its output's
path below the outbox it was written to: the same layout, names and kit pads), in a new outbox. The
conversion is deterministic (the dither noise is seeded by the file's hash), so an unchanged
source gives byte-identical audio. Sources that are gone or changed since are listed, never
guessed at. Given the current outbox, the same command repairs it: a file that is missing or
differs from what its source makes is written again, an identical one is left as it is.

Nothing is journaled: the journal keeps the history of the inbox, and the rebuilt outbox is
described by the manifest printed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from sp404d.config import Config
from sp404d.job import Outcome, Piece, Plan
from sp404d.metadata import Metadata


@dataclass(frozen=True)
class Entry:
    """One output to make again: where it goes, from what, or why it cannot be."""

    source: str
    target: PurePosixPath  # below the outbox
    problem: str | None = None  # gone, changed, outside the outbox: listed, not rebuilt
    plan: Plan | None = None
    piece: int | None = None  # a slice of a chopped loop: which of the plan's pieces


def _metadata(data: Mapping[str, Any] | None, fallback: str) -> Metadata:
    data = data or {}
    return Metadata(
        title=str(data.get("title") or fallback),
        genre=data.get("genre"),
        bpm=data.get("bpm"),
        key=data.get("key"),
        tags=tuple(data.get("tags") or ()),
        kit=data.get("kit"),
        bank=data.get("bank"),
        pad=data.get("pad"),
        origins=dict(data.get("origins") or {}),
    )


def _problem(rec: Mapping[str, Any], st: os.stat_result | None) -> str | None:
    if st is None:
        return "the source is gone"
    if (st.st_size, st.st_mtime_ns) != (rec.get("size"), rec.get("mtime_ns")):
        return "the source changed since it was converted (convert it again first)"
    return None


def entries(
    latest_done: Iterable[Mapping[str, Any]], config: Config, new_outbox: Path
) -> list[Entry]:
    """What to make, from the latest ``done`` record of each source, in the journal's order."""
    rules = replace(config.rules(), outbox=new_outbox, chop=None)
    found: list[Entry] = []
    for rec in latest_done:
        source, output = str(rec["source"]), Path(str(rec["output"]))
        outbox = Path(str(rec.get("outbox") or config.outbox))  # older records: the config's
        if not output.is_relative_to(outbox):
            found.append(
                Entry(
                    source,
                    PurePosixPath(output.name),
                    f"its output {output} is not below the outbox {outbox}",
                )
            )
            continue
        rel = PurePosixPath(output.relative_to(outbox).as_posix())
        try:
            st: os.stat_result | None = os.stat(source)
        except OSError:
            st = None
        problem = _problem(rec, st)
        if problem is not None or st is None:
            found.append(Entry(source, rel, problem))
            continue
        final = new_outbox.joinpath(*rel.parts)
        fmt = "aiff" if rel.suffix.lower() in (".aif", ".aiff") else "wav"  # as it was written
        on_disk = final.exists()
        plan = Plan(
            source=Path(source),
            root=Path(str(rec.get("root") or Path(source).parent)),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            meta=_metadata(rec.get("metadata"), Path(source).stem),
            folder=rel.parent,
            stem=PurePosixPath(rel.name).stem,
            final=final,
            rules=replace(rules, format=fmt),
            adopt=(final,) if on_disk else (),  # identical bytes: left as they are
            replaces=final if on_disk else None,  # different: written again
        )
        found.append(Entry(source, rel, None, plan))
    return _chopped(found, latest_done)


def _chopped(found: list[Entry], records: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """Slices of a chopped loop are made by one plan that chops it again (as it was: the cut
    points are a function of the samples), each slice's entry pointing at its piece."""
    by_target = {e.target: e for e in found}
    groups: dict[str, list[tuple[Entry, Mapping[str, Any]]]] = {}
    for rec, entry in zip(records, found, strict=True):
        facts = rec.get("slice")
        if isinstance(facts, Mapping) and entry.plan is not None:
            groups.setdefault(entry.source, []).append((entry, facts))
    for members in groups.values():
        members.sort(key=lambda m: int(m[1].get("n") or 0))
        first = members[0][0].plan
        assert first is not None
        chop_setting = str(members[0][1].get("chop") or len(members))
        pieces = tuple(
            Piece(e.plan.final, adopt=e.plan.adopt) for e, _ in members if e.plan is not None
        )
        plan = replace(
            first,
            rules=replace(first.rules, chop=_chop_setting(chop_setting)),
            replaces=None,
            adopt=(),
            pieces=pieces,
            earlier=tuple(p.final for p in pieces if p.final.exists()),
        )
        for i, (entry, _) in enumerate(members):
            by_target[entry.target] = replace(entry, plan=plan, piece=i)
    return [by_target[e.target] for e in found]


def _chop_setting(text: str) -> tuple[str, int] | None:
    from sp404d.settings import Rules, settings_of

    check = next(s.check for s in settings_of(Rules) if s.name == "chop")
    result: tuple[str, int] | None = check(int(text) if text.isdigit() else text)
    return result


def verdict(entry: Entry, outcome: Outcome) -> str:
    """How one output ended, for the manifest."""
    if outcome.status != "done":
        return f"{outcome.status}: {outcome.reason}"
    if entry.piece is not None:
        if entry.piece >= len(outcome.slices):
            return "not rebuilt: the loop gave fewer slices this time"
        rendered = outcome.slices[entry.piece].render
        if rendered.get("adopted"):
            return "ok (identical)"
        return "rewritten" if entry.plan is not None and entry.plan.earlier else "written"
    if outcome.render.get("adopted"):
        return "ok (identical)"
    return "rewritten" if entry.plan is not None and entry.plan.replaces else "written"


def run(
    todo: list[Entry], execute_all: Callable[[list[Plan]], dict[Path, Outcome]]
) -> list[tuple[Entry, str]]:
    """Make every entry that can be made (``execute_all`` runs plans, by source); return each
    entry with its verdict, in order."""
    plans = {id(e.plan): e.plan for e in todo if e.plan is not None}  # a chop's slices: one
    outcomes = execute_all(list(plans.values()))
    result = []
    for entry in todo:
        if entry.plan is None:
            result.append((entry, f"not rebuilt: {entry.problem}"))
        else:
            result.append((entry, verdict(entry, outcomes[entry.plan.source])))
    return result
