"""Names that are not UTF-8: converted, journaled, shown and noted, under any locale."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sp404d.journal.journal import Journal
from sp404d.naming.names import SAFE_CHARS, ascii_text
from sp404d.pathtext import printable, readable
from sp404d.watch.discover import is_candidate
from tests.conftest import SP404D, run_env, write_audio

STRICT = {"PYTHONIOENCODING": "utf-8:strict", "LANG": "en_US.UTF-8"}


class TestPathText:
    @pytest.mark.parametrize(
        ("raw", "shown", "meant"),
        [
            pytest.param(b"Caf\xe9.wav", "Caf\\xe9.wav", "Café.wav", id="latin-1"),
            pytest.param(b"\x93Loop\x94.wav", "\\x93Loop\\x94.wav", "“Loop”.wav", id="cp1252"),
            pytest.param(b"x\x81y.wav", "x\\x81y.wav", "x\x81y.wav", id="undefined-in-cp1252"),
            pytest.param("Café".encode(), "Café", "Café", id="utf-8-untouched"),
        ],
    )
    def test_forms(self, raw: bytes, shown: str, meant: str) -> None:
        """Shown with \\xNN escapes; read as the Windows characters the bytes stood for."""
        name = os.fsdecode(raw)
        assert printable(name) == shown
        assert readable(name) == meant
        assert os.fsencode(name) == raw  # what is stored still names the file

    def test_transliterated_from_the_bytes(self) -> None:
        assert ascii_text(os.fsdecode(b"Caf\xe9 Kick")) == "Cafe Kick"


def _convert(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**run_env(tmp_path / "home"), **STRICT}
    return subprocess.run(
        [*SP404D, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


class TestConvert:
    def test_latin1_names_convert_journal_and_show(self, tmp_path: Path) -> None:
        """A Windows zip's names: converted, their records name the bytes, status and check
        print them under a strict UTF-8 locale."""
        inbox = tmp_path / "in"
        write_audio(inbox / "good.wav")
        shutil.copy(inbox / "good.wav", os.fsdecode(bytes(inbox) + b"/Caf\xe9 kick.wav"))
        Path(os.fsdecode(bytes(inbox) + b"/bad\xff.wav")).write_bytes(b"not audio" * 20)
        journal, outbox = tmp_path / "j.jsonl", tmp_path / "out"
        run = _convert(tmp_path, "convert", str(inbox), "--outbox", str(outbox), "--journal",
                       str(journal))  # fmt: skip
        assert run.returncode == 1, run.stderr  # one rejected
        assert "Traceback" not in run.stderr
        assert sorted(p.name for p in outbox.iterdir()) == ["Cafe_kick.wav", "good.wav"]
        with Journal(journal, readonly=True) as j:
            sources = {os.fsencode(r["source"]): r["status"] for r in j.all()}
        assert sources == {
            bytes(inbox) + b"/Caf\xe9 kick.wav": "done",
            bytes(inbox) + b"/bad\xff.wav": "rejected",
            bytes(inbox) + b"/good.wav": "done",
        }
        status = _convert(tmp_path, "status", "--journal", str(journal))
        assert status.returncode == 0, status.stderr
        assert "Caf\\xe9 kick.wav" in status.stdout and "bad\\xff.wav" in status.stdout
        as_json = _convert(tmp_path, "status", "--json", "--journal", str(journal))
        assert as_json.returncode == 0, as_json.stderr
        shown = {os.fsencode(job["source"]) for job in json.loads(as_json.stdout)["jobs"]}
        assert bytes(inbox) + b"/bad\xff.wav" in shown  # JSON keeps \udcff: the bytes round-trip
        check = _convert(tmp_path, "check", str(inbox), "--outbox", str(outbox), "--journal",
                         str(journal))  # fmt: skip
        assert "Traceback" not in check.stderr and "bad\\xff.wav" in check.stdout
        assert "title: Café kick" in check.stdout


# Any name the OS allows: bytes without "/" or NUL, within NAME_MAX with the extension.
NAMES = st.binary(min_size=1, max_size=80).filter(lambda b: b"/" not in b and b"\0" not in b)


@settings(max_examples=10)  # each example is two real sp404d runs
@given(names=st.lists(NAMES, min_size=1, max_size=8, unique=True))
def test_any_byte_name_gets_a_record_and_a_safe_output(
    names: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Promise: every candidate file has a record naming its bytes, every output is inside
    the outbox with a FAT-safe ASCII name, and nothing prints a traceback."""
    tmp_path = tmp_path_factory.mktemp("names")
    inbox = tmp_path / "in"
    sample = write_audio(tmp_path / "sample.wav", seconds=0.2)
    inbox.mkdir()
    for raw in names:
        shutil.copy(sample, os.fsdecode(bytes(inbox) + b"/" + raw + b".wav"))
    journal, outbox = tmp_path / "j.jsonl", tmp_path / "out"
    run = _convert(tmp_path, "convert", str(inbox), "--outbox", str(outbox), "--journal",
                   str(journal))  # fmt: skip
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 0, run.stderr
    expected = {
        bytes(inbox) + b"/" + raw + b".wav"
        for raw in names
        if is_candidate(Path(os.fsdecode(raw + b".wav")), Path())
    }
    with Journal(journal, readonly=True) as j:
        recorded = {os.fsencode(r["source"]) for r in j.all() if r["status"] == "done"}
    assert recorded == expected
    for out in outbox.rglob("*") if outbox.exists() else []:
        assert out.resolve().is_relative_to(outbox.resolve())
        assert SAFE_CHARS.fullmatch(out.name), out.name
    status = _convert(tmp_path, "status", "--journal", str(journal))
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
