"""What is on a card: one model, read by every command that speaks about an outbox.

The card is the truth of what the unit will load: its files. The journal explains each one:
the ``done`` job that wrote it (:meth:`Journal.latest_by_output`), so its source, its settings
and its length as written are known. :func:`on_card` reads the files of one outbox and their
records; ``kits``, ``bundle`` and ``SP404D.TXT`` show exactly that, and a file sp404d did not
write (or whose record is lost) is shown too, as the unit would load it.

What the card *should* hold is the journal's word (:func:`standing`): for each source, its
newest ``done`` job in that outbox, whatever came after it. A redo that was refused leaves the
sample it would have replaced on the card, and everything says so: nothing but a successful
job or the user removes a sample. Outputs a later job removed (a source redone under another
name, a kit folder renamed) or wrote again (another source's job on the same path) are not
standing. ``rebuild`` makes the standing outputs; ``status --source`` says where they are.

Cheap: :func:`on_card` costs one directory walk and one index lookup a file (no journal scan),
so the daemon keeps ``SP404D.TXT`` current at any journal size; :func:`standing` is one pass
over the journal, for the commands that must know what is missing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sp404d.journal import Journal

AUDIO_SUFFIXES = (".wav", ".aif", ".aiff")
# A sample's place in a kit, as layout.place makes it: KIT/bank_X/pad_NN_NAME.wav.
_PAD_FILE = re.compile(r"^pad_(\d\d)_(.*)\.(wav|aif|aiff)$", re.IGNORECASE)
_BANK_DIR = re.compile(r"^bank_([A-J])$", re.IGNORECASE)
PADS_PER_BANK = 16


@dataclass(frozen=True)
class Output:
    """One sample on (or meant for) the card, with the job that wrote it."""

    path: Path  # absolute
    rel: PurePosixPath  # below the outbox
    record: Mapping[str, Any] | None  # the done job that wrote it; None: not sp404d's
    size: int | None  # bytes on the card; None: not there

    @property
    def present(self) -> bool:
        return self.size is not None

    @property
    def source(self) -> str | None:
        return str(self.record["source"]) if self.record else None

    @property
    def slot(self) -> tuple[str, str, int, str] | None:
        """(kit folder, bank, pad, name as the unit shows it) where a kit's sample sits."""
        parts = self.rel.parts
        if len(parts) != 3:
            return None
        bank, pad = _BANK_DIR.match(parts[1]), _PAD_FILE.match(parts[2])
        if bank is None or pad is None or not 1 <= int(pad.group(1)) <= PADS_PER_BANK:
            return None
        return parts[0], bank.group(1).upper(), int(pad.group(1)), pad.group(2)

    @property
    def slice(self) -> tuple[int, int] | None:
        """(n, of) for a slice of a chopped loop."""
        facts = (self.record or {}).get("slice")
        if isinstance(facts, Mapping) and isinstance(facts.get("n"), int):
            return int(facts["n"]), int(facts.get("of") or 0)
        return None

    @property
    def length_s(self) -> float | None:
        """Its length as written (trimmed, padded, a slice's own), not its source's."""
        render = (self.record or {}).get("render") or {}
        seconds = render.get("duration_s") if isinstance(render, Mapping) else None
        if isinstance(seconds, int | float):
            return round(float(seconds), 3)
        return _header_length(self.path) if self.present else None

    def metadata(self, name: str) -> Any:
        meta = (self.record or {}).get("metadata") or {}
        return meta.get(name) if isinstance(meta, Mapping) else None


@dataclass(frozen=True)
class Card:
    """The samples in one outbox, in path order."""

    outbox: Path
    outputs: tuple[Output, ...]

    def present(self) -> list[Output]:
        return [o for o in self.outputs if o.present]


def on_card(journal: Journal, outbox: Path) -> Card:
    """The samples in ``outbox`` now, each with the job that wrote it (if sp404d did)."""
    found: list[Output] = []
    for path, size in _walk(outbox):
        rec = journal.latest_by_output(str(path))
        rel = PurePosixPath(path.relative_to(outbox).as_posix())
        found.append(Output(path, rel, rec, size))
    return Card(outbox, tuple(found))


def _walk(outbox: Path) -> Iterator[tuple[Path, int]]:
    """Audio files below ``outbox`` (not our temp files, not hidden ones), in path order."""
    for folder, dirs, files in os.walk(outbox):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith((".", "~")) or not name.lower().endswith(AUDIO_SUFFIXES):
                continue
            path = Path(folder, name)
            try:
                yield path, path.stat().st_size
            except OSError:
                continue


def standing(
    newest_first: Iterable[Mapping[str, Any]], outbox: Path, others: set[str] | None = None
) -> list[Output]:
    """The outputs the journal says ``outbox`` holds: of each source, its newest ``done`` job
    there (all slices of a chopped loop), unless a newer job removed that output or wrote it
    again. In the journal's order (oldest first), each marked present or not. ``others``
    collects the other outboxes the journal names."""
    box = str(outbox)
    claimed: set[str] = set()  # outputs a newer job wrote or removed
    settled: set[str] = set()  # sources whose standing job was found
    chopping: dict[str, Any] = {}  # source -> started_at of its standing chop, slices to come
    found: list[Mapping[str, Any]] = []
    for rec in newest_first:
        source, output = str(rec.get("source")), rec.get("output")
        status = rec.get("status")
        gone = [rec.get("replaced"), *(rec.get("removed") or ())] if status == "done" else []
        if source in chopping:
            if (
                status == "done"
                and rec.get("slice")
                and rec.get("started_at") == chopping[source]
                and isinstance(output, str)
            ):
                if output not in claimed and _below(output, box):
                    found.append(rec)
                claimed.add(output)
                claimed.update(str(p) for p in gone if p)
                continue
            del chopping[source]
        if status != "done" or not isinstance(output, str) or not output:
            continue
        mine = rec.get("outbox") == box or (rec.get("outbox") is None and _below(output, box))
        if not mine and others is not None and isinstance(rec.get("outbox"), str):
            others.add(str(rec["outbox"]))
        if mine and source not in settled:
            settled.add(source)
            if output not in claimed:
                found.append(rec)
            if rec.get("slice"):
                chopping[source] = rec.get("started_at")
        claimed.add(output)
        claimed.update(str(p) for p in gone if p)
    found.reverse()
    outputs = []
    for rec in found:
        path = Path(str(rec["output"]))
        try:
            size: int | None = path.stat().st_size
        except OSError:
            size = None
        outputs.append(Output(path, PurePosixPath(path.relative_to(outbox).as_posix()), rec, size))
    return outputs


def of_source(journal: Journal, source: str, outboxes: Iterable[str]) -> list[Output]:
    """Where ``source``'s samples stand in each of ``outboxes`` (the outboxes its jobs named):
    its newest ``done`` job there, each output marked present or not, and left out when a
    newer job (another file's) wrote it since."""
    found = []
    for outbox in dict.fromkeys(outboxes):
        rec = journal.latest_done_in(source, outbox)
        slices = rec.get("slices") if rec else None
        paths = slices if isinstance(slices, list) and slices else [rec["output"]] if rec else []
        for path in map(str, paths):
            writer = journal.latest_by_output(path)
            if writer is not None and writer.get("source") != source:
                continue
            try:
                size: int | None = os.stat(path).st_size
            except OSError:
                size = None
            rel = PurePosixPath(Path(path).relative_to(outbox).as_posix())
            found.append(Output(Path(path), rel, writer or rec, size))
    return found


def _below(path: str, outbox: str) -> bool:
    return path.startswith(outbox.rstrip("/") + "/")


def _header_length(path: Path) -> float | None:
    """A file's length from its header (a sample sp404d has no record of)."""
    import soundfile as sf

    try:
        info = sf.info(os.fsencode(path))
    except Exception:  # not audio libsndfile reads: no length to show
        return None
    return round(float(info.frames) / info.samplerate, 3) if info.samplerate else None


def outboxes_with_kits(newest_first: Iterable[Mapping[str, Any]], most: int = 3) -> list[str]:
    """Other outboxes the journal has written kits to (for a hint when the card has none)."""
    found: list[str] = []
    for rec in newest_first:
        outbox, output = rec.get("outbox"), rec.get("output")
        if rec.get("status") != "done" or not isinstance(outbox, str) or outbox in found:
            continue
        if isinstance(output, str) and _below(output, outbox):
            rel = PurePosixPath(Path(output).relative_to(outbox).as_posix())
            if Output(Path(output), rel, None, None).slot is not None:
                found.append(outbox)
                if len(found) >= most:
                    break
    return found
