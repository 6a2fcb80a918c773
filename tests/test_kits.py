"""``sp404d kits`` and ``sp404d bundle`` on a kit made by a real ``convert``."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

from sp404d.kitview import Kit, Pad, grid_lines
from tests.conftest import SP404D, run_env, write_audio


def sp404d(tmp_path: Path, *args: str, code: int = 0) -> str:
    proc = subprocess.run(
        [*SP404D, *args], capture_output=True, text=True, env=run_env(tmp_path / "home")
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _card(tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    bank_a = tmp_path / "in" / "lofi" / "dusty" / "bank_a"
    for i, name in enumerate(["01 kick.wav", "02 snare.wav", "13 crash.wav"]):
        write_audio(bank_a / name, 44100, seconds=0.5 + 0.25 * i, freq=200 + 90 * i)
    write_audio(bank_a.parent / "bank_c" / "loop.wav", 48000, seconds=2.0)
    out, journal = tmp_path / "card" / "IMPORT", tmp_path / "j.jsonl"
    sp404d(tmp_path, "convert", str(tmp_path / "in"), "--outbox", str(out), "--layout", "kit",
           "--journal", str(journal))  # fmt: skip
    return out, ("--journal", str(journal))


def test_the_kits_and_one_kits_pads_as_the_unit_lays_them_out(tmp_path: Path) -> None:
    _, j = _card(tmp_path)
    listing = sp404d(tmp_path, "kits", *j)
    assert listing.startswith("dusty") and "4/160 pads" in listing
    grid = sp404d(tmp_path, "kits", "DUSTY", *j).splitlines()  # any case
    assert grid[0] == "kit dusty: 4/160 pads, 0:04"
    bank_a = grid[grid.index("bank A") + 1 :]
    rows = [line for line in bank_a if line.startswith("| ") and line[2:4].strip().isdigit()]
    assert rows[0].split("|")[1].strip() == "13 crash"  # the top row: 13-16
    assert [c.strip() for c in rows[3].split("|")[1:3]] == ["1 kick", "2 snare"]  # the bottom
    assert "14 ." in rows[0]  # an empty pad shows
    assert "   0.5s" in bank_a[bank_a.index(rows[3]) + 1]
    assert "bank B: empty" in grid and "banks D-J: empty" in grid
    data = json.loads(sp404d(tmp_path, "kits", "--json", *j))
    (kit,) = data["kits"]
    assert kit["pads_used"] == 4 and sorted(kit["banks"]) == ["A", "C"]
    assert [p["pad"] for p in kit["banks"]["A"]] == [1, 2, 13]
    assert kit["banks"]["C"][0]["length_s"] == 2.0
    unknown = sp404d(tmp_path, "kits", "nope", *j, code=2)
    assert "no kit 'nope'" in unknown and "dusty" in unknown


def test_a_pad_claimed_twice_and_a_full_kit_are_flagged(tmp_path: Path) -> None:
    def pad(bank: str, n: int, name: str) -> Pad:
        return Pad(bank, n, name, 1.0, None, None, name, f"/o/k/bank_{bank}/{name}.wav", 1)

    kit = Kit("k", tmp_path)
    kit.pads[("A", 1)] = [pad("A", 1, "kick"), pad("A", 1, "snare")]
    assert "! pad A01 is claimed twice: kick, snare" in grid_lines(kit)
    for b in "ABCDEFGHIJ":
        for n in range(1, 17):
            kit.pads.setdefault((b, n), [pad(b, n, f"s{n}")])
    assert any(line.startswith("! the kit is full") for line in grid_lines(kit, box=True))


def test_bundle_zips_the_kit_with_its_manifest(tmp_path: Path) -> None:
    out, j = _card(tmp_path)
    target = tmp_path / "dusty.zip"
    said = sp404d(tmp_path, "bundle", "dusty", "-o", str(target), *j)
    assert "4 samples and KIT.txt" in said
    with zipfile.ZipFile(target) as zf:
        names = sorted(zf.namelist())
        assert names == [
            "KIT.txt",
            "bank_A/pad_01_kick.wav",
            "bank_A/pad_02_snare.wav",
            "bank_A/pad_13_crash.wav",
            "bank_C/pad_01_loop.wav",
        ]
        for name in names[1:]:
            assert zf.read(name) == (out / "dusty" / name).read_bytes()
        manifest = zf.read("KIT.txt").decode().splitlines()
    assert manifest[1] == "bank\tpad\tname\tlength_s\tbpm\tkey\tsource"
    assert manifest[2].startswith("A\t1\tkick\t0.500\t") and manifest[2].endswith("01 kick.wav")
    again = sp404d(tmp_path, "bundle", "dusty", "-o", str(target), *j, code=2)
    assert "--force" in again
    sp404d(tmp_path, "bundle", "dusty", "-o", str(target), "--force", *j)
    inside = sp404d(tmp_path, "bundle", "dusty", "-o", str(out / "k.zip"), *j, code=2)
    assert "inside the outbox" in inside and not (out / "k.zip").exists()
    assert not list(tmp_path.glob(".dusty.zip*"))
