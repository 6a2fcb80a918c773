"""What the commands tell of the journal: ``status`` (:mod:`~sp404d.report.status`), the
history of one file, what needs the user, the filters; which files ``retry`` takes; what
``rebuild`` makes."""

from __future__ import annotations

from sp404d.report import rebuild
from sp404d.report.history import write_history
from sp404d.report.jobfilter import JobFilter, absolute, parse_since
from sp404d.report.retry import choose
from sp404d.report.status import write_status_json, write_status_text

__all__ = [
    "JobFilter",
    "absolute",
    "choose",
    "parse_since",
    "rebuild",
    "write_history",
    "write_status_json",
    "write_status_text",
]
