"""Planning a loop to chop: a name for each slice it may give (``NAME_01``...) and, in a kit,
consecutive pads: from its own pad, the run it held, or the first free run."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sp404d.config import Rules
from sp404d.errors import JobError
from sp404d.metadata import Metadata
from sp404d.naming import chop_base, fold, kit_folder, place
from sp404d.pipeline.plan import Outcome, Piece, Plan
from sp404d.pipeline.request import KIT_CHOP_NAME, Early, Request
from sp404d.pipeline.reservations import Reservations

Slot = tuple[str, int]


def plan_chop(
    held: Reservations,
    request: Request,
    meta: Metadata,
    rules: Rules,
    st: os.stat_result,
    own: tuple[Path, ...],
    inputs: str,
) -> Plan | Early:
    """The plan of a loop to chop (its journal fields, ``journal`` and ``known_until``, are the
    caller's to fill in), or how it ends now (a kit with no room, names too short)."""
    config = request.config
    assert rules.chop is not None
    if config.layout == "kit" and config.name_length < KIT_CHOP_NAME:
        reason = (
            f"chop in a kit needs name_length {KIT_CHOP_NAME} or more for its slices' names "
            f"(pad_01_ + a letter + _01); it is {config.name_length}"
        )
        return Early(request, Outcome("rejected", reason), meta, st.st_size, st.st_mtime_ns, inputs)
    slots: list[Slot | None] = [None] * rules.chop[1]
    if config.layout == "kit":
        try:
            slots = list(_claim_run(held, request, meta, rules, own))
        except JobError as exc:  # as for one pad: it may free up, so no input id
            return Early(request, Outcome("rejected", exc.reason), meta, st.st_size, st.st_mtime_ns)
    pieces = _pieces(held, request, meta, rules, own, slots)
    first = pieces[0]
    return Plan(
        source=request.source,
        root=request.root,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        meta=meta,
        folder=PurePosixPath(first.final.parent.relative_to(config.outbox).as_posix()),
        stem=first.final.stem,
        final=first.final,
        rules=rules,
        slot=first.slot,
        inputs=inputs,
        pieces=tuple(pieces),
        earlier=own,
    )


def _claim_run(
    held: Reservations, request: Request, meta: Metadata, rules: Rules, own: tuple[Path, ...]
) -> list[Slot]:
    assert rules.chop is not None
    way, count = rules.chop
    outbox = request.config.outbox
    kit = held.spelling(outbox, kit_folder(meta.kit))
    run = held.pads(outbox).claim_run(
        kit,
        meta.bank,
        meta.pad,
        count,
        str(request.source),
        [str(p) for p in own],
        flexible=way != "equal",
    )
    if way != "equal":  # holds pads it may not use: the kit waits for it
        held.chopping[(outbox, fold(kit))] = request.source
    return run


def _pieces(
    held: Reservations,
    request: Request,
    meta: Metadata,
    rules: Rules,
    own: tuple[Path, ...],
    slots: list[Slot | None],
) -> list[Piece]:
    """A name for each slice: its own earlier slice of that name in place, else a fresh one
    (taking back an identical file no record claims)."""
    config = request.config
    room = config.name_length - 3  # for _01
    pieces: list[Piece] = []
    base: str | None = None
    for i, slot in enumerate(slots):
        placement = place(meta, config.layout, name_length=room, slot=slot)
        folder = held.spelled(config.outbox, placement.folder)
        folder_abs = config.outbox.joinpath(*folder.parts)
        if slot is None and base is None:  # one folder for all: a base no other set has
            ours = {fold(p.name) for p in own if p.parent == folder_abs}
            names = held.names(folder_abs)
            base = chop_base(names, placement.stem, rules.extension, room, len(slots), ours)
        stem = f"{base if slot is None else placement.stem}_{i + 1:02d}"
        mine = next(
            (p for p in own if p.parent == folder_abs and _is_named(p, stem, rules.extension)),
            None,
        )
        if mine is not None:  # its own earlier slice of this name (or a _2 of it): in place
            pieces.append(Piece(mine, slot, (mine,)))
            continue
        final, adopt = held.reserve(folder_abs, stem, rules.extension, None, config.name_length)
        if slot is None and base != placement.stem:
            # A set of this name no record claims (the journal lost, or an older loop): if it
            # is this very slice, byte for byte, it is taken back, not doubled.
            plain = held.names(folder_abs).variants(
                f"{placement.stem}_{i + 1:02d}", rules.extension, config.name_length
            )
            adopt = (*plain[:1], *adopt)
        pieces.append(Piece(final, slot, adopt))
    return pieces


def _is_named(path: Path, stem: str, ext: str) -> bool:
    """Whether ``path`` is ``stem + ext`` or a numbered variant of it (``stem_2``), any case."""
    if fold(path.suffix) != fold(ext):
        return False
    own = fold(path.stem)
    base = fold(stem)
    return own == base or (own.startswith(base + "_") and own[len(base) + 1 :].isdigit())
