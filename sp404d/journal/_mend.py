"""What a writer mends once it holds the lock: damaged lines kept aside, a journal that was
deleted, replaced or cut short under it rebuilt from what it had, a rewrite that is owed."""

from __future__ import annotations

import json
import os
from contextlib import suppress
from typing import Any

from sp404d.journal._lines import (
    Record,
    decode_region,
    pread_region,
)
from sp404d.journal._repair import (
    as_table,
    damaged_path,
    keep_aside,
    merge,
)
from sp404d.journal._state import (
    SNAPSHOT_EVERY,
    _Orphan,
    orphan_last,
)
from sp404d.journal._write import _Writing


class _Mending(_Writing):
    """A writer's repairs after a locked read."""

    def _after_locked_read(self) -> None:
        """Keep damage aside, check what we had against a file that changed under us, rewrite
        the file if that is owed (the rewrite's ``OSError`` leaves it owed), and keep the
        index's snapshot current."""
        decoded = self._table is not None
        if self._damage:
            self._keep_aside()
        if self._orphan is not None:
            self._adopt_orphan()
        if self._rebuild is not None:
            why = self._rebuild
            self._rewrite(self.table(), keep_table=decoded)
            self._rebuild, self._sync_error = None, None
            if self._sync_failing:
                self._sync_failing = False
                self._notice("info", "journal_synced", journal=str(self.path))
            self._notice(
                "info",
                "journal_rebuilt",
                journal=str(self.path),
                why=why,
                records=self._index.total,
            )
            return
        self._save_snapshot_if(SNAPSHOT_EVERY, locked=True)

    def _keep_aside(self) -> None:
        """Append the damaged lines to ``JOURNAL.damaged`` (fsynced), then drop them: a torn
        tail is cut off, damaged lines go with a rewrite. What cannot be kept stays put, except
        a torn tail: it is cut off regardless (an append must not glue onto it; it is the
        unfinished line of a writer that died, whose record it never reported written)."""
        found, self._damage = self._damage, []
        error = keep_aside(self.path, found)
        aside = damaged_path(self.path)
        torn = [f for f in found if f[0] == "torn"]
        damaged = [f for f in found if f[0] != "torn"]
        where: dict[str, Any] = {"kept_in": str(aside)} if error is None else {"not_kept": error}
        if torn:
            os.ftruncate(self._require_fd(), self._offset)
            self._notice(
                "info",
                "journal_torn_tail",
                journal=str(self.path),
                bytes=len(torn[0][3]),
                line=torn[0][1],
                **where,
                note="the last line was cut off, as a crash (kill -9, power cut) leaves it; "
                "its job had not been reported written and is redone",
            )
        if damaged:
            if error is None:
                self._rebuild = self._rebuild or "damaged lines dropped (kept aside)"
            self._notice(
                "warning",
                "journal_damaged",
                journal=str(self.path),
                lines=len(damaged),
                line_numbers=[f[1] for f in damaged[:20]],
                **where,
                note="these lines are not records; every other record loads",
            )

    def _adopt_orphan(self) -> None:
        """The file we had was deleted, replaced or cut short: add back what it held.

        A rewrite by another sp404d names the file it replaced (``replaces``): if that is the
        one we had, its content is the truth (it holds every record we had, updated or removed
        through TinyDB on purpose). Anything else is merged record by record
        (:func:`~sp404d.journal._repair.merge`).
        """
        assert self._orphan is not None
        orphan, self._orphan = self._orphan, None
        try:
            followed = orphan.how == "replaced" and orphan.ident is not None
            if followed and self._header_replaces == list(orphan.ident or ()):
                return
            known, lost = self._orphan_records(orphan)
        finally:
            if orphan.fd is not None:
                os.close(orphan.fd)
        decoded = self._table is not None
        merged = merge(known, self.table(), max(self._index.last_id, orphan_last(known)))
        event = "journal_missing" if orphan.how == "missing" else "journal_replaced"
        fields: dict[str, Any] = {"journal": str(self.path), "records_held": orphan.total}
        if orphan.how != "missing":
            fields.update(how=orphan.how, records_in_file=self._index.total)
        if lost:
            fields["lost"] = lost  # cut short in place: older records than this process wrote
        if not merged.missing:  # nothing we knew is lost: what is there now stands
            self._table = self._table if decoded else None
            self._notice("info", event, **fields, restored=0)
            return
        self._table = merged.table
        self._index.last_id = max(self._index.last_id, merged.last_id)
        self.generation += 1
        self._rebuild = f"{orphan.how}: {merged.missing} records restored"
        self._notice(
            "warning",
            event,
            **fields,
            restored=merged.missing,
            kept_from_file=merged.theirs,
            action="rebuilding it from the records this process had",
        )

    def _orphan_records(self, orphan: _Orphan) -> tuple[dict[str, Record], int]:
        """The records of the file we had, and how many of them are gone for good: read from
        its descriptor (a deleted or replaced file lives on while it is open), or, when it was
        cut short in place, the records this process appended itself."""
        if orphan.fd is not None and orphan.end > orphan.start:
            with suppress(OSError):
                region = pread_region(orphan.fd, orphan.start - 1, orphan.end)
                if region[:1] == b"\n" and region[-1:] == b"\n":
                    return as_table(decode_region(region)), 0
        mine = {str(doc_id): json.loads(body) for doc_id, body in self._session}
        return mine, max(0, orphan.total - len(mine))
