"""The daemon on the field's inputs: trouble after a record, names that are not UTF-8, an idle
card pulled. Real daemon subprocesses; a fault is injected only into sp404d's own code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sp404d.pipeline.outbox import CARD_MARKER
from sp404d.report.status import state_path
from tests.conftest import SP404D, write_audio
from tests.daemon_harness import DaemonFactory, DaemonProc, wait_for

# Runs the daemon with its aftercare of one file (boom.wav) raising, as a bug would.
INJECT_AFTERCARE = """
import sys
import sp404d.daemon.aftercare as aftercare

real = aftercare.remove_error_note

def remove_error_note(source):
    if source.name == "boom.wav":
        raise RuntimeError("injected fault")
    real(source)

aftercare.remove_error_note = remove_error_note

if __name__ == "__main__":  # the worker processes import this module too
    from sp404d.cli import main

    sys.exit(main(sys.argv[1:]))
"""


def _drop(d: DaemonProc, names: list[str]) -> None:
    stage = d.dir / "stage"
    for i, name in enumerate(names):
        write_audio(stage / name, freq=200 + 40 * i, seconds=0.2)
    d.inbox.mkdir(parents=True, exist_ok=True)
    for name in names:  # renamed in together: one backlog, sent to the worker in chunks
        os.rename(stage / name, d.inbox / name)


class TestContainment:
    def test_trouble_after_a_record_stays_with_its_job(self, daemon: DaemonFactory) -> None:
        """An exception in one job's aftercare, inside a chunk: the jobs that travelled with
        it are still journaled, the fault is logged against its file, the daemon goes on."""
        d = daemon(workers=1)
        script = d.dir / "inject.py"
        script.write_text(INJECT_AFTERCARE)
        d.start(prefix=[sys.executable, str(script)])
        names = ["a00.wav", "a01.wav", "boom.wav", *(f"c{i:02d}.wav" for i in range(9))]
        _drop(d, names)
        done = d.wait_done(len(names))
        assert sorted(Path(r["source"]).name for r in done) == sorted(names)
        failed = d.events("aftercare_failed")
        assert [Path(e["source"]).name for e in failed] == ["boom.wav"]
        assert "injected fault" in failed[0]["error"]
        assert not d.events("internal_error")
        write_audio(d.inbox / "after.wav")
        d.wait_done(len(names) + 1)

    def test_a_name_that_is_not_utf8(self, daemon: DaemonFactory) -> None:
        """A rejected file whose name is Latin-1 bytes gets its note (no temp left behind);
        its chunk mates are journaled; status prints it under a strict UTF-8 locale."""
        d = daemon(workers=1).start()
        bad = os.fsdecode(b"bad\xff.wav")
        stage = d.dir / "stage"
        stage.mkdir()
        (stage / bad).write_bytes(b"not audio at all" * 64)
        names = ["a0.wav", "a1.wav", "c0.wav", "c1.wav", "c2.wav"]
        for i, name in enumerate(names):
            write_audio(stage / name, freq=300 + 50 * i, seconds=0.2)
        for name in sorted([bad, *names]):
            os.rename(stage / name, d.inbox / name)
        d.wait_done(len(names))
        rejected = wait_for(lambda: d.by_status("rejected"), "the rejection")
        assert os.fsencode(rejected[0]["source"]).endswith(b"/bad\xff.wav")
        note = d.inbox / (bad + ".error.txt")
        wait_for(note.exists, "the error note")
        assert "bad\\xff.wav" in note.read_text(encoding="utf-8")
        assert not [p for p in os.listdir(d.inbox) if p.startswith(".")]
        assert not d.events("internal_error") and not d.events("aftercare_failed")
        env = {**d.env, "PYTHONIOENCODING": "utf-8:strict"}
        status = subprocess.run(
            [*SP404D, "status", "--config", str(d.config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert "bad\\xff.wav" in status.stdout


class TestIdleCard:
    def test_status_sees_a_card_pulled_while_idle(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """No work arrives, yet status says the card is away once it is pulled, and ready once
        it is back."""
        card = tmp_path / "card"
        (card / "IMPORT").mkdir(parents=True)
        (card / CARD_MARKER).touch()
        d = daemon(outbox=str(card / "IMPORT"), outbox_removable=True).start()

        def card_state() -> str | None:
            try:
                return str(json.loads(state_path(d.journal).read_text())["outbox_state"])
            except (OSError, ValueError, KeyError):
                return None

        wait_for(lambda: card_state() == "ready", "the card to be ready")
        shutil.move(card, tmp_path / "pulled")
        wait_for(lambda: card_state() == "away", "status to say the card is away", timeout=20)
        shutil.move(tmp_path / "pulled", card)
        wait_for(lambda: card_state() == "ready", "status to say the card is back", timeout=20)


class TestOneDaemon:
    def _second(self, d: DaemonProc, config: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SP404D, "run", "--config", str(config)],
            capture_output=True,
            text=True,
            env=d.env,
            timeout=60,
            check=False,
        )

    def test_a_second_run_on_the_same_config_is_refused(self, daemon: DaemonFactory) -> None:
        """Exit 2 naming the first one's pid; the first keeps its state file and goes on."""
        d = daemon().start()
        assert d.proc is not None
        second = self._second(d, d.config)
        assert second.returncode == 2, second.stderr
        assert f"pid {d.proc.pid}" in second.stderr and "already running" in second.stderr
        assert state_path(d.journal).exists()
        write_audio(d.inbox / "one.wav")
        d.wait_done(1)

    def test_another_journal_on_the_same_inbox_is_refused(self, daemon: DaemonFactory) -> None:
        d = daemon().start()
        other = d.dir / "other.yaml"
        other.write_text(d.config.read_text().replace("journal.jsonl", "other.jsonl"))
        second = self._second(d, other)
        assert second.returncode == 2 and "the inbox" in second.stderr, second.stderr

    def test_a_killed_daemons_lock_is_taken_over(self, daemon: DaemonFactory) -> None:
        d = daemon().start()
        d.kill()
        d.start()
        write_audio(d.inbox / "after.wav")
        d.wait_done(1)

    def test_convert_leaves_the_daemons_inbox_to_it(self, daemon: DaemonFactory) -> None:
        """`convert` of a watched inbox converts none of the daemon's files a second time."""
        d = daemon().start()
        names = [f"s{i}.wav" for i in range(6)]
        _drop(d, names)
        run = subprocess.run(
            [*SP404D, "convert", str(d.inbox), "--config", str(d.config)],
            capture_output=True,
            text=True,
            env=d.env,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        d.wait_done(len(names))
        assert "left to the running daemon" in run.stderr
        sources = [Path(r["source"]).name for r in d.by_status("done")]
        assert sorted(sources) == sorted(names)  # each once
