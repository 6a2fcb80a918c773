"""Configs that would feed themselves: overlapping folders are refused, sp404d's files excluded.

An outbox inside an inbox converts its own outputs again on every rescan; an inbox inside the
outbox is never read; one folder listed twice is watched twice. All are refused where the
config is validated, so ``run``, a SIGHUP reload and ``convert`` all refuse them. The journal
and its side files inside an inbox are never taken as input.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sp404d.config.loading import build_config
from sp404d.errors import ConfigError
from tests.conftest import SP404D, run_env, write_audio
from tests.daemon_harness import DaemonFactory, wait_for


def _refused(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        build_config(raw)
    assert "\n" not in str(err.value)
    return err.value


class TestOverlappingFolders:
    def test_outbox_equal_to_the_inbox(self, tmp_path: Path) -> None:
        """Its outputs would be converted again on every rescan (kick.wav, kick_2.wav...)."""
        err = _refused({"inbox": str(tmp_path / "in"), "outbox": str(tmp_path / "in")})
        assert err.key == "outbox"
        assert "the same folder as inbox" in err.message

    def test_outbox_inside_an_inbox(self, tmp_path: Path) -> None:
        """Inside the second of two inboxes: the message names that very entry."""
        err = _refused(
            {
                "inboxes": [str(tmp_path / "a"), {"path": str(tmp_path / "b")}],
                "outbox": str(tmp_path / "b" / "out"),
            }
        )
        assert err.key == "outbox" and "inside inboxes[1].path" in err.message

    def test_inbox_inside_the_outbox(self, tmp_path: Path) -> None:
        """Every event in it would be ignored, without a word."""
        err = _refused({"inbox": str(tmp_path / "out" / "in"), "outbox": str(tmp_path / "out")})
        assert err.key == "inbox" and "inside outbox" in err.message

    def test_the_same_inbox_twice(self, tmp_path: Path) -> None:
        """Spelled differently (a trailing ``/..``-trip): compared resolved."""
        err = _refused(
            {
                "inboxes": [str(tmp_path / "a"), str(tmp_path / "a" / "x" / "..")],
                "outbox": str(tmp_path / "out"),
            }
        )
        assert err.key == "inboxes[1].path"
        assert "the same folder as inboxes[0].path" in err.message

    def test_one_inbox_inside_another(self, tmp_path: Path) -> None:
        """A file below both would be taken twice, with two different settings."""
        err = _refused(
            {
                "inboxes": [str(tmp_path / "a" / "kits"), str(tmp_path / "a")],
                "outbox": str(tmp_path / "out"),
            }
        )
        assert err.key == "inboxes[0].path" and "inside inboxes[1].path" in err.message

    def test_through_a_symlink(self, tmp_path: Path) -> None:
        """An outbox reached through a link into the inbox is still inside it."""
        (tmp_path / "in" / "out").mkdir(parents=True)
        (tmp_path / "link").symlink_to(tmp_path / "in" / "out")
        err = _refused({"inbox": str(tmp_path / "in"), "outbox": str(tmp_path / "link")})
        assert err.key == "outbox" and "inside inbox" in err.message

    @pytest.mark.parametrize(
        ("archive", "words"),
        [
            pytest.param("in", "the same folder as inbox", id="archive-is-the-inbox"),
            pytest.param(".", "inbox", id="archive-holds-the-inbox"),
            pytest.param("out/done", "inside outbox", id="archive-in-the-outbox"),
        ],
    )
    def test_archive_that_would_swallow_an_inbox_or_land_on_the_card(
        self, tmp_path: Path, archive: str, words: str
    ) -> None:
        """The archive is never read as input: holding an inbox, it would hide all of it."""
        err = _refused(
            {
                "inbox": str(tmp_path / "in"),
                "outbox": str(tmp_path / "out"),
                "on_done": "move",
                "archive": str(tmp_path / archive),
            }
        )
        assert err.key == "archive" and words in err.message

    def test_archive_inside_an_inbox_is_fine(self, tmp_path: Path) -> None:
        """inbox/done is left out of the input (and never refused)."""
        config = build_config(
            {
                "inbox": str(tmp_path / "in"),
                "outbox": str(tmp_path / "out"),
                "on_done": "move",
                "archive": str(tmp_path / "in" / "done"),
            }
        )
        assert tmp_path / "in" / "done" in config.not_inputs()

    def test_separate_folders_with_a_common_prefix_are_fine(self, tmp_path: Path) -> None:
        """``in`` and ``in2`` share characters, not folders."""
        inboxes = [str(tmp_path / "in"), str(tmp_path / "in2")]
        build_config({"inboxes": inboxes, "outbox": str(tmp_path / "in_out")})


class TestRunRefuses:
    def test_run_with_outbox_equal_to_inbox_exits_2_naming_both_keys(self, tmp_path: Path) -> None:
        """``sp404d run`` stops at start, before watching anything."""
        cfg = tmp_path / "sp404d.yaml"
        folder = tmp_path / "in"
        cfg.write_text(
            yaml.safe_dump(
                {"inbox": str(folder), "outbox": str(folder), "journal": str(tmp_path / "j")}
            )
        )
        proc = subprocess.run(
            [*SP404D, "run", "--config", str(cfg)],
            env=run_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        line = proc.stderr.strip().splitlines()[-1]
        assert "outbox" in line and "inbox" in line and "Traceback" not in proc.stderr
        assert not (tmp_path / "j").exists()

    def test_reload_into_an_overlap_is_refused_and_the_old_config_kept(
        self, daemon: DaemonFactory
    ) -> None:
        """SIGHUP with the outbox moved into the inbox: refused, and files still converted."""
        d = daemon().start()
        d.write_config(outbox=str(d.inbox / "out"))
        d.send(signal.SIGHUP)
        (refused,) = wait_for(lambda: d.events("reload_refused"), "the refusal")
        assert refused["error"].startswith(f"config: outbox: {d.inbox / 'out'} is inside inbox")
        write_audio(d.inbox / "kick.wav", 44100)
        d.wait_done(1)
        assert d.outputs() == ["kick.wav"] and not (d.inbox / "out").exists()


def _convert(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SP404D, "convert", *args, "--journal", str(tmp_path / "j.jsonl")],
        env=run_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestConvertRefuses:
    def test_outbox_equal_to_the_input_folder(self, tmp_path: Path) -> None:
        """``convert IN --outbox IN``: a second run would take the first run's outputs."""
        folder = tmp_path / "in"
        write_audio(folder / "kick.wav", 44100)
        proc = _convert(tmp_path, str(folder), "--outbox", str(folder))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert last == (
            f"sp404d: the outbox {folder} is the same folder as the input {folder}: a second "
            "run would take its outputs as inputs; give an outbox outside the inputs"
        )
        assert sorted(p.name for p in folder.iterdir()) == ["kick.wav"]

    def test_outbox_inside_the_input_folder(self, tmp_path: Path) -> None:
        folder = tmp_path / "in"
        write_audio(folder / "kick.wav", 44100)
        proc = _convert(tmp_path, str(folder), "--outbox", str(folder / "out"))
        assert proc.returncode == 2 and str(folder / "out") in proc.stderr

    def test_input_inside_the_outbox(self, tmp_path: Path) -> None:
        """Converting the card's own files back onto the card."""
        src = write_audio(tmp_path / "out" / "old" / "kick.wav", 44100)
        proc = _convert(tmp_path, str(src), "--outbox", str(tmp_path / "out"))
        assert proc.returncode == 2 and "inside the outbox" in proc.stderr


class TestJournalInsideAnInbox:
    def test_convert_never_takes_the_journal_as_input(self, tmp_path: Path) -> None:
        """The journal and its notes sit in the input folder: neither queued nor rejected."""
        folder = tmp_path / "in"
        write_audio(folder / "kick.wav", 44100)
        journal = folder / "journal.jsonl"
        args = [str(folder), "--outbox", str(tmp_path / "out"), "--journal", str(journal)]
        for _ in range(2):
            proc = subprocess.run(
                [*SP404D, "convert", *args],
                env=run_env(tmp_path / "home"),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "1 file in" in proc.stdout and "1 skipped" in proc.stdout
        assert "passed over" not in proc.stdout
        side = sorted(p.name for p in folder.iterdir() if p.name.startswith("journal.jsonl"))
        assert side[:2] == ["journal.jsonl", "journal.jsonl.intents"]

    def test_the_daemon_never_queues_its_own_journal(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """Start, a drop, a restart: no rescan finds sp404d's own files, nothing is rejected."""
        inbox = tmp_path / "in"
        d = daemon(journal=str(inbox / "journal.jsonl"))
        d.journal = inbox / "journal.jsonl"
        d.start()
        write_audio(inbox / "kick.wav", 44100)
        d.wait_done(1)
        assert d.stop() == 0
        d.start()
        scans = wait_for(lambda: d.events("rescan")[1:], "the second start's rescan")
        assert [s["new_or_changed"] for s in d.events("rescan")] == [0, 0], scans
        assert d.by_status("rejected") == [] and d.outputs() == ["kick.wav"]
        assert os.path.exists(inbox / "journal.jsonl.intents")
