"""The daemon's intake: file events in, sources waiting to be planned out.

An event passes only if it is a file sp404d takes (not its own outputs, journal or archive; not
a temp or junk name); the :class:`~sp404d.watch.watcher.Settler` holds it until it is complete; then
it waits here, in arrival order, for the planner. A source already on its way to a worker waits
for that job to end before it is queued again, so one source never runs twice at once. A
sidecar or folder file that arrives, changes or goes queues the audio files it covers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path

from sp404d.config import Config
from sp404d.daemon.sourcefiles import remove_error_note
from sp404d.metadata import audio_for_metadata_file, is_metadata_file
from sp404d.pipeline import Request
from sp404d.watch import Change, Settler, is_candidate, walk


class Intake:
    """Events to waiting sources, for one config (a reload builds the next with :meth:`use`)."""

    def __init__(self, config: Config, settler: Settler) -> None:
        self.settler = settler
        self.waiting: OrderedDict[Path, Path] = OrderedDict()  # source -> its inbox
        self.busy: set[Path] = set()  # planned or running
        self.again: dict[Path, Path] = {}  # busy sources that changed again -> inbox
        self.retried: set[Path] = set()  # asked for again by the user (sp404d retry)
        self.moved_from: dict[Path, Path] = {}  # moved or renamed here -> where it was
        self.use(config)

    def use(self, config: Config) -> None:
        """Take ``config``, with what every event would otherwise work out from it again."""
        self.config = config
        self.settler.settle_s = config.settle_seconds
        self._by_inbox = {inbox.path: inbox.settings for inbox in config.inboxes()}
        self.not_inputs = list(config.not_inputs())  # folders and files never taken as input
        # Kit pads follow name order among files planned together, so a kit inbox plans a drop
        # once it has stopped arriving; other layouts start converting while it still arrives.
        self.whole_drops = any(s.layout == "kit" for s in self._by_inbox.values())

    def settings(self, inbox: Path) -> Config:
        return self._by_inbox.get(inbox, self.config)

    def __len__(self) -> int:
        """Sources not yet planned: waiting, or still arriving."""
        return len(self.waiting) + len(self.settler)

    # --- events -------------------------------------------------------------------------------

    def excluded(self, path: Path) -> bool:
        return any(path.is_relative_to(folder) for folder in self.not_inputs)

    def on_change(self, change: Change) -> None:
        """A file event from the watcher (not ``inbox_gone``: the daemon's health sees to it)."""
        path, inbox = change.path, change.inbox
        now, wall = time.monotonic(), time.time()
        if change.kind == "changed" and self.settler.touch(path, now):
            return  # still arriving; already known to be a file we take
        if self.excluded(path):
            return
        if change.kind == "dir":
            ignore = self.settings(inbox).ignore
            for found in walk(path, exclude=self.not_inputs, extra_ignore=ignore):
                if change.moved_from is not None:  # a folder renamed: each file with it
                    self._moved(found, change.moved_from / found.relative_to(path), inbox)
                self.settler.saw(found, inbox, closed=False, now=now, wall=wall)
            return
        if change.kind == "deleted":
            self.settler.forget(path)
            self.moved_from.pop(path, None)
            if is_metadata_file(path):
                self._metadata_changed(path, inbox)
            else:
                remove_error_note(path)
            return
        if not (is_metadata_file(path) or self._is_audio(path, inbox)):
            return
        if change.moved_from is not None:
            self._moved(path, change.moved_from, inbox)
        self.settler.saw(path, inbox, closed=change.kind == "closed", now=now, wall=wall)

    def _moved(self, path: Path, old: Path, inbox: Path) -> None:
        """Remember where a file came from, if that was inside the inbox too (a sync client's
        temp name, or a folder elsewhere, has no samples to take along)."""
        if old.is_relative_to(inbox) and not is_metadata_file(path):
            self.moved_from[path] = old

    def settle(self, now: float) -> None:
        """Queue the files that have become complete."""
        for path, inbox in self.settler.due(now):
            if is_metadata_file(path):
                self._metadata_changed(path, inbox)
            elif path.is_file():
                self.enqueue(path, inbox)

    def _is_audio(self, path: Path, inbox: Path) -> bool:
        return is_candidate(path, inbox, self.settings(inbox).ignore)

    def _metadata_changed(self, meta_file: Path, inbox: Path) -> None:
        """A sidecar or folder file arrived, changed or went: re-plan the files it covers."""
        try:
            scope = audio_for_metadata_file(meta_file)
        except ValueError:
            return
        for audio in scope.audio_files():
            if self._is_audio(audio, inbox):
                self.enqueue(audio, inbox)

    def rescan(self, settled: Callable[[Request], bool]) -> int:
        """Walk every inbox; queue what is not ``settled`` (the journal has it as it is now).

        Catches files that arrived while sp404d was down, events lost to an inotify overflow,
        and network folders that deliver no events at all. Returns how many it found.
        """
        now, wall = time.monotonic(), time.time()
        found = 0
        for inbox in self.config.inbox_paths:
            if not inbox.is_dir():
                continue
            ignore = self.settings(inbox).ignore
            for path in walk(inbox, exclude=self.not_inputs, extra_ignore=ignore):
                if path in self.busy or path in self.waiting:
                    continue
                if settled(Request(path, inbox, self.settings(inbox))):
                    continue
                self.settler.saw(path, inbox, closed=False, now=now, wall=wall)
                found += 1
        return found

    # --- the queue ------------------------------------------------------------------------------

    def inbox_of(self, path: Path) -> Path | None:
        """The inbox ``path`` is in, if it is in one and not among sp404d's own files."""
        if self.excluded(path):
            return None
        return next((i for i in self.config.inbox_paths if path.is_relative_to(i)), None)

    def enqueue(
        self, path: Path, inbox: Path, *, retried: bool = False, moved_from: Path | None = None
    ) -> None:
        """Queue a source for planning; whether anything changed is the planner's to decide,
        unless the user asked for it to be ``retried``. ``moved_from``: see :meth:`_moved`."""
        if retried:
            self.retried.add(path)
        if moved_from is not None:
            self.moved_from[path] = moved_from
        if path in self.busy:
            self.again[path] = inbox
            return
        self.waiting[path] = inbox

    def take(self, limit: int | None) -> Iterator[Request]:
        """Up to ``limit`` waiting sources (all when None), oldest first, still there."""
        taken = 0
        while self.waiting and (limit is None or taken < limit):
            path, inbox = self.waiting.popitem(last=False)
            again = path in self.retried
            self.retried.discard(path)
            moved_from = self.moved_from.pop(path, None)
            if path.is_file():
                taken += 1
                yield Request(path, inbox, self.settings(inbox), again=again, moved_from=moved_from)

    def ended(self, source: Path) -> None:
        """A source's job ended: queue it again if it changed meanwhile."""
        self.busy.discard(source)
        again = self.again.pop(source, None)
        if again is not None:
            self.enqueue(source, again)
