"""``sp404d kits`` (the kits on the card as the unit shows them) and ``sp404d bundle`` (one kit
as a ZIP)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sp404d.commands import common
from sp404d.errors import ConfigError
from sp404d.kitview import Kit, as_json, find, grid_lines, read_kits, summary_lines


def register(sub: Any) -> None:
    p = sub.add_parser("kits", help="the kits on the card: banks and pads as the unit shows them")
    p.add_argument("kit", nargs="?", metavar="KIT", help="one kit's pad grid")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    common.add_common(p)
    p.set_defaults(handler=cmd_kits)
    p = sub.add_parser("bundle", help="one kit as a ZIP, with a KIT.txt manifest")
    p.add_argument("kit", metavar="KIT")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="KIT.zip")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    common.add_common(p)
    p.set_defaults(handler=cmd_bundle)


def _kits(args: argparse.Namespace) -> dict[str, Kit]:
    from sp404d.journal import Journal

    with Journal(common.journal_path(args), readonly=True) as journal:
        return read_kits(journal.iter_newest())


def _one(kits: dict[str, Kit], name: str) -> Kit:
    kit = find(kits, name)
    if kit is None:
        known = ", ".join(kits) or "none yet (layout: kit makes them)"
        raise ConfigError("KIT", f"no kit {name!r}; the kits: {known}")
    return kit


def cmd_kits(args: argparse.Namespace) -> int:
    kits = _kits(args)
    if args.kit:
        kits = {args.kit: _one(kits, args.kit)}
    if args.json:
        print(json.dumps(as_json(kits)))
    elif args.kit:
        tty = sys.stdout.isatty()
        lines = grid_lines(
            next(iter(kits.values())), box=tty, colour=tty and "NO_COLOR" not in os.environ
        )
        print("\n".join(lines))
    elif not kits:
        print("no kits yet: files converted with layout: kit make them")
    else:
        print("\n".join(summary_lines(kits)))
    return common.EXIT_OK


def cmd_bundle(args: argparse.Namespace) -> int:
    from sp404d.bundle import write_bundle
    from sp404d.folders import within

    target = Path(os.path.abspath(args.output))
    kit = _one(_kits(args), args.kit)
    outbox = kit.folder.parent
    if within(target.parent, outbox):
        raise ConfigError("-o", f"{target} is inside the outbox {outbox}: the unit would import it")
    if target.exists() and not args.force:
        raise ConfigError("-o", f"{target} exists; --force overwrites it")
    files, size = write_bundle(kit, target)
    print(f"wrote {target}: kit {kit.name}, {files} samples and KIT.txt, {size / 1e6:.1f} MB")
    return common.EXIT_OK
