"""`sp404d convert`, `check` and `status` end to end, as real subprocesses on real files."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from sp404d.naming.names import SAFE_CHARS
from tests.conftest import SP404D, journal_records, run_env, write_audio


class Env:
    """A throwaway home with an inbox, an outbox and a journal."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.inbox = tmp_path / "in"
        self.outbox = tmp_path / "out"
        self.journal = tmp_path / "journal.jsonl"
        self.inbox.mkdir()

    def run(self, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [*SP404D, *args]
        proc = subprocess.run(
            cmd, env=run_env(self.home), capture_output=True, text=True, timeout=120
        )
        if check is not None:
            assert proc.returncode == check, proc.stdout + proc.stderr
        return proc

    def convert(
        self, *extra: str, paths: tuple[str, ...] = (), check: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "convert",
            *(paths or (str(self.inbox),)),
            "--outbox",
            str(self.outbox),
            "--journal",
            str(self.journal),
            *extra,
            check=check,
        )

    def status(self) -> dict[str, Any]:
        proc = self.run("status", "--journal", str(self.journal), "--json", "--limit", "0", check=0)
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def outputs(self) -> list[str]:
        return sorted(
            p.relative_to(self.outbox).as_posix() for p in self.outbox.rglob("*") if p.is_file()
        )

    def by_source(self) -> dict[str, dict[str, Any]]:
        return {Path(j["source"]).name: j for j in self.status()["jobs"]}


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


class TestConvert:
    def test_converts_a_folder_and_journals_every_job(self, env: Env) -> None:
        """A mixed folder: good files done, bad ones rejected with a musician's reason, exit 1."""
        write_audio(env.inbox / "kick.wav", 44100)
        write_audio(env.inbox / "pad.flac", 96000, subtype="PCM_24", format="FLAC", channels=2)
        write_audio(env.inbox / "tiny.wav", 44100, seconds=0.062)
        (env.inbox / "notes.bin").write_bytes(b"definitely not audio " * 20)
        (env.inbox / "empty.wav").write_bytes(b"")
        proc = env.convert(check=1)
        assert "2 done" in proc.stdout and "3 rejected" in proc.stdout
        assert env.outputs() == ["kick.wav", "pad.wav"]
        jobs = env.by_source()
        assert jobs["tiny.wav"]["reason"] == "too short: 62 ms, minimum 100 ms"
        assert jobs["notes.bin"]["reason"] == "not an audio file (the format is not recognised)"
        assert jobs["empty.wav"]["reason"] == "empty: the file has 0 bytes"
        assert env.status()["counts"] == {"done": 2, "rejected": 3}

    def test_record_has_what_the_journal_promises(self, env: Env) -> None:
        """Source, size, mtime, hash, metadata with origins, input facts, gain, timing, version."""
        write_audio(env.inbox / "hiphop" / "loop 92bpm.wav", 44100, channels=2)
        env.convert("--layout", "genre", check=0)
        rec = journal_records(env.journal)[0]
        assert rec["status"] == "done"
        assert len(rec["sha256"]) == 64 and rec["size"] > 0 and rec["mtime_ns"] > 0
        assert rec["metadata"]["genre"] == "hiphop"
        assert rec["metadata"]["origins"]["genre"] == "path"
        assert rec["metadata"]["bpm"] == 92
        assert rec["input"]["rate"] == 44100 and rec["input"]["channels"] == 2
        assert rec["gain_db"] is not None and rec["elapsed_s"] >= 0
        assert rec["version"] and rec["finished_at"].endswith("Z")
        assert rec["output"].endswith("hiphop/92bpm_loop.wav")

    def test_second_run_skips_and_exits_zero(self, env: Env) -> None:
        """Re-running on converted files converts nothing again."""
        write_audio(env.inbox / "kick.wav", 44100)
        env.convert(check=0)
        before = (env.outbox / "kick.wav").stat().st_mtime_ns
        proc = env.convert(check=0)
        assert "1 skipped" in proc.stdout
        assert (env.outbox / "kick.wav").stat().st_mtime_ns == before
        assert env.outputs() == ["kick.wav"]

    def test_identical_content_under_a_new_mtime_is_skipped(self, env: Env) -> None:
        """A re-dropped identical file (new mtime) is recognised by its content hash."""
        src = write_audio(env.inbox / "kick.wav", 44100)
        env.convert(check=0)
        data = src.read_bytes()
        src.unlink()
        src.write_bytes(data)
        proc = env.convert(check=0)
        assert "1 skipped" in proc.stdout
        assert env.outputs() == ["kick.wav"]

    def test_same_content_is_known_by_its_key_whatever_its_path(self, env: Env) -> None:
        """Files of one size but different content all convert; a copy of a converted file
        in another folder, bound for the same place, is skipped as already converted (the
        worker asks the journal once it has hashed the file)."""
        for i in range(3):
            write_audio(env.inbox / "a" / f"hit{i}.wav", 44100, freq=200 + 100 * i)
        env.convert(paths=(str(env.inbox / "a"),), check=0)
        assert env.outputs() == ["hit0.wav", "hit1.wav", "hit2.wav"]
        (env.inbox / "b").mkdir()
        (env.inbox / "b" / "hit1.wav").write_bytes((env.inbox / "a" / "hit1.wav").read_bytes())
        proc = env.convert(paths=(str(env.inbox / "b"),), check=0)
        assert "1 skipped" in proc.stdout
        (job,) = [j for j in env.status()["jobs"] if j["source"].endswith("b/hit1.wav")]
        assert (job["status"], job["output"]) == ("skipped", str(env.outbox / "hit1.wav"))
        assert env.outputs() == ["hit0.wav", "hit1.wav", "hit2.wav"]

    def test_only_jobs_recorded_before_the_plan_count_as_converted(self, tmp_path: Path) -> None:
        """Two copies of one sound bound for one place, in one run, both convert, however the
        workers happen to finish: the worker counts only jobs recorded before the plan."""
        from sp404d.journal.journal import Journal
        from sp404d.pipeline.converted import converted

        output = write_audio(tmp_path / "out" / "kick.wav", 48000)
        path = tmp_path / "j.jsonl"
        with Journal(path) as journal:
            before = journal.last_id
            journal.append({"key": "k1", "status": "done", "output": str(output)})
            after = journal.last_id
        assert after > before
        assert converted(path, "k1", before) is None
        assert converted(path, "k1", after) == output
        assert converted(path, "other", after) is None

    def test_changed_source_replaces_its_own_output(self, env: Env) -> None:
        """A source whose content changes is converted again onto its own earlier output."""
        src = write_audio(env.inbox / "kick.wav", 44100)
        env.convert(check=0)
        write_audio(src, 44100, freq=440)
        env.convert(check=0)
        assert env.outputs() == ["kick.wav"]
        y, _ = sf.read(str(env.outbox / "kick.wav"))
        spectrum = np.abs(np.fft.rfft(y))
        assert abs(np.argmax(spectrum) * 48000 / len(y) - 440) < 5

    def test_source_files_are_never_modified(self, env: Env) -> None:
        """The inbox is read, never written."""
        src = write_audio(env.inbox / "kick.wav", 44100)
        before = (src.read_bytes(), src.stat().st_mtime_ns)
        env.convert(check=0)
        assert (src.read_bytes(), src.stat().st_mtime_ns) == before
        assert sorted(p.name for p in env.inbox.iterdir()) == ["kick.wav"]

    def test_non_utf8_file_name_converts(self, env: Env) -> None:
        """A Latin-1 name from an old zip (not valid UTF-8) converts like any other."""
        name = os.fsdecode(b"caf\xe9 kick.wav")
        write_audio(env.inbox / name, 44100)
        env.convert(check=0)
        assert len(env.outputs()) == 1 and env.outputs()[0].isascii()

    def test_chunks_after_the_audio_are_not_copied(self, env: Env) -> None:
        """A 48k/16 WAV with a LIST chunk after its data comes out plain, samples unchanged."""
        src = write_audio(env.inbox / "tagged.wav", 48000)
        data = bytearray(src.read_bytes())
        info = b"INFOISFT\x08\x00\x00\x00Ableton\x00"
        data += b"LIST" + struct.pack("<I", len(info)) + info
        struct.pack_into("<I", data, 4, len(data) - 8)
        src.write_bytes(bytes(data))
        env.convert(check=0)
        out = (env.outbox / "tagged.wav").read_bytes()
        assert b"LIST" not in out and b"Ableton" not in out
        a, _ = sf.read(str(src), dtype="int16")
        b, _ = sf.read(str(env.outbox / "tagged.wav"), dtype="int16")
        assert np.array_equal(a, b)

    def test_aiff_format(self, env: Env) -> None:
        """--format aiff writes .aif files."""
        write_audio(env.inbox / "kick.wav", 44100)
        env.convert("--format", "aiff", check=0)
        assert env.outputs() == ["kick.aif"]
        assert sf.info(str(env.outbox / "kick.aif")).format == "AIFF"


class TestIdempotency:
    def test_kit_rerun_changes_nothing(self, env: Env) -> None:
        """A kit converted twice: the second run skips everything and no pad moves."""
        kit = env.inbox / "Boom"
        for i, name in enumerate(["clap.wav", "hat.wav", "kick.wav", "snare.wav"]):
            write_audio(kit / name, 44100, freq=200 + 100 * i)
        env.convert("--layout", "kit", "--config", str(_cfg(env, "write_txt: true\n")), check=0)
        first = env.outputs()
        proc = env.convert(
            "--layout", "kit", "--config", str(_cfg(env, "write_txt: true\n")), check=0
        )
        assert "4 skipped" in proc.stdout
        assert env.outputs() == first
        assert [o for o in first if o.endswith(".wav")] == [
            "Boom/bank_A/pad_01_clap.wav",
            "Boom/bank_A/pad_02_hat.wav",
            "Boom/bank_A/pad_03_kick.wav",
            "Boom/bank_A/pad_04_snare.wav",
        ]

    def test_outputs_written_but_never_journaled_are_not_duplicated(self, env: Env) -> None:
        """The state a crash leaves between a rename and its record: the rerun reuses the files.

        A finished kit run without its journal records and without the notes' "resolved"
        lines is exactly that state, for every file at once.
        """
        kit = env.inbox / "Boom"
        write_audio(kit / "kick.wav", 44100, freq=300)
        write_audio(kit / "07_snare.wav", 44100, freq=400)
        env.convert("--layout", "kit", check=0)
        first = env.outputs()
        env.journal.unlink()
        notes = env.journal.with_name(env.journal.name + ".intents")
        lines = notes.read_text().splitlines()
        notes.write_text("".join(line + "\n" for line in lines if "resolved" not in line))
        env.convert("--layout", "kit", check=0)
        assert (
            env.outputs()
            == first
            == [
                "Boom/bank_A/pad_01_kick.wav",
                "Boom/bank_A/pad_07_snare.wav",
            ]
        )

    def test_a_changed_sidecar_keeps_the_pad(self, env: Env) -> None:
        """Re-doing a kit sample for new metadata keeps its pad (and replaces its own file)."""
        kit = env.inbox / "Boom"
        write_audio(kit / "a.wav", 44100, freq=300)
        write_audio(kit / "b.wav", 44100, freq=400)
        env.convert("--layout", "kit", check=0)
        (kit / "b.wav.yaml").write_text("title: Big Snare\n")
        env.convert("--layout", "kit", check=0)
        assert env.outputs() == ["Boom/bank_A/pad_01_a.wav", "Boom/bank_A/pad_02_Big_Snare.wav"]

    def test_skipped_duplicate_never_claims_the_other_sources_output(self, env: Env) -> None:
        """b/kick identical to a/kick is skipped; renaming b later must not delete a's file."""
        data = write_audio(env.inbox / "a" / "kick.wav", 44100).read_bytes()
        env.convert(check=0)
        (env.inbox / "b").mkdir()
        (env.inbox / "b" / "kick.wav").write_bytes(data)
        assert "2 skipped" in env.convert(check=0).stdout
        (env.inbox / "b" / "kick.wav.yaml").write_text("title: Bee Kick\n")
        env.convert(check=0)
        assert env.outputs() == ["Bee_Kick.wav", "kick.wav"]

    def test_metadata_change_alone_redoes_the_file(self, env: Env) -> None:
        """An edited sidecar is a new job even though the audio is unchanged."""
        write_audio(env.inbox / "loop.wav", 44100)
        env.convert("--layout", "bpm", check=0)
        (env.inbox / "loop.wav.yaml").write_text("bpm: 100\n")
        env.convert("--layout", "bpm", check=0)
        assert env.outputs() == ["90-110/100bpm_loop.wav"]


def _cfg(env: Env, text: str) -> Path:
    path = env.home.parent / "extra.yaml"
    path.write_text(text)
    return path


class TestNames:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("Café.wav", "Cafe.wav", id="accent"),
            pytest.param("キック.wav", "kikku.wav", id="japanese"),
            pytest.param("CON.wav", "CON_.wav", id="fat-reserved"),
            pytest.param("a very long sample name that goes on and on.wav", None, id="long"),
            pytest.param("what?*.wav", "what.wav", id="forbidden"),
        ],
    )
    def test_output_names_are_ascii_and_fat_safe(
        self, env: Env, name: str, expected: str | None
    ) -> None:
        """Names become readable ASCII, FAT-safe, at most 23 characters before the extension."""
        write_audio(env.inbox / name, 44100)
        env.convert(check=0)
        (out,) = env.outputs()
        assert out.isascii() and len(Path(out).stem) <= 23
        if expected:
            assert out == expected

    def test_case_colliding_sources_never_overwrite_each_other(self, env: Env) -> None:
        """Kick.wav and kick.WAV (one name on FAT) both survive, under distinct names."""
        write_audio(env.inbox / "a" / "Kick.wav", 44100, freq=500)
        write_audio(env.inbox / "b" / "kick.WAV", 44100, freq=700)
        env.convert(check=0)
        outs = env.outputs()
        assert len(outs) == 2
        assert len({o.casefold() for o in outs}) == 2


class TestLayouts:
    def test_bpm_layout(self, env: Env) -> None:
        """BPM ranges as folders, unknown_bpm when nothing says the tempo."""
        write_audio(env.inbox / "slowjam 65bpm.wav", 44100)
        write_audio(env.inbox / "boom 92 bpm.wav", 44100)
        write_audio(env.inbox / "dnb_174bpm.wav", 44100)
        write_audio(env.inbox / "hit.wav", 44100)
        env.convert("--layout", "bpm", check=0)
        folders = sorted(o.split("/")[0] for o in env.outputs())
        assert folders == ["90-110", "fast", "slow", "unknown_bpm"]

    def test_genre_layout_uses_unknown_genre(self, env: Env) -> None:
        """Files directly in the inbox have no genre folder to infer from."""
        write_audio(env.inbox / "hit.wav", 44100)
        write_audio(env.inbox / "house" / "hat.wav", 44100)
        env.convert("--layout", "genre", check=0)
        assert env.outputs() == ["house/hat.wav", "unknown_genre/hit.wav"]

    def test_kit_layout_gives_pads_in_name_order_and_honours_claims(self, env: Env) -> None:
        """Explicit pads first; the rest take the next free pads in name order."""
        kit = env.inbox / "MyKit"
        write_audio(kit / "b_snare.wav", 44100)
        write_audio(kit / "a_kick.wav", 44100)
        write_audio(kit / "01_hat.wav", 44100)
        (kit / "c_clap.wav.yaml").write_text("bank: B\npad: 3\n")
        write_audio(kit / "c_clap.wav", 44100)
        env.convert("--layout", "kit", check=0)
        outs = env.outputs()
        assert "MyKit/bank_A/pad_01_hat.wav" in outs
        assert "MyKit/bank_A/pad_02_a_kick.wav" in outs
        assert "MyKit/bank_A/pad_03_b_snare.wav" in outs
        assert "MyKit/bank_B/pad_03_c_clap.wav" in outs

    def test_genre_folders_differing_only_in_case_are_one_folder(self, env: Env) -> None:
        """Lofi/, lofi/, LOFI/: one folder on FAT32, so one folder, spelled as first planned."""
        for i, genre in enumerate(["Lofi", "lofi", "LOFI"]):
            write_audio(env.inbox / genre / "kick.wav", 44100, freq=300 + 100 * i)
        env.convert("--layout", "genre", check=0)
        assert env.outputs() == ["Lofi/kick.wav", "Lofi/kick_2.wav", "Lofi/kick_3.wav"]

    def test_the_spelling_on_the_card_wins(self, env: Env) -> None:
        """A folder already in the outbox keeps its spelling for every later file."""
        (env.outbox / "LoFi").mkdir(parents=True)
        write_audio(env.inbox / "lofi" / "kick.wav", 44100)
        write_audio(env.inbox / "LOFI" / "snare.wav", 44100, freq=500)
        env.convert("--layout", "genre", check=0)
        assert env.outputs() == ["LoFi/kick.wav", "LoFi/snare.wav"]

    def test_kits_differing_only_in_case_share_one_folder_and_its_pads(self, env: Env) -> None:
        """Boombap and boombap: one kit, one pad book, never two samples on pad A01."""
        write_audio(env.inbox / "Boombap" / "a kick.wav", 44100, freq=300)
        write_audio(env.inbox / "boombap" / "b snare.wav", 44100, freq=400)
        write_audio(env.inbox / "BOOMBAP" / "c hat.wav", 44100, freq=500)
        env.convert("--layout", "kit", check=0)
        assert env.outputs() == [
            "Boombap/bank_A/pad_01_a_kick.wav",
            "Boombap/bank_A/pad_02_b_snare.wav",
            "Boombap/bank_A/pad_03_c_hat.wav",
        ]
        write_audio(env.inbox / "boombap" / "01 clap.wav", 44100, freq=600)
        write_audio(env.inbox / "BoomBap" / "d rim.wav", 44100, freq=700)
        env.convert("--layout", "kit", check=1)
        assert "Boombap/bank_A/pad_04_d_rim.wav" in env.outputs()
        assert env.by_source()["01 clap.wav"]["reason"] == (
            "pad A01 of kit 'Boombap' is already taken by pad_01_a_kick.wav"
        )

    def test_kit_pad_conflict_is_rejected_with_reason(self, env: Env) -> None:
        """A second file claiming a taken pad is refused, naming the pad and the holder."""
        kit = env.inbox / "K"
        write_audio(kit / "05_kick.wav", 44100)
        write_audio(kit / "05 snare.wav", 44100)
        env.convert("--layout", "kit", check=1)
        reasons = [j["reason"] for j in env.status()["jobs"] if j["status"] == "rejected"]
        assert len(reasons) == 1 and "pad A05 of kit 'K' is already taken" in reasons[0]

    def test_kit_past_160_samples_is_rejected(self, env: Env) -> None:
        """Ten banks of sixteen pads: the 161st sample is refused."""
        kit = env.inbox / "Big"
        data = np.zeros((4800, 1))
        kit.mkdir()
        for i in range(161):
            sf.write(str(kit / f"s{i:03d}.wav"), data + i * 1e-4, 48000, subtype="PCM_16")
        env.convert("--layout", "kit", check=1)
        counts = env.status()["counts"]
        assert counts == {"done": 160, "rejected": 1}
        assert "is full: 160 samples" in env.by_source()["s160.wav"]["reason"]


# What a convert run may write beside its journal, outside the outbox.
_JOURNAL_FILES = {"journal.jsonl", "journal.jsonl.index", "journal.jsonl.intents"}


def _listing(root: Path) -> set[str]:
    """Every path below ``root``, relative, folders too."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


class TestRefusals:
    @pytest.mark.parametrize(
        ("sidecar", "reason"),
        [
            pytest.param("bpm: fast\n", "bpm", id="wrong-type"),
            pytest.param("pad: 17\n", "pad", id="pad-range"),
            pytest.param(
                "!!python/object/apply:os.system ['touch pwned']\n", "tag", id="object-tag"
            ),
            pytest.param('a: &a ["x","x"]\nb: &b [*a,*a]\nc: [*b,*b]\n', "anchor", id="alias-bomb"),
            pytest.param("bmp: 120\n", "bmp", id="unknown-key"),
        ],
    )
    def test_hostile_or_wrong_sidecars_reject_their_file(
        self, env: Env, tmp_path: Path, sidecar: str, reason: str
    ) -> None:
        """A bad sidecar rejects its file with a reason naming it, and constructs nothing."""
        write_audio(env.inbox / "kick.wav", 44100)
        (env.inbox / "kick.wav.yaml").write_text(sidecar)
        env.convert(check=1)
        job = env.by_source()["kick.wav"]
        assert job["status"] == "rejected"
        assert "kick.wav.yaml" in job["reason"] and reason in job["reason"].lower()
        assert not (tmp_path / "pwned").exists() and not (env.inbox / "pwned").exists()
        assert env.outputs() == []

    @pytest.mark.parametrize(
        ("layout", "sidecars", "expected"),
        [
            pytest.param(
                "genre",
                {
                    # Two-dot leaders and division slashes: no "/" even after NFKC, so the
                    # sidecar check lets them through; transliterated they read "../../".
                    "a.wav": 'genre: "\u2025\u2215\u2025\u2215escaped"\n',
                    "b.wav": 'genre: "..\u2044..\u2044up"\n',
                    "c.wav": "genre: ..hidden\n",
                    # A title is free text: separators and dots are all allowed in it.
                    "d.wav": "title: ../../../escaped\n",
                    "e.wav": "title: '..\\..\\win'\n",
                    "f.wav": "title: ABSOLUTE\n",  # the absolute path of tmp_path/abs, below
                },
                [
                    "escaped/a.wav",
                    "hidden/c.wav",
                    "unknown_genre/tmp_*.wav",  # the path's text, as a name
                    "unknown_genre/escaped.wav",
                    "unknown_genre/win.wav",
                    "up/b.wav",
                ],
                id="genre",
            ),
            pytest.param(
                "kit",
                {
                    "a.wav": 'kit: "\u2025\u2215\u2025\u2215escaped"\ntitle: ../../x\n',
                    "b.wav": 'kit: "\u2025\u2215\u2025\u2215escaped"\ntitle: "\u2025/\u2025/y"\n',
                    "c.wav": 'kit: "..\u2215"\ntitle: ABSOLUTE\n',  # nothing left: "kit"
                },
                [
                    "escaped/bank_A/pad_01_x.wav",
                    "escaped/bank_A/pad_02_y.wav",
                    "kit/bank_A/pad_01_tmp_*.wav",
                ],
                id="kit",
            ),
        ],
    )
    def test_traversal_that_passes_the_sidecar_check_still_lands_in_the_outbox(
        self,
        env: Env,
        tmp_path: Path,
        layout: str,
        sidecars: dict[str, str],
        expected: list[str],
    ) -> None:
        """Values the sidecar check accepts (look-alike dots and slashes in genre and kit, "..",
        "/" and "\\" in a title, a title that is an absolute path) reach layout and naming:
        every file is done, lands in the outbox under a plain safe name, and nothing is written
        anywhere else."""
        # Deep enough that "../../.." from any folder in it still points inside tmp_path, so a
        # file that escaped would show in the listing.
        env.outbox = tmp_path / "deep" / "er" / "out"
        env.outbox.mkdir(parents=True)
        absolute = tmp_path / "abs"
        for name, sidecar in sidecars.items():
            write_audio(env.inbox / name, 44100, freq=300 + 100 * len(name) + ord(name[0]))
            sidecar = sidecar.replace("ABSOLUTE", str(absolute))
            (env.inbox / f"{name}.yaml").write_text(sidecar, encoding="utf-8")
        before = _listing(tmp_path)
        env.convert("--layout", layout, check=0)
        jobs = {Path(r["source"]).name: r for r in journal_records(env.journal)}
        assert sorted(jobs) == sorted(sidecars)
        for name, job in jobs.items():
            assert job["status"] == "done", job["reason"]
            # The hostile values were taken from the sidecar, not refused or left out.
            assert f"sidecar:{name}.yaml" in job["metadata"]["origins"].values()
            output = Path(job["output"])
            assert output.is_relative_to(env.outbox) and ".." not in output.parts
            assert all(SAFE_CHARS.fullmatch(part) for part in output.relative_to(env.outbox).parts)
        titles = [job["metadata"]["title"] for job in jobs.values()]
        assert str(absolute) in titles  # kept as the title, used only as text for a name
        outputs = env.outputs()
        assert len(outputs) == len(expected), outputs
        assert all(fnmatchcase(o, e) for o, e in zip(outputs, sorted(expected), strict=True)), (
            outputs
        )
        made = _listing(tmp_path) - before
        outside = {p for p in made if not (tmp_path / p).is_relative_to(env.outbox)}
        assert "journal.jsonl" in outside, outside
        assert outside <= _JOURNAL_FILES, f"written outside the outbox: {outside}"

    @pytest.mark.parametrize(
        ("layout", "sidecar", "reason"),
        [
            pytest.param(
                "genre",
                "genre: ../../escaped\nkit: /etc\n",
                "genre must be a name of 1 to 64 characters without / or \\, got '../../escaped'",
                id="dot-dot-slash",
            ),
            pytest.param(
                "kit",
                "kit: /etc\n",
                "kit must be a name of 1 to 64 characters without / or \\, got '/etc'",
                id="absolute",
            ),
            pytest.param(
                "genre",
                "genre: '..\\..\\escaped'\n",
                "genre must be a name of 1 to 64 characters without / or \\, got "
                "'..\\\\..\\\\escaped'",
                id="backslashes",
            ),
            pytest.param(
                "genre",
                'genre: "\uff0e\uff0e"\n',  # full-width dots: ".." once NFKC-folded
                "genre must be a name of 1 to 64 characters without / or \\, got '\uff0e\uff0e'",
                id="full-width-dots",
            ),
            pytest.param(
                "kit",
                'kit: "..\uff0f..\uff0fescaped"\n',  # full-width solidus: "/" once folded
                "kit must be a name of 1 to 64 characters without / or \\, got "
                "'..\uff0f..\uff0fescaped'",
                id="full-width-slash",
            ),
        ],
    )
    def test_traversal_in_a_path_field_rejects_the_file(
        self, env: Env, tmp_path: Path, layout: str, sidecar: str, reason: str
    ) -> None:
        """A genre or kit that names a path is refused by the sidecar check: exit 1, the job
        rejected with the reason naming the sidecar and the value, and nothing written but the
        journal."""
        write_audio(env.inbox / "kick.wav", 44100)
        (env.inbox / "kick.wav.yaml").write_text(sidecar, encoding="utf-8")
        before = _listing(tmp_path)
        env.convert("--layout", layout, check=1)
        job = env.by_source()["kick.wav"]
        assert (job["status"], job["reason"]) == ("rejected", f"sidecar kick.wav.yaml: {reason}")
        assert job["output"] is None
        assert env.outputs() == []
        assert _listing(tmp_path) - before == {"journal.jsonl"}

    @pytest.mark.parametrize(
        ("seconds", "ok"),
        [pytest.param(0.099, False, id="99ms"), pytest.param(0.100, True, id="100ms")],
    )
    def test_the_100ms_boundary(self, env: Env, seconds: float, ok: bool) -> None:
        """99 ms is refused, 100 ms is taken."""
        write_audio(env.inbox / "hit.wav", 48000, seconds=seconds, subtype="PCM_24")
        env.convert(check=0 if ok else 1)
        assert env.outputs() == (["hit.wav"] if ok else [])

    def test_short_files_can_be_padded(self, env: Env, tmp_path: Path) -> None:
        """short_files: pad makes a 62 ms hit into a 100 ms sample."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("short_files: pad\n")
        write_audio(env.inbox / "tiny.wav", 44100, seconds=0.062)
        env.convert("--config", str(cfg), check=0)
        assert sf.info(str(env.outbox / "tiny.wav")).frames == 4800

    def test_truncated_wav_is_rejected(self, env: Env) -> None:
        """A WAV cut short (a copy in progress) is refused with what is missing."""
        src = write_audio(env.inbox / "cut.wav", 44100, seconds=1.0)
        data = src.read_bytes()
        src.write_bytes(data[: len(data) // 2])
        env.convert(check=1)
        assert env.by_source()["cut.wav"]["reason"].startswith(
            "truncated: the header promises 1.00 s"
        )

    def test_m4a_with_the_extra_converts(self, env: Env) -> None:
        """An M4A (AAC) file converts through PyAV when the extra is installed."""
        pytest.importorskip("av", reason="checks the path with the extra installed")

        _write_m4a(env.inbox / "loop.m4a")
        env.convert(check=0)
        assert sf.info(str(env.outbox / "loop.wav")).samplerate == 48000

    def test_m4a_without_the_extra_is_rejected_with_the_hint(self, env: Env) -> None:
        """Without PyAV an M4A is still recognised by content, and the reason says what to do."""
        pytest.importorskip("av", reason="needs PyAV to make the M4A file")
        _write_m4a(env.inbox / "loop.m4a")
        code = (
            "import sys; sys.modules['av'] = None\n"  # as if the extra were not installed
            "from sp404d.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "convert",
                str(env.inbox),
                "--outbox",
                str(env.outbox),
                "--journal",
                str(env.journal),
            ],
            env=run_env(env.home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr
        assert env.by_source()["loop.m4a"]["reason"] == (
            "M4A/AAC/ALAC needs the optional decoder: pip install 'sp404d[m4a]'"
        )


def _write_m4a(path: Path) -> None:
    import av

    with av.open(str(path), "w") as c:
        stream = c.add_stream("aac", rate=44100)
        for i in range(20):
            samples = (np.sin(np.arange(1024) / 5)[None, :] * 0.3).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)


class TestPassedOver:
    """What a folder holds but convert does not take is counted, and listed with -v."""

    def _folder(self, env: Env) -> None:
        write_audio(env.inbox / "kick.wav", 44100)
        write_audio(env.inbox / ".x.wav", 44100)  # hidden: maybe meant to be converted
        os.mkfifo(env.inbox / "pipe.wav")
        (env.inbox / "gone.wav").symlink_to(env.inbox / "nowhere.wav")
        (env.inbox / "linked").symlink_to(env.home.parent, target_is_directory=True)
        # Not news: a sidecar, a folder file, OS and sync junk, notes and pictures.
        (env.inbox / "kick.wav.yaml").write_text("title: Kick\n")
        (env.inbox / "sp404.yaml").write_text("genre: house\n")
        for junk in (".DS_Store", "Thumbs.db", "x.wav.part", ".syncthing.y.wav.tmp", "read.txt"):
            (env.inbox / junk).write_bytes(b"junk")
        (env.inbox / "cover.jpg").write_bytes(b"\xff\xd8")

    def test_convert_says_how_many_and_why(self, env: Env) -> None:
        self._folder(env)
        proc = env.convert(check=0)
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("1 file in") and lines[0].endswith(": 1 done")
        assert lines[1:] == [
            "4 passed over: 1 hidden name, 1 not a regular file, 1 broken link, "
            "1 linked folder, not followed (-v lists them)"
        ]

    def test_verbose_lists_them(self, env: Env) -> None:
        self._folder(env)
        proc = env.convert("-v", check=0)
        listed = proc.stdout.splitlines()[2:]
        assert listed == [
            f"  {env.inbox / '.x.wav'}: hidden name",
            f"  {env.inbox / 'gone.wav'}: broken link",
            f"  {env.inbox / 'linked'}: linked folder, not followed",
            f"  {env.inbox / 'pipe.wav'}: not a regular file",
        ]

    def test_plurals_and_a_hidden_folder_counts_once(self, env: Env) -> None:
        write_audio(env.inbox / ".old" / "a.wav", 44100)
        write_audio(env.inbox / ".old" / "b.wav", 44100)
        write_audio(env.inbox / "sub" / ".y.wav", 44100)
        proc = env.convert(check=0)
        assert proc.stdout.splitlines()[1] == "2 passed over: 2 hidden names (-v lists them)"

    def test_nothing_passed_over_says_nothing(self, env: Env) -> None:
        write_audio(env.inbox / "kick.wav", 44100)
        (env.inbox / "kick.wav.yaml").write_text("title: Kick\n")
        (env.inbox / ".DS_Store").write_bytes(b"junk")
        proc = env.convert(check=0)
        assert len(proc.stdout.splitlines()) == 1

    def test_check_reports_the_same(self, env: Env) -> None:
        self._folder(env)
        proc = env.run(
            "check", str(env.inbox), "--outbox", str(env.outbox), "--journal", str(env.journal)
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        assert f"{env.inbox / '.x.wav'}\n  passed over: hidden name" in out
        assert f"{env.inbox / 'pipe.wav'}\n  passed over: not a regular file" in out
        assert out.splitlines()[-1] == (
            "4 passed over: 1 hidden name, 1 not a regular file, 1 broken link, "
            "1 linked folder, not followed"
        )


class TestUsage:
    def test_bad_config_value_exits_2_naming_the_key(self, env: Env, tmp_path: Path) -> None:
        """A bad value stops with a message naming the key and what is allowed."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("layout: spiral\n")
        proc = env.convert("--config", str(cfg), check=2)
        assert "layout" in proc.stderr and "flat, genre, bpm, kit" in proc.stderr

    def test_unknown_key_exits_2(self, env: Env, tmp_path: Path) -> None:
        """A typo in a key is caught."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("outbx: /tmp\n")
        proc = env.convert("--config", str(cfg), check=2)
        assert "outbx" in proc.stderr and "unknown setting" in proc.stderr

    def test_outbox_that_is_a_file_exits_2(self, env: Env, tmp_path: Path) -> None:
        """An outbox path naming a file is refused up front, not once per input."""
        write_audio(env.inbox / "kick.wav", 44100)
        env.outbox.write_text("not a folder")
        proc = env.convert(check=2)
        assert "is a file, not a folder" in proc.stderr and not env.journal.exists()

    def test_missing_path_exits_2(self, env: Env) -> None:
        """A path that does not exist is a usage error, not a traceback."""
        proc = env.convert(paths=(str(env.inbox / "nope"),), check=2)
        assert "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr

    @pytest.mark.parametrize("kind", ["fifo", "socket"])
    def test_an_argument_that_is_not_a_regular_file_exits_2(
        self, env: Env, tmp_path: Path, kind: str
    ) -> None:
        """A FIFO (or socket) given by name: said so, not 'no such file or folder'."""
        special = env.inbox / "pipe.wav"
        if kind == "fifo":
            os.mkfifo(special)
        else:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(special))
            sock.close()
        proc = env.convert(paths=(str(special),), check=2)
        assert proc.stderr.strip().splitlines()[-1] == f"sp404d: not a regular file: {special}"

    def test_check_writes_nothing(self, env: Env) -> None:
        """check shows the plan and metadata origins, and writes no file and no journal."""
        write_audio(env.inbox / "house" / "hat 120bpm.wav", 44100)
        proc = env.run(
            "check",
            str(env.inbox),
            "--outbox",
            str(env.outbox),
            "--journal",
            str(env.journal),
            "--layout",
            "genre",
            check=0,
        )
        assert "house/120bpm_hat.wav" in proc.stdout
        assert "genre: house  [path]" in proc.stdout
        assert not env.outbox.exists() and not env.journal.exists()

    def test_status_on_an_empty_journal(self, env: Env) -> None:
        """status works before anything ran."""
        data = env.status()
        assert data["counts"] == {} and data["jobs"] == []
