"""Who holds which pad of a kit: 10 banks (A-J) x 16 pads = 160 samples, as on the unit.

A pad is held by a file already in the outbox (its name starts ``pad_NN_``) or by a claim made
earlier in this session. Explicit claims (sidecar, folder or a leading number in the name) take
the pad they ask for or are rejected; the rest take the next free pad in bank order. A source
that is re-done (a changed sidecar) may take back the pad its own earlier output held.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Collection
from pathlib import Path

from sp404d.errors import RejectedError
from sp404d.naming.names import fold

BANKS = "ABCDEFGHIJ"
PADS = 16
# Samples only: a `pad_05_kick.txt` metadata note beside a sample holds no pad.
_PAD_FILE = re.compile(r"^pad_(\d\d)_.*\.(wav|aif|aiff)$", re.IGNORECASE)
_BANK_DIR = re.compile(r"^bank_([A-J])$", re.IGNORECASE)

Slot = tuple[str, int]


class PadBook:
    """Pads taken per kit folder, read from disk once per kit and kept current by claims.

    Kits are told apart as FAT32 tells folders apart, without regard to case: ``Boombap`` and
    ``boombap`` are one folder on the card, so they share one book (read from the spelling
    asked for first; the planner asks with the spelling the outbox already has).
    """

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self._held: dict[str, dict[Slot, str]] = {}

    def _kit(self, kit: str) -> dict[Slot, str]:
        held = self._held.get(fold(kit))
        if held is None:
            held = {}
            base = self.outbox / kit
            try:
                banks = list(os.scandir(base))
            except OSError:
                banks = []
            for entry in banks:
                bank = _BANK_DIR.match(entry.name)
                if not bank or not entry.is_dir():
                    continue
                for name in os.listdir(entry.path):
                    pad = _PAD_FILE.match(name)
                    if pad and 1 <= int(pad.group(1)) <= PADS:
                        held[(bank.group(1).upper(), int(pad.group(1)))] = str(
                            Path(entry.path, name)
                        )
            self._held[fold(kit)] = held
        return held

    def claim(
        self,
        kit: str,
        bank: str | None,
        pad: int | None,
        owner: str,
        previous: Collection[str] = (),
    ) -> Slot:
        """Take a slot for ``owner`` (a source path); ``previous``: its own earlier outputs."""
        held = self._kit(kit)
        mine = sorted(s for s, h in held.items() if h in previous or h == owner)
        for old in mine:
            del held[old]
        if pad is None:
            # A re-done sample keeps its pad: pads must not shuffle when a sidecar changes.
            for old in mine:
                if bank is None or old[0] == bank.upper():
                    held[old] = owner
                    return old
        if pad is not None:
            slot: Slot = ((bank or "A").upper(), pad)
            taken_by = held.get(slot)
            if taken_by is not None and taken_by != owner:
                self._keep(held, mine, owner)  # still on disk: a refusal must not free them
                raise RejectedError(
                    f"pad {slot[0]}{slot[1]:02d} of kit '{kit}' is already taken by "
                    f"{Path(taken_by).name}"
                )
            held[slot] = owner
            return slot
        for b in [bank.upper()] if bank else BANKS:
            for p in range(1, PADS + 1):
                if (b, p) not in held:
                    held[(b, p)] = owner
                    return (b, p)
        self._keep(held, mine, owner)
        if bank:
            raise RejectedError(f"bank {bank.upper()} of kit '{kit}' is full: 16 pads")
        raise RejectedError(f"kit '{kit}' is full: 160 samples (banks A-J x 16 pads)")

    def claim_run(
        self,
        kit: str,
        bank: str | None,
        pad: int | None,
        count: int,
        owner: str,
        previous: Collection[str] = (),
        *,
        flexible: bool = False,
    ) -> list[Slot]:
        """Take ``count`` consecutive pads for the slices of ``owner``, in the unit's order
        (A1..A16, B1...): from ``pad`` if one is asked for (refused if any is taken), else its
        own earlier run if it fits, else the first free run (starting in ``bank``, if given).

        ``flexible`` (a chop at onsets, whose count is only an upper bound): its own earlier
        run is kept, up to ``count`` pads, as long as there is room for at least as many slices
        as it had; a loop re-chopped stays on its pads."""
        held = self._kit(kit)
        mine = sorted(s for s, h in held.items() if h in previous or h == owner)
        for old in mine:
            del held[old]
        order = [(b, p) for b in BANKS for p in range(1, PADS + 1)]
        if pad is not None:
            first = order.index(((bank or "A").upper(), pad))
            run = order[first : first + count]
            taken = [s for s in run if s in held]
            if len(run) < count or taken:
                self._keep(held, mine, owner)
                span = f"{_name(run[0])}-{_name(order[min(first + count, len(order)) - 1])}"
                why = (
                    f"{_name(taken[0])} is taken by {Path(held[taken[0]]).name}"
                    if taken
                    else f"the kit ends at J16, {count} pads from {_name(run[0])} do not fit"
                )
                raise RejectedError(f"pads {span} of kit '{kit}' for {count} slices: {why}")
            starts = [first]
        else:
            # Its own earlier run first, unless a bank is asked for that the run is not in.
            here = [s for s in mine if bank is None or s[0] == bank.upper()]
            starts = sorted(order.index(s) for s in here)[:1]
            starts += [i for i, s in enumerate(order) if bank is None or s[0] == bank.upper()]
        if flexible and mine and pad is None and (bank is None or mine[0][0] == bank.upper()):
            first = order.index(mine[0])
            run = list(itertools.takewhile(lambda s: s not in held, order[first : first + count]))
            if len(run) >= len(mine):
                for slot in run:
                    held[slot] = owner
                return run
        for first in starts:
            run = order[first : first + count]
            if len(run) == count and not any(s in held for s in run):
                for slot in run:
                    held[slot] = owner
                return run
        self._keep(held, mine, owner)
        where = f"bank {bank.upper()} on" if bank else "A1 on"
        raise RejectedError(
            f"kit '{kit}' has no {count} free pads in a row ({where}) for its slices"
        )

    @staticmethod
    def _keep(held: dict[Slot, str], mine: list[Slot], owner: str) -> None:
        for old in mine:
            held[old] = owner

    def release(self, kit: str, slot: Slot, owner: str) -> None:
        """Give back a slot whose job did not produce a file."""
        held = self._kit(kit)
        if held.get(slot) == owner:
            del held[slot]

    def preclaim(self, kit: str, slots: Collection[Slot], owner: str) -> None:
        """Hold ``slots`` for ``owner`` where they are free: a file moved into this kit takes
        the pads its samples had, when its own claim comes."""
        held = self._kit(kit)
        for slot in slots:
            held.setdefault(slot, owner)

    def removed(self, output: Path) -> None:
        """``output`` was removed from the card (replaced, moved): its pad is free."""
        held = self._held.get(fold(output.parent.parent.name))
        if held is None:
            return
        for slot, holder in list(held.items()):
            if holder == str(output):
                del held[slot]

    def settle(self, kit: str, slot: Slot, output: str) -> None:
        """After the file is written, the slot is held by the file (as a rescan would see it)."""
        self._kit(kit)[slot] = output


def slot_of(path: Path) -> Slot | None:
    """The (bank, pad) a sample's path in a kit says (``KIT/bank_C/pad_07_snare.wav``)."""
    bank, pad = _BANK_DIR.match(path.parent.name), _PAD_FILE.match(path.name)
    if bank is None or pad is None or not 1 <= int(pad.group(1)) <= PADS:
        return None
    return bank.group(1).upper(), int(pad.group(1))


def _name(slot: Slot) -> str:
    return f"{slot[0]}{slot[1]:02d}"
