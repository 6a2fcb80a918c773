"""`sp404d run` as a real subprocess with a real observer on tmp_path.

Each test drops files the way musicians' tools do (slow writes, sync-client renames, moves,
junk) and waits, with deadlines, for what should follow.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sp404d.pipeline.outbox import CARD_MARKER, TEMP_RE
from tests.conftest import write_audio
from tests.daemon_harness import (
    BARRIER,
    DaemonFactory,
    DaemonProc,
    last_finished,
    ours,
    wait_for,
)


def _wav_bytes(tmp_path: Path, seconds: float = 2.0, freq: float = 1000) -> bytes:
    p = write_audio(tmp_path / "scratch" / f"{freq}.wav", 44100, seconds=seconds, freq=freq)
    data = p.read_bytes()
    p.unlink()
    return data


class TestArrivals:
    def test_slow_write_is_converted_once_after_it_is_complete(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """Written in chunks with pauses longer than the settle time: converted once, on close.

        A recorder that stops for a breath keeps its file open; size and mtime stand still
        but the take is not finished.
        """
        d = daemon().start()
        data = _wav_bytes(tmp_path)
        target = d.inbox / "slow.wav"
        with target.open("wb") as f:
            for i in range(0, len(data), len(data) // 4):
                f.write(data[i : i + len(data) // 4])
                f.flush()
                time.sleep(0.8)  # settle_seconds is 0.3
            assert d.records() == [], "converted while still open for writing"
        (rec,) = d.wait_done(1)
        assert rec["input"]["frames"] == 88200
        d.wait_idle(since=rec["finished_at"])  # every event of the take handled, nothing left
        assert len(d.records()) == 1
        assert sf.info(str(d.outbox / "slow.wav")).frames == 96000

    def test_a_close_by_another_handle_does_not_end_the_take(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """A second program opening and closing the file (a tagger, a sync client) while the
        recorder still writes: the close event alone must not make it complete."""
        d = daemon().start()
        data = _wav_bytes(tmp_path)
        target = d.inbox / "take.wav"
        half = len(data) // 2
        with target.open("wb") as recorder:
            recorder.write(data[:half])
            recorder.flush()
            with target.open("ab"):
                pass  # IN_CLOSE_WRITE from the other handle
            barrier = d.barrier()  # that close event has been handled...
            # ...and the take is still held as arriving (queue 1), not planned or converting.
            d.wait_state("the take held", since=barrier["finished_at"], queue=1, running=0)
            assert ours(d.records()) == [], "converted while the recorder still had it open"
            recorder.write(data[half:])
        (rec,) = d.wait_done(1)
        assert rec["input"]["frames"] == 88200

    def test_syncthing_temp_then_rename(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """Syncthing writes .syncthing.NAME.tmp and renames it: only the final name is converted."""
        d = daemon().start()
        tmp = d.inbox / ".syncthing.loop.wav.tmp"
        tmp.write_bytes(_wav_bytes(tmp_path))
        d.wait_idle(since=d.barrier()["finished_at"])  # the temp file's events handled
        assert ours(d.records()) == [], "the temp file was taken"
        tmp.rename(d.inbox / "loop.wav")
        (rec,) = d.wait_done(1)
        assert rec["source"].endswith("/loop.wav")
        d.wait_idle(since=rec["finished_at"])
        assert [Path(r["source"]).name for r in ours(d.records())] == ["loop.wav"]

    def test_file_moved_in_from_outside(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """A file moved in from outside the inbox (no close event) is converted after settling."""
        d = daemon().start()
        outside = write_audio(tmp_path / "elsewhere" / "hat.wav", 48000, subtype="PCM_24")
        os.rename(outside, d.inbox / "hat.wav")
        d.wait_done(1)
        assert d.outputs() == ["hat.wav"]

    def test_folder_moved_in(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """A whole folder moved in at once: every file inside is found."""
        d = daemon().start()
        kit = tmp_path / "kit"
        for i in range(3):
            write_audio(kit / f"s{i}.wav", 44100, freq=300 + i * 100)
        os.rename(kit, d.inbox / "kit")
        d.wait_done(3)

    def test_kit_folder_dropped_at_once_gets_pads_in_name_order(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """Files arriving together are planned together: explicit pads first, then name order."""
        d = daemon(layout="kit").start()
        kit = tmp_path / "Boom"
        for i, name in enumerate(["b_snare.wav", "a_kick.wav", "01_hat.wav"]):
            write_audio(kit / name, 44100, freq=300 + 100 * i)
        os.rename(kit, d.inbox / "Boom")
        d.wait_done(3)
        assert d.outputs() == [
            "Boom/bank_A/pad_01_hat.wav",
            "Boom/bank_A/pad_02_a_kick.wav",
            "Boom/bank_A/pad_03_b_snare.wav",
        ]

    def test_temp_and_junk_names_are_ignored(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """Sync temp files, partial downloads and OS junk never become jobs."""
        d = daemon().start()
        data = _wav_bytes(tmp_path, 0.5)
        for name in (
            ".DS_Store",
            "._kick.wav",
            "kick.wav.part",
            "kick.wav.crdownload",
            "Thumbs.db",
            "~syncthing~kick.wav.tmp",
            ".kick.wav.ABC123",
        ):
            (d.inbox / name).write_bytes(data)
        write_audio(d.inbox / "real.wav", 44100)
        d.wait_idle(since=last_finished(d.wait_done(1)))  # the junk came first: handled by now
        assert [Path(r["source"]).name for r in d.records()] == ["real.wav"]

    def test_two_hundred_files_at_once(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """A 200-file drop: every file converted exactly once."""
        d = daemon().start()
        stage = tmp_path / "stage"
        stage.mkdir()
        rng = np.random.default_rng(3)
        for i in range(200):
            sf.write(str(stage / f"hit{i:03d}.wav"), rng.uniform(-0.3, 0.3, (6000, 1)), 44100)
        for p in sorted(stage.iterdir()):
            shutil.copy(p, d.inbox / p.name)
        done = d.wait_done(200, timeout=90)
        d.wait_idle(since=last_finished(done))  # no second job for any of them under way
        assert len(d.records()) == 200
        assert len({r["source"] for r in done}) == 200
        assert len(d.outputs()) == 200

    def test_files_added_while_stopped_are_converted_at_start(self, daemon: DaemonFactory) -> None:
        """Start-up rescans the inbox against the journal."""
        d = daemon()
        write_audio(d.inbox / "early.wav", 44100)
        d.start()
        d.wait_done(1)
        d.stop()
        write_audio(d.inbox / "while_down.wav", 44100, freq=500)
        d.start()
        d.wait_done(2)
        assert d.outputs() == ["early.wav", "while_down.wav"]

    def test_identical_redrop_is_not_converted_twice(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """Duplicate events and a re-dropped identical file give one conversion."""
        d = daemon().start()
        data = _wav_bytes(tmp_path, 0.5)
        (d.inbox / "kick.wav").write_bytes(data)
        d.wait_done(1)
        (d.inbox / "kick.wav").unlink()
        (d.inbox / "kick.wav").write_bytes(data)
        wait_for(lambda: len(d.records()) >= 2, "the re-drop to be journaled")
        assert [r["status"] for r in d.records()] == ["done", "skipped"]
        assert d.outputs() == ["kick.wav"]


class TestSidecars:
    def test_late_sidecar_redoes_the_file_and_replaces_only_its_output(
        self, daemon: DaemonFactory
    ) -> None:
        """Audio first, sidecar later: the file is redone into its genre; the old output goes."""
        d = daemon(layout="genre").start()
        (d.outbox / "unknown_genre").mkdir(parents=True)
        bystander = write_audio(d.outbox / "unknown_genre" / "user_file.wav", 48000)
        write_audio(d.inbox / "kick.wav", 44100)
        d.wait_done(1)
        assert "unknown_genre/kick.wav" in d.outputs()
        (d.inbox / "kick.wav.yaml").write_text("genre: house\n")
        d.wait_done(2)
        assert d.outputs() == ["house/kick.wav", "unknown_genre/user_file.wav"]
        assert bystander.exists()

    def test_changed_sidecar_redoes_the_file(self, daemon: DaemonFactory) -> None:
        """Editing a sidecar again re-does its file again."""
        d = daemon(layout="bpm").start()
        write_audio(d.inbox / "loop.wav", 44100)
        (d.inbox / "loop.wav.yaml").write_text("bpm: 92\n")
        wait_for(lambda: "90-110/92bpm_loop.wav" in d.outputs(), "the first conversion")
        time.sleep(0.05)
        (d.inbox / "loop.wav.yaml").write_text("bpm: 140\n")
        wait_for(lambda: d.outputs() == ["130-150/140bpm_loop.wav"], "the redo after the edit")

    def test_metadata_changed_while_stopped_is_applied_at_start(
        self, daemon: DaemonFactory
    ) -> None:
        """A folder file added while sp404d was down re-does the files below it at start."""
        d = daemon(layout="genre")
        write_audio(d.inbox / "sub" / "kick.wav", 44100)
        d.start()
        d.wait_done(1)
        d.stop()
        (d.inbox / "sub" / "sp404.yaml").write_text("genre: boombap\n")
        os.utime(d.inbox / "sub" / "sp404.yaml", (1e9, 1e9))  # synced with an old mtime
        d.start()
        wait_for(lambda: d.outputs() == ["boombap/kick.wav"], "the redo at start")

    def test_resaved_unchanged_sidecar_changes_nothing(self, daemon: DaemonFactory) -> None:
        """A sync client rewriting a sidecar byte for byte causes no new job."""
        d = daemon(layout="kit").start()
        write_audio(d.inbox / "K" / "a.wav", 44100, freq=300)
        write_audio(d.inbox / "K" / "b.wav", 44100, freq=400)
        d.wait_done(2)
        (d.inbox / "K" / "a.wav.yaml").write_text("")
        write_audio(d.inbox / "K" / "c.wav", 44100, freq=500)
        d.wait_idle(since=last_finished(d.wait_done(3)))  # the sidecar came first: handled
        assert len(d.records()) == 3
        assert d.outputs() == [
            "K/bank_A/pad_01_a.wav",
            "K/bank_A/pad_02_b.wav",
            "K/bank_A/pad_03_c.wav",
        ]


class TestRefusals:
    def test_rejected_file_gets_an_error_note_that_goes_once_fixed(
        self, daemon: DaemonFactory
    ) -> None:
        """The reason is written beside the file; fixing the file removes it."""
        d = daemon().start()
        bad = d.inbox / "tiny.wav"
        write_audio(bad, 44100, seconds=0.05)
        note = d.inbox / "tiny.wav.error.txt"
        wait_for(note.exists, "the error note")
        assert "too short: 50 ms, minimum 100 ms" in note.read_text()
        rec = d.by_status("rejected")[0]
        assert rec["reason"] == "too short: 50 ms, minimum 100 ms"
        assert d.events("job")[0]["reason"] == rec["reason"]
        write_audio(bad, 44100, seconds=0.5)
        d.wait_done(1)
        wait_for(lambda: not note.exists(), "the note to go")

    def test_bad_input_never_stops_the_daemon(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """Garbage, empty-then-filled, and a hostile sidecar: the daemon carries on."""
        d = daemon().start()
        (d.inbox / "garbage.wav").write_bytes(os.urandom(5000))
        write_audio(d.inbox / "evil.wav", 44100)
        (d.inbox / "evil.wav.yaml").write_text("!!python/object/apply:os.system ['touch pwned']\n")
        write_audio(d.inbox / "fine.wav", 44100, freq=600)
        wait_for(lambda: len(d.by_status("rejected")) >= 2, "two rejections")
        d.wait_done(1)
        assert d.proc is not None and d.proc.poll() is None
        assert not (tmp_path / "pwned").exists()


def _away_barrier(d: DaemonProc, tmp_path: Path, queued: int) -> None:
    """Wait until the daemon, with its outbox away, holds every file dropped so far and one
    more, and runs nothing.

    With the outbox away nothing is planned, so there is no record to wait for. A folder moved
    in is the barrier instead: a folder event makes the daemon write its state, and the file
    inside counts in the queue, so a state with ``queued + 1`` queued was written after the
    daemon handled every earlier event and found the outbox away when it tried to dispatch.
    """
    stage = tmp_path / "barrier"
    stage.mkdir()
    (stage / BARRIER).write_bytes(b"a barrier, not audio\n" * 16)
    os.rename(stage, d.inbox / "barrier")
    d.wait_state("the files held", outbox_state="away", queue=queued + 1, running=0)


def _card_daemon(daemon: DaemonFactory, tmp_path: Path) -> tuple[Path, DaemonProc]:
    """A daemon whose outbox is IMPORT/ on a "card": a folder marked with .sp404d-card."""
    card = tmp_path / "card"
    (card / "IMPORT").mkdir(parents=True)
    (card / CARD_MARKER).touch()
    d = daemon(outbox=str(card / "IMPORT"), outbox_removable=True)
    d.outbox = card / "IMPORT"
    return card, d.start()


class TestOutbox:
    def test_card_pulled_and_returned_mid_batch(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """While the card is away nothing is written; everything is done once it returns."""
        card, d = _card_daemon(daemon, tmp_path)
        write_audio(d.inbox / "first.wav", 44100)
        d.wait_done(1)
        pulled = tmp_path / "pulled"
        card.rename(pulled)  # the card is gone; its mount point holds nothing
        for i in range(5):
            write_audio(d.inbox / f"while_away_{i}.wav", 44100, freq=300 + 50 * i)
        wait_for(lambda: d.events("outbox_away"), "the daemon to notice the card is away")
        _away_barrier(d, tmp_path, queued=5)
        assert not card.exists(), "sp404d created the outbox of a removable card"
        assert len(d.by_status("done")) == 1
        pulled.rename(card)
        d.wait_done(6)
        assert d.events("outbox_back")
        assert sorted(p.name for p in (card / "IMPORT").iterdir()) == sorted(
            ["first.wav"] + [f"while_away_{i}.wav" for i in range(5)]
        )

    def test_card_pulled_during_a_write(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """Pulled while a file is being written: no partial file, never `done`, redone after."""
        card, d = _card_daemon(daemon, tmp_path)
        big = tmp_path / "stage" / "long take.wav"
        big.parent.mkdir()
        rng = np.random.default_rng(9)
        sf.write(str(big), rng.uniform(-0.3, 0.3, (96000 * 120, 2)), 96000, subtype="PCM_24")
        os.rename(big, d.inbox / "long take.wav")
        wait_for(
            lambda: any(TEMP_RE.match(p.name) for p in (card / "IMPORT").iterdir()),
            "the write to start",
            timeout=30,
        )
        pulled = tmp_path / "pulled"
        card.rename(pulled)
        wait_for(lambda: d.by_status("failed") or d.events("outbox_away"), "the failure")
        assert d.by_status("done") == []
        pulled.rename(card)
        d.wait_done(1, timeout=60)
        wait_for(
            lambda: not any(TEMP_RE.match(p.name) for p in (card / "IMPORT").iterdir()),
            "the temp file of the pulled write to be cleaned",
        )
        assert [p.name for p in (card / "IMPORT").iterdir()] == ["long_take.wav"]
        assert sf.info(str(card / "IMPORT" / "long_take.wav")).frames == 48000 * 120

    def test_unmounted_card_is_never_written_on_the_system_disk(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """An outbox folder on the system disk without the card marker is not a card."""
        bare = tmp_path / "media" / "SD" / "IMPORT"
        bare.mkdir(parents=True)
        d = daemon(outbox=str(bare), outbox_removable=True)
        d.start()
        write_audio(d.inbox / "kick.wav", 44100)
        wait_for(lambda: d.events("outbox_away"), "the outbox to be reported away")
        _away_barrier(d, tmp_path, queued=1)
        assert list(bare.iterdir()) == []
        assert d.records() == []


class TestLifecycle:
    def test_sigterm_mid_batch_then_restart(self, daemon: DaemonFactory, tmp_path: Path) -> None:
        """Stop during a batch, start again: every file done exactly once."""
        d = daemon().start()
        rng = np.random.default_rng(5)
        for i in range(40):
            sf.write(
                str(d.inbox / f"t{i:02d}.wav"),
                rng.uniform(-0.3, 0.3, (96000, 2)),
                96000,
                subtype="PCM_24",
            )
        wait_for(lambda: len(d.records()) >= 3, "the batch to be under way")
        assert d.stop(signal.SIGTERM) == 0
        assert d.events("stopped")
        d.start()
        done = d.wait_done(40, timeout=90)
        assert len({r["source"] for r in done}) == 40 == len(done)
        assert len(d.outputs()) == 40

    @pytest.mark.parametrize("layout", ["flat", "kit"])
    def test_sigkill_at_several_points_then_restart(
        self, daemon: DaemonFactory, tmp_path: Path, layout: str
    ) -> None:
        """Killed three times mid-batch: nothing lost, nothing doubled, no partial file."""
        d = daemon(layout=layout)
        d.inbox.mkdir(exist_ok=True)
        rng = np.random.default_rng(6)
        for i in range(60):
            sf.write(
                str(d.inbox / f"k{i:02d}.wav"),
                rng.uniform(-0.3, 0.3, (96000, 2)),
                96000,
                subtype="PCM_24",
            )
        for target in (2, 15, 30):
            d.start(wait=False)

            def reached(t: int = target) -> bool:
                return len(d.records()) >= t or d.exited()

            wait_for(reached, f"{target} records")
            d.kill()
        d.start()
        d.wait_done(60, timeout=90)
        files = [p for p in d.outbox.rglob("*") if p.is_file()]
        assert not [p for p in files if TEMP_RE.match(p.name)]
        assert len(files) == 60
        for p in files:
            assert sf.info(str(p)).frames == 48000
        sources = [r["source"] for r in d.by_status("done")]
        assert len(sources) == len(set(sources)) == 60
        if layout == "kit":  # 60 samples on 60 distinct pads, in name order
            assert [p.name[:6] for p in sorted(files)] == [
                f"pad_{n:02d}" for n in range(1, 17)
            ] * 3 + [f"pad_{n:02d}" for n in range(1, 13)]

    def test_sigint_stops_cleanly(self, daemon: DaemonFactory) -> None:
        """Ctrl-C in a terminal: a clean stop, state file removed, exit code 0."""
        d = daemon().start()
        write_audio(d.inbox / "one.wav", 44100)
        d.wait_done(1)
        assert d.stop(signal.SIGINT) == 0
        assert d.events("stopped")
        assert not (d.journal.parent / (d.journal.name + ".state.json")).exists()

    def test_polling_mode_for_folders_without_events(self, daemon: DaemonFactory) -> None:
        """polling: true (network and FUSE inboxes) finds files without OS events."""
        d = daemon(polling=True, poll_interval=0.2).start()
        write_audio(d.inbox / "nfs.wav", 44100)
        d.wait_done(1)
        assert d.events("start")[0]["mode"] == "polling"

    def test_dead_workers_are_replaced(self, daemon: DaemonFactory) -> None:
        """Workers killed from outside (the OOM killer, say): the next file still converts."""
        d = daemon().start()
        write_audio(d.inbox / "one.wav", 44100)
        d.wait_done(1)
        assert d.proc is not None
        workers = _grandchildren(d.proc.pid)
        assert workers, "no worker processes found"
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):  # a helper process that ended
                os.kill(pid, signal.SIGKILL)
        write_audio(d.inbox / "two.wav", 44100, freq=500)
        d.wait_done(2)
        assert d.proc.poll() is None
        assert not d.events("internal_error"), "recovered only by the last-resort guard"

    def test_a_stuck_file_times_out_alone_and_its_chunk_mates_still_convert(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """job_timeout: a file that takes too long is stopped and recorded with the reason; the
        files that travelled in the same chunk run again one by one and convert; no partial
        file stays in the outbox."""
        d = daemon(job_timeout=0.3)
        staging = tmp_path / "staging"
        staging.mkdir()
        # Five minutes of 192 kHz silence: a 0.2 MB FLAC that takes seconds to convert. Named
        # to sort among the hits, so that it shares a worker trip with some of them.
        with sf.SoundFile(str(staging / "c_long.flac"), "w", 192000, 2, subtype="PCM_16") as f:
            for _ in range(30):
                f.write(np.zeros((1_920_000, 2), dtype=np.int16))
        small = [f"{c}_hit.wav" for c in "abcdefghijkl"]
        for i, name in enumerate(small):
            write_audio(staging / name, 44100, freq=200 + 50 * i, seconds=0.3)
        d.start()
        for name in sorted(os.listdir(staging)):
            os.rename(staging / name, d.inbox / name)
        wait_for(lambda: len(d.by_status("done")) == len(small), "the small files", 60)
        (stuck,) = wait_for(lambda: d.by_status("failed"), "the timeout", 60)[:1]
        assert stuck["source"].endswith("c_long.flac")
        assert "job_timeout" in stuck["reason"]
        assert sorted(r["source"].rsplit("/", 1)[1] for r in d.by_status("done")) == small
        assert d.proc is not None and d.proc.poll() is None
        wait_for(
            lambda: not [p for p in d.outbox.rglob("*") if TEMP_RE.match(p.name)],
            "the killed worker's temp file to be cleared",
            30,
        )
        timeouts = d.events("timeout")  # only trips holding the long file ran late
        assert timeouts and all(any("c_long" in s for s in e["sources"]) for e in timeouts)
        assert not d.events("internal_error")

    def test_a_file_that_kills_its_worker_fails_alone(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """A decoder crash takes down every job in flight with it: those run again, each with
        nothing else in the pool, so only the file that kills its worker is recorded as failed
        and the others convert once each. (The crash is injected: no real file crashes
        libsndfile on demand.)"""
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            "import os, time\n"
            "import sp404d.pipeline.job as job\n"
            "real = job.probe\n"
            "def probe(path):\n"
            "    time.sleep(0.1)  # every job in flight for a while\n"
            "    if 'crash' in path.name:\n"
            "        os._exit(9)  # as a segfault in a decoder would\n"
            "    return real(path)\n"
            "job.probe = probe\n"
        )
        d = daemon()
        d.env["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
        d.inbox.mkdir(exist_ok=True)
        names = ["a_hit.wav", "b_crash.wav", "c_hit.wav", "d_hit.wav", "e_hit.wav", "f_hit.wav"]
        for i, name in enumerate(names):
            write_audio(d.inbox / name, 44100, freq=200 + 50 * i, seconds=0.3)
            old = time.time() - 60  # found complete by the start-up scan, all together
            os.utime(d.inbox / name, (old, old))
        d.start()
        healthy = [n for n in names if "crash" not in n]
        wait_for(lambda: len(d.by_status("done")) == len(healthy), "the healthy files", 60)
        (failed,) = wait_for(lambda: d.by_status("failed"), "the crash to be recorded", 60)[:1]
        assert failed["source"].endswith("b_crash.wav")
        assert "worker process failed" in failed["reason"]
        done = sorted(r["source"].rsplit("/", 1)[1] for r in d.by_status("done"))
        assert done == healthy
        assert all(r["source"].endswith("b_crash.wav") for r in d.by_status("failed"))
        wait_for(  # a job that shared the dead worker may have left its temp file
            lambda: not [p for p in d.outbox.rglob("*") if TEMP_RE.match(p.name)],
            "the dead worker's temp files to be cleared",
        )
        assert sorted(d.outputs()) == healthy
        assert d.proc is not None and d.proc.poll() is None

    def test_sighup_valid_and_invalid_config(self, daemon: DaemonFactory) -> None:
        """A valid reload applies; an invalid one is refused and the old config kept."""
        d = daemon().start()
        d.write_config(layout="bpm")
        d.send(signal.SIGHUP)
        wait_for(lambda: d.events("reloaded"), "the reload")
        write_audio(d.inbox / "loop 100bpm.wav", 44100)
        d.wait_done(1)
        assert d.outputs() == ["90-110/100bpm_loop.wav"]
        d.write_config(layout="spiral")
        d.send(signal.SIGHUP)
        (refused,) = wait_for(lambda: d.events("reload_refused"), "the refusal")
        assert "layout" in refused["error"]
        write_audio(d.inbox / "beat 120bpm.wav", 44100, freq=500)
        d.wait_done(2)
        assert "110-130/120bpm_beat.wav" in d.outputs()

    def test_invalid_config_at_start_exits_non_zero_naming_the_key(
        self, daemon: DaemonFactory
    ) -> None:
        """A bad config stops start-up with a message naming the key."""
        d = daemon(format="mp3")
        d.start(wait=False)
        assert d.proc is not None
        assert d.proc.wait(timeout=30) == 2
        assert "format" in d.log_text() and "wav, aiff" in d.log_text()

    def test_systemd_notify_protocol(
        self, daemon: DaemonFactory, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """READY, STATUS, WATCHDOG, RELOADING and STOPPING reach $NOTIFY_SOCKET."""
        sock_path = tmp_path_factory.mktemp("n") / "notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock.settimeout(0.1)
        d = daemon()
        env = dict(d.env, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
        got: list[str] = []

        def received(word: str) -> bool:
            try:
                while True:
                    got.append(sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                pass
            return any(word in g for g in got)

        try:
            d.start(env=env)
            wait_for(lambda: received("READY=1"), "READY=1")
            wait_for(lambda: received("WATCHDOG=1"), "WATCHDOG=1")
            d.send(signal.SIGHUP)
            wait_for(lambda: received("RELOADING=1"), "RELOADING=1")
            assert any("MONOTONIC_USEC=" in g for g in got)
            d.stop()
            wait_for(lambda: received("STOPPING=1"), "STOPPING=1")
            assert any("STATUS=" in g for g in got)
        finally:
            sock.close()


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids += [int(k) for k in text]
    return kids


def _grandchildren(pid: int) -> list[int]:
    """The pool's workers: children of the forkserver, itself a child of the daemon."""
    return [g for c in _children(pid) for g in _children(c)]


class TestSourceDisposition:
    @pytest.mark.parametrize("on_done", ["keep", "move", "delete"])
    def test_keep_move_delete(self, daemon: DaemonFactory, tmp_path: Path, on_done: str) -> None:
        """After a done job the source is kept, archived or deleted, as configured."""
        archive = tmp_path / "archive"
        d = daemon(on_done=on_done, archive=str(archive)).start()
        src = write_audio(d.inbox / "sub" / "kick.wav", 44100)
        (rec,) = d.wait_done(1)
        d.wait_idle(since=rec["finished_at"])  # the source is handled in the record's turn
        assert src.exists() == (on_done == "keep")
        assert (archive / "sub" / "kick.wav").exists() == (on_done == "move")
        assert d.outputs() == ["kick.wav"]

    def test_a_moved_source_takes_its_sidecars_along(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        """``kick.wav.yaml`` goes with kick.wav (renamed with it if the archive has a kick.wav
        already); ``snare.yaml``, read by snare.wav and snare.aif, goes with the last of them."""
        archive = tmp_path / "archive"
        write_audio(archive / "sub" / "kick.wav", 44100)  # an earlier kick, archived
        d = daemon(on_done="move", archive=str(archive)).start()
        sub = d.inbox / "sub"
        sub.mkdir()
        (sub / "kick.wav.yaml").write_text("title: Big Kick\n")
        (sub / "snare.yaml").write_text("genre: lofi\n")
        staged = tmp_path / "staged"
        for name in ("kick.wav", "snare.wav", "snare.aif"):
            write_audio(staged / name, 44100, format="AIFF" if name.endswith(".aif") else None)
            (staged / name).rename(sub / name)
        done = d.wait_done(3)
        d.wait_idle(since=max(r["finished_at"] for r in done))
        assert sorted(p.name for p in sub.iterdir()) == []
        assert sorted(p.name for p in (archive / "sub").iterdir()) == [
            "kick.wav", "kick_2.wav", "kick_2.wav.yaml", "snare.aif", "snare.wav", "snare.yaml",
        ]  # fmt: skip
        assert (archive / "sub" / "kick_2.wav.yaml").read_text() == "title: Big Kick\n"


def test_status_shows_the_running_daemon(daemon: DaemonFactory) -> None:
    """`status` reports the daemon's pid, queue and outbox state."""
    import json
    import subprocess

    from tests.conftest import SP404D

    d = daemon().start()
    out = subprocess.run(
        [*SP404D, "status", "--journal", str(d.journal), "--json"],
        capture_output=True,
        text=True,
        env=d.env,
        timeout=30,
    )
    data = json.loads(out.stdout)
    assert d.proc is not None and data["daemon"]["pid"] == d.proc.pid
    assert data["daemon"]["outbox_state"] == "ready"
