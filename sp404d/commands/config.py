"""``sp404d config check``: the config judged as the daemon's start (and SIGHUP) would judge it,
and the settings in effect, per inbox, so a tired person sees what sp404d will really do."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sp404d.commands.common import EXIT_OK
from sp404d.config import SETTINGS, Config, build_config, load_config, said


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="check the config and show the settings in effect")
    actions = p.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate it as the daemon would; exit 2 if wrong")
    check.add_argument(
        "--config",
        type=Path,
        help="config file (default ~/.config/sp404d/config.yaml if it exists)",
    )
    check.add_argument("--json", action="store_true", help="the settings as one JSON object")
    check.set_defaults(handler=cmd_config_check)


def _plain(value: Any) -> Any:
    """A setting's value as YAML would spell it (paths as text, tuples as lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def effective(config: Config) -> dict[str, Any]:
    """Every setting's value, then per inbox the ones that differ from the top level."""
    top = {s.name: _plain(getattr(config, s.name)) for s in SETTINGS}
    inboxes = []
    for inbox in config.inboxes():
        own = {s.name: _plain(getattr(inbox.settings, s.name)) for s in SETTINGS if s.per_inbox}
        inboxes.append(
            {"path": str(inbox.path), "overrides": {k: v for k, v in own.items() if v != top[k]}}
        )
    source = str(config.source) if config.source else None
    return {"config": source, "settings": top, "inboxes": inboxes}


_SHAPES = ("trim", "normalize", "chop")


def spelled(name: str, value: Any) -> str:
    """A value as a config file spells it (``onsets 8``, ``peak -1``, ``off``, ``true``,
    ``[a, b]``), from its JSON form."""
    if name in _SHAPES:
        return str(said(tuple(value) if isinstance(value, list) else (value or False)))
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip().removesuffix("\n...")
    )


def render(data: Mapping[str, Any]) -> str:
    """The text view: ``*`` marks a value that is not the default."""
    defaults = effective(build_config({}))["settings"]
    lines = [f"config {data['config'] or 'defaults (no config file)'}: valid", "settings:"]
    for name, value in data["settings"].items():
        mark = "*" if value != defaults.get(name) else " "
        lines.append(f" {mark} {name}: {spelled(name, value)}")
    for inbox in data["inboxes"]:
        lines.append(f"inbox {inbox['path']}")
        lines += [f"    {k}: {spelled(k, v)}" for k, v in inbox["overrides"].items()]
        if not inbox["overrides"]:
            lines.append("    (the settings above)")
    lines.append("* differs from the default")
    return "\n".join(lines) + "\n"


def cmd_config_check(args: argparse.Namespace) -> int:
    """A ConfigError goes up to the CLI: ``sp404d: <key>: <why>``, exit 2."""
    if args.config is not None and not args.config.exists():
        from sp404d.errors import ConfigError

        raise ConfigError("--config", f"no such file: {args.config}")
    data = effective(load_config(args.config))
    sys.stdout.write(json.dumps(data) + "\n" if args.json else render(data))
    return EXIT_OK
