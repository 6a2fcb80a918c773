"""Tests for sp404d.metadata: sidecars, folder files, path inference, defaults, hostile YAML."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path, PurePath
from typing import Any

import pytest

from sp404d.errors import RejectedError
from sp404d.metadata.read import (
    FIELDS,
    FOLDER_FILE,
    MAX_SIDECAR_BYTES,
    Metadata,
    MetadataScope,
    audio_for_metadata_file,
    infer_from_path,
    is_metadata_file,
    parse_defaults,
    parse_key,
    read_metadata,
    sidecar_candidates,
)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def put(inbox: Path, relative: str, text: str | bytes = b"RIFF") -> Path:
    """Create ``inbox/relative`` (and its folders) with ``text``; returns its path."""
    path = inbox / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def rejection(inbox: Path, audio: str, sidecar: str, text: str | bytes) -> str:
    """The reason ``audio`` is rejected for when ``sidecar`` holds ``text``."""
    source = put(inbox, audio)
    put(inbox, sidecar, text)
    with pytest.raises(RejectedError) as caught:
        read_metadata(source, inbox)
    reason = caught.value.reason
    assert "\n" not in reason
    return reason


class TestSidecarCandidates:
    @pytest.mark.parametrize(
        ("audio", "expected"),
        [
            pytest.param(
                "kick.wav", ["kick.wav.yaml", "kick.wav.yml", "kick.yaml", "kick.yml"], id="plain"
            ),
            pytest.param(
                "Kick.WAV", ["Kick.WAV.yaml", "Kick.WAV.yml", "Kick.yaml", "Kick.yml"], id="case"
            ),
            pytest.param(
                "a.b.wav", ["a.b.wav.yaml", "a.b.wav.yml", "a.b.yaml", "a.b.yml"], id="dots"
            ),
            pytest.param("sp404.wav", ["sp404.wav.yaml", "sp404.wav.yml", "sp404.yml"], id="sp404"),
            pytest.param("noext", ["noext.yaml", "noext.yml"], id="no-extension"),
        ],
    )
    def test_names_in_precedence_order(self, audio: str, expected: list[str]) -> None:
        """Most specific first; the folder file is never a sidecar; no duplicates."""
        folder = Path("/in/drums")
        assert sidecar_candidates(folder / audio) == tuple(folder / n for n in expected)


class TestIsMetadataFile:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("kick.wav.yaml", True, id="sidecar"),
            pytest.param("kick.YML", True, id="upper-yml"),
            pytest.param(FOLDER_FILE, True, id="folder-file"),
            pytest.param("kick.wav", False, id="audio"),
            pytest.param("yaml.wav", False, id="yaml-in-stem"),
        ],
    )
    def test_by_suffix(self, name: str, expected: bool) -> None:
        """The watcher must skip these rather than try to decode them."""
        assert is_metadata_file(Path(name)) is expected


class TestAudioForMetadataFile:
    def test_sidecar_with_extension(self, inbox: Path) -> None:
        """kick.wav.yaml belongs to kick.wav only (and kick.wav.* by the NAME.yaml form)."""
        for name in ("kick.wav", "kick.aif", "kick.wav.mp3", "snare.wav", "kick.yaml"):
            put(inbox, name)
        scope = audio_for_metadata_file(inbox / "kick.wav.yaml")
        assert scope == MetadataScope(inbox / "kick.wav.yaml", inbox, recursive=False)
        assert scope.audio_files() == (inbox / "kick.wav", inbox / "kick.wav.mp3")

    def test_sidecar_by_stem(self, inbox: Path) -> None:
        """kick.yaml belongs to every kick.* audio file beside it, not to files below."""
        for name in ("kick.wav", "kick.aif", "kicks.wav", "sub/kick.wav", "kick.yml"):
            put(inbox, name)
        scope = audio_for_metadata_file(inbox / "kick.yaml")
        assert scope.audio_files() == (inbox / "kick.aif", inbox / "kick.wav")
        assert not scope.matches(inbox / "sub" / "kick.wav")

    def test_folder_file_covers_everything_below(self, inbox: Path) -> None:
        """sp404.yaml re-does every file below its folder, at any depth."""
        for name in ("drums/a.wav", "drums/A/b.wav", "keys/c.wav", "drums/a.wav.yaml"):
            put(inbox, name)
        scope = audio_for_metadata_file(inbox / "drums" / FOLDER_FILE)
        assert scope.recursive
        assert scope.audio_files() == (inbox / "drums/A/b.wav", inbox / "drums/a.wav")
        assert scope.matches(inbox / "drums/new/later.wav")
        assert not scope.matches(inbox / "keys/c.wav")

    def test_folder_gone(self, inbox: Path) -> None:
        """A metadata file whose folder was removed affects nothing still there."""
        assert audio_for_metadata_file(inbox / "gone" / FOLDER_FILE).audio_files() == ()

    def test_not_a_metadata_file(self) -> None:
        """Passing audio is a caller bug, not a rejection."""
        with pytest.raises(ValueError, match=r"kick\.wav is not a metadata file"):
            audio_for_metadata_file(Path("kick.wav"))


class TestSidecars:
    @pytest.mark.parametrize(
        "sidecar",
        [
            pytest.param("kick.wav.yaml", id="name-ext-yaml"),
            pytest.param("kick.wav.yml", id="name-ext-yml"),
            pytest.param("kick.yaml", id="name-yaml"),
            pytest.param("kick.yml", id="name-yml"),
        ],
    )
    def test_each_form_is_read(self, inbox: Path, sidecar: str) -> None:
        """Any one of the four names gives the file its values, with the sidecar as origin."""
        source = put(inbox, "kick.wav")
        put(inbox, sidecar, "title: Big Kick\nbpm: 92\ntags: [dusty, lofi]\n")
        meta = read_metadata(source, inbox)
        assert (meta.title, meta.bpm, meta.tags) == ("Big Kick", 92.0, ("dusty", "lofi"))
        assert meta.origins["title"] == f"sidecar:{sidecar}"

    @pytest.mark.parametrize(
        ("present", "winner"),
        [
            pytest.param(["kick.wav.yaml", "kick.wav.yml"], "kick.wav.yaml", id="yaml-over-yml"),
            pytest.param(["kick.wav.yml", "kick.yaml"], "kick.wav.yml", id="ext-over-stem"),
            pytest.param(["kick.yaml", "kick.yml"], "kick.yaml", id="stem-yaml-over-yml"),
            pytest.param(
                ["kick.wav.yaml", "kick.wav.yml", "kick.yaml", "kick.yml"],
                "kick.wav.yaml",
                id="all-four",
            ),
        ],
    )
    def test_precedence(self, inbox: Path, present: list[str], winner: str) -> None:
        """The most specific sidecar wins a field they both set."""
        source = put(inbox, "kick.wav")
        for name in present:
            put(inbox, name, f"title: {name}\n")
        meta = read_metadata(source, inbox)
        assert meta.title == winner
        assert meta.origins["title"] == f"sidecar:{winner}"

    def test_sidecars_merge_per_field(self, inbox: Path) -> None:
        """A shared kick.yaml fills what kick.wav.yaml leaves open."""
        source = put(inbox, "kick.wav")
        put(inbox, "kick.yaml", "bpm: 90\nkey: Am\n")
        put(inbox, "kick.wav.yaml", "key: C\n")
        meta = read_metadata(source, inbox)
        assert (meta.bpm, meta.key) == (90.0, "C")
        assert meta.origins["bpm"] == "sidecar:kick.yaml"
        assert meta.origins["key"] == "sidecar:kick.wav.yaml"

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("", id="empty"),
            pytest.param("# just a comment\n", id="comment"),
            pytest.param("---\n", id="empty-document"),
        ],
    )
    def test_empty_sidecar_gives_nothing(self, inbox: Path, text: str) -> None:
        """An empty sidecar is not an error; the file name still speaks."""
        source = put(inbox, "07_kick.wav")
        put(inbox, "07_kick.wav.yaml", text)
        meta = read_metadata(source, inbox)
        assert (meta.title, meta.pad) == ("kick", 7)
        assert set(meta.origins.values()) == {"path"}

    def test_directory_named_like_a_sidecar_is_ignored(self, inbox: Path) -> None:
        """Only regular files are sidecars."""
        source = put(inbox, "kick.wav")
        (inbox / "kick.wav.yaml").mkdir()
        assert read_metadata(source, inbox).title == "kick"

    def test_keys_are_case_insensitive(self, inbox: Path) -> None:
        """``Title:`` and ``BPM:`` work as ``title:`` and ``bpm:``."""
        source = put(inbox, "kick.wav")
        put(inbox, "kick.yaml", "Title: Boom\nBPM: 100\n")
        meta = read_metadata(source, inbox)
        assert (meta.title, meta.bpm) == ("Boom", 100.0)


class TestFolderFiles:
    def test_nearest_wins_and_farther_fill_in(self, inbox: Path) -> None:
        """Per field, the folder file nearest to the audio wins; farther ones fill the rest."""
        put(inbox, FOLDER_FILE, "genre: soul\nbpm: 80\ntags: [vinyl]\n")
        put(inbox, "x/" + FOLDER_FILE, "bpm: 90\nkey: Dm\n")
        put(inbox, "x/y/" + FOLDER_FILE, "bpm: 100\n")
        source = put(inbox, "x/y/z/loop.wav")
        meta = read_metadata(source, inbox)
        assert (meta.bpm, meta.key, meta.tags) == (100.0, "Dm", ("vinyl",))
        assert meta.genre == "soul"
        assert meta.origins["bpm"] == "folder:x/y/sp404.yaml"
        assert meta.origins["key"] == "folder:x/sp404.yaml"
        assert meta.origins["genre"] == "folder:sp404.yaml"

    def test_never_above_root(self, inbox: Path) -> None:
        """A folder file above the inbox is not ours to read, even a broken one."""
        put(inbox.parent, FOLDER_FILE, "bpm: [not, a, number]\n")
        source = put(inbox, "loop.wav")
        assert read_metadata(source, inbox).bpm is None

    def test_root_is_the_folder_given(self, inbox: Path) -> None:
        """With root = a subfolder, folder files between it and the inbox are skipped."""
        put(inbox, FOLDER_FILE, "genre: soul\n")
        put(inbox, "batch/" + FOLDER_FILE, "kit: batchkit\n")
        source = put(inbox, "batch/loop.wav")
        meta = read_metadata(source, inbox / "batch")
        assert (meta.genre, meta.kit) == (None, "batchkit")
        assert meta.origins["kit"] == "folder:sp404.yaml"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("title: Same\n", "title cannot be set in a folder file", id="title"),
            pytest.param("pad: 3\n", "pad cannot be set in a folder file", id="pad"),
            pytest.param("bpm: fast\n", "bpm must be a number from 20 to 999", id="bad-value"),
            pytest.param("bmp: 90\n", "unknown key 'bmp' (did you mean 'bpm'?)", id="typo"),
        ],
    )
    def test_bad_folder_file_rejects_everything_below(
        self, inbox: Path, text: str, expected: str
    ) -> None:
        """Every file below gets the reason, naming the folder file relative to the inbox."""
        put(inbox, "drums/" + FOLDER_FILE, text)
        for audio in ("drums/kick.wav", "drums/A/snare.wav"):
            with pytest.raises(RejectedError) as caught:
                read_metadata(put(inbox, audio), inbox)
            assert caught.value.reason.startswith("folder file drums/sp404.yaml: ")
            assert expected in caught.value.reason
        assert read_metadata(put(inbox, "keys/pad.wav"), inbox).title == "pad"

    def test_unknown_key_lists_folder_keys(self, inbox: Path) -> None:
        """The allowed keys listed for a folder file leave out title and pad."""
        reason = rejection(inbox, "a.wav", FOLDER_FILE, "colour: red\n")
        assert reason.endswith(
            "allowed keys: genre, bpm, key, tags, kit, bank, trim, normalize, channels, "
            "mono_below_s, fold_cancels, chop, layout"
        )


class TestPrecedence:
    def test_sidecar_over_folder_over_path_over_default(self, inbox: Path) -> None:
        """Each field comes from the strongest source that has it, and says which."""
        put(inbox, "hiphop/" + FOLDER_FILE, "bpm: 88\nkey: Gm\n")
        source = put(inbox, "hiphop/B/07_snare_94bpm.wav")
        put(inbox, "hiphop/B/07_snare_94bpm.wav.yaml", "key: Am\n")
        defaults = {"bpm": 120, "tags": ["mk2"], "key": "C", "kit": "dflt"}
        meta = read_metadata(source, inbox, defaults)
        assert meta == Metadata(
            title="snare",
            genre="hiphop",
            bpm=88.0,
            key="Am",
            tags=("mk2",),
            kit="hiphop",
            bank="B",
            pad=7,
            origins={
                "title": "path",
                "genre": "path",
                "bpm": "folder:hiphop/sp404.yaml",
                "key": "sidecar:07_snare_94bpm.wav.yaml",
                "tags": "default",
                "kit": "path",
                "bank": "path",
                "pad": "path",
            },
        )

    @pytest.mark.parametrize(
        ("layers", "value", "origin"),
        [
            pytest.param({"side": "kit: s", "folder": "kit: f"}, "s", "sidecar:a.wav.yaml", id="s"),
            pytest.param({"folder": "kit: f"}, "f", "folder:k/sp404.yaml", id="folder"),
            pytest.param({}, "k", "path", id="path"),
        ],
    )
    def test_kit(self, inbox: Path, layers: dict[str, str], value: str, origin: str) -> None:
        """One field through the layers (the path always knows the kit here: folder k)."""
        source = put(inbox, "k/a.wav")
        if "side" in layers:
            put(inbox, "k/a.wav.yaml", layers["side"])
        if "folder" in layers:
            put(inbox, "k/" + FOLDER_FILE, layers["folder"])
        meta = read_metadata(source, inbox, {"kit": "d"})
        assert (meta.kit, meta.origins["kit"]) == (value, origin)

    def test_default_when_nothing_else(self, inbox: Path) -> None:
        """Defaults fill only what no file and no path gave."""
        meta = read_metadata(put(inbox, "a.wav"), inbox, {"genre": "house", "bank": "c"})
        assert (meta.genre, meta.bank) == ("house", "C")
        assert meta.origins["genre"] == meta.origins["bank"] == "default"

    @pytest.mark.parametrize(
        "field", [pytest.param(f, id=f) for f in ("key", "bpm", "pad", "bank", "kit", "genre")]
    )
    def test_empty_value_clears(self, inbox: Path, field: str) -> None:
        """``key:`` in a sidecar silences a guess from the name, a folder file and defaults."""
        put(inbox, "hiphop/" + FOLDER_FILE, "key: Dm\nbpm: 90\nbank: A\n")
        source = put(inbox, "hiphop/kit/07_loop_120bpm_Cm.wav")
        put(inbox, "hiphop/kit/07_loop_120bpm_Cm.yaml", f"{field}:\n")
        meta = read_metadata(source, inbox, {"genre": "x", "kit": "y"})
        assert getattr(meta, field) is None
        assert meta.origins[field] == "sidecar:07_loop_120bpm_Cm.yaml"

    def test_empty_title_uses_the_name(self, inbox: Path) -> None:
        """A title cannot be cleared: ``title:`` falls back to the file name."""
        source = put(inbox, "snare.wav")
        put(inbox, "snare.wav.yaml", "title:\n")
        meta = read_metadata(source, inbox)
        assert (meta.title, meta.origins["title"]) == ("snare", "path")

    def test_empty_tags_clear(self, inbox: Path) -> None:
        """``tags: []`` overrides a folder file's tags with none."""
        put(inbox, FOLDER_FILE, "tags: [a]\n")
        source = put(inbox, "s.wav")
        put(inbox, "s.yaml", "tags: []\n")
        meta = read_metadata(source, inbox)
        assert (meta.tags, meta.origins["tags"]) == ((), "sidecar:s.yaml")

    def test_source_outside_root(self, tmp_path: Path, inbox: Path) -> None:
        """Outside the root only its sidecars and file name count, no folder files."""
        put(inbox, FOLDER_FILE, "genre: soul\n")
        source = put(tmp_path, "elsewhere/deep/07_x.wav")
        put(tmp_path, "elsewhere/" + FOLDER_FILE, "genre: nope\n")
        meta = read_metadata(source, inbox)
        assert (meta.genre, meta.kit, meta.pad) == (None, None, 7)


class TestInferFromPath:
    @pytest.mark.parametrize(
        ("relative", "expected"),
        [
            pytest.param("kick.wav", {"title": "kick"}, id="root"),
            pytest.param("hiphop/kick.wav", {"genre": "hiphop", "kit": "hiphop"}, id="genre"),
            pytest.param(
                "hiphop/boombap/kick.wav", {"genre": "hiphop", "kit": "boombap"}, id="genre-kit"
            ),
            pytest.param(
                "hiphop/boombap/A/kick.wav",
                {"genre": "hiphop", "kit": "boombap", "bank": "A"},
                id="kit-layout",
            ),
            pytest.param("A/kick.wav", {"bank": "A"}, id="bank-at-top-is-no-genre"),
            pytest.param("x/bank_b/k.wav", {"bank": "B"}, id="bank_b"),
            pytest.param("x/Bank C/k.wav", {"bank": "C"}, id="Bank-space-C"),
            pytest.param("x/bank-j/k.wav", {"bank": "J"}, id="bank-dash-j"),
            pytest.param("x/BANKD/k.wav", {"bank": "D"}, id="BANKD"),
            pytest.param("x/e/k.wav", {"bank": "E"}, id="lower-letter"),
            pytest.param("x/K/k.wav", {"kit": "K"}, id="K-is-no-bank"),
            pytest.param("x/bank_k/k.wav", {"kit": "bank_k"}, id="bank_k-is-no-bank"),
            pytest.param("x/A/B/k.wav", {"bank": "B", "kit": "x"}, id="nearest-bank"),
            pytest.param("x/kit/A/more/k.wav", {"bank": "A", "kit": "more"}, id="nearest-kit"),
            pytest.param("x/" + "k" * 65 + "/k.wav", {"kit": None}, id="too-long-folder"),
            pytest.param(".../k.wav", {"genre": None, "kit": None}, id="dots-folder"),
            pytest.param(
                "Loops/90 BPM/dusty loop.wav",
                {"genre": "Loops", "kit": "Loops", "bpm": 90.0},
                id="bpm-folder-names-no-kit",
            ),
            pytest.param(
                "Boom Bap 90bpm/kick.wav",
                {"genre": "Boom Bap", "kit": "Boom Bap", "bpm": 90.0},
                id="genre-loses-its-bpm",
            ),
            pytest.param(
                "Keys - C minor/rhodes.wav", {"genre": "Keys", "key": "Cm"}, id="key-folder"
            ),
            pytest.param(
                "Boom Bap 90bpm/Soul Am/loop 84bpm.wav",
                {"genre": "Boom Bap", "kit": "Soul", "bpm": 84.0, "key": "Am"},
                id="file-name-first-then-nearest-folder",
            ),
            pytest.param("F#_minor/pad.wav", {"genre": None, "key": "F#m"}, id="only-a-key"),
        ],
    )
    def test_folders(self, relative: str, expected: dict[str, Any]) -> None:
        """Genre is the first folder, kit the nearest non-bank folder, bank the nearest one."""
        got = infer_from_path(PurePath(relative))
        for field, value in expected.items():
            assert got.get(field) == value, field

    @pytest.mark.parametrize(
        ("name", "pad", "title"),
        [
            pytest.param("07_snare.wav", 7, "snare", id="underscore"),
            pytest.param("7 snare.wav", 7, "snare", id="space"),
            pytest.param("07-snare.wav", 7, "snare", id="dash"),
            pytest.param("16.hat.wav", 16, "hat", id="dot"),
            pytest.param("007_bond.wav", 7, "bond", id="three-digits"),
            pytest.param("01.wav", 1, "01", id="number-only-keeps-title"),
            pytest.param("808_kick.wav", None, "808_kick", id="808"),
            pytest.param("17_x.wav", None, "17_x", id="17"),
            pytest.param("0_x.wav", None, "0_x", id="zero"),
            pytest.param("07snare.wav", None, "07snare", id="glued"),
            pytest.param("4_bars_loop.wav", None, "4_bars_loop", id="bars"),
            pytest.param("16 steps.wav", None, "16 steps", id="steps"),
            pytest.param("kick_07.wav", None, "kick_07", id="trailing"),
        ],
    )
    def test_pad(self, name: str, pad: int | None, title: str) -> None:
        """A leading 1-16 before a separator is the pad; the title loses it."""
        got = infer_from_path(PurePath(name))
        assert (got.get("pad"), got["title"]) == (pad, title)

    @pytest.mark.parametrize(
        ("name", "bpm", "title"),
        [
            pytest.param("loop_92bpm.wav", 92.0, "loop", id="glued"),
            pytest.param("loop_92_bpm.wav", 92.0, "loop", id="underscore"),
            pytest.param("loop 92 BPM.wav", 92.0, "loop", id="upper"),
            pytest.param("bpm92_loop.wav", 92.0, "loop", id="before"),
            pytest.param("loop_bpm_120.wav", 120.0, "loop", id="before-underscore"),
            pytest.param("loop_92.5bpm_Am.wav", 92.5, "loop_Am", id="fraction"),
            pytest.param("loop.140bpm.wav", 140.0, "loop", id="dot-before"),
            pytest.param("kick_92bpm_hard.wav", 92.0, "kick_hard", id="middle"),
            pytest.param("loop_40bpm.wav", 40.0, "loop", id="low-edge"),
            pytest.param("loop_300bpm.wav", 300.0, "loop", id="high-edge"),
            pytest.param("loop_39bpm.wav", None, "loop_39bpm", id="too-slow"),
            pytest.param("loop_301bpm.wav", None, "loop_301bpm", id="too-fast"),
            pytest.param("loop_1200bpm.wav", None, "loop_1200bpm", id="digits-inside"),
            pytest.param("loop_120.wav", None, "loop_120", id="no-bpm-word"),
            pytest.param("loop_120bpms.wav", None, "loop_120bpms", id="bpm-in-word"),
            pytest.param("92bpm.wav", 92.0, "92bpm", id="only-bpm-keeps-title"),
        ],
    )
    def test_bpm(self, name: str, bpm: float | None, title: str) -> None:
        """A 40-300 number next to "bpm" is the tempo; the title loses that token."""
        got = infer_from_path(PurePath(name))
        assert (got.get("bpm"), got["title"]) == (bpm, title)

    @pytest.mark.parametrize(
        ("name", "key"),
        [
            pytest.param("pad_Cmin.wav", "Cm", id="Cmin"),
            pytest.param("pad_C#m.wav", "C#m", id="C#m"),
            pytest.param("pad_F#_minor.wav", "F#m", id="F#_minor"),
            pytest.param("pad A minor.wav", "Am", id="A-minor-words"),
            pytest.param("pad_Bbmaj.wav", "Bb", id="Bbmaj"),
            pytest.param("pad_Am.wav", "Am", id="Am"),
            pytest.param("Em-pad.wav", "Em", id="Em-token"),
            pytest.param("pad_key_C.wav", "C", id="key_C"),
            pytest.param("pad_in_G.wav", "G", id="in_G"),
            pytest.param("pad_in_a_minor.wav", "Am", id="in_a_minor"),
            pytest.param("pad_F#.wav", "F#", id="bare-sharp"),
            pytest.param("pad_E♭m.wav", "Ebm", id="unicode-flat"),
            pytest.param("Loop 140 BPM Fm.wav", "Fm", id="Fm"),
            pytest.param("LOOP_120_AMIN.wav", "Am", id="all-caps"),
            pytest.param("(Dm) loop.wav", "Dm", id="brackets"),
            pytest.param("pad_A.wav", None, id="bare-letter"),
            pytest.param("pad_Bb.wav", None, id="bare-flat-b"),
            pytest.param("Bass.wav", None, id="Bass"),
            pytest.param("Emotional.wav", None, id="word-starting-Em"),
            pytest.param("BassEm.wav", None, id="no-case-split"),
            pytest.param("made_in_a_day.wav", None, id="in-a-lowercase"),
            pytest.param("FM_bell.wav", None, id="FM-synth"),
            pytest.param("AM_radio.wav", None, id="AM-radio"),
            pytest.param("EBM_kick.wav", None, id="EBM-genre"),
        ],
    )
    def test_key(self, name: str, key: str | None) -> None:
        """Only names that clearly state a key give one."""
        assert infer_from_path(PurePath(name)).get("key") == key

    def test_everything_at_once(self) -> None:
        """A fully labelled kit file."""
        got = infer_from_path(PurePath("lofi/dusty/bank_c/07 snare 92bpm Cm.wav"))
        assert got == {
            "genre": "lofi",
            "kit": "dusty",
            "bank": "C",
            "pad": 7,
            "bpm": 92.0,
            "key": "Cm",
            "title": "snare Cm",
        }


class TestValues:
    @pytest.mark.parametrize(
        ("yaml_text", "field", "expected"),
        [
            pytest.param("bpm: 92", "bpm", 92.0, id="bpm-int"),
            pytest.param("bpm: 92.5", "bpm", 92.5, id="bpm-float"),
            pytest.param("bpm: '92'", "bpm", 92.0, id="bpm-text"),
            pytest.param("bpm: 92 BPM", "bpm", 92.0, id="bpm-with-unit"),
            pytest.param("bpm: 20", "bpm", 20.0, id="bpm-min"),
            pytest.param("bpm: 999", "bpm", 999.0, id="bpm-max"),
            pytest.param("pad: 7", "pad", 7, id="pad-int"),
            pytest.param("pad: '7'", "pad", 7, id="pad-text"),
            pytest.param("pad: 08", "pad", 8, id="pad-leading-zero-is-decimal"),
            pytest.param("pad: 010", "pad", 10, id="pad-010-is-not-octal"),
            pytest.param("bank: c", "bank", "C", id="bank-lower"),
            pytest.param("bank: Bank D", "bank", "D", id="bank-words"),
            pytest.param("key: c# minor", "key", "C#m", id="key-words"),
            pytest.param("key: F sharp", "key", "F#", id="key-sharp-word"),
            pytest.param("key: Bb", "key", "Bb", id="key-bare-flat"),
            pytest.param("key: A", "key", "A", id="key-bare-letter"),
            pytest.param("key: E♭ min", "key", "Ebm", id="key-unicode"),
            pytest.param("key: Dmaj", "key", "D", id="key-major"),
            pytest.param("tags: lofi", "tags", ("lofi",), id="tags-one"),
            pytest.param("tags: [a, b, a]", "tags", ("a", "b"), id="tags-dedupe"),
            pytest.param("tags: [90s, 808]", "tags", ("90s", "808"), id="tags-number"),
            pytest.param("title: 808", "title", "808", id="title-number"),
            pytest.param("title: 007", "title", "007", id="title-keeps-zeros"),
            pytest.param("title: On", "title", "On", id="title-on-is-not-bool"),
            pytest.param("title: 2024-01-01", "title", "2024-01-01", id="title-date"),
            pytest.param("title: AC/DC riff", "title", "AC/DC riff", id="title-slash-ok"),
            pytest.param("title: '  padded  '", "title", "padded", id="title-stripped"),
            pytest.param("genre: Hip Hop", "genre", "Hip Hop", id="genre"),
            pytest.param("kit: my.kit", "kit", "my.kit", id="kit-with-dot"),
        ],
    )
    def test_accepted(self, inbox: Path, yaml_text: str, field: str, expected: object) -> None:
        """Values in the forms musicians write, normalised."""
        source = put(inbox, "a.wav")
        put(inbox, "a.wav.yaml", yaml_text + "\n")
        assert getattr(read_metadata(source, inbox), field) == expected

    @pytest.mark.parametrize(
        ("yaml_text", "reason"),
        [
            pytest.param(
                "bpm: fast", "bpm must be a number from 20 to 999, got 'fast'", id="bpm-text"
            ),
            pytest.param("bpm: 19.9", "bpm must be a number from 20 to 999, got 19.9", id="slow"),
            pytest.param("bpm: 1000", "bpm must be a number from 20 to 999, got 1000", id="fast"),
            pytest.param("bpm: true", "bpm must be a number from 20 to 999, got true", id="bool"),
            pytest.param("bpm: .nan", "bpm must be a number from 20 to 999, got nan", id="nan"),
            pytest.param("bpm: [92]", "bpm must be a number from 20 to 999, got a list", id="list"),
            pytest.param("pad: 17", "pad must be a whole number from 1 to 16, got 17", id="pad17"),
            pytest.param("pad: 0", "pad must be a whole number from 1 to 16, got 0", id="pad0"),
            pytest.param("pad: true", "pad must be a whole number from 1 to 16, got true", id="t"),
            pytest.param("pad: 7.5", "pad must be a whole number from 1 to 16, got 7.5", id="7.5"),
            pytest.param("bank: K", "bank must be one letter from A to J, got 'K'", id="bank-K"),
            pytest.param("bank: 1", "bank must be one letter from A to J, got 1", id="bank-1"),
            pytest.param(
                "key: H", "key must be a musical key like C, F#, Bbm or A minor, got 'H'", id="H"
            ),
            pytest.param("key: 5", "key must be a musical key", id="key-number"),
            pytest.param("tags: {a: 1}", "tags must be a list of short texts", id="tags-map"),
            pytest.param("tags: [[a]]", "tags must be a list of short texts", id="tags-nested"),
            pytest.param("tags: ['']", "tags must be a list of short texts", id="tags-empty"),
            pytest.param("title: ''", "title must be one line of text", id="title-empty"),
            pytest.param('title: "a\\nb"', "title must be one line of text", id="title-newline"),
            pytest.param("title: " + "x" * 201, "title must be one line", id="title-long"),
            pytest.param("title: yes\nTITLE: no", "title is given twice", id="dup-case"),
            pytest.param("bpm: 90\nbpm: 91", "bpm is given twice", id="dup"),
            pytest.param(
                "bmp: 90",
                "unknown key 'bmp' (did you mean 'bpm'?); allowed keys: "
                "title, genre, bpm, key, tags, kit, bank, pad, trim, normalize, channels, "
                "mono_below_s",
                id="typo",
            ),
            pytest.param("1: x", "unknown key 1", id="number-key"),
        ],
    )
    def test_rejected(self, inbox: Path, yaml_text: str, reason: str) -> None:
        """One line naming the sidecar and the key, with what was expected and what was got."""
        got = rejection(inbox, "kick.wav", "kick.wav.yaml", yaml_text + "\n")
        assert got.startswith("sidecar kick.wav.yaml: ")
        assert reason in got


class TestHostileSidecars:
    @pytest.mark.parametrize(
        "value",
        [
            pytest.param("../../etc", id="dotdot-path"),
            pytest.param("..", id="dotdot"),
            pytest.param(".", id="dot"),
            pytest.param("...", id="dots"),
            pytest.param("/etc", id="absolute"),
            pytest.param("a/b", id="slash"),
            pytest.param("'a\\\\b'", id="backslash"),
            pytest.param("a\uff0fb", id="fullwidth-slash"),
            pytest.param("\uff0e\uff0e", id="fullwidth-dots"),
            pytest.param('"a\\0b"', id="nul"),
        ],
    )
    @pytest.mark.parametrize("field", [pytest.param("kit", id="kit"), pytest.param("genre")])
    def test_path_parts_are_refused(self, inbox: Path, field: str, value: str) -> None:
        """A kit or genre that could climb out of the outbox rejects the file."""
        reason = rejection(inbox, "a.wav", "a.wav.yaml", f"{field}: {value}\n")
        assert reason.startswith(f"sidecar a.wav.yaml: {field} must be a name of 1 to 64")

    def test_python_tag_runs_nothing(
        self, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A PyYAML object tag is refused by name and never constructed."""
        monkeypatch.chdir(tmp_path)
        text = '!!python/object/apply:os.system ["touch pwned"]\n'
        reason = rejection(inbox, "a.wav", "a.wav.yaml", text)
        assert reason == (
            "sidecar a.wav.yaml: YAML tag !!python/object/apply:os.system is not allowed "
            "(only plain text, numbers, true/false, lists and mappings)"
        )
        nested = 'title: !!python/object/apply:os.system ["touch pwned"]\n'
        assert "!!python/object/apply:os.system" in rejection(inbox, "b.wav", "b.yaml", nested)
        assert not (tmp_path / "pwned").exists()
        assert not (inbox / "pwned").exists()

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("title: !custom x\n", id="local-tag"),
            pytest.param("title: !!binary aGk=\n", id="binary"),
            pytest.param("tags: !!set {a, b}\n", id="set"),
            pytest.param("title: !!timestamp 2024-01-01\n", id="timestamp"),
        ],
    )
    def test_other_tags_are_refused(self, inbox: Path, text: str) -> None:
        """Only plain text, numbers, booleans, lists and mappings."""
        assert "is not allowed" in rejection(inbox, "a.wav", "a.wav.yaml", text)

    def test_billion_laughs_is_refused_fast(self, inbox: Path) -> None:
        """The first anchor stops parsing: no alias is ever expanded."""
        lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 9):
            prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
            lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
        start = time.monotonic()
        reason = rejection(inbox, "a.wav", "a.wav.yaml", "\n".join(lines) + "\n")
        assert time.monotonic() - start < 1.0
        assert reason == "sidecar a.wav.yaml: YAML anchors (&a) are not allowed"

    def test_alias_without_anchor(self, inbox: Path) -> None:
        """A dangling alias is refused as an alias, before PyYAML complains."""
        reason = rejection(inbox, "a.wav", "a.wav.yaml", "title: *x\n")
        assert reason == "sidecar a.wav.yaml: YAML aliases (*x) are not allowed"

    def test_oversized(self, inbox: Path) -> None:
        """Size is checked before parsing."""
        text = "# " + "x" * (MAX_SIDECAR_BYTES + 3 * 1024) + "\n"
        reason = rejection(inbox, "a.wav", "a.wav.yaml", text)
        assert reason == "sidecar a.wav.yaml is 68 KB, limit 64 KB"

    def test_at_the_limit_is_read(self, inbox: Path) -> None:
        """Exactly MAX_SIDECAR_BYTES is still allowed."""
        body = "bpm: 90\n# "
        text = body + "x" * (MAX_SIDECAR_BYTES - len(body) - 1) + "\n"
        assert len(text.encode()) == MAX_SIDECAR_BYTES
        source = put(inbox, "a.wav")
        put(inbox, "a.wav.yaml", text)
        assert read_metadata(source, inbox).bpm == 90.0

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            pytest.param(
                b"title: caf\xe9\n",
                "sidecar a.wav.yaml: not UTF-8 text (byte 0xe9 at position 10); save it as UTF-8",
                id="latin-1",
            ),
            pytest.param(
                b"\x89PNG\r\n\x1a\n\x00\x00", "sidecar a.wav.yaml: not UTF-8 text", id="png"
            ),
            pytest.param(
                b"RIFF\x00\x00\x00\x00WAVE",
                "sidecar a.wav.yaml: not a text file (control character #x0000",
                id="nul-bytes",
            ),
        ],
    )
    def test_binary(self, inbox: Path, data: bytes, reason: str) -> None:
        """Binary junk gets a reason, not a traceback."""
        assert rejection(inbox, "a.wav", "a.wav.yaml", data).startswith(reason)

    def test_utf8_bom_is_fine(self, inbox: Path) -> None:
        """Windows editors add a BOM; that is still UTF-8."""
        source = put(inbox, "a.wav")
        put(inbox, "a.wav.yaml", "\ufefftitle: Café\n".encode())
        assert read_metadata(source, inbox).title == "Café"

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            pytest.param(
                "- bpm: 90\n",
                "sidecar a.wav.yaml: must be a mapping of keys like 'bpm: 92', got a list",
                id="top-level-list",
            ),
            pytest.param(
                "just words\n",
                "sidecar a.wav.yaml: must be a mapping of keys like 'bpm: 92', got 'just words'",
                id="top-level-text",
            ),
            pytest.param(
                "bpm: [90\n",
                "sidecar a.wav.yaml: not valid YAML: ",
                id="syntax",
            ),
            pytest.param(
                "bpm: 90\n---\nbpm: 91\n",
                "sidecar a.wav.yaml: not valid YAML: expected a single document",
                id="two-documents",
            ),
            pytest.param(
                "title: " + "[" * 50 + "]" * 50 + "\n",
                "sidecar a.wav.yaml: lists or mappings are nested too deeply",
                id="deep",
            ),
            pytest.param(
                "bpm: " + "9" * 5000 + "\n",
                "sidecar a.wav.yaml: a number has too many digits",
                id="huge-int",
            ),
            pytest.param("<<: {bpm: 90}\n", "sidecar a.wav.yaml: unknown key '<<'", id="merge"),
        ],
    )
    def test_bad_structure(self, inbox: Path, text: str, reason: str) -> None:
        """Malformed or oddly shaped YAML is one clear line."""
        assert rejection(inbox, "a.wav", "a.wav.yaml", text).startswith(reason)


class TestParseDefaults:
    def test_clean_values(self) -> None:
        """Values are normalised, empty ones dropped, and the result checks again unchanged."""
        clean = parse_defaults(
            {"genre": "house", "bank": "bank_b", "key": "f# minor", "bpm": "120", "kit": None},
            "defaults",
        )
        assert clean == {"genre": "house", "bank": "B", "key": "F#m", "bpm": 120.0}
        assert parse_defaults(clean, "defaults") == clean
        assert parse_defaults({"tags": ("a",)}, "x") == {"tags": ("a",)}

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            pytest.param(
                {"bpm": "fast"},
                "config defaults: bpm must be a number from 20 to 999, got 'fast'",
                id="bpm",
            ),
            pytest.param(
                {"title": "x"}, "config defaults: title cannot be set in defaults", id="t"
            ),
            pytest.param({"pad": 1}, "config defaults: pad cannot be set in defaults", id="pad"),
            pytest.param({"kit": "../x"}, "config defaults: kit must be a name", id="kit"),
            pytest.param({"gnre": "x"}, "did you mean 'genre'?", id="typo"),
            pytest.param(["genre"], "config defaults: must be a mapping", id="not-mapping"),
        ],
    )
    def test_errors(self, values: Any, message: str) -> None:
        """ValueError with the place and what is wrong, for the config to report."""
        with pytest.raises(ValueError) as caught:
            parse_defaults(values, "config defaults")
        assert message in str(caught.value)

    def test_read_metadata_checks_defaults(self, inbox: Path) -> None:
        """Unchecked defaults passed straight in are still checked (a caller bug)."""
        with pytest.raises(ValueError, match="defaults: bank must be one letter"):
            read_metadata(put(inbox, "a.wav"), inbox, {"bank": "Z"})


class TestParseKey:
    @pytest.mark.parametrize(
        ("text", "key"),
        [
            pytest.param("C", "C", id="C"),
            pytest.param("c#m", "C#m", id="c#m"),
            pytest.param("AM", "Am", id="caps-M-is-minor"),
            pytest.param("a_minor", "Am", id="a_minor"),
            pytest.param("Gb major", "Gb", id="Gb-major"),
            pytest.param("B flat minor", "Bbm", id="flat-word"),
            pytest.param("F♯", "F#", id="unicode-sharp"),
            pytest.param("Cm7", None, id="chord"),
            pytest.param("H", None, id="H"),
            pytest.param("", None, id="empty"),
        ],
    )
    def test_normal_form(self, text: str, key: str | None) -> None:
        """Letter upper case, # or b, m for minor, nothing for major."""
        assert parse_key(text) == key


class TestMetadata:
    def test_as_dict_is_json(self, inbox: Path) -> None:
        """The journal stores as_dict() as JSON: every field plus origins."""
        source = put(inbox, "lofi/A/03_rim_90bpm.wav")
        put(inbox, "lofi/A/03_rim_90bpm.yaml", "tags: [dusty]\n")
        data = read_metadata(source, inbox).as_dict()
        assert json.loads(json.dumps(data)) == data
        assert list(data) == [*FIELDS, "origins"]
        assert data["tags"] == ["dusty"]
        assert data["origins"] == {
            "title": "path",
            "genre": "path",
            "bpm": "path",
            "tags": "sidecar:03_rim_90bpm.yaml",
            "kit": "path",
            "bank": "path",
            "pad": "path",
        }

    def test_frozen(self) -> None:
        """Fields cannot change, a caller's dict cannot change the origins, and it pickles."""
        origins = {"title": "path"}
        meta = Metadata(title="x", origins=origins)
        origins["title"] = "changed"
        assert meta.origins == {"title": "path"}
        with pytest.raises(AttributeError):
            meta.title = "y"  # type: ignore[misc]
        assert pickle.loads(pickle.dumps(meta)) == meta  # plans cross to worker processes
