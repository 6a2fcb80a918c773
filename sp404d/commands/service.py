"""The service's commands: ``run`` (the daemon, in the foreground), ``install-service`` and
``example-config``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sp404d.commands.common import EXIT_OK
from sp404d.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="watch the inboxes and convert what arrives (foreground)")
    p.add_argument("--config", type=Path, help="config file (YAML)")
    p.set_defaults(handler=cmd_run)
    p = sub.add_parser("install-service", help="write a systemd user unit / launchd agent")
    p.add_argument("--config", type=Path, help="config file the service should use")
    p.set_defaults(handler=cmd_install_service)
    p = sub.add_parser("example-config", help="print the documented example config")
    p.set_defaults(handler=cmd_example_config)


def cmd_run(args: argparse.Namespace) -> int:
    from sp404d.daemon import run

    return run(args.config)


def cmd_example_config(args: argparse.Namespace) -> int:
    from sp404d.config import example_yaml

    sys.stdout.write(example_yaml())
    return EXIT_OK


def cmd_install_service(args: argparse.Namespace) -> int:
    from sp404d.daemon import install_service

    config = args.config.resolve() if args.config else None
    if config is not None and not config.is_file():
        raise ConfigError("--config", f"no such file: {config}")
    path, instructions = install_service(config=config)
    print(f"wrote {path}\n{instructions}")
    return EXIT_OK
