"""Tests for sp404d.naming.names: ASCII, FAT32-safe, unit-length and collision-free names."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sp404d.config.loading import build_config
from sp404d.journal.journal import Journal
from sp404d.metadata.read import Metadata
from sp404d.naming.layout import place
from sp404d.naming.names import (
    RESERVED_NAMES,
    SAFE_CHARS,
    SANITIZE_RULES,
    ascii_text,
    fold,
    is_reserved,
    safe_component,
    sample_stem,
    unique_filename,
)
from sp404d.pipeline.plan import Plan
from sp404d.pipeline.planner import Planner, Request

# Strings that have broken file names somewhere: metadata, sync tools, other people's converters.
NASTY = [
    "",
    " ",
    ".",
    "..",
    "...",
    "../../etc/passwd",
    "/abs/path",
    "C:\\Windows\\System32",
    "a/b\\c",
    "\\\\server\\share",
    "~/x",
    "-rf",
    ".hidden",
    "._kick.wav",
    "trailing dot.",
    "trailing space ",
    "trailing . . .",
    '<>:"/\\|?*',
    "".join(chr(i) for i in range(32)),
    "\x7f\x85\u200b\u202e\ufeff",
    "CON",
    "con.wav",
    "Aux",
    "nul.txt",
    "COM1",
    "lpt9.tar.gz",
    "COM¹",
    "😀🎵",
    "👨‍👩‍👧 family",
    "🇯🇵",
    "キック",
    "ッ",
    "北京鼓声",
    "한국어 킥",
    "Привет мир",
    "مرحبا",
    "Ünïcödé Bäss",
    "e\u0301\u0301\u0301",
    "\udcff\udcfe",
    "ﬁ½①Ⅻ™©",
    "«quoted» “smart” \u2018single\u2019",
    "a" * 300,
    "é" * 300,
    "北" * 100,
    "_-_-_-_",
    "a -_- b",
    "-_.-_. x .-_.-_",
    "Kick   \t\n  Drum",
    "$HOME %PATH% `cmd` $(cmd)",
    "KICKDR~1.WAV",
    "x" * 22 + ".",
    "x" * 22 + " y",
]

SAFE_NAME = re.compile(r"[A-Za-z0-9_\-+#().]+")


def assert_safe(name: str, max_len: int) -> None:
    """Every guarantee a generated name carries, checked in one place."""
    assert name.isascii(), name
    assert SAFE_NAME.fullmatch(name), name
    assert 1 <= len(name) <= max_len, name
    assert not is_reserved(name), name
    assert name not in {".", ".."}, name
    assert name[0] not in "._- ", name
    assert name[-1] not in ". ", name
    assert "/" not in name and "\\" not in name, name
    assert "~" not in name, name


class TestAsciiText:
    """Transliteration to readable ASCII, before any path rule."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("Café", "Cafe", id="accent"),
            pytest.param("Ünïcödé Bäss", "Unicode Bass", id="umlauts"),
            pytest.param("Cafe\u0301", "Cafe", id="decomposed-nfd"),
            pytest.param("カメラ", "kamera", id="katakana"),
            pytest.param("キック", "kikku", id="katakana-small-tsu"),
            pytest.param("北京", "BeiJing", id="chinese"),
            pytest.param("\u1112\u1161\u11ab", "Han", id="hangul-jamo-nfd"),
            pytest.param("Привет", "Privet", id="cyrillic"),
            pytest.param("Straße", "Strasse", id="sharp-s"),
            pytest.param("😀🎵", "", id="emoji-dropped"),
            pytest.param("👍🏽 Kick", " Kick", id="emoji-with-modifier"),
            pytest.param("A\tB\nC", "A B C", id="tab-newline-to-space"),
            pytest.param("A\x00B\x1fC\x7fD\x85E", "ABCDE", id="controls-removed"),
            pytest.param("a/b:c", "a/b:c", id="unsafe-kept-for-later"),
            pytest.param("", "", id="empty"),
        ],
    )
    def test_ascii_text(self, text: str, expected: str) -> None:
        """Readable ASCII, with nothing decided yet about paths."""
        assert ascii_text(text) == expected

    @pytest.mark.parametrize("text", NASTY)
    def test_always_printable_ascii(self, text: str) -> None:
        """Whatever goes in, only printable ASCII comes out."""
        out = ascii_text(text)
        assert out.isascii()
        assert all(" " <= c <= "~" for c in out)


class TestSafeComponent:
    """One folder name or stem, safe on FAT32 and on the unit."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("Café", "Cafe", id="accent"),
            pytest.param("Ünïcödé Bäss", "Unicode_Bass", id="umlauts-and-space"),
            pytest.param("キック", "kikku", id="japanese"),
            pytest.param("北京 鼓", "BeiJing_Gu", id="chinese"),
            pytest.param("Lo-Fi Hip Hop", "Lo-Fi_Hip_Hop", id="plain"),
            pytest.param("Kick (Remix) #2 + FX", "Kick_(Remix)_#2_+_FX", id="safe-punctuation"),
            pytest.param("Artist - Title", "Artist-Title", id="spaced-dash"),
            pytest.param("a - _ -- b", "a-b", id="dash-and-gap-runs"),
            pytest.param("Don't Stop", "Dont_Stop", id="apostrophe"),
            pytest.param("Drum & Bass", "Drum+Bass", id="ampersand"),
            pytest.param("A   B\t\tC", "A_B_C", id="whitespace-runs"),
            pytest.param("a__b", "a_b", id="underscore-runs"),
            pytest.param('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j", id="fat-forbidden"),
            pytest.param("a\x00b\x01c\x1fd", "abcd", id="control-bytes"),
            pytest.param("~tilde$x%y", "tilde_x_y", id="tilde-dollar-percent"),
            pytest.param("name.", "name", id="trailing-dot"),
            pytest.param("name . . ", "name", id="trailing-dots-and-spaces"),
            pytest.param(".hidden", "hidden", id="leading-dot"),
            pytest.param("._kick", "kick", id="apple-double"),
            pytest.param("-x-", "x", id="edge-dashes"),
            pytest.param("v1.2 final", "v1.2_final", id="inner-dot-kept"),
            pytest.param("..", "untitled", id="dotdot"),
            pytest.param(".", "untitled", id="dot"),
            pytest.param("../../etc", "etc", id="traversal"),
            pytest.param("/abs/path", "abs_path", id="absolute"),
            pytest.param("a/b\\c", "a_b_c", id="separators"),
            pytest.param("C:\\Windows", "C_Windows", id="drive-letter"),
            pytest.param("", "untitled", id="empty"),
            pytest.param("   ", "untitled", id="blank"),
            pytest.param("😀🎵", "untitled", id="emoji-only"),
            pytest.param("\u200b\ufeff", "untitled", id="invisible-only"),
        ],
    )
    def test_sanitises(self, text: str, expected: str) -> None:
        """Each rule of the table, one case at a time."""
        assert safe_component(text) == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("CON", "CON_", id="con"),
            pytest.param("con", "con_", id="con-lower"),
            pytest.param("Aux", "Aux_", id="aux-mixed-case"),
            pytest.param("PRN", "PRN_", id="prn"),
            pytest.param("nul", "nul_", id="nul"),
            pytest.param("COM1", "COM1_", id="com1"),
            pytest.param("LPT9", "LPT9_", id="lpt9"),
            pytest.param("nul.txt", "nul_.txt", id="with-extension"),
            pytest.param("con.tar.gz", "con_.tar.gz", id="with-two-extensions"),
            pytest.param("COM¹", "COM1_", id="superscript-digit"),
            pytest.param(" CON ", "CON_", id="padded"),
            pytest.param(".con", "con_", id="leading-dot"),
            pytest.param("CONSOLE", "CONSOLE", id="longer-name-is-fine"),
            pytest.param("COM10", "COM10", id="com10-is-fine"),
            pytest.param("CON_", "CON_", id="already-suffixed"),
        ],
    )
    def test_reserved_names_get_suffix(self, text: str, expected: str) -> None:
        """Device names, in any case and with any extension, get a ``_``."""
        assert safe_component(text) == expected

    @pytest.mark.parametrize(
        ("text", "max_len", "expected"),
        [
            pytest.param("abcdef", 3, "abc", id="cut"),
            pytest.param("ab cdef", 3, "ab", id="cut-at-gap"),
            pytest.param("ab.cdef", 3, "ab", id="cut-at-dot"),
            pytest.param("Café au lait", 5, "Cafe", id="cut-after-transliteration"),
            pytest.param("CON", 3, "CO_", id="reserved-at-limit"),
            pytest.param("con.wav", 4, "con_", id="reserved-extension-dropped"),
            pytest.param("con.wav", 5, "con_", id="reserved-no-dangling-dot"),
            pytest.param("con.wav", 6, "con_.w", id="reserved-extension-cut"),
            pytest.param("CONSOLE", 3, "CO_", id="cut-into-reserved"),
            pytest.param("", 3, "unt", id="fallback-cut"),
            pytest.param("x", 1, "x", id="one-character"),
        ],
    )
    def test_max_len(self, text: str, max_len: int, expected: str) -> None:
        """Cut to ``max_len`` ASCII characters, cleaned again after the cut."""
        assert safe_component(text, max_len=max_len) == expected

    def test_fallback_is_sanitised(self) -> None:
        """A fallback from config is held to the same rules as metadata."""
        assert safe_component("", fallback="unknown genre/") == "unknown_genre"
        assert safe_component("", fallback="con") == "con_"

    def test_unusable_fallback_is_an_error(self) -> None:
        """A fallback with nothing safe in it is a programming error, not a silent empty name."""
        with pytest.raises(ValueError, match="fallback"):
            safe_component("", fallback="..")

    def test_max_len_must_be_positive(self) -> None:
        """No name fits in zero characters."""
        with pytest.raises(ValueError, match="max_len"):
            safe_component("x", max_len=0)

    @pytest.mark.parametrize("text", NASTY)
    @pytest.mark.parametrize("max_len", [3, 8, 23, 64])
    def test_nasty_strings_are_safe(self, text: str, max_len: int) -> None:
        """Whatever metadata says, the result is one safe path part of the allowed length."""
        assert_safe(safe_component(text, max_len=max_len), max_len)

    @pytest.mark.parametrize("text", NASTY)
    def test_idempotent(self, text: str) -> None:
        """A safe name is its own safe name, so re-running never renames output."""
        once = safe_component(text)
        assert safe_component(once) == once

    @pytest.mark.parametrize("text", ["..", "../../etc", "/abs/path", "a/b\\c", "..\\..\\x"])
    def test_stays_inside_the_outbox(self, text: str, tmp_path: Path) -> None:
        """Joined to a folder, a component names a child of that folder and nothing else."""
        child = tmp_path / safe_component(text)
        assert child.parent == tmp_path
        assert child.resolve().parent == tmp_path.resolve()


class TestSampleStem:
    """The stem of a file on the unit: prefix kept, title cut to fit."""

    @pytest.mark.parametrize(
        ("title", "prefix", "expected"),
        [
            pytest.param("Kick", "", "Kick", id="no-prefix"),
            pytest.param("Kick", "pad_07_", "pad_07_Kick", id="pad-prefix"),
            pytest.param("Café Loop", "092_", "092_Cafe_Loop", id="bpm-prefix"),
            pytest.param(
                "A very long sample title here", "092bpm_", "092bpm_A_very_long_samp", id="cut"
            ),
            pytest.param(
                "Super Long Title Of A Break", "", "Super_Long_Title_Of_A_B", id="cut-no-prefix"
            ),
            pytest.param("Ab cdefghijklmnopqrstuv", "pad_07_", "pad_07_Ab_cdefghijklmno", id="fit"),
            pytest.param(
                "Ab cdefghijklmn opq", "pad_07_", "pad_07_Ab_cdefghijklmn", id="cut-on-gap"
            ),
            pytest.param("😀🎵", "pad_07_", "pad_07_sample", id="emoji-fallback"),
            pytest.param("", "", "sample", id="empty"),
            pytest.param("キック", "pad_01_", "pad_01_kikku", id="japanese"),
            pytest.param("CON", "", "CON_", id="reserved-alone"),
            pytest.param("CON", "pad_01_", "pad_01_CON", id="reserved-after-prefix"),
            pytest.param("x", "pad 07 ", "pad_07_x", id="prefix-sanitised"),
            pytest.param("x", "../", "x", id="prefix-traversal"),
            pytest.param("Kick", "  ", "Kick", id="blank-prefix"),
        ],
    )
    def test_sample_stem(self, title: str, prefix: str, expected: str) -> None:
        """The prefix stays whole; the end of the title is what gets cut."""
        assert sample_stem(title, prefix=prefix) == expected

    @pytest.mark.parametrize(
        ("prefix", "max_len", "expected"),
        [
            pytest.param(
                "a_very_long_prefix_that_goes_on", 23, "a_very_long_prefix_that", id="cut"
            ),
            pytest.param("pad_07_", 7, "pad_07", id="exact-no-dangling-underscore"),
            pytest.param("pad_07_", 6, "pad_07", id="one-short"),
            pytest.param("pad_07_", 4, "pad", id="cut-at-underscore"),
            pytest.param("CON_", 3, "CO_", id="cut-into-reserved"),
        ],
    )
    def test_prefix_longer_than_limit(self, prefix: str, max_len: int, expected: str) -> None:
        """A prefix that leaves no room is cut sensibly and the title is dropped."""
        assert sample_stem("Kick", prefix=prefix, max_len=max_len) == expected

    def test_one_character_of_room(self) -> None:
        """With one character left, the title contributes one character."""
        assert sample_stem("Kick", prefix="pad_07_", max_len=8) == "pad_07_K"

    def test_name_length_setting(self) -> None:
        """``max_len`` is a setting: a longer limit keeps more of the title."""
        title = "A very long sample title here"
        assert sample_stem(title, prefix="092_", max_len=40) == "092_A_very_long_sample_title_here"

    @pytest.mark.parametrize("title", NASTY)
    @pytest.mark.parametrize("prefix", ["", "pad_07_", "092bpm_", "92.5bpm_", "../", "CO"])
    def test_nasty_titles_are_safe(self, title: str, prefix: str) -> None:
        """Every stem is a safe name within the unit's 23 characters."""
        assert_safe(sample_stem(title, prefix=prefix), 23)

    @pytest.mark.parametrize("title", NASTY)
    def test_prefix_is_kept(self, title: str) -> None:
        """The pad number survives any title."""
        assert sample_stem(title, prefix="pad_07_").startswith("pad_07_")


class TestFold:
    """The key that decides whether two names are one file on the card."""

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            pytest.param("Kick.wav", "kick.wav", id="case"),
            pytest.param("KICK.WAV", "kick.wav", id="all-caps"),
            pytest.param("kick.wav.", "kick.wav", id="trailing-dot"),
            pytest.param("kick.wav ", "kick.wav", id="trailing-space"),
            pytest.param("Caf\u00e9.wav", "Cafe\u0301.wav", id="nfc-nfd"),
            pytest.param("STRASSE.wav", "straße.wav", id="sharp-s"),
            pytest.param("I.wav", "\u0131.wav", id="dotless-i"),
        ],
    )
    def test_same_file(self, a: str, b: str) -> None:
        """Names the card (or a Windows or macOS client) may treat as one file fold alike."""
        assert fold(a) == fold(b)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            pytest.param("kick.wav", "kick.aif", id="extension"),
            pytest.param("kick_2.wav", "kick.wav", id="suffix"),
            pytest.param("kick.wav", "kic.wav", id="letter"),
        ],
    )
    def test_different_files(self, a: str, b: str) -> None:
        """Names that differ in more than case stay apart."""
        assert fold(a) != fold(b)

    def test_idempotent(self) -> None:
        """Folding a folded key changes nothing, so pre-folded sets can be passed in."""
        for name in ["Kick.wav", "straße", "ǅ", "ΣΑΣ"]:
            assert fold(fold(name)) == fold(name)


class TestUniqueFilename:
    """A free name in the folder: two sources never overwrite each other."""

    @pytest.mark.parametrize(
        ("stem", "taken", "expected"),
        [
            pytest.param("kick", set(), "kick.wav", id="free"),
            pytest.param("kick", {"snare.wav"}, "kick.wav", id="other-name"),
            pytest.param("kick", {"kick.aif"}, "kick.wav", id="other-extension"),
            pytest.param("Kick", {"kick.wav"}, "Kick_2.wav", id="case-collision"),
            pytest.param("KICK", {"kick.wav"}, "KICK_2.wav", id="upper-stem"),
            pytest.param("kick", {"kick.wav", "kick_2.wav"}, "kick_3.wav", id="third"),
            pytest.param("Kick", {"kick.wav", "kick_2.wav"}, "Kick_3.wav", id="third-mixed-case"),
            pytest.param("kick", {"kick.wav", "kick_3.wav"}, "kick_2.wav", id="gap-reused"),
            pytest.param("kick_2", {"kick_2.wav"}, "kick_2_2.wav", id="stem-with-number"),
        ],
    )
    def test_unique(self, stem: str, taken: set[str], expected: str) -> None:
        """The first free of ``stem``, ``stem_2``, ``stem_3``..., ignoring case."""
        assert unique_filename(stem, ".wav", taken) == expected

    def test_collision_at_limit(self) -> None:
        """A 23-character stem is shortened so that the suffixed stem is still 23."""
        stem = "Very_Long_Sample_Name_X"
        assert len(stem) == 23
        assert unique_filename(stem, ".wav", {stem.lower() + ".wav"}) == (
            "Very_Long_Sample_Name_2.wav"
        )

    def test_no_dangling_separator_before_suffix(self) -> None:
        """A cut that lands on ``_`` or ``.`` does not leave ``__2`` or ``._2``."""
        stem = "pad_07_Kick_Snare_Hat_A"
        assert unique_filename(stem, ".wav", {fold(stem + ".wav")}) == "pad_07_Kick_Snare_Hat_2.wav"
        stem = "pad_07_Kick_Snare_Ha.A"
        assert unique_filename(stem, ".wav", {fold(stem + ".wav")}) == "pad_07_Kick_Snare_Ha_2.wav"

    def test_many_collisions(self) -> None:
        """Past ``_9`` the suffix grows and the stem shrinks to make room."""
        stem = "Very_Long_Sample_Name_X"
        taken = {fold(f"{stem}.wav")}
        names = []
        for _ in range(120):
            name = unique_filename(stem, ".wav", taken)
            names.append(name)
            taken.add(fold(name))
        assert names[0] == "Very_Long_Sample_Name_2.wav"
        assert names[8] == "Very_Long_Sample_Nam_10.wav"
        assert names[98] == "Very_Long_Sample_Na_100.wav"
        assert len({fold(n) for n in names}) == len(names)
        for name in names:
            assert_safe(name.removesuffix(".wav"), 23)

    def test_two_sources_same_clean_name(self) -> None:
        """'Café.wav' and 'Cafe.wav' clean to one stem; the second gets its own file."""
        taken: set[str] = set()
        first = unique_filename(sample_stem("Café"), ".wav", taken)
        taken.add(fold(first))
        second = unique_filename(sample_stem("cafe"), ".wav", taken)
        assert (first, second) == ("Cafe.wav", "cafe_2.wav")

    def test_longer_stem_than_limit(self) -> None:
        """A stem the caller made longer than ``max_len`` is not cut further than needed."""
        stem = "x" * 30
        assert unique_filename(stem, ".wav", {stem + ".wav"}) == "x" * 28 + "_2.wav"

    def test_tiny_limit_still_terminates(self) -> None:
        """With no room for the stem, bare numbers keep every name distinct."""
        taken = {"ab.wav", "2.wav"}
        names = []
        for _ in range(15):
            name = unique_filename("ab", ".wav", taken, max_len=2)
            names.append(name)
            taken.add(name)
        assert names[:2] == ["3.wav", "4.wav"]
        assert len(set(names)) == len(names)

    def test_accepts_any_collection(self) -> None:
        """A list or a frozenset of keys works as well as a set."""
        assert unique_filename("A", ".WAV", ["a.wav"]) == "A_2.WAV"
        assert unique_filename("a", ".wav", frozenset({"a.wav"})) == "a_2.wav"

    def test_folded_listing(self) -> None:
        """A directory listing folded with :func:`fold` is what ``taken`` expects."""
        listing = ["Kick.WAV", "KICK_2.wav", "snare.wav"]
        assert unique_filename("kick", ".wav", {fold(n) for n in listing}) == "kick_3.wav"


class TestData:
    """The rule tables themselves."""

    def test_reserved_names(self) -> None:
        """Every FAT/Windows device name is listed, upper case."""
        expected = {"CON", "PRN", "AUX", "NUL"}
        expected |= {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
        assert expected <= RESERVED_NAMES
        assert all(name == name.upper() for name in RESERVED_NAMES)

    def test_rules_leave_only_safe_characters(self) -> None:
        """Every printable ASCII character is either kept or replaced by the table."""
        text = "".join(chr(i) for i in range(32, 127))
        for pattern, replacement in SANITIZE_RULES:
            text = pattern.sub(replacement, text)
        assert SAFE_CHARS.fullmatch(text)
        assert SAFE_CHARS.pattern == SAFE_NAME.pattern


class TestPlacementProperties:
    """Whatever text metadata holds, ``place`` names a file inside the outbox, FAT-safe."""

    @given(
        title=st.text(max_size=80) | st.sampled_from(NASTY),
        genre=st.none() | st.text(max_size=80) | st.sampled_from(NASTY),
        kit=st.none() | st.text(max_size=80) | st.sampled_from(NASTY),
        bpm=st.none() | st.floats(20, 999),
        layout=st.sampled_from(["flat", "genre", "bpm", "kit"]),
        name_length=st.integers(8, 64),
        slot=st.tuples(st.sampled_from("ABCDEFGHIJ"), st.integers(1, 16)),
    )
    def test_never_escapes_the_outbox_and_folders_are_fat_safe(
        self,
        tmp_path: Path,
        title: str,
        genre: str | None,
        kit: str | None,
        bpm: float | None,
        layout: str,
        name_length: int,
        slot: tuple[str, int],
    ) -> None:
        meta = Metadata(title=title, genre=genre, kit=kit, bpm=bpm)
        placement = place(meta, layout, name_length=name_length, slot=slot)
        outbox = tmp_path / "out"
        target = outbox.joinpath(*placement.folder.parts, placement.stem + ".wav")
        assert target.parent.resolve().is_relative_to(outbox.resolve())
        assert len(placement.folder.parts) == {"flat": 0, "kit": 2}.get(layout, 1)
        for part in placement.folder.parts:
            assert_safe(part, 64)
        assert_safe(placement.stem, name_length)
        if layout == "kit":
            assert placement.folder.parts[1] == f"bank_{slot[0]}"
            assert placement.stem.startswith(f"pad_{slot[1]:02d}_")


# Folder names a file system takes, in any script, with the case variants FAT32 folds together.
_folder_text = st.text(
    alphabet=st.characters(categories=["Lu", "Ll", "Lt", "Nd", "Zs"]), min_size=1, max_size=12
).filter(lambda t: t.strip() not in ("", ".", ".."))


class TestFolderCase:
    """Planned through the real planner: one folder per FAT32 name, one pad book per kit."""

    @given(
        bases=st.lists(_folder_text, min_size=1, max_size=4),
        layout=st.sampled_from(["genre", "kit"]),
    )
    def test_one_folder_per_case_folded_name(
        self, tmp_path: Path, bases: list[str], layout: str
    ) -> None:
        run = tmp_path / uuid.uuid4().hex
        inbox, outbox = run / "in", run / "out"
        variants = [v for b in bases for v in dict.fromkeys((b, b.upper(), b.lower(), b.title()))]
        requests = []
        config = build_config(
            {
                "inbox": str(inbox),
                "outbox": str(outbox),
                "layout": layout,
                "journal": str(run / "j"),
            }
        )
        for i, folder in enumerate(variants):
            source = inbox / folder / f"s{i}.wav"
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_bytes(b"")
            requests.append(Request(source, inbox, config))
        with Journal(run / "j") as journal:
            plans = [p for p in Planner(journal).plan_many(requests) if isinstance(p, Plan)]
        tops = {p.folder.parts[0] for p in plans}
        assert len({fold(t) for t in tops}) == len(tops), tops
        for p in plans:
            assert p.final.parent == outbox.joinpath(*p.folder.parts)
        slots = [(fold(p.folder.parts[0]), p.slot) for p in plans if p.slot is not None]
        assert len(set(slots)) == len(slots), slots
