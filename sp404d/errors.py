"""One root error, and the two ways a job can end badly.

A job that cannot succeed because of its *input* is rejected; one that failed because of us or
the environment (disk full, card pulled) is failed and worth retrying. Both carry a reason
written for a musician, which ends up in the journal, the log and ``sp404d status``.
"""

from __future__ import annotations


class Sp404dError(Exception):
    """Root of every error sp404d raises on purpose."""


class ConfigError(Sp404dError):
    """A setting is unknown or has a value that is not allowed."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config: {key}: {message}")
        self.key = key
        self.message = message


class JobError(Sp404dError):
    """A job ended badly; ``reason`` is one line a musician understands."""

    retry: bool = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RejectedError(JobError):
    """The input cannot be made into a valid sample (too short, corrupt, bad sidecar...)."""

    retry = False


class FailedError(JobError):
    """Our error or the environment's (disk full, outbox gone): retrying may help."""

    retry = True
