"""Records each finished job: journal, intent note, log, tally and the caller's hook.

Only this process writes the journal, the single-writer pattern TinyDB's maintainers recommend.
A record owed is a record written: when the journal cannot be appended to (its disk full,
read-only, gone), :meth:`Recorder.record` does not fail: the record waits in memory, in order
(``Journal.append_or_owe``), and the next record or :meth:`Recorder.flush_owed` writes it once
the journal takes it. The log says so once (``journal_unwritable`` with the reason and ``owed``,
then ``journal_writable``). What must follow a record waits with it: the job's intent note stays
unresolved, and a caller's aftercare can wait through :meth:`Recorder.owes`. At the end
(:meth:`Recorder.finish_owed`) records still owed are logged as lost with their outputs:
complete files, which a later run adopts (conversion is deterministic) instead of converting
again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sp404d.journal import Journal
from sp404d.logs import get_logger
from sp404d.pipeline.intents import Intents
from sp404d.pipeline.plan import Outcome, Plan
from sp404d.pipeline.planner import Early
from sp404d.pipeline.records import JobRecord, make_record, make_records

RecordHook = Callable[[JobRecord], None]


@dataclass
class Tally:
    """Counts by status, for summaries and exit codes."""

    counts: dict[str, int] = field(default_factory=dict)
    slices: int = 0  # outputs of chopped loops (each loop counts once in ``counts``)

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def ok(self) -> bool:
        return not (self.counts.get("rejected") or self.counts.get("failed"))


def _finals(plan: Plan) -> list[Path]:
    """The output names a plan reserved: its one, or one a slice."""
    return [p.final for p in plan.pieces] if plan.pieces else [plan.final]


class Recorder:
    """Writes (or owes) each job's record and what hangs on it. Call from one thread only.

    ``hooks`` see every record once it is made (the planner's index of reservations, a progress
    line), whether the journal took it yet or not.
    """

    def __init__(self, journal: Journal, hooks: Sequence[RecordHook] = ()) -> None:
        self.journal = journal
        self.intents = Intents(journal.path)
        self.hooks = list(hooks)
        self.tally = Tally()
        self.log = get_logger()
        self._journal_down = False  # journal_unwritable said, journal_writable not yet
        self._written_late = 0  # owed records written since journal_unwritable
        self._waiting: dict[str, list[Callable[[], None]]] = {}  # source -> what waits for it
        self._ready: list[Callable[[], None]] = []  # their records are written: run them

    def close(self) -> None:
        self.intents.close()

    def intend(self, plans: Sequence[Plan]) -> None:
        """Note each plan's output before it runs, so a crash between its rename and its record
        never leaves a duplicate (:mod:`sp404d.pipeline.intents`)."""
        self.intents.add([(plan.source, final) for plan in plans for final in _finals(plan)])

    def ran(self, plan: Plan, outcome: Outcome, started_at: str) -> JobRecord:
        """Record a job that ran (a chopped loop: a record a slice); its intent notes are
        resolved once its (last) record is written. Returns the last record."""
        records = make_records(plan, outcome, started_at)
        if outcome.status == "done":
            self.tally.slices += len(outcome.slices)
        notes = [(plan.source, final) for final in _finals(plan)]
        for rec in records[:-1]:
            self._record(rec, [], last=False)
        return self._record(records[-1], notes)

    def record(self, item: Plan | Early, outcome: Outcome, started_at: str) -> JobRecord:
        """Journal (or owe), log and report one finished job. Never raises for the journal."""
        return self._record(make_record(item, outcome, started_at), ())

    def _record(
        self, rec: JobRecord, intents: Sequence[tuple[Path, Path]], *, last: bool = True
    ) -> JobRecord:
        """``last``: the job's last record (a slice before it is logged and journaled, but
        neither counted nor shown to the hooks: a job is one file, however many slices)."""
        source = rec["source"]

        def written(late: bool) -> None:
            for note in intents:
                self.intents.resolve(*note)
            if late:
                self._written_late += 1
                if not self.journal.owes(source):
                    self._ready += self._waiting.pop(source, [])

        self.journal.append_or_owe(rec, written)
        self._journal_state()
        status = rec["status"]
        level = "info" if status in ("done", "skipped") else "warning"
        fields = {k: rec[k] for k in ("source", "status", "reason", "output") if rec[k] is not None}
        if "slice" in rec:
            fields["slice"] = f"{rec['slice'].get('n')}/{rec['slice'].get('of')}"
        getattr(self.log, level)("job", **fields, duration_s=rec["elapsed_s"])
        if not last:
            return rec
        self.tally.add(status)
        for hook in self.hooks:
            hook(rec)
        self._run_ready()
        return rec

    # --- records the journal could not take yet -----------------------------------------------

    def owes(self, source: Path, then: Callable[[], None] | None = None) -> bool:
        """Whether the record of ``source`` waits for the journal; if so, ``then`` runs once it
        is written (a move or delete of the source must wait for its record)."""
        if not self.journal.owes(str(source)):
            return False
        if then is not None:
            self._waiting.setdefault(str(source), []).append(then)
        return True

    def journal_problem(self) -> dict[str, Any] | None:
        """For the daemon's state file: why the journal cannot be written, while records wait."""
        if not self.journal.owed:
            return None
        return {"reason": self.journal.owed_reason, "records_owed": self.journal.owed}

    def flush_owed(self) -> bool:
        """Look at the journal (one stat: deleted or replaced?) and write the records owed, if
        it takes them now. True when something changed worth reporting. Never raises."""
        owed = self.journal.owed
        changed = self.journal.check()
        self.intents.check()
        if owed:
            self.journal.write_owed()
        changed = self._journal_state() or changed or self.journal.owed != owed
        self._run_ready()
        return changed

    def finish_owed(self) -> int:
        """The last try (at stop, at the end of ``convert``): write what is owed; log what still
        cannot be, with its outputs, as lost. Return how many records were lost."""
        self.flush_owed()
        if not self.journal.owed:
            return 0
        reason = self.journal.owed_reason
        lost = self.journal.drop_owed()
        self._waiting.clear()
        self._journal_down = False
        self.log.error(
            "journal_records_lost",
            journal=str(self.journal.path),
            reason=reason,
            records=len(lost),
            outputs=[rec["output"] for rec in lost if rec.get("output")],
            sources=[rec["source"] for rec in lost if not rec.get("output")],
            note="each output is a complete file; a run once the journal can be written adopts "
            "it (conversion is deterministic) and records it, without converting it twice",
        )
        return len(lost)

    def _journal_state(self) -> bool:
        """Log a change of the journal's state once; True when it changed."""
        owed = self.journal.owed
        if owed and not self._journal_down:
            self._journal_down, self._written_late = True, 0
            self.log.warning(
                "journal_unwritable",
                journal=str(self.journal.path),
                reason=self.journal.owed_reason,
                owed=owed,
                action="records wait in memory, in order, and are written once it takes them",
            )
            return True
        if not owed and self._journal_down:
            self._journal_down = False
            self.log.info(
                "journal_writable", journal=str(self.journal.path), written=self._written_late
            )
            return True
        return False

    def _run_ready(self) -> None:
        while self._ready:
            self._ready.pop(0)()

    def sync(self) -> None:
        # A failed fsync is said once already (journal_sync_failed); the records are written.
        with contextlib.suppress(OSError):
            self.journal.sync()
