"""One module per group of ``sp404d`` commands, each with a ``register(subparsers)`` that adds
its parsers and sets ``handler`` to the function that runs it (returning the exit code)."""

from __future__ import annotations

from sp404d.commands import cards, config, convert, kits, service, status

__all__ = ["cards", "config", "convert", "kits", "service", "status"]
