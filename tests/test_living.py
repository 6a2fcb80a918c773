"""Living with sp404d: status filters and history, what needs the user, desktop notifications,
the card's manifest. Real files, real CLI and daemon subprocesses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sp404d.daemon.desktop import reason_kind, summary
from sp404d.pipeline.outbox import CARD_MARKER
from sp404d.report.attention import hint
from sp404d.report.jobfilter import JobFilter, parse_since
from tests.conftest import SP404D, run_env, write_audio
from tests.daemon_harness import DaemonFactory, wait_for


def sp404d(tmp_path: Path, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SP404D, *args], capture_output=True, text=True, env=run_env(tmp_path / "home")
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if code is not None:
        assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def _mixed_inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "in"
    write_audio(inbox / "good.wav", 44100)
    write_audio(inbox / "short.wav", 44100, seconds=0.05)
    (inbox / "junk.wav").write_bytes(b"RIFF1234WAVEjunk" * 20)
    return inbox


def _convert(tmp_path: Path, inbox: Path, *more: str) -> Path:
    journal = tmp_path / "j.jsonl"
    sp404d(tmp_path, "convert", str(inbox), "--outbox", str(tmp_path / "out"),
           "--journal", str(journal), *more, code=None)  # fmt: skip
    return journal


class TestPure:
    def test_since_takes_ages_and_dates(self) -> None:
        now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
        assert parse_since("2h", now) == "2026-12-03T10:00:00.000Z"
        assert parse_since("30m", now) == "2026-12-03T11:30:00.000Z"
        assert parse_since("1w", now) == "2026-11-26T12:00:00.000Z"
        assert parse_since("2026-12-01T00:00:00+00:00") == "2026-12-01T00:00:00.000Z"
        assert parse_since("2026-12-01").startswith(("2026-11-30", "2026-12-01"))  # local day
        with pytest.raises(ValueError, match="2h, 30m"):
            parse_since("yesterday")

    def test_filter(self) -> None:
        rec = {"status": "rejected", "source": "/in/a/x.wav", "finished_at": "2026-12-03T10Z"}
        assert JobFilter(frozenset({"rejected"})).matches(rec)
        assert not JobFilter(frozenset({"failed"})).matches(rec)
        assert JobFilter(inbox="/in/a").matches(rec) and not JobFilter(inbox="/in/ab").matches(rec)
        assert not JobFilter(since="2026-12-04").matches(rec)
        newest_first = [rec, {**rec, "finished_at": "2026-12-01T00Z"}, rec]
        assert len(list(JobFilter(since="2026-12-02").select(newest_first))) == 1  # stops

    def test_summaries_and_hints(self) -> None:
        jobs: list[tuple[str, str, str | None]] = [
            ("rejected", f"s{i}.wav", "too short: 50 ms, minimum 100 ms") for i in range(9)
        ]
        jobs += [("rejected", "c.wav", "corrupt audio file: no data"), ("failed", "f.wav", None)]
        title, body = summary(jobs)
        assert title == "sp404d: 10 files refused and 1 failed"
        assert body.startswith("9 too short, 1 corrupt audio file, 1 unknown reason\n")
        assert "s0.wav, s1.wav, s2.wav and 8 more" in body
        assert reason_kind("truncated: ends at 3.1 s") == "truncated"
        assert "short_files: pad" in hint("rejected", "too short: 50 ms, minimum 100 ms")
        assert "retry --failed" in hint("failed", "outbox vanished")
        assert "retry" in hint("rejected", "something new")


class TestStatus:
    def test_filters_and_the_history_of_one_file(self, tmp_path: Path) -> None:
        journal = _convert(tmp_path, _mixed_inbox(tmp_path))
        j = ("--journal", str(journal))

        def jobs(*args: str) -> list[dict[str, str]]:
            data = json.loads(sp404d(tmp_path, "status", *j, "--json", *args).stdout)
            return list(data["jobs"])

        assert len(jobs()) == 3
        assert {Path(r["source"]).name for r in jobs("--rejected")} == {"short.wav", "junk.wav"}
        assert jobs("--failed") == []
        assert len(jobs("--since", "1h")) == 3 and jobs("--since", "2099-01-01") == []
        assert jobs("--inbox", str(tmp_path / "elsewhere")) == []
        assert len(jobs("--inbox", str(tmp_path / "in"), "--rejected", "--limit", "1")) == 1
        text = sp404d(tmp_path, "status", *j, "--rejected").stdout
        assert "matching:" in text and "good.wav" not in text.split("matching:")[1]
        bad = sp404d(tmp_path, "status", *j, "--since", "last tuesday", code=2)
        assert "--since" in bad.stderr
        history = sp404d(tmp_path, "status", *j, "--source", str(tmp_path / "in" / "short.wav"))
        assert "1 job" in history.stdout and "too short: 50 ms, minimum 100 ms" in history.stdout
        assert "title: short  [from path]" in history.stdout
        assert "input: WAV PCM_16, 44100 Hz, 1 ch, 0.05 s" in history.stdout
        data = json.loads(
            sp404d(
                tmp_path, "status", *j, "--json", "--source", str(tmp_path / "in/good.wav")
            ).stdout
        )
        (job,) = data["jobs"]
        assert job["status"] == "done" and job["metadata"]["origins"]["title"] == "path"

    def test_leads_with_what_needs_the_user_since_the_last_look(self, tmp_path: Path) -> None:
        inbox = _mixed_inbox(tmp_path)
        journal = _convert(tmp_path, inbox)
        first = sp404d(tmp_path, "status", "--journal", str(journal)).stdout
        head = first.split("journal ")[0]
        assert head.startswith("needs you: 2 files")
        assert "too short: 50 ms, minimum 100 ms" in head and "short_files: pad" in head
        assert "corrupt audio file" in head and "good.wav" not in head
        again = sp404d(tmp_path, "status", "--journal", str(journal)).stdout
        assert "needs you" not in again  # looked at already
        write_audio(inbox / "short.wav", 44100)  # fixed
        write_audio(inbox / "tiny.wav", 44100, seconds=0.02)  # new trouble
        _convert(tmp_path, inbox)
        third = sp404d(tmp_path, "status", "--journal", str(journal)).stdout
        head = third.split("journal ")[0]
        assert head.startswith("needs you: 1 file since your last look")
        assert "tiny.wav" in head and "short.wav" not in head
        assert json.loads(sp404d(tmp_path, "status", "--journal", str(journal), "--json").stdout)


def _fake_notify_send(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A ``notify-send`` on PATH that records its arguments, one call a line (JSON)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "notify-calls.jsonl"
    bin_dir.mkdir()
    tool = bin_dir / "notify-send"
    tool.write_text(
        "#!/bin/sh\nexec python3 -c 'import json, sys; "
        f'open("{calls}", "a").write(json.dumps(sys.argv[1:]) + "\\n")\' "$@"\n'
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = run_env(tmp_path / "home")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env, calls


class TestNotifications:
    def test_refusals_at_once_are_one_notification(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        env, calls = _fake_notify_send(tmp_path)
        d = daemon(notify="desktop")
        d.env = env
        d.start()
        stage = tmp_path / "stage"
        for i in range(3):
            write_audio(stage / f"tiny{i}.wav", 44100, seconds=0.03, freq=300 + 20 * i)
        (stage / "junk.wav").write_bytes(b"RIFF1234WAVEjunk" * 20)
        for f in sorted(stage.iterdir()):
            os.rename(f, d.inbox / f.name)
        wait_for(lambda: calls.exists(), "a notification")
        d.barrier()  # later jobs would have been merged into the first
        wait_for(lambda: len(d.by_status("rejected")) >= 5, "every refusal recorded")
        (call,) = [json.loads(line) for line in calls.read_text().splitlines()]
        assert call[1] == "sp404d: 4 files refused"
        assert call[2].startswith("3 too short, 1 corrupt audio file\n")

    def test_a_missing_tool_is_said_once(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        d = daemon(notify="desktop")
        d.env["PATH"] = str(tmp_path / "nothing-here")
        d.start()
        for name in ("a.wav", "b.wav"):
            write_audio(d.inbox / name, 44100, seconds=0.03)
            wait_for(lambda: d.events("notify_unavailable"), "the warning")
            d.barrier()
        assert len(d.events("notify_unavailable")) == 1
        assert not d.events("internal_error")


class TestCardManifest:
    def test_the_card_explains_itself(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        card = tmp_path / "card"
        (card / "IMPORT").mkdir(parents=True)
        (card / CARD_MARKER).touch()
        d = daemon(outbox=str(card / "IMPORT"), outbox_removable=True)
        d.outbox = card / "IMPORT"
        d.start()
        write_audio(d.inbox / "kick.wav", 44100)
        write_audio(d.inbox / "snare.wav", 44100, freq=600)
        manifest = card / "SP404D.TXT"
        wait_for(lambda: manifest.exists() and "snare" in manifest.read_text(), "the manifest")
        text = manifest.read_text()
        assert f"IMPORT/kick.wav  <-  {d.inbox / 'kick.wav'}" in text
        assert f"IMPORT/snare.wav  <-  {d.inbox / 'snare.wav'}" in text
        assert "2 files" in text
        assert not list(card.glob(".SP404D.TXT*"))  # no temp file left

    def test_convert_writes_it_and_the_setting_turns_it_off(self, tmp_path: Path) -> None:
        card = tmp_path / "card"
        (card / "IMPORT").mkdir(parents=True)
        (card / CARD_MARKER).touch()
        inbox = tmp_path / "in"
        write_audio(inbox / "kick.wav", 44100)
        config = tmp_path / "c.yaml"
        config.write_text(f"outbox: {card / 'IMPORT'}\noutbox_removable: true\n")
        sp404d(tmp_path, "convert", str(inbox), "--config", str(config),
               "--journal", str(tmp_path / "j.jsonl"))  # fmt: skip
        assert "IMPORT/kick.wav  <-  " in (card / "SP404D.TXT").read_text()
        (card / "SP404D.TXT").unlink()
        config.write_text(config.read_text() + "card_manifest: false\n")
        write_audio(inbox / "snare.wav", 44100, freq=600)
        sp404d(tmp_path, "convert", str(inbox), "--config", str(config),
               "--journal", str(tmp_path / "j.jsonl"))  # fmt: skip
        assert not (card / "SP404D.TXT").exists()


def _kit_inbox(tmp_path: Path) -> Path:
    """A kit (pads from the path) and two loose files, as a sample library holds them."""
    inbox = tmp_path / "in"
    for i, name in enumerate(["01 kick.wav", "02 snare.wav", "13 crash.wav"]):
        write_audio(inbox / "lofi" / "dusty" / "bank_a" / name, 44100, freq=200 + 90 * i)
    write_audio(inbox / "lofi" / "dusty" / "bank_b" / "loop.wav", 48000, seconds=1.5)
    return inbox


class TestRebuild:
    def test_a_new_card_from_the_journal_is_the_same_card(self, tmp_path: Path) -> None:
        inbox = _kit_inbox(tmp_path)
        old, new, journal = tmp_path / "card1", tmp_path / "card2", tmp_path / "j.jsonl"
        j = ("--journal", str(journal))
        for _ in range(2):  # the second run records each file as skipped: still rebuilt
            sp404d(tmp_path, "convert", str(inbox), "--outbox", str(old), "--layout", "kit", *j)
        tree = sorted(p.relative_to(old) for p in old.rglob("*.wav"))
        assert len(tree) == 4 and Path("dusty/bank_A/pad_13_crash.wav") in tree
        rebuild = ("rebuild", "--outbox", str(old), "--to", str(new), *j)
        dry = sp404d(tmp_path, *rebuild, "--dry-run")
        assert "4 of 4 outputs would be made or checked" in dry.stdout and not new.exists()
        made = sp404d(tmp_path, *rebuild)
        assert "4 of 4 outputs" in made.stdout
        assert sorted(p.relative_to(new) for p in new.rglob("*.wav")) == tree
        for rel in tree:
            assert (new / rel).read_bytes() == (old / rel).read_bytes(), rel  # byte-identical
        assert not list(new.rglob("~S*"))

    def test_a_copy_takes_from_the_card_what_no_source_can_make(self, tmp_path: Path) -> None:
        """A source gone, and one whose redo was refused (too short: the earlier sample stays
        on the card): the copy holds what the card holds, copied from it, byte for byte."""
        inbox = _kit_inbox(tmp_path)
        card, copy, journal = tmp_path / "card", tmp_path / "copy", tmp_path / "j.jsonl"
        j = ("--journal", str(journal))
        convert = ("convert", str(inbox), "--outbox", str(card), "--layout", "kit", *j)
        sp404d(tmp_path, *convert)
        (inbox / "lofi" / "dusty" / "bank_b" / "loop.wav").unlink()  # gone
        write_audio(inbox / "lofi" / "dusty" / "bank_a" / "02 snare.wav", 44100, seconds=0.05)
        refused = sp404d(tmp_path, *convert, code=1).stdout
        assert "too short" in refused
        tree = {p.relative_to(card): p.read_bytes() for p in card.rglob("*.wav")}
        assert len(tree) == 4
        rebuild = ("rebuild", "--outbox", str(card), "--to", str(copy), *j)
        dry = sp404d(tmp_path, *rebuild, "--dry-run").stdout
        assert "would copy from the card (the source is gone)" in dry
        assert "would copy from the card (the source changed since it was converted)" in dry
        assert "4 of 4 outputs would be made or checked" in dry and not copy.exists()
        out = sp404d(tmp_path, *rebuild).stdout
        assert "copied from the card (the source is gone)  dusty/bank_B/" in out, out
        assert "4 of 4 outputs" in out
        assert {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*.wav")} == tree
        assert not list(copy.rglob("~S*"))

    def test_a_copy_takes_a_samples_note_along_and_never_a_file_not_known_whole(
        self, tmp_path: Path
    ) -> None:
        """With ``write_txt``, a sample copied from the card takes its ``NAME.txt``; one whose
        record kept no size (an older version's) is not known whole: not copied."""
        inbox = _kit_inbox(tmp_path)
        card, copy, journal = tmp_path / "card", tmp_path / "copy", tmp_path / "j.jsonl"
        j = ("--journal", str(journal))
        convert = ("convert", str(inbox), "--outbox", str(card), "--layout", "kit", *j)
        config = tmp_path / "c.yaml"
        config.write_text("write_txt: true\n")
        sp404d(tmp_path, *convert, "--config", str(config))
        for name in ("01 kick.wav", "02 snare.wav"):
            (inbox / "lofi" / "dusty" / "bank_a" / name).unlink()
        lines = journal.read_text().splitlines()
        kept = [ln for ln in lines if "02 snare.wav" not in ln]
        snare = [json.loads(ln) for ln in lines if "02 snare.wav" in ln]
        for rec in snare:  # as a version that kept no size wrote it
            rec[2].get("render", {}).pop("bytes", None)
        journal.write_text("\n".join([*kept, *map(json.dumps, snare)]) + "\n")
        rebuild = ("rebuild", "--outbox", str(card), "--to", str(copy), *j)
        out = sp404d(tmp_path, *rebuild, "--config", str(config), code=1).stdout
        assert "copied from the card (the source is gone)  dusty/bank_A/pad_01_kick.wav" in out
        assert "not rebuilt: the source is gone  dusty/bank_A/pad_02_snare.wav" in out, out
        kick = Path("dusty/bank_A/pad_01_kick.txt")
        assert (copy / kick).read_bytes() == (card / kick).read_bytes()
        assert not (copy / "dusty" / "bank_A" / "pad_02_snare.wav").exists()

    def test_it_repairs_a_card_and_lists_what_it_cannot_make(self, tmp_path: Path) -> None:
        inbox = _kit_inbox(tmp_path)
        card, journal = tmp_path / "card", tmp_path / "j.jsonl"
        j = ("--journal", str(journal))
        sp404d(tmp_path, "convert", str(inbox), "--outbox", str(card), "--layout", "kit", *j)
        kick = card / "dusty" / "bank_A" / "pad_01_kick.wav"
        snare = card / "dusty" / "bank_A" / "pad_02_snare.wav"
        good = {p: p.read_bytes() for p in (kick, snare)}
        kick.unlink()
        snare.write_bytes(good[snare][:1000])  # damaged, as a card pulled mid-copy leaves it
        (inbox / "lofi" / "dusty" / "bank_b" / "loop.wav").unlink()  # gone
        write_audio(inbox / "lofi" / "dusty" / "bank_a" / "13 crash.wav", 44100, freq=999)
        out = sp404d(tmp_path, "rebuild", "--outbox", str(card), *j, code=1).stdout
        assert f"written  {kick.relative_to(card)}" in out
        assert f"rewritten  {snare.relative_to(card)}" in out
        assert "not rebuilt: the source is gone" in out
        assert "not rebuilt: the source changed" in out
        assert "2 of 4 outputs" in out
        assert {p: p.read_bytes() for p in (kick, snare)} == good
        again = sp404d(tmp_path, "rebuild", "--outbox", str(card), *j, code=1).stdout
        assert f"ok (identical)  {kick.relative_to(card)}" in again


class TestRetry:
    def test_without_a_daemon_it_runs_them_now(self, tmp_path: Path) -> None:
        inbox = _mixed_inbox(tmp_path)
        journal = _convert(tmp_path, inbox)
        config = tmp_path / "c.yaml"
        config.write_text(f"outbox: {tmp_path / 'out'}\njournal: {journal}\nshort_files: pad\n")
        out = sp404d(tmp_path, "retry", "--rejected", "--config", str(config), code=1).stdout
        assert "2 files retried: 1 done, 1 rejected" in out
        status = json.loads(sp404d(tmp_path, "status", "--journal", str(journal), "--json").stdout)
        assert status["total"] == 5  # each retried file has a new record
        again = sp404d(tmp_path, "retry", str(inbox / "good.wav"), "--config", str(config))
        assert "1 file retried: 1 done" in again.stdout
        nothing = sp404d(tmp_path, "retry", "--failed", "--config", str(config))
        assert "nothing to retry" in nothing.stdout

    def test_a_running_daemon_takes_them(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        d = daemon().start()
        write_audio(d.inbox / "tiny.wav", 44100, seconds=0.03)
        wait_for(lambda: d.by_status("rejected"), "the refusal")
        out = sp404d(tmp_path, "retry", "--config", str(d.config)).stdout
        assert "1 file handed to the running daemon" in out
        # Nothing changed about the file, yet it is planned again: a second record.
        wait_for(lambda: len(d.by_status("rejected")) == 2, "the retried job's record")
        assert d.events("retry")[0]["files"] == 1


def test_rebuild_refuses_a_new_card_inside_an_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    write_audio(inbox / "kick.wav", 44100)
    config = tmp_path / "c.yaml"
    config.write_text(f"inbox: {inbox}\noutbox: {tmp_path / 'out'}\njournal: {tmp_path / 'j'}\n")
    sp404d(tmp_path, "convert", str(inbox), "--config", str(config))
    bad = sp404d(tmp_path, "rebuild", "--to", str(inbox / "card"), "--config", str(config),
                 code=2)  # fmt: skip
    assert "inside the inbox" in bad.stderr and not (inbox / "card").exists()


def test_status_into_a_pipe_closed_early_is_no_error(tmp_path: Path) -> None:
    """``sp404d status --limit 0 | head``: the reader goes away mid-stream; no traceback."""
    from sp404d.journal.journal import Journal

    journal = tmp_path / "j.jsonl"
    with Journal(journal) as j:
        j.db.insert_multiple(
            {"source": f"/in/s{i}.wav", "status": "done", "output": f"/out/s{i}.wav",
             "finished_at": "2026-12-03T10:00:00.000Z"} for i in range(3000)
        )  # fmt: skip
    proc = subprocess.run(
        f"{' '.join(SP404D)} status --journal {journal} --limit 0 | head -1",
        shell=True, capture_output=True, text=True, env=run_env(tmp_path / "home"),
    )  # fmt: skip
    assert proc.stdout.startswith("journal ") and proc.stderr == ""
