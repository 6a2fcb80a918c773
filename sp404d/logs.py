"""Logging, configured in one place: key=value lines on a terminal, JSON lines otherwise.

Logs go to stderr (stdout is for command output such as ``status --json``). Under systemd or
launchd stderr is not a terminal, so the journal gets one JSON object per line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import FilteringBoundLogger

__all__ = ["FilteringBoundLogger", "configure", "get_logger"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog for the whole process (idempotent; a reload may call it again)."""
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any
    if console:
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), pad_event_to=0, sort_keys=False
        )
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> FilteringBoundLogger:
    """The process's logger (``log.info("event", key=value)``), with ``context`` bound."""
    logger: FilteringBoundLogger = structlog.get_logger("sp404d", **context)
    return logger
