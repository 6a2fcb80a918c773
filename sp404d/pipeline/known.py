"""What the journal knows of a source, as planning asks it: the outputs its own last job wrote
in an outbox, the samples of a file moved here, and whether nothing changed since its last job.

Unjournaled outputs (a crash between rename and record, noted by :mod:`sp404d.pipeline.intents`)
count as the source's own: they were written after its last record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sp404d.journal import Journal
from sp404d.pipeline.intents import Intents
from sp404d.pipeline.job import hash_file
from sp404d.pipeline.plan import Outcome
from sp404d.pipeline.request import Request, outputs_of


class Known:
    """The journal's word on sources, for one planner."""

    def __init__(self, journal: Journal, intents: Intents | None = None) -> None:
        self.journal = journal
        self._intents = intents
        # source -> outputs no record claims (a chopped loop's slices: several)
        self._recovered: dict[str, tuple[Path, ...]] | None = None

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

    def own_outputs(self, source: Path, outbox: Path) -> tuple[Path, ...]:
        """The outputs this source's own last done job in ``outbox`` wrote (a chopped loop's
        slices), those still there. Its outputs in another outbox (a second card) are none of
        this job's business."""
        found = self._recovered_outputs().get(str(source))
        if found is not None:
            found = tuple(p for p in found if p.is_relative_to(outbox))
        if not found:
            rec = self.journal.latest_done_in(str(source), str(outbox))
            found = tuple(Path(str(p)) for p in outputs_of(rec)) if rec else ()
        return tuple(p for p in found if p.is_file())

    def moved(self, request: Request, outbox: Path) -> tuple[Path, ...]:
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

    def unchanged(
        self, source: Path, inputs: str | None, outbox: Path, *, need_output: bool
    ) -> Outcome | None:
        """How the source's last final job in ``outbox`` ended, if it had these very inputs
        (size, mtime, metadata and settings): ``skipped`` (converted already) or ``rejected``
        (still refused, for that reason); None when there is work to do."""
        rec = self.journal.latest_by_source(str(source))
        st = stat_of(source)
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


def stat_of(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None
