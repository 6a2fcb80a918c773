"""Tests for sp404d.watch.ignore: the names each tool leaves behind, and real samples that pass."""

from __future__ import annotations

from pathlib import PurePath, PurePosixPath, PureWindowsPath

import pytest

from sp404d.watch.ignore import DEFAULT_IGNORE, IgnoreRule, ignore_reason, is_ignored

# (relative path, words the reason must contain)
TEMP_AND_JUNK = [
    pytest.param("~SA1B2C3.TMP", "sp404d", id="sp404d-temp"),
    pytest.param("kick.wav.error.txt", "sp404d", id="sp404d-reason-file"),
    pytest.param(".syncthing.kick.wav.tmp", "Syncthing", id="syncthing-temp-unix"),
    pytest.param("~syncthing~kick.wav.tmp", "Syncthing", id="syncthing-temp-windows"),
    pytest.param(".stversions", "Syncthing", id="syncthing-versions-folder"),
    pytest.param(".stversions/kick~20240101-120000.wav", "Syncthing", id="syncthing-old-version"),
    pytest.param(".stfolder", "Syncthing", id="syncthing-marker"),
    pytest.param(".stignore", "Syncthing", id="syncthing-ignore-list"),
    pytest.param(".dropbox.cache/kick.wav", "Dropbox", id="dropbox-staging"),
    pytest.param(".dropbox", "Dropbox", id="dropbox-marker"),
    pytest.param(".kick.wav.~3f9a1c", "Nextcloud", id="nextcloud-download"),
    pytest.param("kick.wav.part", "partial", id="nextcloud-or-firefox-part"),
    pytest.param("kick.wav.filepart", "partial", id="owncloud-filepart"),
    pytest.param("~$session.docx", "Office", id="office-lock"),
    pytest.param(".~lock.notes.odt#", "LibreOffice", id="libreoffice-lock"),
    pytest.param("kick.wav.partial", "OneDrive", id="onedrive-partial"),
    pytest.param("kick.tmp", "temporary", id="onedrive-tmp"),
    pytest.param(".kick.wav.Xy12Ab", "rsync", id="rsync-temp"),
    pytest.param("kick.wav.crdownload", "Chrome", id="chrome-download"),
    pytest.param("kick.wav.download", "Safari", id="safari-download"),
    pytest.param("kick.wav.download/kick.wav", "Safari", id="safari-download-bundle"),
    pytest.param(".kick.wav.icloud", "iCloud", id="icloud-stub"),
    pytest.param(".DS_Store", "Finder", id="ds-store"),
    pytest.param("drums/.DS_Store", "Finder", id="ds-store-in-subfolder"),
    pytest.param("._kick.wav", "AppleDouble", id="apple-double"),
    pytest.param("Icon\r", "icon", id="macos-folder-icon"),
    pytest.param(".Spotlight-V100/Store-V2/x", "Spotlight", id="spotlight"),
    pytest.param(".fseventsd/0000", "event", id="fseventsd"),
    pytest.param(".Trashes/501/kick.wav", "trash", id="macos-trash"),
    pytest.param(".TemporaryItems/folders.501", "temporary", id="macos-temporary-items"),
    pytest.param("Thumbs.db", "thumbnail", id="thumbs-db"),
    pytest.param("THUMBS.DB", "thumbnail", id="thumbs-db-upper-case"),
    pytest.param("drums/desktop.ini", "Windows", id="desktop-ini"),
    pytest.param("$RECYCLE.BIN/S-1-5-21/kick.wav", "recycle", id="recycle-bin"),
    pytest.param("System Volume Information/IndexerVolumeGuid", "Windows", id="svi"),
    pytest.param(".Trash-1000/files/kick.wav", "trash", id="linux-trash"),
    pytest.param(".hidden.wav", "hidden", id="hidden-file"),
    pytest.param("drums/.cache/kick.wav", "hidden", id="hidden-folder"),
]

REAL_SAMPLES = [
    pytest.param("kick.wav", id="plain"),
    pytest.param("Kick 01.WAV", id="spaces-upper-case"),
    pytest.param("drums/909/kick.wav", id="subfolders"),
    pytest.param("~my_tilde_name.wav", id="leading-tilde"),
    pytest.param("foo.part.wav", id="part-inside-name"),
    pytest.param("loop.tmp.wav", id="tmp-inside-name"),
    pytest.param("error.txt.wav", id="error-txt-inside-name"),
    pytest.param("kick.sync-conflict-20240101-120000-ABCDEFG.wav", id="syncthing-conflict"),
    pytest.param("kick (conflicted copy 2024-01-01).wav", id="dropbox-conflict"),
    pytest.param("Icon.wav", id="icon-wav"),
    pytest.param("Thumbs.db.wav", id="thumbs-db-wav"),
    pytest.param("~Snare.wav", id="tilde-s-not-temp"),
    pytest.param("kick.wav.sp404.yaml", id="sidecar"),
]


class TestIgnoreRule:
    @pytest.mark.parametrize(
        ("pattern", "name", "expected"),
        [
            pytest.param("*.tmp", "x.tmp", True, id="suffix"),
            pytest.param("*.tmp", "X.TMP", True, id="case-insensitive"),
            pytest.param("*.tmp", "x.tmp.wav", False, id="whole-name-only"),
            pytest.param(".*.??????", ".a.abcdef", True, id="six-char-suffix"),
            pytest.param(".*.??????", ".a.abcde", False, id="five-char-suffix"),
            pytest.param("$RECYCLE.BIN", "$recycle.bin", True, id="dollar-is-literal"),
        ],
    )
    def test_matches(self, pattern: str, name: str, expected: bool) -> None:
        """Globs match one whole component, ignoring case."""
        assert IgnoreRule(pattern, "why").matches(name) is expected

    def test_every_default_rule_names_a_reason(self) -> None:
        """Debug logs print the reason, so none may be empty."""
        assert all(rule.reason for rule in DEFAULT_IGNORE)

    def test_every_default_rule_is_reachable(self) -> None:
        """No rule is shadowed by an earlier one: each gives the reason for some sample name."""
        reached = {ignore_reason(PurePosixPath(str(param.values[0]))) for param in TEMP_AND_JUNK}
        assert {rule.reason for rule in DEFAULT_IGNORE} <= reached

    def test_hidden_catch_all_is_last(self) -> None:
        """The specific rules come first so that the log names the tool, not just 'hidden'."""
        assert DEFAULT_IGNORE[-1].pattern == ".*"


class TestIgnoreReason:
    @pytest.mark.parametrize(("relpath", "words"), TEMP_AND_JUNK)
    def test_temp_and_junk_are_ignored(self, relpath: str, words: str) -> None:
        """Every tool's temp name and every OS junk file is skipped, with the tool named."""
        reason = ignore_reason(PurePosixPath(relpath))
        assert reason is not None
        assert words.lower() in reason.lower()

    @pytest.mark.parametrize("relpath", REAL_SAMPLES)
    def test_real_samples_are_processed(self, relpath: str) -> None:
        """Names a musician gives samples are never mistaken for temp files."""
        assert ignore_reason(PurePosixPath(relpath)) is None

    def test_topmost_component_gives_the_reason(self) -> None:
        """A temp file inside an ignored folder is reported as the folder."""
        reason = ignore_reason(PurePosixPath(".stversions/.syncthing.kick.wav.tmp"))
        assert reason == "Syncthing old versions folder"

    def test_windows_paths(self) -> None:
        """Components are checked the same way whatever the path flavour."""
        assert ignore_reason(PureWindowsPath(r"drums\Thumbs.db")) == "Windows thumbnail cache"
        assert ignore_reason(PureWindowsPath(r"drums\kick.wav")) is None

    @pytest.mark.parametrize(
        "relpath",
        [
            pytest.param(PurePosixPath("/home/me/.local/inbox/kick.wav"), id="posix-absolute"),
            pytest.param(PureWindowsPath(r"C:\inbox\kick.wav"), id="windows-drive"),
        ],
    )
    def test_absolute_path_is_a_bug(self, relpath: PurePath) -> None:
        """Folders above the inbox must not count, so only relative paths are accepted."""
        with pytest.raises(ValueError, match="relative to the inbox"):
            ignore_reason(relpath)

    def test_empty_path_is_not_ignored(self) -> None:
        """The inbox itself (``.``) has no components to ignore."""
        assert ignore_reason(PurePosixPath(".")) is None


class TestExtraPatterns:
    @pytest.mark.parametrize(
        ("pattern", "relpath", "expected"),
        [
            pytest.param("*.sync-conflict-*", "kick.sync-conflict-1-2-X.wav", True, id="conflicts"),
            pytest.param("*.mp3", "drums/KICK.MP3", True, id="extension-any-case"),
            pytest.param("drafts", "drafts/kick.wav", True, id="folder-name-anywhere"),
            pytest.param("drafts", "loops/drafts/kick.wav", True, id="folder-name-nested"),
            pytest.param("drafts/", "drafts/kick.wav", True, id="trailing-slash"),
            pytest.param("loops/old", "loops/old/a/kick.wav", True, id="anchored-folder"),
            pytest.param("loops/old", "drums/loops/old/kick.wav", False, id="anchored-only-top"),
            pytest.param("/loops/*.aif", "loops/x.aif", True, id="leading-slash"),
            pytest.param("*.mp3", "kick.wav", False, id="no-match"),
            pytest.param("", "kick.wav", False, id="empty-pattern-ignored"),
        ],
    )
    def test_patterns(self, pattern: str, relpath: str, expected: bool) -> None:
        """Users extend the defaults with ``ignore:`` globs from the config."""
        assert is_ignored(PurePosixPath(relpath), [pattern]) is expected

    def test_reason_names_the_pattern(self) -> None:
        """The debug log says which config pattern skipped a file."""
        reason = ignore_reason(PurePosixPath("kick.mp3"), ["*.flac", "*.mp3"])
        assert reason == "matches ignore pattern '*.mp3' from the config"

    def test_defaults_still_apply(self) -> None:
        """Extra patterns add to the defaults, never replace them."""
        assert is_ignored(PurePosixPath(".DS_Store"), ["*.mp3"])


class TestIsIgnored:
    @pytest.mark.parametrize(
        ("relpath", "expected"),
        [
            pytest.param("kick.wav", False, id="sample"),
            pytest.param("kick.wav.part", True, id="partial"),
        ],
    )
    def test_agrees_with_ignore_reason(self, relpath: str, expected: bool) -> None:
        """``is_ignored`` is ``ignore_reason`` as a yes/no."""
        assert is_ignored(PurePosixPath(relpath)) is expected
