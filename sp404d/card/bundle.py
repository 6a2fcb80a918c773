"""``sp404d bundle``: one kit as a ZIP to share or back up.

The kit's ``bank_X/pad_NN_*.wav`` files exactly as they are on the card (paths relative to the
kit folder, so unzipping into a card's ``IMPORT/KIT/`` puts every sample on its pad), and
``KIT.txt``: one tab-separated line per pad with bank, pad, name, length, BPM, key and source,
because the ZIP travels without the journal that knows those. WAVs are stored, not deflated:
PCM barely compresses and storing keeps the bytes checkable. Written whole, as
:func:`sp404d.durable.replace_whole` writes (a hidden temp file beside the target, fsynced,
renamed into place), so an interrupted bundle never leaves half a ZIP under the target's name.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from sp404d.card.kits import Kit
from sp404d.durable import written_whole
from sp404d.pathtext import printable

MANIFEST = "KIT.txt"
COLUMNS = ("bank", "pad", "name", "length_s", "bpm", "key", "source")


def _field(value: object) -> str:
    """One manifest field: nothing for unknown, no tab or newline to break the line."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return printable(str(value)).replace("\t", " ").replace("\n", " ")


def manifest(kit: Kit) -> str:
    """``KIT.txt``: a heading, the column names, then one line per sample in pad order."""
    lines = [f"# kit {kit.name}: {kit.used} pads", "\t".join(COLUMNS)]
    for p in kit.all_pads():
        length = f"{p.length_s:.3f}" if p.length_s is not None else ""
        fields = (p.bank, p.pad, p.name, length, p.bpm, p.key, p.source)
        lines.append("\t".join(_field(f) for f in fields))
    return "\n".join(lines) + "\n"


def members(kit: Kit) -> list[tuple[Path, str]]:
    """(file on the card, name in the ZIP) for each sample, in pad order."""
    return [
        (Path(p.output), Path(p.output).relative_to(kit.folder).as_posix()) for p in kit.all_pads()
    ]


def write_bundle(kit: Kit, target: Path) -> tuple[int, int]:
    """Write the kit's ZIP to ``target``; return (samples, bytes). Raises OSError (the temp
    file removed) when a sample cannot be read or the target cannot be written."""
    files = members(kit)
    with (
        written_whole(target, durable=True) as raw,
        zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf,
    ):
        for path, name in files:
            zf.write(path, name)
        zf.writestr(MANIFEST, manifest(kit), compress_type=zipfile.ZIP_DEFLATED)
    return len(files), target.stat().st_size
