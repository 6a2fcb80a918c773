"""A BPM guessed from a loop's length: recorded as a guess, used only when asked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sp404d.metadata.path import bpm_from_length
from tests.conftest import SP404D, run_env, write_audio


@pytest.mark.parametrize(
    ("seconds", "bpm"),
    [
        (2.0, 120.0),  # one bar
        (240 * 2 / 90, 90.0),  # two bars at 90, not four at 180: the one nearer 120
        (240 * 4 / 96 * 1.004, 96.0),  # 0.4% off: still a whole number of bars
        (2.54, None),  # a whole number of bars at no tempo from 60 to 180
        (0.5, None),  # a one-shot
        (5.244, None),
    ],
)
def test_bpm_from_length(seconds: float, bpm: float | None) -> None:
    assert bpm_from_length(seconds) == bpm


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SP404D, *args], capture_output=True, text=True, env=run_env(tmp_path / "home")
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc


def _wavs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav"))


def test_a_guess_is_shown_and_recorded_and_used_only_when_asked(tmp_path: Path) -> None:
    inbox = tmp_path / "in" / "Loops"
    write_audio(inbox / "dusty.wav", 44100, seconds=240 * 2 / 90)
    write_audio(inbox / "kick.wav", 44100, seconds=0.5)
    journal = tmp_path / "j.jsonl"
    common = ("--journal", str(journal), "--layout", "bpm")
    check = _run(tmp_path, "check", str(inbox.parent), "--outbox", str(tmp_path / "o1"), *common)
    assert "bpm_guess: 90.0  [a guess from the length" in check.stdout
    _run(tmp_path, "convert", str(inbox.parent), "--outbox", str(tmp_path / "o1"), *common)
    assert sorted(
        p.relative_to(tmp_path / "o1").as_posix() for p in (tmp_path / "o1").rglob("*.wav")
    ) == [
        "unknown_bpm/dusty.wav",
        "unknown_bpm/kick.wav",
    ]
    status = _run(tmp_path, "status", "--journal", str(journal), "--json", "--source",
                  str(inbox / "dusty.wav"))  # fmt: skip
    (job,) = json.loads(status.stdout)["jobs"]
    assert job["metadata"]["bpm"] is None and job["metadata"]["bpm_guess"] == 90.0
    assert job["metadata"]["origins"]["bpm_guess"] == "length"
    config = tmp_path / "c.yaml"
    config.write_text(f"bpm_from_length: true\njournal: {tmp_path / 'j2.jsonl'}\n")
    _run(tmp_path, "convert", str(inbox.parent), "--config", str(config),
         "--outbox", str(tmp_path / "o2"), "--layout", "bpm")  # fmt: skip
    assert sorted(
        p.relative_to(tmp_path / "o2").as_posix() for p in (tmp_path / "o2").rglob("*.wav")
    ) == [
        "90-110/90bpm_dusty.wav",
        "unknown_bpm/kick.wav",
    ]
