"""One truth of the card: ``kits``, ``bundle``, ``SP404D.TXT``, ``rebuild``, ``retry`` and
``check`` agree with what is on the card and with what ``convert`` and the daemon do."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml

from sp404d.card.grid import fit
from sp404d.pipeline.outbox import CARD_MARKER
from tests.conftest import SP404D, journal_records, run_env, write_audio
from tests.daemon_harness import DaemonFactory, DaemonProc, wait_for

RATE = 48000


def hits(seconds: float = 2.0, count: int = 4, lead: float = 0.0, stereo: bool = True) -> Any:
    """A loop of ``count`` decaying tones (each its own pitch), ``lead`` s of silence first."""
    n = round(RATE * seconds)
    x = np.zeros(n, np.float32)
    t = np.arange(4000) / RATE
    start = round(lead * RATE)
    step = (n - start) // count
    for i in range(count):
        at = start + i * step
        m = min(len(t), n - at)
        x[at : at + m] = (0.7 * np.sin(2 * np.pi * (180 + 90 * i) * t) * np.exp(-t * 25))[:m]
    return np.stack([x, x], 1) if stereo else x


def clap(seconds: float = 3.0, sound: float = 1.0) -> Any:
    """Stereo: ``sound`` s of a tone in the middle of ``seconds`` of silence."""
    x = np.zeros((round(RATE * seconds), 2), np.float32)
    start = round(RATE * (seconds - sound) / 2)
    t = np.arange(round(RATE * sound)) / RATE
    x[start : start + len(t), 0] = 0.5 * np.sin(2 * np.pi * 440 * t)
    x[start : start + len(t), 1] = 0.5 * np.sin(2 * np.pi * 440 * t)
    return x


class Session:
    """An inbox, a card (``card/IMPORT``, marked as a card) and a config naming them."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.dir = tmp_path
        self.inbox = tmp_path / "in"
        self.inbox.mkdir(parents=True)
        self.card = tmp_path / "card"
        self.outbox = self.card / "IMPORT"
        self.outbox.mkdir(parents=True)
        (self.card / CARD_MARKER).touch()
        self.journal = tmp_path / "j.jsonl"
        self.config = tmp_path / "c.yaml"
        self.settings: dict[str, Any] = {
            "inbox": str(self.inbox),
            "outbox": str(self.outbox),
            "outbox_removable": True,
            "journal": str(self.journal),
            **settings,
        }
        self.write_config()

    def write_config(self, **changes: Any) -> None:
        self.settings.update(changes)
        self.config.write_text(yaml.safe_dump(self.settings))

    def run(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*SP404D, *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=run_env(self.dir / "home"),
            timeout=120,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        if code is not None:
            assert proc.returncode == code, proc.stdout + proc.stderr
        return proc

    def convert(self, *paths: Path, code: int | None = 0) -> str:
        return self.run("convert", *(str(p) for p in paths or (self.inbox,)), code=code).stdout

    def write(self, rel: str, x: Any, sidecar: dict[str, Any] | None = None) -> Path:
        path = self.inbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x, RATE, subtype="PCM_24")
        if sidecar is not None:
            Path(f"{path}.yaml").write_text(yaml.safe_dump(sidecar))
        return path

    def files(self, top: Path | None = None) -> list[str]:
        top = top or self.outbox
        return sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())

    def kits(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("kits", "--json", *args).stdout)  # type: ignore[no-any-return]


@pytest.fixture
def s(tmp_path: Path) -> Session:
    return Session(tmp_path, layout="kit")


def pads(kits: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"dusty A01": pad, ...}`` from ``kits --json``."""
    return {
        f"{k['name']} {p['bank']}{p['pad']:02d}": p
        for k in kits["kits"]
        for bank in k["banks"].values()
        for p in bank
    }


class TestRebuild:
    def test_a_repair_keeps_what_a_sidecar_and_a_folder_file_shaped(self, s: Session) -> None:
        """Trim and mono from a sidecar, normalise from a folder file: a repair in place leaves
        the good files as they are (a 0.23 s mono clap stayed one, not 0.63 s of raw stereo),
        and a rebuild into a new folder makes them byte for byte."""
        s.write("dusty/01 clap.wav", clap(), {"trim": {"threshold_db": -50}, "channels": "mono"})
        (s.inbox / "dusty" / "sp404.yaml").write_text("normalize: peak -1\n")
        s.write("dusty/02 loop.wav", hits())
        s.convert()
        card = {f: (s.outbox / f).read_bytes() for f in s.files()}
        clap_out = s.outbox / "dusty" / "bank_A" / "pad_01_clap.wav"
        assert sf.info(str(clap_out)).channels == 1 and sf.info(str(clap_out)).duration < 1.1
        out = s.run("rebuild").stdout
        assert out.count("ok (identical)") == 2 and "rewritten" not in out
        assert {f: (s.outbox / f).read_bytes() for f in s.files()} == card
        new = s.dir / "new" / "IMPORT"
        new.parent.mkdir()
        s.run("rebuild", "--to", str(new))
        assert {f: (new / f).read_bytes() for f in s.files(new)} == card

    def test_the_settings_each_job_was_made_with_not_todays(self, s: Session) -> None:
        s.write_config(normalize="peak -1", format="aiff")
        s.write("dusty/kick.wav", hits(1.0, 1))
        s.convert()
        card = {f: (s.outbox / f).read_bytes() for f in s.files()}
        assert list(card) == ["dusty/bank_A/pad_01_kick.aif"]
        s.write_config(normalize=None, format="wav")
        new = s.dir / "new"
        s.run("rebuild", "--to", str(new))
        assert {f: (new / f).read_bytes() for f in s.files(new)} == card

    def test_one_outbox_only_and_a_dry_run_that_compares(self, s: Session) -> None:
        """A library converted elsewhere is not poured onto the card; a dry run says what is
        missing, what differs and what is there."""
        for name in ("a", "b", "c"):
            s.write(f"dusty/{name}.wav", hits(1.0, 1 + "abc".index(name)))
        s.convert()
        s.write("lib/d.wav", hits(1.0, 2))
        other = s.dir / "library"
        s.run("convert", str(s.inbox / "lib"), "--outbox", str(other), "--layout", "flat")
        bank = s.outbox / "dusty" / "bank_A"
        (bank / "pad_01_a.wav").unlink()
        damaged = bank / "pad_02_b.wav"
        damaged.write_bytes(damaged.read_bytes()[:1000])
        dry = s.run("rebuild", "--dry-run").stdout
        assert "would write  dusty/bank_A/pad_01_a.wav" in dry
        assert "would rewrite: 1000 bytes on the card" in dry
        assert "present (would be compared" in dry and "d.wav" not in dry
        assert "3 of 3 outputs would be made or checked" in dry
        assert not (bank / "pad_01_a.wav").exists()
        out = s.run("rebuild").stdout
        assert (
            "written  dusty/bank_A/pad_01_a.wav" in out and "rewritten  dusty/bank_A/pad_02" in out
        )
        assert s.files() == [
            f"dusty/bank_A/pad_0{i}_{n}.wav" for i, n in ((1, "a"), (2, "b"), (3, "c"))
        ]
        lib = s.run("rebuild", "--outbox", str(other), "--dry-run").stdout
        assert "d.wav" in lib and "dusty" not in lib
        assert "ok (identical)" in s.run("rebuild", "--kit", "DUSTY").stdout
        assert "no samples of kit 'nope'" in s.run("rebuild", "--kit", "nope").stdout

    def test_a_wrong_place_is_one_line(self, s: Session) -> None:
        s.write("kick.wav", hits(1.0, 1))
        s.convert()
        wrong = s.run("rebuild", "--to", str(s.dir / "no" / "such" / "IMPORT"), code=2)
        assert wrong.stdout == "" and len(wrong.stderr.splitlines()) == 1
        assert "does not exist" in wrong.stderr
        (s.card / CARD_MARKER).unlink()  # the card pulled: not a thousand failed lines
        away = s.run("rebuild", code=2)
        assert len(away.stderr.splitlines()) == 1 and "not a mounted card" in away.stderr


def test_convert_into_a_second_outbox_writes_it_there(s: Session) -> None:
    """The same content converted before into another outbox is no reason to skip: a second
    card gets its own copy, and the first card's file is left alone."""
    s.write("kick.wav", hits(1.0, 1))
    s.convert()
    first = s.files()
    second = s.dir / "backup"
    out = s.run("convert", str(s.inbox), "--outbox", str(second), "--layout", "flat").stdout
    assert out.splitlines()[0].endswith("1 done")
    assert s.files(second) == ["kick.wav"] and s.files() == first
    again = s.run("convert", str(s.inbox), "--outbox", str(second), "--layout", "flat").stdout
    assert again.splitlines()[0].endswith("1 skipped")
    s.convert()
    assert s.files() == first


class TestRetry:
    def test_a_file_goes_back_to_the_outbox_of_its_job(self, tmp_path: Path) -> None:
        s = Session(tmp_path)
        s.write("tiny.wav", hits(0.05, 1))
        elsewhere = tmp_path / "elsewhere"
        s.run("convert", str(s.inbox), "--outbox", str(elsewhere), code=1)
        s.write_config(short_files="pad")
        out = s.run("retry", "--rejected").stdout
        assert "1 file retried: 1 done" in out
        assert s.files(elsewhere) == ["tiny.wav"] and s.files() == []

    def test_the_daemon_is_handed_only_the_files_it_takes(
        self, daemon: DaemonFactory, tmp_path: Path
    ) -> None:
        d = daemon().start()
        (d.inbox / "junk.wav").write_bytes(b"not audio" * 40)
        wait_for(lambda: d.by_status("rejected"), "the daemon's refusal")
        other = tmp_path / "other"
        write_audio(other / "tiny.wav", 44100, seconds=0.03)
        subprocess.run(
            [*SP404D, "convert", str(other), "--config", str(d.config)],
            env=d.env,
            capture_output=True,
            check=False,
        )
        proc = subprocess.run(
            [*SP404D, "retry", "--config", str(d.config)],
            env=d.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert "1 file handed to the running daemon" in proc.stdout, proc.stdout + proc.stderr
        assert "1 file retried: 1 rejected" in proc.stdout
        wait_for(lambda: d.events("retry"), "the daemon's retry")
        assert d.events("retry")[0]["files"] == 1


class TestCheckAgrees:
    def test_an_inboxs_own_settings_hold_for_convert_and_check(self, tmp_path: Path) -> None:
        s = Session(tmp_path)
        kits = tmp_path / "kits"
        del s.settings["inbox"]
        s.write_config(inboxes=[str(s.inbox), {"path": str(kits), "layout": "kit",
                       "chop": 2, "normalize": "peak -1"}])  # fmt: skip
        loop = kits / "dusty" / "loop.wav"
        loop.parent.mkdir(parents=True)
        sf.write(str(loop), hits(), RATE, subtype="PCM_24")
        said = s.run("check", str(loop)).stdout
        assert (
            f"-> {s.outbox / 'dusty' / 'bank_A' / 'pad_01_loop_01.wav'} .. pad_02_loop_02.wav"
            in said
        )
        assert "then: normalise to -1 dBTP, chop into 2 equal slices" in said
        s.convert(loop)
        assert s.files() == ["dusty/bank_A/pad_01_loop_01.wav", "dusty/bank_A/pad_02_loop_02.wav"]

    def test_a_file_in_a_kit_folder_is_planned_in_its_kit(self, s: Session) -> None:
        s.write("dusty/01 kick.wav", hits(1.0, 1))
        s.write("dusty/02 snare.wav", hits(1.0, 2))
        said = s.run("check", str(s.inbox / "dusty" / "02 snare.wav")).stdout
        assert f"-> {s.outbox / 'dusty' / 'bank_A' / 'pad_02_snare.wav'}" in said

    def test_kit_folders_given_to_convert_stay_kits(self, tmp_path: Path) -> None:
        s = Session(tmp_path)
        packs = tmp_path / "packs"
        for kit in ("dusty", "boom"):
            write_audio(packs / kit / "kick.wav", 48000)
        s.run("convert", str(packs / "dusty"), str(packs / "boom"), "--layout", "kit")
        assert s.files() == ["boom/bank_A/pad_01_kick.wav", "dusty/bank_A/pad_01_kick.wav"]

    def test_check_refuses_a_chop_the_job_would_refuse_with_a_hint_that_helps(
        self, s: Session
    ) -> None:
        s.write("long.wav", np.zeros((RATE * 50, 2), np.float32) + 0.1, {"chop": 4})
        said = s.run("check", str(s.inbox / "long.wav"), code=1).stdout
        assert "refused: too long to chop: 50.0 s; chop takes files up to 43 s" in said
        s.convert(code=1)
        status = s.run("status").stdout
        assert "chop takes loops up to 43 s" in status and "max_duration_s" not in status


class TestKits:
    def test_pads_show_their_length_as_written_and_slices_keep_their_number(
        self, s: Session
    ) -> None:
        s.write_config(short_files="pad")
        s.write("dusty/01 clap.wav", clap(3.0, 1.0), {"trim": {"threshold_db": -50}})
        s.write("dusty/02 tick.wav", hits(0.05, 1))
        s.write("dusty/loop industrial.wav", hits(2.0, 4), {"chop": 4})
        s.convert()
        found = pads(s.kits())
        assert abs(found["dusty A01"]["length_s"] - 1.0) < 0.02  # the source: 3 s
        assert found["dusty A02"]["length_s"] == 0.1  # padded: the source is 0.05 s
        assert found["dusty A03"]["length_s"] == 0.5  # one slice of four, not the loop's 2 s
        grid = s.run("kits", "dusty").stdout
        assert "3 loop_indus_01" in grid and "6 loop_indus_04" in grid
        assert fit("loop_industrial_01", 13) == "loop_indus_01"

    def test_a_refused_redo_leaves_the_sample_and_everything_says_so(self, s: Session) -> None:
        kick = s.write("dusty/01 kick.wav", hits(1.0, 1))
        s.write("dusty/02 snare.wav", hits(1.0, 2))
        s.convert()
        kick.write_bytes(b"a broken download" * 10)
        assert "1 rejected" in s.convert(code=1)
        assert "dusty/bank_A/pad_01_kick.wav" in s.files()
        assert "dusty A01" in pads(s.kits())
        manifest = (s.card / "SP404D.TXT").read_text()
        assert f"IMPORT/dusty/bank_A/pad_01_kick.wav  <-  {kick}" in manifest
        s.run("bundle", "dusty", "-o", str(s.dir / "d.zip"))
        with zipfile.ZipFile(s.dir / "d.zip") as zf:
            assert "bank_A/pad_01_kick.wav" in zf.namelist()
        history = s.run("status", "--source", str(kick)).stdout
        assert history.endswith(
            f"its samples now:\n  {s.outbox / 'dusty/bank_A/pad_01_kick.wav'}\n"
        )
        data = json.loads(s.run("status", "--source", str(kick), "--json").stdout)
        assert data["samples"] == [
            {"path": str(s.outbox / "dusty/bank_A/pad_01_kick.wav"), "present": True}
        ]

    def test_a_refused_file_takes_no_pad(self, s: Session) -> None:
        s.write("dusty/a.wav", hits(1.0, 1))
        (s.inbox / "dusty" / "b.wav").write_text("notes, renamed .wav by mistake\n" * 20)
        s.write("dusty/c.wav", hits(1.0, 2))
        s.convert(code=1)
        assert s.files() == ["dusty/bank_A/pad_01_a.wav", "dusty/bank_A/pad_02_c.wav"]


class TestChopEdges:
    def test_a_short_cbr_mp3_without_a_length_tag_is_chopped(self, s: Session) -> None:
        av = pytest.importorskip("av")
        path = s.inbox / "loop.mp3"
        with av.open(str(path), "w", format="mp3", options={"write_xing": "0"}) as out:
            stream = out.add_stream("libmp3lame", rate=RATE, layout="stereo")
            stream.bit_rate = 192_000
            x = hits(2.0).T.copy()
            for start in range(0, x.shape[1], 1152):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(x[:, start : start + 1152]), format="fltp", layout="stereo"
                )
                frame.sample_rate, frame.pts = RATE, start
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        Path(f"{path}.yaml").write_text("chop: 4\n")
        s.convert()
        assert len(s.files()) == 4

    def test_a_slice_deleted_after_a_skipped_rerun_is_made_again(self, s: Session) -> None:
        s.write("loop.wav", hits(), {"chop": 4})
        s.convert()
        assert "1 skipped" in s.convert()
        made = s.files()
        (s.outbox / made[2]).unlink()
        s.convert()
        assert s.files() == made

    def test_bank_in_the_sidecar_moves_a_chopped_loop(self, s: Session) -> None:
        s.write("loop.wav", hits(), {"chop": 2})
        s.convert()
        Path(f"{s.inbox / 'loop.wav'}.yaml").write_text("chop: 2\nbank: C\n")
        s.convert()
        assert s.files() == [f"kit/bank_C/pad_0{i}_loop_0{i}.wav" for i in (1, 2)]

    def test_with_the_journal_lost_identical_slices_are_taken_back(self, tmp_path: Path) -> None:
        s = Session(tmp_path)
        s.write("loop.wav", hits(), {"chop": 4})
        s.convert()
        made = s.files()
        s.journal.unlink()
        s.convert()
        assert s.files() == made

    def test_a_format_change_keeps_the_new_notes(self, tmp_path: Path) -> None:
        s = Session(tmp_path, write_txt=True)
        s.write("kick.wav", hits(1.0, 1))
        s.write("loop.wav", hits(), {"chop": 2})
        s.convert()
        s.write_config(format="aiff")
        s.convert()
        assert s.files() == [
            "kick.aif", "kick.txt", "loop_01.aif", "loop_01.txt", "loop_02.aif", "loop_02.txt"
        ]  # fmt: skip


def test_config_check_marks_and_spells_every_setting(tmp_path: Path) -> None:
    s = Session(tmp_path, normalize="peak -1", chop="onsets 8", trim={"threshold_db": -50})
    out = s.run("config", "check").stdout
    assert " * normalize: peak -1" in out and " * chop: onsets 8" in out
    assert " * trim: {threshold_db: -50, keep_ms: 5}" in out
    assert "   format: wav" in out and '"' not in out


class TestFolderFiles:
    def test_a_folder_of_a_flat_inbox_may_be_a_kit(self, tmp_path: Path) -> None:
        s = Session(tmp_path)
        s.write("loose.wav", hits(1.0, 1))
        s.write("dusty/kick.wav", hits(1.0, 2))
        (s.inbox / "dusty" / "sp404.yaml").write_text("layout: kit\n")
        s.convert()
        assert s.files() == ["dusty/bank_A/pad_01_kick.wav", "loose.wav"]

    def test_a_kit_under_the_flat_layout_is_refused_saying_why(self, tmp_path: Path) -> None:
        s = Session(tmp_path)
        s.write("dusty/kick.wav", hits(1.0, 2))
        (s.inbox / "dusty" / "sp404.yaml").write_text("kit: dusty\n")
        out = s.convert(code=1)
        assert "kit: dusty in folder file dusty/sp404.yaml, but the layout here is flat" in out


def test_removable_holds_for_the_configured_card_only(s: Session, tmp_path: Path) -> None:
    s.write("kick.wav", hits(1.0, 1))
    plain = tmp_path / "plain"
    s.run("convert", str(s.inbox), "--outbox", str(plain))
    assert s.files(plain) == ["kit/bank_A/pad_01_kick.wav"]
    (s.card / CARD_MARKER).unlink()
    inside = s.run("convert", str(s.inbox), "--outbox", str(s.outbox / "sub"), code=None)
    assert inside.returncode != 0 and not (s.outbox / "sub").exists()
    forced = s.run("convert", str(s.inbox), "--outbox", str(plain), "--removable", code=None)
    assert forced.returncode != 0


def _listed(card: Path) -> list[str]:
    """The samples SP404D.TXT lists, as paths from the card's root."""
    text = (card / "SP404D.TXT").read_text() if (card / "SP404D.TXT").exists() else ""
    return [line.split("  <-  ")[0] for line in text.splitlines()[4:]]


def test_one_session_every_command_agrees(daemon: DaemonFactory, tmp_path: Path) -> None:
    """A musician's session through the daemon: a kit dropped, a loop chopped, shaping by
    sidecar and folder file, a redo refused, a kit folder renamed, the card pulled and back.
    Then the card, the grid, ``kits --json``, the bundle, SP404D.TXT and the journal say the
    same, and a rebuild into a new folder is byte-identical to the card."""
    card = tmp_path / "card"
    (card / "IMPORT").mkdir(parents=True)
    (card / CARD_MARKER).touch()
    d = daemon(outbox=str(card / "IMPORT"), outbox_removable=True, layout="kit").start()
    staged = tmp_path / "staged"
    kit = staged / "dusty"
    kit.mkdir(parents=True)
    sf.write(str(kit / "01 kick.wav"), hits(1.0, 1), RATE, subtype="PCM_24")
    sf.write(str(kit / "02 clap.wav"), clap(), RATE, subtype="PCM_24")
    Path(f"{kit / '02 clap.wav'}.yaml").write_text("trim: {threshold_db: -50}\nchannels: mono\n")
    sf.write(str(kit / "loop.wav"), hits(2.0, 4), RATE, subtype="PCM_24")
    Path(f"{kit / 'loop.wav'}.yaml").write_text("chop: onsets 4\n")
    (kit / "sp404.yaml").write_text("normalize: peak -1\n")
    os.rename(kit, d.inbox / "dusty")
    d.wait_done(6)  # kick, clap, 4 slices
    outbox = card / "IMPORT"
    cli = Session(tmp_path / "cli", **d.settings)  # the daemon's config, for the commands
    cli.config = d.config
    kick = d.inbox / "dusty" / "01 kick.wav"
    good = kick.read_bytes()
    kick.write_bytes(b"a broken download" * 10)  # a redo refused: the old kick stays
    wait_for(lambda: d.by_status("rejected"), "the refused redo")
    assert "dusty A01" in pads(cli.kits())
    wait_for(lambda: "IMPORT/dusty/bank_A/pad_01_kick.wav" in _listed(card), "SP404D.TXT")
    kick.write_bytes(good)  # fixed: the very sample on the card, so nothing to do
    wait_for(lambda: d.by_status("skipped"), "the kick known again")
    (card / CARD_MARKER).unlink()  # the card pulled
    wait_for(lambda: (d.state() or {}).get("outbox_state") == "away", "the card away")
    os.rename(d.inbox / "dusty", d.inbox / "dusty2")  # renamed while the card is out
    (card / CARD_MARKER).touch()  # and back
    moved = outbox / "dusty2" / "bank_A"
    wait_for(lambda: len(list(moved.glob("*.wav"))) == 6, "the kit moved")
    d.wait_idle(d.barrier()["finished_at"])
    on_card = sorted(p.relative_to(outbox).as_posix() for p in outbox.rglob("*.wav"))
    assert len(on_card) == 6 and all(f.startswith("dusty2/bank_A/") for f in on_card), on_card
    assert sf.info(str(outbox / on_card[1])).channels == 1  # the clap: trimmed, mono
    assert not (outbox / "dusty").exists()
    kits = cli.kits()
    assert [k["name"] for k in kits["kits"]] == ["dusty2"]
    grid_files = sorted(
        Path(p["output"]).relative_to(outbox).as_posix() for p in pads(kits).values()
    )

    def listed() -> list[str]:
        return [line.removeprefix("IMPORT/") for line in _listed(card)]

    manifest = wait_for(lambda: listed() == on_card and listed(), "SP404D.TXT to list the card")
    cli.run("bundle", "dusty2", "-o", str(tmp_path / "dusty2.zip"))
    with zipfile.ZipFile(tmp_path / "dusty2.zip") as zf:
        bundled = [f"dusty2/{n}" for n in zf.namelist() if n.endswith(".wav")]
    records = journal_records(d.journal)
    writers = {r["output"]: r for r in records if r["status"] == "done"}
    assert grid_files == manifest == sorted(bundled) == on_card
    assert all(str(outbox / f) in writers for f in on_card)
    lengths = {Path(p["output"]).name: p["length_s"] for p in pads(kits).values()}
    assert lengths == {
        Path(f).name: round(writers[str(outbox / f)]["render"]["duration_s"], 3) for f in on_card
    }
    grid = cli.run("kits", "dusty2").stdout
    assert all(fit(Path(f).stem.split("_", 2)[2], 13) in grid for f in on_card)
    new = tmp_path / "new"
    cli.run("rebuild", "--to", str(new))
    made = sorted(p.relative_to(new).as_posix() for p in new.rglob("*") if p.is_file())
    assert made == sorted(
        p.relative_to(outbox).as_posix() for p in outbox.rglob("*") if p.is_file()
    )
    assert all((new / f).read_bytes() == (outbox / f).read_bytes() for f in made)


def _kit_daemon(daemon: DaemonFactory, **settings: Any) -> DaemonProc:
    return daemon(layout="kit", settle_seconds=0.2, **settings).start()


def _drop(d: DaemonProc, rel: str, x: Any) -> Path:
    """A file dropped whole (written beside the inbox, renamed in), as a sync client does."""
    staged = d.dir / "staged.wav"
    sf.write(str(staged), x, RATE, subtype="PCM_24")
    target = d.inbox / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staged, target)
    return target


class TestMoves:
    """The daemon sees a file moved or renamed in its inbox: its samples go with it. A copy
    (the original still there, or added again after it was deleted) takes nothing; ``convert``
    sees no moves, so a folder renamed while the daemon is down makes a second kit."""

    def test_a_kit_folder_renamed_moves_the_kit_keeping_its_pads(
        self, daemon: DaemonFactory
    ) -> None:
        d = _kit_daemon(daemon)
        for i, name in enumerate(("snare", "tom")):
            _drop(d, f"k1/{name}.wav", hits(1.0, i + 2))
        d.wait_done(2)
        _drop(d, "k1/kick.wav", hits(1.0, 1))  # added later: the third pad
        d.wait_done(3)
        _drop(d, "k1/bank_b/loop.wav", hits())
        Path(f"{d.inbox / 'k1' / 'bank_b' / 'loop.wav'}.yaml").write_text("chop: 2\n")
        d.wait_done(5)
        before = d.outputs()
        assert len(before) == 5 and before[2] == "k1/bank_A/pad_03_kick.wav"
        (d.inbox / "k1").rename(d.inbox / "k2")
        want = [o.replace("k1/", "k2/", 1) for o in before]  # every sample on its pad
        wait_for(lambda: d.outputs() == want, "the kit moved")
        wait_for(lambda: not (d.outbox / "k1").exists(), "the emptied kit folder gone")

    def test_a_copy_or_a_pack_added_again_is_a_second_kit(self, daemon: DaemonFactory) -> None:
        import shutil

        d = _kit_daemon(daemon)
        pack = d.dir / "pack"
        pack.mkdir()
        for i, name in enumerate(("kick", "snare")):
            sf.write(str(pack / f"{name}.wav"), hits(1.0, i + 1), RATE, subtype="PCM_24")
        shutil.copytree(pack, d.dir / "stage1")
        os.rename(d.dir / "stage1", d.inbox / "boombap")
        d.wait_done(2)
        shutil.rmtree(d.inbox / "boombap")  # cleared from the inbox, kept on the card
        shutil.copytree(pack, d.dir / "stage2")  # the same pack again, same mtimes
        os.rename(d.dir / "stage2", d.inbox / "jazz")
        d.wait_done(4)
        shutil.copytree(d.inbox / "jazz", d.dir / "stage3")
        os.rename(d.dir / "stage3", d.inbox / "jazz_copy")  # a copy beside the original
        d.wait_done(6)
        kits = sorted({o.split("/")[0] for o in d.outputs()})
        assert kits == ["boombap", "jazz", "jazz_copy"] and len(d.outputs()) == 6

    def test_a_file_moved_away_and_back(self, daemon: DaemonFactory) -> None:
        d = _kit_daemon(daemon)
        (d.inbox / "k2").mkdir()
        stage = d.dir / "stage"
        stage.mkdir()
        for i, name in enumerate(("kick", "snare")):  # one drop: pads in name order
            sf.write(str(stage / f"{name}.wav"), hits(1.0, i + 1), RATE, subtype="PCM_24")
        os.rename(stage, d.inbox / "k1")
        kick = d.inbox / "k1" / "kick.wav"
        d.wait_done(2)
        os.rename(kick, d.inbox / "k2" / "kick.wav")
        want = ["k1/bank_A/pad_02_snare.wav", "k2/bank_A/pad_01_kick.wav"]
        wait_for(lambda: d.outputs() == want, "the kick in k2")
        os.rename(d.inbox / "k2" / "kick.wav", kick)
        want = ["k1/bank_A/pad_01_kick.wav", "k1/bank_A/pad_02_snare.wav"]
        wait_for(lambda: d.outputs() == want, "the kick back in k1")

    def test_an_inbox_reached_through_a_symlink_is_one_file_to_convert_too(
        self, tmp_path: Path
    ) -> None:
        real = tmp_path / "real"
        (real / "k").mkdir(parents=True)
        link = tmp_path / "link"
        link.symlink_to(real)
        s = Session(tmp_path / "s", inbox=str(link), layout="kit")
        sf.write(str(real / "k" / "kick.wav"), hits(1.0, 1), RATE, subtype="PCM_24")
        s.convert(link)  # as the daemon would name it
        again = s.convert(real / "k" / "kick.wav")
        assert again.splitlines()[0].endswith("1 skipped")
        assert s.files() == ["k/bank_A/pad_01_kick.wav"]


class TestNoLeftovers:
    def test_pads_reserved_for_onsets_leave_no_empty_bank_folder(self, s: Session) -> None:
        s.write("loop.wav", hits(2.0, 5), {"chop": "onsets 16", "bank": "B", "pad": 5})
        s.convert()
        assert s.files() == [f"kit/bank_B/pad_{p:02d}_loop_0{p - 4}.wav" for p in range(5, 10)]
        assert sorted(p.name for p in (s.outbox / "kit").iterdir()) == ["bank_B"]

    def test_check_refuses_equal_slices_too_short_and_nothing_is_made(self, s: Session) -> None:
        s.write("short.wav", hits(1.0, 4), {"chop": 16})
        said = s.run("check", str(s.inbox / "short.wav"), code=1).stdout
        assert "refused: chop 16: slices of 62 ms, minimum 100 ms" in said
        s.convert(code=1)
        assert not list(s.outbox.iterdir())

    def test_a_missing_slice_is_written_and_stale_notes_go(self, tmp_path: Path) -> None:
        s = Session(tmp_path, write_txt=True)
        s.write("loop.wav", hits(), {"chop": 2})
        s.convert()
        (s.outbox / "loop_02.wav").unlink()
        out = s.run("rebuild").stdout
        assert "written  loop_02.wav" in out and "ok (identical)  loop_01.wav" in out
        s.write_config(write_txt=False, format="aiff")
        s.convert()
        assert s.files() == ["loop_01.aif", "loop_02.aif"]
