"""The parent's side of a job: decide everything before the audio is touched.

Plans are made in one process so that names and pads can be handed out without races:
two sources never get the same output name (compared without regard to case, as FAT does),
and kit pads go to explicit claims first, then to the rest in name order. What was handed out
is kept by :class:`~sp404d.pipeline.reservations.Reservations`; what the journal knows of each
source is asked of :class:`~sp404d.pipeline.known.Known`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sp404d.errors import JobError
from sp404d.journal import Journal
from sp404d.metadata import Metadata, read_metadata
from sp404d.naming import fold, kit_folder, place, slot_of
from sp404d.pipeline.chopplan import plan_chop
from sp404d.pipeline.intents import Intents
from sp404d.pipeline.judge import judged, kit_keys_need_kit_layout
from sp404d.pipeline.known import Known, stat_of
from sp404d.pipeline.plan import Outcome, Plan
from sp404d.pipeline.request import (
    Deferred,
    Early,
    Request,
    claim_order,
    input_id,
    outputs_of,
    with_heard,
    with_length_bpm,
)
from sp404d.pipeline.reservations import Reservations

__all__ = ["Deferred", "Early", "Planner", "Request", "input_id", "outputs_of"]


class Planner:
    """Turns requests into plans, holding this session's name and pad reservations."""

    def __init__(
        self,
        journal: Journal,
        intents: Intents | None = None,
        *,
        need_output: bool = True,
        defer: bool = True,
    ) -> None:
        """``intents``: the write-ahead notes, to recover outputs a crash left unjournaled.
        ``need_output``: see :meth:`settled` (the daemon plans without). ``defer``: a kit's
        files wait (:class:`Deferred`) while a loop is chopped at its onsets in that kit
        (``check``, which runs nothing, plans without)."""
        self.journal = journal
        self.need_output = need_output
        self.defer = defer
        self.known = Known(journal, intents)
        self.held = Reservations()
        self._found_moved: dict[Path, tuple[Path, ...]] = {}  # source -> its moved outputs

    def forget(self) -> None:
        """Drop cached folder listings (the outbox may have changed behind our back)."""
        self.held.forget()

    def recorded(self, rec: Mapping[str, Any]) -> None:
        """A record was just appended (the recorder's hook)."""
        self.known.recorded(rec)

    def settle(self, plan: Plan, outcome: Outcome) -> None:
        """Update reservations once a job has ended."""
        self.held.settle(plan, outcome)

    # --- planning ------------------------------------------------------------------------

    def plan_many(self, requests: Sequence[Request]) -> Iterator[Plan | Early | Deferred]:
        """Plan a batch: explicit pad claims first, the rest in name order.

        Without kits there is no order to keep, so plans are yielded as they are made and the
        workers start on the first file while the rest are still being planned.
        """
        if all(r.config.layout != "kit" for r in requests):
            kits: list[tuple[Request, Metadata | Early]] = []  # a folder file made them a kit
            for request in requests:
                request, meta = self._read(request)
                if isinstance(meta, Metadata) and request.config.layout == "kit":
                    kits.append((request, meta))
                else:
                    yield meta if isinstance(meta, Early) else self._plan(request, meta)
            if kits:
                yield from self._plan_kits(kits)
            return
        yield from self._plan_kits([self._read(r) for r in requests])

    def _plan_kits(
        self, metas: list[tuple[Request, Metadata | Early]]
    ) -> Iterator[Plan | Early | Deferred]:
        order = sorted(range(len(metas)), key=lambda i: (claim_order(*metas[i]), i))
        results: list[Plan | Early | Deferred | None] = [None] * len(metas)
        preclaimed = False
        for i in order:
            request, meta = metas[i]
            if not preclaimed and claim_order(request, meta) > 0:  # explicit pads are given
                self._preclaim(metas)
                preclaimed = True
            if isinstance(meta, Early):
                results[i] = meta
            elif self._waits(request, meta):
                results[i] = Deferred(request)
            else:
                results[i] = self._plan(request, meta)
        yield from (r for r in results if r is not None)

    def _preclaim(self, metas: Sequence[tuple[Request, Metadata | Early]]) -> None:
        """Files moved into a kit (a kit folder renamed) take the pads their samples had,
        where those are free, before the other files of the batch are given pads."""
        for request, meta in metas:
            config = request.config
            if not isinstance(meta, Metadata) or meta.pad is not None or config.layout != "kit":
                continue
            if request.moved_from is None:
                continue
            moved = self.known.moved(request, config.outbox)
            self._found_moved[request.source] = moved
            slots = [slot for slot in map(slot_of, moved) if slot is not None]
            if slots:
                kit = self.held.spelling(config.outbox, kit_folder(meta.kit))
                self.held.pads(config.outbox).preclaim(kit, slots, str(request.source))

    def _waits(self, request: Request, meta: Metadata) -> bool:
        """Whether a kit's file waits for a loop chopped at its onsets in its kit."""
        if not self.defer or request.config.layout != "kit":
            return False
        outbox = request.config.outbox
        key = (outbox, fold(self.held.spelling(outbox, kit_folder(meta.kit))))
        chopping = self.held.chopping.get(key)
        return chopping is not None and chopping != request.source

    def plan(self, request: Request) -> Plan | Early:
        request, meta = self._read(request)
        return meta if isinstance(meta, Early) else self._plan(request, meta)

    def _read(self, request: Request) -> tuple[Request, Metadata | Early]:
        """The file's metadata, and its request under the layout a folder file or sidecar
        chose for it (``layout: kit``)."""
        try:
            meta = read_metadata(
                request.source,
                request.root,
                request.config.defaults,
                name_root=request.name_root,
            )
            layout = meta.shaping.get("layout")
            if layout is not None and layout != request.config.layout:
                request = replace(request, config=replace(request.config, layout=layout))
            kit_keys_need_kit_layout(meta, request.config.layout)
            return request, with_length_bpm(meta, request)
        except JobError as exc:
            st = stat_of(request.source)
            return request, Early(
                request,
                Outcome("failed" if exc.retry else "rejected", exc.reason),
                size=st.st_size if st else None,
                mtime_ns=st.st_mtime_ns if st else None,
                inputs=input_id(request.config, None, exc.reason),
            )

    def settled(self, request: Request, *, need_output: bool) -> bool:
        """Nothing to do for this source: its last final job had these very inputs.

        ``need_output``: ``convert`` redoes a file whose output was deleted; the daemon does not,
        since musicians clear the card's IMPORT folder after importing and a rescan must not
        fill it again. A rejected file stays rejected until it or its metadata changes.
        """
        request, meta = self._read(request)
        inputs = meta.inputs if isinstance(meta, Early) else input_id(request.config, meta)
        outbox = request.config.outbox
        unchanged = self.known.unchanged(request.source, inputs, outbox, need_output=need_output)
        return unchanged is not None

    def _plan(self, request: Request, meta: Metadata) -> Plan | Early:
        config, source = request.config, request.source
        st = stat_of(source)
        if st is None:
            reason = "the source file vanished before it could be converted"
            return Early(request, Outcome("failed", reason), meta)
        inputs = input_id(config, meta)
        early = (meta, st.st_size, st.st_mtime_ns, inputs)
        moved = self._found_moved.pop(source, None)
        if moved is None:
            moved = self.known.moved(request, config.outbox)
        if not request.again and not moved:
            need = self.need_output
            unchanged = self.known.unchanged(source, inputs, config.outbox, need_output=need)
            if unchanged is not None:
                return Early(request, unchanged, *early, settled=True)
        # Only for a file that will be converted: the analysis is a decode (use_analysis), and
        # what it hears follows from the bytes and settings the input id already covers.
        rules = config.rules().shaped(meta.shaping)  # a sidecar's or folder file's, over all
        meta = with_heard(meta, request, rules)
        if config.layout == "kit" or rules.chop is not None:
            refused = judged(request, rules)
            if refused is not None:
                return Early(request, refused, *early)
        own = (*self.known.own_outputs(source, config.outbox), *moved)
        if rules.chop is not None:
            chopped = plan_chop(self.held, request, meta, rules, st, own, inputs)
            return chopped if isinstance(chopped, Early) else self._made(chopped)
        # Re-done in place: its one earlier output (others, from a time it was chopped, go).
        previous = own[0] if len(own) == 1 else None
        slot = None
        if config.layout == "kit":
            kit = self.held.spelling(config.outbox, kit_folder(meta.kit))
            try:
                slot = self.held.pads(config.outbox).claim(
                    kit, meta.bank, meta.pad, str(source), [str(p) for p in own]
                )
            except JobError as exc:
                # Not a fact about this file: the pad may free up. No input id, so the next
                # event or rescan tries again instead of taking the refusal as settled.
                return Early(request, Outcome("rejected", exc.reason), meta, *early[1:3], None)
        placement = place(meta, config.layout, name_length=config.name_length, slot=slot)
        folder = self.held.spelled(config.outbox, placement.folder)
        final, adopt = self.held.reserve(
            config.outbox.joinpath(*folder.parts),
            placement.stem,
            rules.extension,
            previous,
            config.name_length,
        )
        plan = Plan(
            source=source,
            root=request.root,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            meta=meta,
            folder=folder,
            stem=placement.stem,
            final=final,
            rules=rules,
            adopt=adopt,
            replaces=previous,
            slot=slot,
            inputs=inputs,
            earlier=tuple(p for p in own if p != previous),
        )
        return self._made(plan)

    def _made(self, plan: Plan) -> Plan:
        """A plan leaves for a worker, with what it may ask the journal (converted.py)."""
        return self.held.made(
            replace(plan, journal=self.journal.path, known_until=self.journal.last_id)
        )
