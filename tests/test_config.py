"""The settings table: defaults, validation messages, per-inbox overrides, the example file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sp404d.config import SETTINGS, build_config, example_yaml, load_config
from sp404d.errors import ConfigError
from tests.conftest import ROOT


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
                {"outbox_removable": "yes"}, "outbox_removable", "true or false", id="bool"
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
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_config(cfg)


class TestExample:
    def test_example_file_is_generated_from_the_table_and_loads(self) -> None:
        """config/sp404d.example.yaml is current and documents every setting."""
        path = ROOT / "config" / "sp404d.example.yaml"
        assert path.read_text() == example_yaml(), "regenerate: python -m sp404d.config"
        load_config(path)
        for setting in SETTINGS:
            assert f"{setting.name}:" in path.read_text()
