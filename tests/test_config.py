"""The settings table: defaults, validation messages, per-inbox overrides, the example file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sp404d.config.loading import SETTINGS, build_config, example_yaml, load_config
from sp404d.errors import ConfigError
from tests.conftest import ROOT, SP404D, run_env


class TestBuildConfig:
    def test_defaults_are_per_user_paths(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With nothing configured: ~/sp404d/inbox, ~/sp404d/outbox, the journal in XDG state."""
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        config = build_config({})
        assert config.inbox_paths == (tmp_path / "sp404d" / "inbox",)
        assert config.outbox == tmp_path / "sp404d" / "outbox"
        assert config.journal == tmp_path / "state" / "sp404d" / "journal.jsonl"
        assert (config.layout, config.format, config.name_length) == ("flat", "wav", 23)

    @pytest.mark.parametrize(
        ("raw", "key", "words"),
        [
            pytest.param({"layout": "spiral"}, "layout", "flat, genre, bpm, kit", id="layout"),
            pytest.param({"format": "mp3"}, "format", "wav, aiff", id="format"),
            pytest.param({"name_length": 3}, "name_length", "8 to 64", id="range"),
            pytest.param(
                {"outbox_removable": "maybe"}, "outbox_removable", "true or false", id="bool"
            ),
            pytest.param({"outbx": "/x"}, "outbx", "unknown setting", id="unknown"),
            pytest.param({"on_done": "move"}, "archive", "archive must name a folder", id="move"),
            pytest.param({"inbox": "/a", "inboxes": ["/b"]}, "inboxes", "not both", id="both"),
            pytest.param(
                {"inboxes": [{"path": "/a", "quality": "vhq"}]},
                "inboxes[0].quality",
                "cannot be set per inbox",
                id="per-inbox",
            ),
            pytest.param({"defaults": {"bpm": "fast"}}, "defaults", "bpm", id="defaults"),
        ],
    )
    def test_bad_values_name_the_key_and_what_is_allowed(
        self, raw: dict[str, object], key: str, words: str
    ) -> None:
        """Every refusal names the key and says what would be accepted."""
        with pytest.raises(ConfigError) as err:
            build_config(raw)
        assert err.value.key == key
        assert words in str(err.value)

    def test_inboxes_override_settings(self) -> None:
        """An inbox may set its own layout; the rest inherit the top level."""
        config = build_config(
            {"layout": "genre", "inboxes": ["/in/a", {"path": "/in/kits", "layout": "kit"}]}
        )
        a, kits = config.inboxes()
        assert a.settings.layout == "genre"
        assert kits.settings.layout == "kit"
        assert config.for_inbox(Path("/in/kits")).layout == "kit"

    def test_flags_override_the_file(self, tmp_path: Path) -> None:
        """--outbox and --layout win over the config file."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("layout: genre\noutbox: /from/file\n")
        config = load_config(cfg, {"layout": "bpm", "outbox": None})
        assert config.layout == "bpm" and config.outbox == Path("/from/file")

    def test_malformed_yaml_is_a_config_error(self, tmp_path: Path) -> None:
        """A YAML syntax error is reported, not raised as a traceback."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("layout: [unclosed\n")
        with pytest.raises(ConfigError, match="not valid YAML") as err:
            load_config(cfg)
        assert err.value.key == f"{cfg} line 2" and "\n" not in str(err.value)


class TestMalformedFiles:
    """Every malformed config file is one line naming the file (and the line, where known)."""

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            pytest.param(
                b"outbox: /x\nlayout: caf\xe9\n",
                "FILE line 2: not UTF-8 text (byte 0xe9); save it as UTF-8",
                id="not-utf8",
            ),
            pytest.param(
                b"inbox: /x\nlayout:\n\tkit\n",
                "FILE line 3: a tab is used for indentation; YAML needs spaces",
                id="tab-indent",
            ),
            pytest.param(
                b"inboxes:\n  - path: /a\n\t  layout: kit\n",
                "FILE line 3: a tab is used for indentation; YAML needs spaces",
                id="tab-in-a-list",
            ),
            pytest.param(
                b"- inbox\n- outbox\n",
                "FILE: must be a mapping of settings (lines like 'layout: kit'), got a list",
                id="a-list",
            ),
            pytest.param(
                b"just words\n",
                "FILE: must be a mapping of settings (lines like 'layout: kit'), got 'just words'",
                id="a-string",
            ),
            pytest.param(
                b"layout: kit\nlayout: flat\n", "FILE line 2: layout is given twice", id="twice"
            ),
            pytest.param(
                b"a: &x 1\nb: *x\n", "FILE line 1: YAML anchors (&x) are not allowed", id="anchor"
            ),
            pytest.param(
                b"layout: [kit\n",
                "FILE line 2: not valid YAML: expected ',' or ']', but got '<stream end>'"
                " (column 1)",
                id="unclosed",
            ),
            pytest.param(
                b"layout: \x07\n",
                "FILE line 1: not a text file (control character #x0007)",
                id="bel",
            ),
        ],
    )
    def test_one_line_naming_the_file_and_line(
        self, tmp_path: Path, data: bytes, expected: str
    ) -> None:
        cfg = tmp_path / "c.yaml"
        cfg.write_bytes(data)
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        assert str(err.value) == "config: " + expected.replace("FILE", str(cfg))

    def test_not_utf8_exits_2_from_the_command_line(self, tmp_path: Path) -> None:
        """The same through ``sp404d convert``: exit 2, the one line, no traceback."""
        cfg = tmp_path / "c.yaml"
        cfg.write_bytes(b"layout: caf\xe9\n")
        (tmp_path / "in").mkdir()
        proc = _sp404d(tmp_path, "convert", str(tmp_path / "in"), "--config", str(cfg))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == (
            f"sp404d: config: {cfg} line 1: not UTF-8 text (byte 0xe9); save it as UTF-8\n"
        )

    def test_yaml_11_words_for_true_and_false_still_work(self, tmp_path: Path) -> None:
        """The strict loader reads ``yes`` as text; boolean settings take it as true."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("polling: yes\nerror_files: off\n")
        config = load_config(cfg)
        assert config.polling is True and config.error_files is False

    def test_config_that_is_a_folder_or_missing(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="is a folder; give the config file"):
            load_config(tmp_path)
        with pytest.raises(ConfigError, match="cannot read it: No such file"):
            load_config(tmp_path / "nope.yaml")


class TestFoldersThatAreFiles:
    @pytest.mark.parametrize(
        ("key", "raw"),
        [
            pytest.param("inbox", {"inbox": "F"}, id="inbox"),
            pytest.param("inboxes[1].path", {"inboxes": ["/x/a", {"path": "F"}]}, id="inboxes"),
            pytest.param("outbox", {"outbox": "F"}, id="outbox"),
            pytest.param("archive", {"on_done": "move", "archive": "F"}, id="archive"),
        ],
    )
    def test_a_file_where_a_folder_belongs(
        self, tmp_path: Path, key: str, raw: dict[str, Any]
    ) -> None:
        """Refused when the config is read, not as a traceback when the daemon mkdirs it."""
        f = tmp_path / "a file"
        f.write_text("x")
        raw = json.loads(json.dumps(raw).replace('"F"', json.dumps(str(f))))
        raw.setdefault("outbox", str(tmp_path / "out"))
        with pytest.raises(ConfigError) as err:
            build_config(raw)
        assert err.value.key == key and err.value.message == f"{f} is a file, not a folder"

    @pytest.mark.parametrize("key", ["inbox", "outbox"])
    def test_daemon_start_exits_2_naming_the_key(self, tmp_path: Path, key: str) -> None:
        """``sp404d run`` with the inbox (or outbox) a file: exit 2, no FileExistsError."""
        f = tmp_path / "a file"
        f.write_text("x")
        settings = {"inbox": str(tmp_path / "in"), "outbox": str(tmp_path / "out"), key: str(f)}
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({**settings, "journal": str(tmp_path / "j.jsonl")}))
        proc = _sp404d(tmp_path, "run", "--config", str(cfg))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == f"sp404d: config: {key}: {f} is a file, not a folder\n"


def _sp404d(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SP404D, *args],
        env=run_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestExample:
    def test_example_file_is_generated_from_the_table_and_loads(self) -> None:
        """config/sp404d.example.yaml is current and documents every setting."""
        path = ROOT / "config" / "sp404d.example.yaml"
        assert path.read_text() == example_yaml(), (
            "regenerate: sp404d example-config > config/sp404d.example.yaml"
        )
        load_config(path)
        for setting in SETTINGS:
            assert f"{setting.name}:" in path.read_text()


def test_each_setting_is_declared_once_and_reaches_every_surface() -> None:
    """A setting is one field: the job's rules, the config keys, the example and the flags all
    come from it."""
    from sp404d.cli import build_parser
    from sp404d.config.settings import Rules, settings_of

    config = build_config({"outbox": "/tmp/o", "format": "aiff", "min_duration_ms": 250})
    rules = config.rules()
    assert type(rules) is Rules
    assert {s.name for s in settings_of(Rules)} <= {s.name for s in SETTINGS}
    assert (rules.format, rules.min_duration_ms, rules.outbox) == ("aiff", 250, Path("/tmp/o"))
    example = example_yaml()
    for s in SETTINGS:
        assert f"# {s.doc}" in example
    convert = build_parser().parse_args(["convert", "x", "--workers", "3", "--layout", "kit"])
    assert (convert.workers, convert.layout) == (3, "kit")
    flagged = {s.name for s in SETTINGS if s.flag}
    assert flagged == {"outbox", "format", "journal", "layout", "workers"}
