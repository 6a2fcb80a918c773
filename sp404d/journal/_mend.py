"""What a writer mends once it holds the lock: damaged lines kept aside, a journal that was
deleted, replaced or cut short under it rebuilt from what it had, a rewrite that is owed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from sp404d.journal._lines import Record, decode_region, pread_region
from sp404d.journal._repair import as_table, damaged_path, keep_aside, merge
from sp404d.journal._state import SNAPSHOT_EVERY, Durability, FileState, Orphan, orphan_last
from sp404d.journal._write import Writer


class Mender:
    """A writer's repairs after a locked read. ``table``: every record, decoded (the reader's;
    only a repair that rewrites the file needs them)."""

    def __init__(
        self,
        s: FileState,
        durability: Durability,
        writer: Writer,
        table: Callable[[], dict[str, Record]],
    ) -> None:
        self.s, self.durability, self.writer, self.table = s, durability, writer, table

    def after_locked_read(self) -> None:
        """Keep damage aside, check what we had against a file that changed under us, rewrite
        the file if that is owed (the rewrite's ``OSError`` leaves it owed), and keep the
        index's snapshot current."""
        decoded = self.s.table is not None
        if self.s.damage:
            self.keep_aside()
        if self.s.orphan is not None:
            self.adopt_orphan()
        if self.s.rebuild is not None:
            why = self.s.rebuild
            self.writer.rewrite(self.table(), keep_table=decoded)
            self.s.rebuild, self.durability.error = None, None
            self.durability.synced()  # the rewrite is fsynced: every record is on the disk
            self.s.notice(
                "info",
                "journal_rebuilt",
                journal=str(self.s.path),
                why=why,
                records=self.s.index.total,
            )
            return
        self.writer.save_snapshot_if(SNAPSHOT_EVERY, locked=True)

    def keep_aside(self) -> None:
        """Append the damaged lines to ``JOURNAL.damaged`` (fsynced), then drop them: a torn
        tail is cut off, damaged lines go with a rewrite. What cannot be kept stays put, except
        a torn tail: it is cut off regardless (an append must not glue onto it; it is the
        unfinished line of a writer that died, whose record it never reported written)."""
        found, self.s.damage = self.s.damage, []
        error = keep_aside(self.s.path, found)
        aside = damaged_path(self.s.path)
        torn = [f for f in found if f[0] == "torn"]
        damaged = [f for f in found if f[0] != "torn"]
        where: dict[str, Any] = {"kept_in": str(aside)} if error is None else {"not_kept": error}
        if torn:
            os.ftruncate(self.s.require_fd(), self.s.offset)
            self.s.notice(
                "info",
                "journal_torn_tail",
                journal=str(self.s.path),
                bytes=len(torn[0][3]),
                line=torn[0][1],
                **where,
                note="the last line was cut off, as a crash (kill -9, power cut) leaves it; "
                "its job had not been reported written and is redone",
            )
        if damaged:
            if error is None:
                self.s.rebuild = self.s.rebuild or "damaged lines dropped (kept aside)"
            self.s.notice(
                "warning",
                "journal_damaged",
                journal=str(self.s.path),
                lines=len(damaged),
                line_numbers=[f[1] for f in damaged[:20]],
                **where,
                note="these lines are not records; every other record loads",
            )

    def adopt_orphan(self) -> None:
        """The file we had was deleted, replaced or cut short: add back what it held.

        A rewrite by another sp404d names the file it replaced (``replaces``): if that is the
        one we had, its content is the truth (it holds every record we had, updated or removed
        through TinyDB on purpose). Anything else is merged record by record
        (:func:`~sp404d.journal._repair.merge`).
        """
        assert self.s.orphan is not None
        orphan, self.s.orphan = self.s.orphan, None
        try:
            followed = orphan.how == "replaced" and orphan.ident is not None
            if followed and self.s.header_replaces == list(orphan.ident or ()):
                return
            known, lost = self.orphan_records(orphan)
        finally:
            if orphan.fd is not None:
                os.close(orphan.fd)
        decoded = self.s.table is not None
        merged = merge(known, self.table(), max(self.s.index.last_id, orphan_last(known)))
        event = "journal_missing" if orphan.how == "missing" else "journal_replaced"
        fields: dict[str, Any] = {"journal": str(self.s.path), "records_held": orphan.total}
        if orphan.how != "missing":
            fields.update(how=orphan.how, records_in_file=self.s.index.total)
        if lost:
            fields["lost"] = lost  # cut short in place: older records than this process wrote
        if not merged.missing:  # nothing we knew is lost: what is there now stands
            self.s.table = self.s.table if decoded else None
            self.s.notice("info", event, **fields, restored=0)
            return
        self.s.table = merged.table
        self.s.index.last_id = max(self.s.index.last_id, merged.last_id)
        self.s.generation += 1
        self.s.rebuild = f"{orphan.how}: {merged.missing} records restored"
        self.s.notice(
            "warning",
            event,
            **fields,
            restored=merged.missing,
            kept_from_file=merged.theirs,
            action="rebuilding it from the records this process had",
        )

    def orphan_records(self, orphan: Orphan) -> tuple[dict[str, Record], int]:
        """The records of the file we had, and how many of them are gone for good: read from
        its descriptor (a deleted or replaced file lives on while it is open), or, when it was
        cut short in place, the records this process appended itself."""
        if orphan.fd is not None and orphan.end > orphan.start:
            with suppress(OSError):
                region = pread_region(orphan.fd, orphan.start - 1, orphan.end)
                if region[:1] == b"\n" and region[-1:] == b"\n":
                    return as_table(decode_region(region)), 0
        mine = {str(doc_id): json.loads(body) for doc_id, body in self.s.session}
        return mine, max(0, orphan.total - len(mine))
