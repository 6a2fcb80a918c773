"""The parent's side of a job: decide everything before the audio is touched.

Plans are made in one process so that names and pads can be handed out without races:
two sources never get the same output name (compared without regard to case, as FAT does),
and kit pads go to explicit claims first, then to the rest in name order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sp404d.config import Config
from sp404d.errors import JobError
from sp404d.job import Outcome, Plan, Rules
from sp404d.journal import Journal
from sp404d.kits import PadBook
from sp404d.layout import kit_folder, place
from sp404d.metadata import Metadata, read_metadata
from sp404d.names import fold, unique_filename


@dataclass(frozen=True)
class Request:
    """A file to convert, the folder its metadata is read relative to, and its settings."""

    source: Path
    root: Path
    config: Config


@dataclass(frozen=True)
class Early:
    """A job that ended while planning (bad sidecar, pad taken, unchanged and skipped)."""

    request: Request
    outcome: Outcome
    meta: Metadata | None = None
    size: int | None = None
    mtime_ns: int | None = None


def rules_for(config: Config) -> Rules:
    return Rules(
        outbox=config.outbox,
        outbox_removable=config.outbox_removable,
        format=config.format,
        quality=config.quality,
        overs=config.overs,
        min_duration_ms=config.min_duration_ms,
        short_files=config.short_files,
        max_duration_s=config.max_duration_s,
        write_txt=config.write_txt,
    )


def place_id(plan: Plan) -> str:
    """Where, how and with what metadata a plan writes: equal ids mean nothing to do.

    The metadata digest makes a changed sidecar re-do its file even when the output name stays
    the same (new tags, say), so the journal never holds stale metadata.
    """
    meta = json.dumps(plan.meta.as_dict(), sort_keys=True, default=str)
    digest = hashlib.sha256(meta.encode()).hexdigest()[:12]
    where = f"{plan.folder.as_posix()}/{plan.stem}{plan.rules.extension}"
    return f"{where}|{plan.rules.fingerprint()}|{digest}"


class Planner:
    """Turns requests into plans, holding this session's name and pad reservations."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._taken: dict[Path, FolderNames] = {}
        self._pads: dict[Path, PadBook] = {}
        self._by_size: dict[int, list[tuple[str, str]]] | None = None

    def forget(self) -> None:
        """Drop cached folder listings (the outbox may have changed behind our back)."""
        self._taken.clear()
        self._pads.clear()

    # --- indexes -------------------------------------------------------------------------

    def _known(self, size: int) -> tuple[tuple[str, str], ...]:
        if self._by_size is None:
            self._by_size = {}
            for rec in self.journal.all():
                self._index(rec)
        return tuple(self._by_size.get(size, ()))

    def _index(self, rec: dict[str, object]) -> None:
        if self._by_size is None:
            return
        if rec.get("status") == "done" and rec.get("key") and rec.get("output"):
            size = rec.get("size")
            if isinstance(size, int):
                self._by_size.setdefault(size, []).append((str(rec["key"]), str(rec["output"])))

    def recorded(self, rec: dict[str, object]) -> None:
        """Keep the skip index current with a record just appended."""
        self._index(rec)

    def _names(self, folder: Path) -> FolderNames:
        names = self._taken.get(folder)
        if names is None:
            names = self._taken[folder] = FolderNames(folder)
        return names

    def _pad_book(self, outbox: Path) -> PadBook:
        book = self._pads.get(outbox)
        if book is None:
            book = self._pads[outbox] = PadBook(outbox)
        return book

    # --- planning ------------------------------------------------------------------------

    def plan_many(self, requests: Sequence[Request]) -> Iterator[Plan | Early]:
        """Plan a batch: explicit pad claims first, the rest in name order.

        Without kits there is no order to keep, so plans are yielded as they are made and the
        workers start on the first file while the rest are still being planned.
        """
        if all(r.config.layout != "kit" for r in requests):
            for request in requests:
                yield self.plan(request)
            return
        metas: list[tuple[Request, Metadata | Early]] = [(r, self._read(r)) for r in requests]
        order = sorted(
            range(len(metas)),
            key=lambda i: (
                0 if isinstance(m := metas[i][1], Metadata) and m.pad is not None else 1,
                i,
            ),
        )
        results: list[Plan | Early | None] = [None] * len(metas)
        for i in order:
            request, meta = metas[i]
            results[i] = meta if isinstance(meta, Early) else self._plan(request, meta)
        yield from (r for r in results if r is not None)

    def plan(self, request: Request) -> Plan | Early:
        meta = self._read(request)
        return meta if isinstance(meta, Early) else self._plan(request, meta)

    def _read(self, request: Request) -> Metadata | Early:
        try:
            return read_metadata(request.source, request.root, request.config.defaults)
        except JobError as exc:
            return Early(request, Outcome("rejected", exc.reason))

    def _plan(self, request: Request, meta: Metadata) -> Plan | Early:
        config = request.config
        source = request.source
        try:
            st = source.stat()
        except OSError:
            return Early(
                request,
                Outcome("failed", "the source file vanished before it could be converted"),
                meta,
            )
        rules = rules_for(config)
        previous = self._previous(source)
        slot = None
        if config.layout == "kit":
            kit = kit_folder(meta.kit)
            try:
                slot = self._pad_book(config.outbox).claim(
                    kit, meta.bank, meta.pad, str(source), str(previous) if previous else None
                )
            except JobError as exc:
                return Early(
                    request, Outcome("rejected", exc.reason), meta, st.st_size, st.st_mtime_ns
                )
        placement = place(meta, config.layout, name_length=config.name_length, slot=slot)
        folder_abs = config.outbox.joinpath(*placement.folder.parts)
        draft = Plan(
            source=source,
            root=request.root,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            meta=meta,
            folder=placement.folder,
            stem=placement.stem,
            final=folder_abs,
            rules=rules,
            slot=slot,
        )
        unchanged = self._unchanged(draft)
        if unchanged is not None:
            self._release_slot(draft)
            return Early(request, unchanged, meta, st.st_size, st.st_mtime_ns)
        final, adopt = self._reserve(
            folder_abs, placement.stem, rules.extension, previous, config.name_length
        )
        return replace(
            draft, final=final, adopt=adopt, replaces=previous, known=self._known(st.st_size)
        )

    def _previous(self, source: Path) -> Path | None:
        """This source's own output from its last successful job, if it still exists."""
        rec = self.journal.latest_by_source(str(source))
        if rec and rec.get("status") in ("done", "skipped") and rec.get("output"):
            out = Path(str(rec["output"]))
            if out.is_file():
                return out
        return None

    def _unchanged(self, plan: Plan) -> Outcome | None:
        """The fast skip: same file (size, mtime), same placement, output still there."""
        rec = self.journal.latest_by_source(str(plan.source))
        if not rec or rec.get("status") not in ("done", "skipped"):
            return None
        same = (
            rec.get("size") == plan.size
            and rec.get("mtime_ns") == plan.mtime_ns
            and rec.get("place") == place_id(plan)
            and rec.get("output")
            and Path(str(rec["output"])).is_file()
        )
        if not same:
            return None
        return Outcome(
            "skipped",
            "already converted",
            rec.get("sha256"),
            rec.get("key"),
            Path(str(rec["output"])),
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
                kit_folder(plan.meta.kit), plan.slot, str(plan.source)
            )

    def settle(self, plan: Plan, outcome: Outcome) -> None:
        """Update reservations once a job has ended."""
        if outcome.status == "done" and outcome.output is not None:
            if outcome.output != plan.final:  # adopted an existing file: free the reservation
                self._names(plan.final.parent).taken.discard(fold(plan.final.name))
            if plan.slot is not None:
                self._pad_book(plan.rules.outbox).settle(
                    kit_folder(plan.meta.kit), plan.slot, str(outcome.output)
                )
            return
        if plan.final != plan.replaces:
            self._names(plan.final.parent).taken.discard(fold(plan.final.name))
        self._release_slot(plan)


class FolderNames:
    """The names in one output folder: what was on disk at first look, plus reservations."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            on_disk = os.listdir(folder)
        except OSError:
            on_disk = []
        self.taken = {fold(n) for n in on_disk}
        self._on_disk = {fold(n): n for n in on_disk}

    def variants(self, stem: str, ext: str, max_len: int) -> tuple[Path, ...]:
        """Files already on disk under the names this stem would get (``stem``, ``stem_2``...).

        Walks the same sequence ``unique_filename`` hands out, so shortened stems
        (``Very_Long_Sample_Nam_10``) are found too; stops at the first name not on disk.
        """
        found: list[Path] = []
        seen: set[str] = set()
        while True:
            name = fold(unique_filename(stem, ext, seen, max_len=max_len))
            if name not in self._on_disk:
                return tuple(found)
            found.append(self.folder / self._on_disk[name])
            seen.add(name)
