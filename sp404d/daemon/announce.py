"""What the daemon tells beyond its log, a moment after the jobs it concerns: a desktop
notification of refused and failed files, and the card's manifest (``SP404D.TXT``).

Both wait until jobs stop ending for a moment (``MERGE_S``), so a drop of a hundred files makes
one notification and one manifest write, not a hundred.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sp404d.card import write_manifest
from sp404d.config import Config
from sp404d.daemon.desktop import MERGE_S, DesktopNotifier
from sp404d.journal import Journal
from sp404d.logs import get_logger


class Announcer:
    def __init__(self, config: Config, journal: Journal) -> None:
        self.journal = journal
        self.log = get_logger()
        self.desktop = DesktopNotifier(config.notify == "desktop")
        self.manifest_due: float | None = None
        self.use(config)

    def use(self, config: Config) -> None:
        self.config = config
        self.desktop.enabled = config.notify == "desktop"

    @property
    def keeps_manifest(self) -> bool:
        return self.config.outbox_removable and self.config.card_manifest

    def saw(self, rec: Mapping[str, Any]) -> None:
        """A record was made (the recorder's hook)."""
        now = time.monotonic()
        self.desktop.add(rec, now)
        if self.keeps_manifest and rec.get("output"):
            self.manifest_due = now + MERGE_S

    def due(self) -> float | None:
        times = [t for t in (self.desktop.due(), self.manifest_due) if t is not None]
        return min(times) if times else None

    def flush(self, now: float, *, card_ready: bool, force: bool = False) -> None:
        """Send what is due (everything, with ``force``); the manifest only while the card is
        there (it waits for it otherwise)."""
        self.desktop.flush(now, force=force)
        due = self.manifest_due
        if due is None or not card_ready or (now < due and not force):
            return
        self.manifest_due = None
        try:
            written = write_manifest(self.config.outbox, self.journal)
        except OSError as exc:
            self.log.warning("card_manifest_failed", error=str(exc))
            return
        if written is not None:
            self.log.info("card_manifest", path=str(written))
