"""``sp404d kits`` and ``sp404d bundle`` on kits made by a real ``convert``."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

from sp404d.card.grid import grid_lines
from sp404d.card.kits import Kit, Pad
from tests.conftest import SP404D, run_env, write_audio


def sp404d(tmp_path: Path, *args: str, code: int = 0) -> str:
    proc = subprocess.run(
        [*SP404D, *args], capture_output=True, text=True, env=run_env(tmp_path / "home")
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _card(tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    """Kit dusty: A1 kick, A2 snare (92 BPM), A13 crash, C1 loop; kit other: B5 rim."""
    bank_a = tmp_path / "in" / "lofi" / "dusty" / "bank_a"
    for i, name in enumerate(["01 kick.wav", "02 snare 92bpm.wav", "13 crash.wav"]):
        write_audio(bank_a / name, 44100, seconds=0.5 + 0.25 * i, freq=200 + 90 * i)
    write_audio(bank_a.parent / "bank_c" / "loop.wav", 48000, seconds=2.0)
    write_audio(tmp_path / "in" / "boom" / "other" / "bank_b" / "05 rim.wav", 48000)
    out, journal = tmp_path / "card" / "IMPORT", tmp_path / "j.jsonl"
    j = ("--journal", str(journal), "--outbox", str(out))
    convert = ("convert", str(tmp_path / "in"), "--layout", "kit", *j)
    for _ in range(2):  # the second run journals every file "skipped": the kits stay
        sp404d(tmp_path, *convert)
    return out, j


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("|")[1:-1]]


def test_the_kits_and_one_kits_pads_as_the_unit_lays_them_out(tmp_path: Path) -> None:
    out, j = _card(tmp_path)
    listing = sp404d(tmp_path, "kits", *j).splitlines()
    assert [line.split()[:2] for line in listing] == [["dusty", "4/160"], ["other", "1/160"]]
    size = sum(f.stat().st_size for f in (out / "dusty").rglob("*.wav"))
    assert listing[0].split()[-3:] == ["0:04", f"{size / 1e3:.0f}", "KB"]
    grid = sp404d(tmp_path, "kits", "DUSTY", *j).splitlines()  # any case
    assert grid[0] == "kit dusty: 4/160 pads, 0:04"
    assert all(line.isascii() and "\x1b" not in line for line in grid)  # a pipe: plain text
    bank_a = grid[grid.index("bank A") + 1 : grid.index("bank B: empty")]
    assert len(bank_a) == 13 and len(set(map(len, bank_a))) == 1  # 4 rows of 2 lines, 5 rules
    names = [_cells(line) for line in bank_a[1::3]]
    details = [_cells(line) for line in bank_a[2::3]]
    assert names[0] == ["13 crash", "14 .", "15 .", "16 ."]  # the top row: pads 13-16
    assert names[1] == ["9 .", "10 .", "11 .", "12 ."]
    assert names[3] == ["1 kick", "2 snare", "3 .", "4 ."]  # the bottom row: pads 1-4
    assert details[0] == ["1.0s", "", "", ""]
    assert details[3] == ["0.5s", "0.8s 92bpm", "", ""]
    assert grid[grid.index("bank C") + 11].startswith("|  1 loop ")
    assert "banks D-J: empty" in grid and not any(line.startswith("!") for line in grid)

    data = json.loads(sp404d(tmp_path, "kits", "--json", *j))
    dusty, other = data["kits"]
    assert (dusty["name"], dusty["pads_used"], dusty["full"]) == ("dusty", 4, False)
    assert dusty["claimed_twice"] == [] and sorted(dusty["banks"]) == ["A", "C"]
    assert [p["pad"] for p in dusty["banks"]["A"]] == [1, 2, 13]
    snare = dusty["banks"]["A"][1]
    assert (snare["name"], snare["length_s"], snare["bpm"]) == ("snare", 0.75, 92)
    assert snare["output"] == str(out / "dusty" / "bank_A" / "pad_02_snare.wav")
    assert snare["source"].endswith("02 snare 92bpm.wav")
    assert dusty["size"] == size
    assert other["banks"]["B"][0]["name"] == "rim"
    one = json.loads(sp404d(tmp_path, "kits", "other", "--json", *j))
    assert [k["name"] for k in one["kits"]] == ["other"]

    unknown = sp404d(tmp_path, "kits", "nope", *j, code=2)
    assert "no kit 'nope'; the kits: dusty, other" in unknown
    (out / "dusty" / "bank_A" / "pad_13_crash.wav").unlink()  # gone from the card: not shown
    grid = sp404d(tmp_path, "kits", "dusty", *j).splitlines()
    assert grid[0].startswith("kit dusty: 3/160") and "| 13 .  " in "\n".join(grid)


def test_no_kits_is_said_in_a_friendly_line(tmp_path: Path) -> None:
    j = ("--journal", str(tmp_path / "j.jsonl"), "--outbox", str(tmp_path / "o"))
    said = sp404d(tmp_path, "kits", *j)  # no journal at all, no outbox yet
    assert said.startswith(f"the outbox {tmp_path / 'o'} is not there")
    write_audio(tmp_path / "in" / "dusty" / "01 kick.wav", 48000)
    sp404d(tmp_path, "convert", str(tmp_path / "in"), *j)
    assert sp404d(tmp_path, "kits", *j).startswith("no kits yet")  # flat layout: no kit
    assert json.loads(sp404d(tmp_path, "kits", "--json", *j)) == {"kits": []}
    said = sp404d(tmp_path, "kits", "dusty", *j, code=2)
    assert "no kit 'dusty'; the kits: none yet" in said


def _pad(bank: str, n: int, name: str) -> Pad:
    return Pad(bank, n, name, 1.0, 92.0, "Cm", name, f"/o/k/bank_{bank}/pad_{n:02d}_{name}.wav", 1)


def test_a_pad_claimed_twice_and_a_full_kit_are_flagged(tmp_path: Path) -> None:
    kit = Kit("k", tmp_path / "k")
    kit.pads[("A", 1)] = [_pad("A", 1, "kick"), _pad("A", 1, "snare")]
    lines = grid_lines(kit)
    assert "! pad A01 is claimed twice: kick, snare" in lines
    bottom = lines[lines.index("bank A") + 11 :][:2]
    assert bottom[0].startswith("|  1 kick!  ") and bottom[1].startswith("|    1.0s 92bpm Cm |")
    assert not any(line.startswith("! the kit is full") for line in lines)
    for b in "ABCDEFGHIJ":
        for n in range(1, 17):
            kit.pads.setdefault((b, n), [_pad(b, n, f"s{n}")])
    boxed = grid_lines(kit, box=True, colour=True)
    assert "! the kit is full" in boxed[-1] and boxed[-1].startswith("\x1b[31m")
    assert ": empty" not in "\n".join(boxed) and boxed[4][0] + boxed[7][0] == "┌├"


def test_bundle_zips_the_kit_with_its_manifest(tmp_path: Path) -> None:
    out, j = _card(tmp_path)
    target = tmp_path / "dusty.zip"
    said = sp404d(tmp_path, "bundle", "Dusty", "-o", str(target), *j)
    assert said.startswith(f"wrote {target}: kit dusty, 4 samples and KIT.txt")
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        assert names == [
            "bank_A/pad_01_kick.wav",
            "bank_A/pad_02_snare.wav",
            "bank_A/pad_13_crash.wav",
            "bank_C/pad_01_loop.wav",
            "KIT.txt",
        ]
        for name in names[:-1]:
            assert zf.read(name) == (out / "dusty" / name).read_bytes()
        manifest = zf.read("KIT.txt").decode().splitlines()
    src = tmp_path / "in" / "lofi" / "dusty"
    assert manifest == [
        "# kit dusty: 4 pads",
        "bank\tpad\tname\tlength_s\tbpm\tkey\tsource",
        f"A\t1\tkick\t0.500\t\t\t{src / 'bank_a' / '01 kick.wav'}",
        f"A\t2\tsnare\t0.750\t92\t\t{src / 'bank_a' / '02 snare 92bpm.wav'}",
        f"A\t13\tcrash\t1.000\t\t\t{src / 'bank_a' / '13 crash.wav'}",
        f"C\t1\tloop\t2.000\t\t\t{src / 'bank_c' / 'loop.wav'}",
    ]
    before = target.read_bytes()
    again = sp404d(tmp_path, "bundle", "dusty", "-o", str(target), *j, code=2)
    assert "exists; --force overwrites it" in again and target.read_bytes() == before
    sp404d(tmp_path, "bundle", "dusty", "-o", str(target), "--force", *j)
    inside = sp404d(tmp_path, "bundle", "dusty", "-o", str(out / "dusty" / "k.zip"), *j, code=2)
    assert "inside the outbox" in inside and not (out / "dusty" / "k.zip").exists()
    nowhere = sp404d(tmp_path, "bundle", "dusty", "-o", str(tmp_path / "no" / "k.zip"), *j, code=2)
    assert "does not exist" in nowhere
    assert "no kit 'nope'" in sp404d(tmp_path, "bundle", "nope", "-o", str(target), *j, code=2)
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left beside the target
