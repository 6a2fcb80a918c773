"""The ``sp404d`` command: the parser, built from :mod:`sp404d.commands`, and the one place that
exits.

Exit codes: 0 every input ended done or skipped; 1 some input was rejected or failed; 2 usage or
configuration error (the message names the setting and what is allowed).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence

from sp404d import __version__
from sp404d.commands import cards, config, convert, kits, service, status
from sp404d.commands.common import EXIT_USAGE
from sp404d.errors import Sp404dError

COMMANDS = (service, convert, status, cards, kits, config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sp404d", description="Any audio file in, a Roland SP-404MK2-ready file out."
    )
    parser.add_argument("--version", action="version", version=f"sp404d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        # Never a UnicodeEncodeError on a name that is not UTF-8, under any locale.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except Sp404dError as exc:  # a ConfigError too: the message names the key
        print(f"sp404d: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sp404d: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # sp404d status | head: the reader has what it wanted
        # Python flushes stdout again at exit; point it at /dev/null so that says nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
