"""The planner's parts on their own: what is handed out (``Reservations``, ``PadBook``), what
the journal knows of a source (``Known``), refusals while planning (``judge``). Real folders,
real audio, a real journal in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from sp404d.config import build_config
from sp404d.errors import RejectedError
from sp404d.journal import Journal
from sp404d.metadata import Metadata
from sp404d.naming import PadBook
from sp404d.pipeline.judge import judged, kit_keys_need_kit_layout
from sp404d.pipeline.known import Known
from sp404d.pipeline.plan import Outcome, Plan
from sp404d.pipeline.request import Request
from sp404d.pipeline.reservations import Reservations
from tests.conftest import write_audio


class TestPadBook:
    def test_pads_go_in_the_units_order_and_a_taken_pad_is_refused(self, tmp_path: Path) -> None:
        book = PadBook(tmp_path)
        assert book.claim("kit", None, None, "/in/a") == ("A", 1)
        assert book.claim("KIT", None, None, "/in/b") == ("A", 2)  # one folder on FAT32
        assert book.claim("kit", "c", 7, "/in/c") == ("C", 7)
        with pytest.raises(RejectedError, match="pad C07 of kit 'kit' is already taken by c"):
            book.claim("kit", "C", 7, "/in/d")

    def test_a_run_keeps_its_pads_and_a_moved_file_takes_its_old_ones(self, tmp_path: Path) -> None:
        book = PadBook(tmp_path)
        run = book.claim_run("kit", None, None, 3, "/in/loop")
        assert run == [("A", 1), ("A", 2), ("A", 3)]
        for i, slot in enumerate(run):
            book.settle("kit", slot, f"/out/kit/bank_A/pad_0{i + 1}_loop_0{i + 1}.wav")
        owned = [f"/out/kit/bank_A/pad_0{i}_loop_0{i}.wav" for i in (1, 2, 3)]
        assert book.claim_run("kit", None, None, 3, "/in/loop", owned) == run  # stays put
        for slot, output in zip(run, owned, strict=True):  # written again, as the job ends
            book.settle("kit", slot, output)
        book.preclaim("kit", [("B", 5)], "/in/moved")
        assert book.claim("kit", None, None, "/in/moved") == ("B", 5)
        book.removed(Path("/out/kit/bank_A/pad_02_loop_02.wav"))
        assert book.claim("kit", "A", None, "/in/new") == ("A", 2)

    def test_files_on_the_card_hold_their_pads(self, tmp_path: Path) -> None:
        write_audio(tmp_path / "kit" / "bank_A" / "pad_01_kick.wav", 48000)
        (tmp_path / "kit" / "bank_A" / "pad_02_kick.txt").write_text("a note holds no pad")
        assert PadBook(tmp_path).claim("kit", None, None, "/in/x") == ("A", 2)


def _plan(outbox: Path, final: Path, **more: object) -> Plan:
    config = build_config({"outbox": str(outbox), "journal": str(outbox / "j")})
    meta = Metadata(title=final.stem)
    return Plan(
        source=Path("/in/x.wav"),
        root=Path("/in"),
        size=1,
        mtime_ns=1,
        meta=meta,
        folder=PurePosixPath(final.parent.relative_to(outbox).as_posix()),
        stem=final.stem,
        final=final,
        rules=config.rules(),
        **more,  # type: ignore[arg-type]
    )


class TestReservations:
    def test_names_are_told_apart_as_fat32_does(self, tmp_path: Path) -> None:
        held = Reservations()
        (tmp_path / "Kick.wav").write_bytes(b"")
        first, adopt = held.reserve(tmp_path, "kick", ".wav", None, 23)
        assert first.name == "kick_2.wav" and adopt == (tmp_path / "Kick.wav",)
        second, _ = held.reserve(tmp_path, "KICK", ".wav", None, 23)
        assert second.name == "KICK_3.wav"
        assert held.spelling(tmp_path, "Lofi") == held.spelling(tmp_path, "LOFI") == "Lofi"

    def test_a_failed_job_gives_its_name_back_and_an_emptied_folder_goes(
        self, tmp_path: Path
    ) -> None:
        held = Reservations()
        folder = tmp_path / "kit" / "bank_B"
        folder.mkdir(parents=True)
        final, _ = held.reserve(folder, "snare", ".wav", None, 23)
        plan = held.made(_plan(tmp_path, final))
        held.settle(plan, Outcome("failed", "the card went away"))
        assert not folder.exists() and not (tmp_path / "kit").exists()  # made, never used
        again, _ = held.reserve(tmp_path, "snare", ".wav", None, 23)
        assert again.name == "snare.wav"

    def test_a_folder_another_job_will_write_in_stays(self, tmp_path: Path) -> None:
        held = Reservations()
        folder = tmp_path / "kit"
        folder.mkdir()
        a, _ = held.reserve(folder, "a", ".wav", None, 23)
        b, _ = held.reserve(folder, "b", ".wav", None, 23)
        plan_a, _ = held.made(_plan(tmp_path, a)), held.made(_plan(tmp_path, b))
        held.settle(plan_a, Outcome("rejected", "corrupt"))
        assert folder.is_dir()  # b's job is still in flight there


class TestKnown:
    def test_what_the_journal_knows_of_a_source_in_each_outbox(self, tmp_path: Path) -> None:
        source = write_audio(tmp_path / "in" / "kick.wav", 48000)
        st = source.stat()
        card, backup = tmp_path / "card", tmp_path / "backup"
        for outbox in (card, backup):
            write_audio(outbox / "kick.wav", 48000)
        with Journal(tmp_path / "j.jsonl") as journal:
            for outbox in (card, backup):
                journal.append(
                    {"source": str(source), "status": "done", "output": str(outbox / "kick.wav"),
                     "outbox": str(outbox), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                     "inputs": "abc", "sha256": "x"}
                )  # fmt: skip
            known = Known(journal)
            assert known.own_outputs(source, card) == (card / "kick.wav",)
            assert known.own_outputs(source, tmp_path / "elsewhere") == ()
            same = known.unchanged(source, "abc", card, need_output=True)
            assert same is not None and same.status == "skipped"
            assert known.unchanged(source, "other settings", card, need_output=True) is None
            (card / "kick.wav").unlink()
            assert known.unchanged(source, "abc", card, need_output=True) is None
            assert known.unchanged(source, "abc", card, need_output=False) is not None

    def test_a_move_needs_the_old_path_gone_and_the_same_bytes(self, tmp_path: Path) -> None:
        from sp404d.pipeline.job import hash_file

        old = write_audio(tmp_path / "in" / "k1" / "kick.wav", 48000)
        out = write_audio(tmp_path / "out" / "k1" / "bank_A" / "pad_01_kick.wav", 48000)
        config = build_config({"outbox": str(tmp_path / "out"), "journal": str(tmp_path / "j")})
        with Journal(tmp_path / "j.jsonl") as journal:
            journal.append({"source": str(old), "status": "done", "output": str(out),
                            "outbox": str(tmp_path / "out"), "sha256": hash_file(old)})  # fmt: skip
            known = Known(journal)
            new = tmp_path / "in" / "k2" / "kick.wav"
            new.parent.mkdir()
            moved = Request(new, tmp_path / "in", config, moved_from=old)
            os.link(old, new)  # a copy: the old path is still there
            assert known.moved(moved, tmp_path / "out") == ()
            old.unlink()  # now it is a move
            assert known.moved(moved, tmp_path / "out") == (out,)
            new.write_bytes(b"other bytes")
            assert known.moved(moved, tmp_path / "out") == ()


class TestJudge:
    def test_kit_keys_outside_a_kit_layout_are_refused_naming_the_file(self) -> None:
        meta = Metadata(title="x", kit="dusty", origins={"kit": "folder:dusty/sp404.yaml"})
        with pytest.raises(RejectedError, match=r"folder file dusty/sp404\.yaml"):
            kit_keys_need_kit_layout(meta, "flat")
        kit_keys_need_kit_layout(meta, "kit")
        guessed = Metadata(title="x", kit="dusty", origins={"kit": "path"})
        kit_keys_need_kit_layout(guessed, "flat")  # a guess from the path is no request

    def test_the_workers_words_before_a_pad_is_taken(self, tmp_path: Path) -> None:
        config = build_config({"outbox": str(tmp_path / "out"), "journal": str(tmp_path / "j")})
        short = write_audio(tmp_path / "tiny.wav", 48000, seconds=0.05)
        refused = judged(Request(short, tmp_path, config), config.rules())
        assert refused is not None and refused.reason == "too short: 50 ms, minimum 100 ms"
        fine = write_audio(tmp_path / "fine.wav", 48000, seconds=1.0)
        assert judged(Request(fine, tmp_path, config), config.rules()) is None
