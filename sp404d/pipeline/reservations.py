"""What this session has handed out in the outbox: file names, kit pads, folder spellings, and
the folders jobs in flight write in.

The planner reserves; :meth:`Reservations.settle` keeps what a job wrote, gives back what it
did not, and removes folders its job left empty (a redone kit leaves no empty kit or bank
folder on the card). Names are compared as FAT32 compares them, without regard to case.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sp404d.naming import FolderNames, PadBook, fold, folders_in, unique_filename
from sp404d.pipeline.plan import Outcome, Plan


class Reservations:
    """Names, pads and folder spellings handed out this session, per outbox."""

    def __init__(self) -> None:
        self._taken: dict[Path, FolderNames] = {}
        self._pads: dict[Path, PadBook] = {}
        self._spellings: dict[Path, dict[str, str]] = {}  # outbox -> fold(folder) -> folder
        self._busy: dict[Path, int] = {}  # output folder -> plans in flight writing there
        self.chopping: dict[tuple[Path, str], Path] = {}  # (outbox, kit) -> source in flight

    def forget(self) -> None:
        """Drop cached folder listings (the outbox may have changed behind our back)."""
        self._taken.clear()
        self._pads.clear()
        self._spellings.clear()

    def names(self, folder: Path) -> FolderNames:
        names = self._taken.get(folder)
        if names is None:
            names = self._taken[folder] = FolderNames(folder)
        return names

    def spelling(self, outbox: Path, name: str) -> str:
        """The one spelling of a top-level outbox folder (a genre, a kit) among those that are
        one folder on FAT32 (``Lofi``, ``lofi``, ``LOFI``): the one already in the outbox, else
        the first planned."""
        known = self._spellings.get(outbox)
        if known is None:
            known = self._spellings[outbox] = folders_in(outbox)
        return known.setdefault(fold(name), name)

    def spelled(self, outbox: Path, folder: PurePosixPath) -> PurePosixPath:
        if not folder.parts:
            return folder
        return PurePosixPath(self.spelling(outbox, folder.parts[0]), *folder.parts[1:])

    def pads(self, outbox: Path) -> PadBook:
        book = self._pads.get(outbox)
        if book is None:
            book = self._pads[outbox] = PadBook(outbox)
        return book

    def reserve(
        self, folder: Path, stem: str, ext: str, previous: Path | None, max_len: int
    ) -> tuple[Path, tuple[Path, ...]]:
        """A name for ``stem`` in ``folder`` (``previous``, the source's own earlier output,
        if it is that very name), and files on disk that may already be this job's output."""
        if (
            previous is not None
            and previous.parent == folder
            and fold(previous.name) == fold(stem + ext)
        ):
            return previous, ()
        names = self.names(folder)
        name = unique_filename(stem, ext, names.taken, max_len=max_len)
        names.taken.add(fold(name))
        return folder / name, names.variants(stem, ext, max_len)

    def made(self, plan: Plan) -> Plan:
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
        outbox = plan.rules.outbox
        gone = [p for p in (outcome.replaced, *outcome.removed) if p is not None]
        if outcome.status == "done":
            for path in gone:  # off the disk: names and pads free again
                self.names(path.parent).taken.discard(fold(path.name))
                self.pads(outbox).removed(path)
            for path in gone:
                self._prune(path.parent, outbox)
        for folder in _folders(plan):  # made for pieces it did not use, or a job refused
            self._prune(folder, outbox)
        if plan.pieces:
            self._settle_pieces(plan, outcome)
        elif outcome.status == "done" and outcome.output is not None:
            if outcome.output != plan.final:  # adopted an existing file: free the reservation
                self.names(plan.final.parent).taken.discard(fold(plan.final.name))
            if plan.slot is not None:
                self.pads(outbox).settle(plan.folder.parts[0], plan.slot, str(outcome.output))
        else:
            self._unreserve(plan.final, plan.replaces)
            if plan.slot is not None:
                self.pads(outbox).release(plan.folder.parts[0], plan.slot, str(plan.source))

    def _prune(self, folder: Path, outbox: Path) -> None:
        """Remove ``folder`` and the folders above it, up to the outbox, while they are empty
        and no job of this process is about to write in them."""
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
        names = self.names(final.parent)
        if final.exists():
            # Renamed into place before the job failed (a killed worker, a failed folder
            # fsync): the name stays taken, and the retry's plan offers it for adoption.
            names.saw(final.name)
        else:
            names.taken.discard(fold(final.name))

    def _settle_pieces(self, plan: Plan, outcome: Outcome) -> None:
        """A chopped loop: pieces it wrote hold their names and pads; the rest (fewer onsets
        than pieces, or a job that failed) are given back."""
        for key, source in list(self.chopping.items()):
            if source == plan.source:
                del self.chopping[key]
        written = outcome.slices if outcome.status == "done" else ()
        book = self.pads(plan.rules.outbox)
        kit = plan.folder.parts[0] if plan.folder.parts else ""
        for i, piece in enumerate(plan.pieces):
            output = written[i].output if i < len(written) else None
            if output is not None:
                if output != piece.final:
                    self.names(piece.final.parent).taken.discard(fold(piece.final.name))
                if piece.slot is not None:
                    book.settle(kit, piece.slot, str(output))
                continue
            self._unreserve(piece.final, piece.final if piece.final in plan.earlier else None)
            if piece.slot is not None:
                book.release(kit, piece.slot, str(plan.source))


def _folders(plan: Plan) -> set[Path]:
    return {p.final.parent for p in plan.pieces} if plan.pieces else {plan.final.parent}
