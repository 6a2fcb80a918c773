"""``sp404d config check`` and the pieces of ``convert``'s progress and summary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sp404d.commands.convert import progress_line, refusal_summary
from tests.conftest import SP404D, run_env, write_audio


def sp404d(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SP404D, *args], capture_output=True, text=True, env=run_env(tmp_path / "home")
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_a_valid_config_shows_what_is_in_effect_per_inbox(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"inboxes:\n  - {tmp_path / 'in'}\n  - {{path: {tmp_path / 'kits'}, layout: kit}}\n"
        f"outbox: {tmp_path / 'out'}\nformat: aiff\n"
    )
    proc = sp404d(tmp_path, "config", "check", "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"config {config}: valid")
    assert " * format: aiff" in out and "   layout: flat" in out
    assert f"inbox {tmp_path / 'kits'}\n    layout: kit" in out
    assert f"inbox {tmp_path / 'in'}\n    (the settings above)" in out
    data = json.loads(sp404d(tmp_path, "config", "check", "--config", str(config), "--json").stdout)
    assert data["settings"]["format"] == "aiff"
    assert data["inboxes"][1] == {"path": str(tmp_path / "kits"), "overrides": {"layout": "kit"}}


def test_what_the_daemon_would_refuse_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"inbox: {tmp_path / 'in'}\noutbox: {tmp_path / 'out'}\nlayout: grid\n")
    bad = sp404d(tmp_path, "config", "check", "--config", str(config))
    assert bad.returncode == 2 and "layout" in bad.stderr and "grid" in bad.stderr
    config.write_text(f"inbox: {tmp_path / 'in'}\noutbox: {tmp_path / 'in' / 'out'}\n")
    inside = sp404d(tmp_path, "config", "check", "--config", str(config))
    assert inside.returncode == 2 and "outbox" in inside.stderr
    missing = sp404d(tmp_path, "config", "check", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr


def test_progress_line_counts_rate_and_eta() -> None:
    assert progress_line(120, 3000, 1.5, "kick.wav") == "[120/3000] 80 files/s, ETA 0:36  kick.wav"
    assert progress_line(10, 100_000, 1.0, "x").startswith("[10/100000] 10 files/s, ETA 2:46:39")
    assert "ETA 0:00" in progress_line(5, 5, 0.0, "x")


def test_refusals_grouped_by_kind_with_examples() -> None:
    refused = [(f"s{i}.wav", f"too short: {i} ms, minimum 100 ms") for i in range(5)]
    refused.append(("c.wav", "corrupt audio file: no data"))
    lines = refusal_summary(refused)
    assert lines[0] == "refused: 5 too short, 1 corrupt audio file"
    assert lines[1:5] == [
        "  s0.wav: too short: 0 ms, minimum 100 ms",
        "  s1.wav: too short: 1 ms, minimum 100 ms",
        "  s2.wav: too short: 2 ms, minimum 100 ms",
        "  ... and 2 more",
    ]
    assert lines[5] == "  c.wav: corrupt audio file: no data"
    assert refusal_summary([]) == []


def test_convert_ends_with_the_refusals_grouped(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    write_audio(inbox / "good.wav", 44100)
    for i in range(4):
        write_audio(inbox / f"tiny{i}.wav", 44100, seconds=0.03, freq=300 + 10 * i)
    (inbox / "junk.wav").write_bytes(b"RIFF1234WAVEjunk" * 20)
    proc = sp404d(tmp_path, "convert", str(inbox), "--outbox", str(tmp_path / "out"),
                  "--journal", str(tmp_path / "j.jsonl"))  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("6 files in") and lines[0].endswith("1 done, 5 rejected")
    assert lines[1] == "refused: 4 too short, 1 corrupt audio file"
    assert sum(line.startswith("  tiny") for line in lines) == 3 and "  ... and 1 more" in lines
    assert lines[-1].startswith("see why: sp404d status")
