"""The watcher over the inboxes, kept alive: restarted when it dies, when an inbox is deleted
and made again (its watch died with it; a new folder may even reuse its inode), or when an
inbox comes back; running out of inotify watches is said once, with the remedy.
"""

from __future__ import annotations

import os
import queue
import stat
from pathlib import Path
from typing import Any

from sp404d.config import Config, default_base
from sp404d.logs import get_logger
from sp404d.watch.watcher import Watcher


class InboxWatch:
    """One :class:`Watcher` for the config's inboxes, and what is known of each inbox."""

    def __init__(self, config: Config, q: queue.Queue[Any]) -> None:
        self.log = get_logger()
        self.q = q
        self.present: dict[Path, bool] = {}
        self.ids: dict[Path, tuple[int, int] | None] = {}  # to notice one replaced
        self.limit_logged = False
        self.config = config
        self.watcher = self._watcher(config)

    def _watcher(self, config: Config) -> Watcher:
        """Folders inside an inbox that are never input (the outbox, an archive) are not
        worth a poll."""
        return Watcher(
            list(config.inbox_paths),
            self.q,
            polling=config.polling,
            poll_interval=config.poll_interval,
            skip=list(config.not_inputs()),
        )

    @property
    def mode(self) -> str:
        return self.watcher.mode

    @property
    def note(self) -> str | None:
        """Why some folders are polled instead of watched (inotify watches ran out)."""
        return self.watcher.note

    def prepare_folders(self) -> None:
        """Make the default inbox if it is not there; a configured one is never made: a typo,
        or a synced or network folder not mounted yet, would get an empty folder in its place
        and the files never seen. It is waited for (said in the log and by ``status``), and
        watched as soon as it exists."""
        for inbox in self.config.inbox_paths:
            if inbox == default_base() / "inbox":
                inbox.mkdir(parents=True, exist_ok=True)
            here = identity(inbox) is not None
            if not here and self.present.get(inbox, True):
                self.log.warning(
                    "inbox_missing",
                    inbox=str(inbox),
                    action="waiting for it: watched as soon as it exists (a typo in the path? "
                    "a synced or network folder not mounted yet?)",
                )
            self.present[inbox] = here

    def missing(self) -> list[str]:
        """The inboxes that are not there now (waited for)."""
        return [str(inbox) for inbox, here in self.present.items() if not here]

    def start(self) -> None:
        self.watcher.start()
        self.ids = {inbox: identity(inbox) for inbox in self.config.inbox_paths}
        self.limit_seen()

    def stop(self) -> None:
        self.watcher.stop()

    def use(self, config: Config) -> None:
        """A reloaded config: a new watcher if what it watches, or how, changed."""
        old, self.config = self.config, config
        if (old.inbox_paths, old.polling, old.poll_interval) != (
            config.inbox_paths,
            config.polling,
            config.poll_interval,
        ):
            self.watcher.stop()
            self.prepare_folders()
            self.watcher = self._watcher(config)
            self.start()

    def cover(self, folder: Path) -> None:
        """Watch a folder that appeared in an inbox."""
        if self.watcher.cover(folder):
            self.limit_seen()

    def limit_seen(self) -> None:
        """Log running out of inotify watches once (with the remedy); status shows it."""
        note = self.watcher.note
        if note and not self.limit_logged:
            self.limit_logged = True
            self.log.error("watch_limit", message=note, mode=self.watcher.mode)

    def gone(self, inbox: Path) -> None:
        """An inbox was deleted: its watch died with it; the next :meth:`check` looks again."""
        self.ids[inbox] = None

    def check(self) -> bool:
        """Notice inboxes that went, came back or were replaced, and a dead observer; restart
        the watcher then. True when it was restarted (the caller rescans)."""
        changed = False
        for inbox in self.config.inbox_paths:
            ident = identity(inbox)
            present = ident is not None
            if present != self.present.get(inbox, True):
                changed = True
                self.log.warning("inbox_back" if present else "inbox_away", inbox=str(inbox))
            elif present and ident != self.ids.get(inbox):
                changed = True  # deleted and made again, or another folder moved in its place
                self.log.warning("inbox_replaced", inbox=str(inbox))
            self.present[inbox] = present
        if not changed and self.watcher.alive():
            return False
        if not changed:
            self.log.error("observer_died", action="restarting")
        self.watcher.stop()
        self.start()
        return True

    def all_present(self) -> bool:
        return all(self.present.values())


def identity(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, None when it is not there: tells a folder made anew."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
