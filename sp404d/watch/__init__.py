"""Noticing files: the observers (:mod:`~sp404d.watch.watcher`), when a file is complete
(:class:`Settler`), which files are ours to take (:mod:`~sp404d.watch.discover`,
:mod:`~sp404d.watch.ignore`), running out of inotify watches (:mod:`~sp404d.watch.limits`)
and the inboxes kept watched (:mod:`~sp404d.watch.inboxes`)."""

from __future__ import annotations

from sp404d.watch.discover import is_candidate, walk
from sp404d.watch.inboxes import InboxWatch
from sp404d.watch.watcher import Change, Settler, Watcher

__all__ = ["Change", "InboxWatch", "Settler", "Watcher", "is_candidate", "walk"]
