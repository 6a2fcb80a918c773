"""Whether the daemon may write to its outbox now, and the temp files cut-off writes leave.

An outbox on an SD card comes and goes: while it is away nothing is dispatched (work waits in
the queue, the log and ``status`` say why), and it is looked for every ``AWAY_CHECK_S``. When it
is back, the planner's view of it is stale and writes cut off by the pull may have left temp
files: those are cleared once their writer has let go of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sp404d.config import Config
from sp404d.daemon.notify import Notifier
from sp404d.logs import FilteringBoundLogger, get_logger
from sp404d.pipeline import OutboxAwayError, check_outbox, clean_stale_temps

AWAY_CHECK_S = 1.0  # how often an absent outbox is looked for


@dataclass
class OutboxGuard:
    """The outbox's state: ``reason`` it is away (None while it is there).

    ``on_back`` runs when it returns (the daemon forgets what it knew of the outbox).
    """

    outbox: Path
    removable: bool
    notifier: Notifier
    on_back: Callable[[], None]
    reason: str | None = None
    next_check: float = 0.0
    temps_left: bool = False  # temp files of cut-off writes wait to be cleared
    log: FilteringBoundLogger = field(default_factory=get_logger)

    def use(self, config: Config) -> None:
        self.outbox, self.removable = config.outbox, config.outbox_removable

    def waiting(self, now: float) -> bool:
        """Away, and not yet time to look again."""
        return self.reason is not None and now < self.next_check

    def ok(self, now: float) -> bool:
        """Look at the outbox now; log once when it goes and when it is back."""
        try:
            check_outbox(self.outbox, removable=self.removable)
        except OutboxAwayError as exc:
            if self.reason is None:
                self.log.warning("outbox_away", outbox=str(self.outbox), reason=exc.reason)
                self.notifier.status(f"waiting: {exc.reason}")
            self.reason = exc.reason
            self.next_check = now + AWAY_CHECK_S
            return False
        if self.reason is not None:
            self.reason = None
            self.log.info("outbox_back", outbox=str(self.outbox))
            self.on_back()
            # A write cut off by the pull may still hold its temp file (its worker has not
            # noticed yet): the health check clears it once it is free.
            self.temps_left = True
            self.clean_temps()
        return True

    def clean_temps(self) -> None:
        """Clear temp files of writes that were cut off (a killed worker, a pulled card);
        those still locked by their writer are looked at again at the next health check."""
        with contextlib.suppress(OSError):
            self.temps_left = clean_stale_temps(self.outbox).left > 0
