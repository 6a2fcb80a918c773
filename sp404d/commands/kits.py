"""``sp404d kits`` (the kits on the card as the unit shows them) and ``sp404d bundle`` (one kit
as a ZIP). The reading is :mod:`sp404d.card.kits`, the drawing :mod:`sp404d.card.grid`, the ZIP
:mod:`sp404d.card.bundle`; here are only the flags, the refusals and the exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sp404d.card import Kit, as_json, find, read_kits
from sp404d.commands import common
from sp404d.errors import Sp404dError

NO_KITS = "no kits yet: files converted with layout: kit make them"


def register(sub: Any) -> None:
    p = sub.add_parser("kits", help="the kits on the card; one kit's pads as the unit shows them")
    p.add_argument("kit", nargs="?", metavar="KIT", help="one kit's banks as pad grids")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    common.add_common(p)
    common.add_flag(p, "outbox")
    p.set_defaults(handler=cmd_kits)
    p = sub.add_parser("bundle", help="one kit as a ZIP, with a KIT.txt manifest")
    p.add_argument("kit", metavar="KIT")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="KIT.zip")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    common.add_common(p)
    common.add_flag(p, "outbox")
    p.set_defaults(handler=cmd_bundle)


def _kits(args: argparse.Namespace) -> tuple[list[Kit], str]:
    """The kits on the card in use (the config's outbox, or ``--outbox``), and what to say
    when there are none."""
    from sp404d.card import on_card, outboxes_with_kits
    from sp404d.journal import Journal

    config = common.reading_config(args)
    outbox = config.outbox
    with Journal(config.journal, readonly=True) as journal:
        kits = read_kits(on_card(journal, outbox)) if outbox.is_dir() else []
        if kits:
            return kits, ""
        elsewhere = [o for o in outboxes_with_kits(journal.iter_newest()) if o != str(outbox)]
    why = NO_KITS if outbox.is_dir() else f"the outbox {outbox} is not there (card not inserted?)"
    if elsewhere:
        why += f"; kits are in {', '.join(elsewhere)}: sp404d kits --outbox DIR"
    else:
        why += f" (in {outbox})" if outbox.is_dir() else ""
    return [], why


def _named(kits: list[Kit], name: str, none: str) -> list[Kit]:
    found = find(kits, name)
    if not found:
        known = ", ".join(sorted({k.name for k in kits})) or "none yet (layout: kit makes them)"
        where = none.partition("; ")[2] if "; kits are in" in none else ""
        raise Sp404dError(f"no kit {name!r}; the kits: {known}" + (f"; {where}" if where else ""))
    return found


def cmd_kits(args: argparse.Namespace) -> int:
    from sp404d.card import grid_lines, summary_lines

    kits, none = _kits(args)
    if args.kit:
        kits = _named(kits, args.kit, none)
    if args.json:
        print(json.dumps(as_json(kits), indent=1))
    elif not kits:
        print(none)
    elif args.kit:
        tty = sys.stdout.isatty()
        colour = tty and "NO_COLOR" not in os.environ
        print("\n\n".join("\n".join(grid_lines(k, box=tty, colour=colour)) for k in kits))
    else:
        print("\n".join(summary_lines(kits)))
    return common.EXIT_OK


def _refusal(target: Path, kits: list[Kit], force: bool) -> str | None:
    """Why ``target`` must not be written, or None."""
    from sp404d.config import within

    for outbox in sorted({k.outbox for k in kits}):
        if within(target.parent, outbox):
            return f"{target} is inside the outbox {outbox}: the card would carry the ZIP"
    if target.is_dir():
        return f"{target} is a folder; give a file name such as {target / 'KIT.zip'}"
    if not target.parent.is_dir():
        return f"{target.parent} does not exist"
    if target.exists() and not force:
        return f"{target} exists; --force overwrites it"
    return None


def cmd_bundle(args: argparse.Namespace) -> int:
    from sp404d.card import size_text, write_bundle

    kits, none = _kits(args)
    found = _named(kits, args.kit, none)
    if len(found) > 1:
        folders = ", ".join(str(k.folder) for k in found)
        raise Sp404dError(
            f"kit {args.kit!r} is more than one folder on this disk, told apart only by case "
            f"(one folder on the card): {folders}; rename one"
        )
    (kit,) = found
    target = Path(os.path.abspath(args.output))
    if why := _refusal(target, kits, args.force):
        raise Sp404dError(f"bundle: {why}")
    try:
        files, size = write_bundle(kit, target)
    except OSError as exc:
        print(f"sp404d: bundle: cannot write {target}: {exc}", file=sys.stderr)
        return common.EXIT_JOBS
    print(f"wrote {target}: kit {kit.name}, {files} samples and KIT.txt, {size_text(size)}")
    return common.EXIT_OK
