"""What the commands share: their exit codes, the setting flags and how a config is read."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from sp404d import __version__
from sp404d.config import (
    SETTINGS,
    Config,
    build_config,
    default_config_path,
    load_config,
    read_config_file,
    within,
)
from sp404d.errors import ConfigError

EXIT_OK, EXIT_JOBS, EXIT_USAGE = 0, 1, 2


def add_flag(p: argparse.ArgumentParser, name: str) -> None:
    """``--NAME``, an override of the setting of that name, shaped and described by it."""
    s = next(s for s in SETTINGS if s.name == name and s.flag)
    metavar = name.upper() if s.kind is not str else None
    if s.choices:
        p.add_argument(f"--{name}", choices=s.choices, help=s.doc)
    else:
        p.add_argument(f"--{name}", type=s.kind, metavar=metavar, help=s.doc)


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        help="config file (YAML); default ~/.config/sp404d/config.yaml if it exists",
    )
    add_flag(p, "journal")


def add_conversion(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files and folders")
    for s in SETTINGS:
        if s.flag and s.name not in ("journal", "workers"):
            add_flag(p, s.name)
    add_removable(p)
    add_common(p)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, as the config file would give them."""
    return {
        s.name: (str(v) if isinstance(v, Path) else v)
        for s in SETTINGS
        if s.flag and (v := getattr(args, s.name, None)) is not None
    }


def add_removable(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--removable",
        action="store_true",
        help="the folder given with --outbox is on a card: write only while it is mounted "
        "(outbox_removable applies to the configured outbox and folders inside it)",
    )


def config_from(args: argparse.Namespace) -> Config:
    """The config, flags on top. ``outbox_removable`` describes the configured outbox: an
    ``--outbox`` elsewhere (a plain folder, a backup) is not held to it unless ``--removable``
    says it is a card too; a folder inside the configured card still is."""
    given = overrides(args)
    config = load_config(args.config, given)
    if "outbox" not in given:
        return config
    if getattr(args, "removable", False):
        return replace(config, outbox_removable=True)
    if config.outbox_removable:
        configured = load_config(args.config, {k: v for k, v in given.items() if k != "outbox"})
        if not within(config.outbox, configured.outbox):
            return replace(config, outbox_removable=False)
    return config


def journal_path(args: argparse.Namespace) -> Path:
    """The journal a reading command looks at: ``--journal``, else the config's."""
    return Path(args.journal) if args.journal else reading_config(args).journal


#: What a reading command needs of a config it cannot load whole.
_READING_KEYS = ("journal", "outbox", "outbox_removable")


def reading_config(args: argparse.Namespace) -> Config:
    """The config for a command that only reads (``status``, ``kits``, ``bundle``).

    A config file broken since the daemon loaded it must not blind these: the daemon keeps
    running on the one it loaded. They say the file on disk is broken (on stderr, one line)
    and read with what can be taken from it (its journal and outbox, where those are valid),
    or the defaults.
    """
    try:
        return config_from(args)
    except ConfigError as exc:
        if args.config is not None and not args.config.exists():
            raise  # a typo in --config, not a file broken under a running daemon
        broken = exc
    raw: dict[str, Any] = {}
    path = args.config if args.config is not None else default_config_path()
    with contextlib.suppress(ConfigError):
        raw = read_config_file(path) if path.is_file() else {}
    kept: dict[str, Any] = {}
    for key in _READING_KEYS:
        if key in raw:
            with contextlib.suppress(ConfigError):
                build_config({**kept, key: raw[key]})
                kept[key] = raw[key]
    for key, value in overrides(args).items():
        if key in _READING_KEYS:
            kept[key] = value
    config = build_config(kept)
    print(
        f"sp404d: the config on disk is broken ({broken}); a running daemon keeps the one it "
        f"loaded. Reading the journal {config.journal}",
        file=sys.stderr,
    )
    return config


def print_settings(config: Config, out: TextIO) -> None:
    origin = str(config.source) if config.source else "defaults (no config file)"
    print(
        f"sp404d {__version__}: config {origin}\n"
        f"  outbox  {config.outbox}  (layout {config.layout}, {config.format})\n"
        f"  journal {config.journal}",
        file=out,
    )
