"""``sp404d bundle``: one kit as a ZIP to share, as the original design's download had it.

The kit's ``bank_X/pad_NN_*.wav`` files as they are on the card, and ``KIT.txt``: one line per
pad with bank, pad, name, length, BPM, key and source. Written whole (a temp file beside the
target, renamed into place), so an interrupted bundle never leaves a half ZIP.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path

from sp404d.kitview import Kit


def manifest(kit: Kit) -> str:
    lines = [f"{kit.name}: {kit.used} pads", "bank\tpad\tname\tlength_s\tbpm\tkey\tsource"]
    for (bank, number), pads in sorted(kit.pads.items()):
        for p in pads:
            length = f"{p.length_s:.3f}" if p.length_s is not None else ""
            lines.append(
                f"{bank}\t{number}\t{p.name}\t{length}\t{p.bpm or ''}\t{p.key or ''}\t{p.source}"
            )
    return "\n".join(lines) + "\n"


def write_bundle(kit: Kit, target: Path) -> tuple[int, int]:
    """Write the kit's ZIP to ``target``; return (files, bytes). Raises OSError."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    files = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for _, pads in sorted(kit.pads.items()):
                for p in pads:
                    member = Path(p.output).relative_to(kit.folder).as_posix()
                    zf.write(p.output, member)
                    files += 1
            zf.writestr("KIT.txt", manifest(kit))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return files, target.stat().st_size
