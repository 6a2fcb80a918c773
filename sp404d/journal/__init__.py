"""The job journal: TinyDB's API and records on a crash-safe append-only file, with an index
that makes a library of years cost what a fresh one does (:mod:`~sp404d.journal.journal`)."""

from __future__ import annotations

from sp404d.journal.journal import Journal, damaged_path

__all__ = ["Journal", "damaged_path"]
