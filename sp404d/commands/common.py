"""What the commands share: their exit codes, the setting flags and how a config is read."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from sp404d import __version__
from sp404d.config import SETTINGS, Config, load_config
from sp404d.folders import within

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
    return Path(args.journal) if args.journal else load_config(args.config).journal


def print_settings(config: Config, out: TextIO) -> None:
    origin = str(config.source) if config.source else "defaults (no config file)"
    print(
        f"sp404d {__version__}: config {origin}\n"
        f"  outbox  {config.outbox}  (layout {config.layout}, {config.format})\n"
        f"  journal {config.journal}",
        file=out,
    )
