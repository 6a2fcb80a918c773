"""The parent's side of a job: decide everything before the audio is touched.

Plans are made in one process so that names and pads can be handed out without races:
two sources never get the same output name (compared without regard to case, as FAT does),
and kit pads go to explicit claims first, then to the rest in name order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from sp404d.audio import dsp
from sp404d.audio.probe import probe
from sp404d.audio.render_chop import slices_too_short, too_long_to_chop
from sp404d.config import Rules
from sp404d.errors import JobError, RejectedError
from sp404d.journal import Journal
from sp404d.metadata import Metadata, read_metadata
from sp404d.naming import (
    FolderNames,
    PadBook,
    chop_base,
    fold,
    folders_in,
    kit_folder,
    place,
    slot_of,
    unique_filename,
)
from sp404d.pipeline.intents import Intents
from sp404d.pipeline.job import Outcome, Piece, Plan, check_duration, hash_file
from sp404d.pipeline.request import (
    KIT_CHOP_NAME,
    Deferred,
    Early,
    Request,
    claim_order,
    input_id,
    outputs_of,
    with_length_bpm,
)

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
        self._intents = intents
        self._taken: dict[Path, FolderNames] = {}
        self._pads: dict[Path, PadBook] = {}
        self._spellings: dict[Path, dict[str, str]] = {}  # outbox -> fold(folder) -> folder
        # source -> outputs no record claims (a chopped loop's slices: several)
        self._recovered: dict[str, tuple[Path, ...]] | None = None
        self.defer = defer
        self._chopping: dict[tuple[Path, str], Path] = {}  # (outbox, kit) -> source in flight
        self._busy: dict[Path, int] = {}  # output folder -> plans in flight writing there
        self._found_moved: dict[Path, tuple[Path, ...]] = {}  # source -> its moved outputs

    def forget(self) -> None:
        """Drop cached folder listings (the outbox may have changed behind our back)."""
        self._taken.clear()
        self._pads.clear()
        self._spellings.clear()

    def _recovered_outputs(self) -> dict[str, tuple[Path, ...]]:
        """Outputs a crash left without their record, by source (read once, on first need)."""
        if self._recovered is None:
            self._recovered = {}
            if self._intents is not None:
                recorded = self.journal.latest_by_output
                self._recovered = self._intents.unresolved(lambda out: recorded(out) is not None)
        return self._recovered

    def recorded(self, rec: Mapping[str, Any]) -> None:
        """A record was just appended: a recovered output of its source is settled by it."""
        if self._recovered and rec.get("status") == "done" and rec.get("output"):
            self._recovered.pop(str(rec.get("source")), None)

    def _own_outputs(self, source: Path, outbox: Path) -> tuple[Path, ...]:
        """The outputs this source's own last done job in ``outbox`` wrote (a chopped loop's
        slices), those still there. Its outputs in another outbox (a second card) are none of
        this job's business.

        Unjournaled outputs (a crash between rename and record) were written after their
        source's last record: they win.
        """
        found = self._recovered_outputs().get(str(source))
        if found is not None:
            found = tuple(p for p in found if p.is_relative_to(outbox))
        if not found:
            rec = self.journal.latest_done_in(str(source), str(outbox))
            found = tuple(Path(str(p)) for p in outputs_of(rec)) if rec else ()
        return tuple(p for p in found if p.is_file())

    def _moved(self, request: Request, outbox: Path) -> tuple[Path, ...]:
        """The samples of a file the daemon saw moved or renamed here (its kit folder renamed):
        the standing job of the path it came from, in this outbox, if that path is gone and
        this file has that job's very bytes. They are this job's own, redone as if its sidecar
        changed (its pads kept where they are free, the old files removed), instead of a second
        copy of the kit on the card. A copy (the old path still there) takes nothing."""
        old = request.moved_from
        if old is None or old == request.source or os.path.lexists(old):
            return ()
        rec = self.journal.latest_done_in(str(old), str(outbox))
        if rec is None or not rec.get("sha256"):
            return ()
        outputs = []
        for path in outputs_of(rec):
            writer = self.journal.latest_by_output(path)
            if writer is not None and writer.get("source") == str(old) and Path(path).is_file():
                outputs.append(Path(path))
        if not outputs:
            return ()
        try:
            same = hash_file(request.source) == rec["sha256"]
        except OSError:
            return ()
        return tuple(outputs) if same else ()

    def _preclaim(self, metas: Sequence[tuple[Request, Metadata | Early]]) -> None:
        """Files moved into a kit (a kit folder renamed) take the pads their samples had,
        where those are free, before the other files of the batch are given pads."""
        for request, meta in metas:
            config = request.config
            if not isinstance(meta, Metadata) or meta.pad is not None or config.layout != "kit":
                continue
            if request.moved_from is None:
                continue
            moved = self._moved(request, config.outbox)
            self._found_moved[request.source] = moved
            slots = [slot for slot in map(slot_of, moved) if slot is not None]
            if slots:
                kit = self._spelling(config.outbox, kit_folder(meta.kit))
                self._pad_book(config.outbox).preclaim(kit, slots, str(request.source))

    def _names(self, folder: Path) -> FolderNames:
        names = self._taken.get(folder)
        if names is None:
            names = self._taken[folder] = FolderNames(folder)
        return names

    def _spelling(self, outbox: Path, name: str) -> str:
        """The one spelling of a top-level outbox folder (a genre, a kit) among those that are
        one folder on FAT32 (``Lofi``, ``lofi``, ``LOFI``): the one already in the outbox, else
        the first planned."""
        known = self._spellings.get(outbox)
        if known is None:
            known = self._spellings[outbox] = folders_in(outbox)
        return known.setdefault(fold(name), name)

    def _spelled(self, outbox: Path, folder: PurePosixPath) -> PurePosixPath:
        if not folder.parts:
            return folder
        return PurePosixPath(self._spelling(outbox, folder.parts[0]), *folder.parts[1:])

    def _pad_book(self, outbox: Path) -> PadBook:
        book = self._pads.get(outbox)
        if book is None:
            book = self._pads[outbox] = PadBook(outbox)
        return book

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

    def _kit_key(self, request: Request, meta: Metadata) -> tuple[Path, str]:
        outbox = request.config.outbox
        return outbox, fold(self._spelling(outbox, kit_folder(meta.kit)))

    def _waits(self, request: Request, meta: Metadata) -> bool:
        """Whether a kit's file waits for a loop chopped at its onsets in its kit."""
        if not self.defer or request.config.layout != "kit":
            return False
        chopping = self._chopping.get(self._kit_key(request, meta))
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
            st = _stat(request.source)
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
        return self._unchanged(request.source, inputs, outbox, need_output=need_output) is not None

    def _unchanged(
        self, source: Path, inputs: str | None, outbox: Path, *, need_output: bool
    ) -> Outcome | None:
        rec = self.journal.latest_by_source(str(source))
        st = _stat(source)
        if not rec or st is None or inputs is None:
            return None
        if rec.get("status") in ("done", "skipped") and rec.get("outbox") not in (
            None,
            str(outbox),
        ):
            rec = self.journal.latest_done_in(str(source), str(outbox))  # its job in this one
            if rec is None:
                return None
        if (rec.get("size"), rec.get("mtime_ns"), rec.get("inputs")) != (
            st.st_size,
            st.st_mtime_ns,
            inputs,
        ):
            return None
        status = rec.get("status")
        if status == "rejected" and not need_output:
            return Outcome("rejected", str(rec.get("reason")))  # still refused, for that reason
        if status not in ("done", "skipped"):
            return None
        output = Path(str(rec["output"])) if rec.get("output") else None
        outputs = outputs_of(rec)
        if status == "skipped":  # the done job behind a re-run's skip knows all its slices
            done = self.journal.latest_done_in(str(source), str(outbox))
            if done is not None and done.get("output") == rec.get("output"):
                outputs = outputs_of(done)
        if need_output and not (outputs and all(Path(p).is_file() for p in outputs)):
            return None
        return Outcome("skipped", "already converted", rec.get("sha256"), rec.get("key"), output)

    def _plan(self, request: Request, meta: Metadata) -> Plan | Early:
        config = request.config
        source = request.source
        st = _stat(source)
        if st is None:
            reason = "the source file vanished before it could be converted"
            return Early(request, Outcome("failed", reason), meta)
        inputs = input_id(config, meta)
        early = (meta, st.st_size, st.st_mtime_ns, inputs)
        moved = self._found_moved.pop(source, None)
        if moved is None:
            moved = self._moved(request, config.outbox)
        unchanged = None
        if not request.again and not moved:
            unchanged = self._unchanged(source, inputs, config.outbox, need_output=self.need_output)
        if unchanged is not None:
            return Early(request, unchanged, *early, settled=True)
        rules = config.rules().shaped(meta.shaping)  # a sidecar's or folder file's, over all
        if config.layout == "kit" or rules.chop is not None:
            refused = _judged(request, rules)
            if refused is not None:
                return Early(request, refused, *early)
        own = (*self._own_outputs(source, config.outbox), *moved)
        if rules.chop is not None:
            return self._plan_chop(request, meta, rules, inputs, st, own)
        # Re-done in place: its one earlier output (others, from a time it was chopped, go).
        previous = own[0] if len(own) == 1 else None
        slot = None
        if config.layout == "kit":
            kit = self._spelling(config.outbox, kit_folder(meta.kit))
            try:
                slot = self._pad_book(config.outbox).claim(
                    kit, meta.bank, meta.pad, str(source), [str(p) for p in own]
                )
            except JobError as exc:
                # Not a fact about this file: the pad may free up. No input id, so the next
                # event or rescan tries again instead of taking the refusal as settled.
                return Early(request, Outcome("rejected", exc.reason), meta, *early[1:3], None)
        placement = place(meta, config.layout, name_length=config.name_length, slot=slot)
        folder = self._spelled(config.outbox, placement.folder)
        folder_abs = config.outbox.joinpath(*folder.parts)
        final, adopt = self._reserve(
            folder_abs, placement.stem, rules.extension, previous, config.name_length
        )
        return self._made(
            Plan(
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
                journal=self.journal.path,
                known_until=self.journal.last_id,
                earlier=tuple(p for p in own if p != previous),
            )
        )

    def _plan_chop(
        self,
        request: Request,
        meta: Metadata,
        rules: Rules,
        inputs: str,
        st: os.stat_result,
        own: tuple[Path, ...],
    ) -> Plan | Early:
        """A loop to chop: a name (``NAME_01``...) and in a kit a pad for each slice it may
        give, consecutive pads from its own pad or the first free run."""
        config = request.config
        assert rules.chop is not None
        count = rules.chop[1]
        if config.layout == "kit" and config.name_length < KIT_CHOP_NAME:
            reason = (
                f"chop in a kit needs name_length {KIT_CHOP_NAME} or more for its slices' names "
                f"(pad_01_ + a letter + _01); it is {config.name_length}"
            )
            return Early(
                request, Outcome("rejected", reason), meta, st.st_size, st.st_mtime_ns, inputs
            )
        slots: list[tuple[str, int] | None] = [None] * count
        if config.layout == "kit":
            kit = self._spelling(config.outbox, kit_folder(meta.kit))
            try:
                run = self._pad_book(config.outbox).claim_run(
                    kit,
                    meta.bank,
                    meta.pad,
                    count,
                    str(request.source),
                    [str(p) for p in own],
                    flexible=rules.chop[0] == "onsets",
                )
            except JobError as exc:  # as for one pad: it may free up, so no input id
                return Early(
                    request, Outcome("rejected", exc.reason), meta, st.st_size, st.st_mtime_ns
                )
            slots = list(run)
            if rules.chop[0] == "onsets":  # holds pads it may not use: the kit waits for it
                self._chopping[self._kit_key(request, meta)] = request.source
        room = config.name_length - 3  # for _01
        pieces: list[Piece] = []
        base: str | None = None
        for i, slot in enumerate(slots):
            placement = place(meta, config.layout, name_length=room, slot=slot)
            folder = self._spelled(config.outbox, placement.folder)
            folder_abs = config.outbox.joinpath(*folder.parts)
            if slot is None and base is None:  # one folder for all: a base no other set has
                ours = {fold(p.name) for p in own if p.parent == folder_abs}
                names = self._names(folder_abs)
                base = chop_base(names, placement.stem, rules.extension, room, count, ours)
            stem = f"{base if slot is None else placement.stem}_{i + 1:02d}"
            mine = next(
                (p for p in own if p.parent == folder_abs and _is_named(p, stem, rules.extension)),
                None,
            )
            if mine is not None:  # its own earlier slice of this name (or a _2 of it): in place
                pieces.append(Piece(mine, slot, (mine,)))
                continue
            final, adopt = self._reserve(
                folder_abs, stem, rules.extension, None, config.name_length
            )
            if slot is None and base != placement.stem:
                # A set of this name no record claims (the journal lost, or an older loop):
                # if it is this very slice, byte for byte, it is taken back, not doubled.
                plain = self._names(folder_abs).variants(
                    f"{placement.stem}_{i + 1:02d}", rules.extension, config.name_length
                )
                adopt = (*plain[:1], *adopt)
            pieces.append(Piece(final, slot, adopt))
        first = pieces[0]
        return self._made(
            Plan(
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
                journal=self.journal.path,
                known_until=self.journal.last_id,
                pieces=tuple(pieces),
                earlier=own,
            )
        )

    def _reserve(
        self, folder: Path, stem: str, ext: str, previous: Path | None, max_len: int
    ) -> tuple[Path, tuple[Path, ...]]:
        if (
            previous is not None
            and previous.parent == folder
            and fold(previous.name) == fold(stem + ext)
        ):
            return previous, ()
        names = self._names(folder)
        name = unique_filename(stem, ext, names.taken, max_len=max_len)
        names.taken.add(fold(name))
        return folder / name, names.variants(stem, ext, max_len)

    def _release_slot(self, plan: Plan) -> None:
        if plan.slot is not None:
            self._pad_book(plan.rules.outbox).release(
                plan.folder.parts[0], plan.slot, str(plan.source)
            )

    def _made(self, plan: Plan) -> Plan:
        """A plan leaves for a worker: its folders are in use until it has ended."""
        for folder in _folders(plan):
            self._busy[folder] = self._busy.get(folder, 0) + 1
        return plan

    def settle(self, plan: Plan, outcome: Outcome) -> None:
        """Update reservations once a job has ended; folders its job emptied go."""
        for folder in _folders(plan):
            left = self._busy.get(folder, 0) - 1
            if left > 0:
                self._busy[folder] = left
            else:
                self._busy.pop(folder, None)
        if outcome.status == "done":
            book = self._pad_book(plan.rules.outbox)
            for gone in (outcome.replaced, *outcome.removed):  # off the disk: names free again
                if gone is not None:
                    self._names(gone.parent).taken.discard(fold(gone.name))
                    book.removed(gone)
            for gone in (outcome.replaced, *outcome.removed):
                if gone is not None:
                    self._prune(gone.parent, plan.rules.outbox)
        for folder in _folders(plan):  # made for pieces it did not use, or a job refused
            self._prune(folder, plan.rules.outbox)
        if plan.pieces:
            self._settle_pieces(plan, outcome)
            return
        if outcome.status == "done" and outcome.output is not None:
            if outcome.output != plan.final:  # adopted an existing file: free the reservation
                self._names(plan.final.parent).taken.discard(fold(plan.final.name))
            if plan.slot is not None:
                self._pad_book(plan.rules.outbox).settle(
                    plan.folder.parts[0], plan.slot, str(outcome.output)
                )
            return
        self._unreserve(plan.final, plan.replaces)
        self._release_slot(plan)

    def _prune(self, folder: Path, outbox: Path) -> None:
        """Remove ``folder`` and the folders above it, up to the outbox, while they are empty
        and no job of this process is about to write in them (a redone kit leaves no empty
        kit or bank folder on the card)."""
        while folder != outbox and folder.is_relative_to(outbox) and folder not in self._busy:
            try:
                os.rmdir(folder)
            except OSError:  # not empty (or gone already): the work is done
                return
            self._taken.pop(folder, None)
            folder = folder.parent

    def _unreserve(self, final: Path, replaces: Path | None) -> None:
        """Free a name a job did not write (unless something is on disk under it now)."""
        if final == replaces:
            return
        names = self._names(final.parent)
        if final.exists():
            # Renamed into place before the job failed (a killed worker, a failed folder
            # fsync): the name stays taken, and the retry's plan offers it for adoption.
            names.saw(final.name)
        else:
            names.taken.discard(fold(final.name))

    def _settle_pieces(self, plan: Plan, outcome: Outcome) -> None:
        """A chopped loop: pieces it wrote hold their names and pads; the rest (fewer onsets
        than pieces, or a job that failed) are given back."""
        for key, source in list(self._chopping.items()):
            if source == plan.source:
                del self._chopping[key]
        written = outcome.slices if outcome.status == "done" else ()
        book = self._pad_book(plan.rules.outbox)
        kit = plan.folder.parts[0] if plan.folder.parts else ""
        for i, piece in enumerate(plan.pieces):
            output = written[i].output if i < len(written) else None
            if output is not None:
                if output != piece.final:
                    self._names(piece.final.parent).taken.discard(fold(piece.final.name))
                if piece.slot is not None:
                    book.settle(kit, piece.slot, str(output))
                continue
            self._unreserve(piece.final, piece.final if piece.final in plan.earlier else None)
            if piece.slot is not None:
                book.release(kit, piece.slot, str(plan.source))


def kit_keys_need_kit_layout(meta: Metadata, layout: str) -> None:
    """A kit, bank or pad a sidecar or folder file sets is refused under another layout: it
    would be ignored, and the musician who wrote it expects a kit."""
    if layout == "kit":
        return
    for name in ("kit", "bank", "pad"):
        origin = meta.origins.get(name, "")
        value = getattr(meta, name)
        if value is not None and origin.startswith(("sidecar:", "folder:")):
            where = origin.replace("sidecar:", "sidecar ").replace("folder:", "folder file ")
            raise RejectedError(
                f"{name}: {value} in {where}, but the layout here is {layout}: "
                "add layout: kit to that file (or to the inbox's settings)"
            )


def _folders(plan: Plan) -> set[Path]:
    return {p.final.parent for p in plan.pieces} if plan.pieces else {plan.final.parent}


def _judged(request: Request, rules: Rules) -> Outcome | None:
    """A kit's file, or a loop to chop, is judged before it takes its pads (a header read, as
    the worker's first look): a file refused later would leave a hole in the kit, and ``check``
    would promise a chop the job refuses. The refusal is the worker's, word for word."""
    info = None
    try:
        info = probe(request.source)
        check_duration(info, rules)
        if rules.chop is not None:
            why = too_long_to_chop(info.frames, info.rate, exact=info.exact_length)
            way, count = rules.chop
            # Equal slices too short: known from the header, unless a trim shortens it first.
            sure = info.exact_length and rules.short_files == "reject" and not rules.trim
            if why is None and way == "equal" and sure:
                least = round(rules.min_duration_ms * dsp.OUT_RATE / 1000)
                why = slices_too_short(info.frames * dsp.OUT_RATE // info.rate, count, least)
            if why is not None:
                raise RejectedError(why)
    except JobError as exc:
        return Outcome("failed" if exc.retry else "rejected", exc.reason, info=info)
    return None


def _is_named(path: Path, stem: str, ext: str) -> bool:
    """Whether ``path`` is ``stem + ext`` or a numbered variant of it (``stem_2``), any case."""
    if fold(path.suffix) != fold(ext):
        return False
    own = fold(path.stem)
    base = fold(stem)
    return own == base or (own.startswith(base + "_") and own[len(base) + 1 :].isdigit())


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None
