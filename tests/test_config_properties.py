"""Properties of config validation: any value at any key, any file, is a Config or one line.

The promise: :func:`build_config` and :func:`load_config` either return a :class:`Config` or
raise :class:`ConfigError` whose message is one line naming the key (or the file) — never
another exception, never a traceback at start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sp404d.config.loading import SETTINGS, Config, build_config, load_config
from sp404d.errors import ConfigError
from sp404d.values import safeyaml

KEYS = [s.name for s in SETTINGS] + ["inbox", "inboxes"]

# What YAML can hold: scalars of every type, and lists and mappings of them.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["kit", "wav", "move", "~", "~/x", "$HOME", ".", "..", "/", "*.bak"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from([*KEYS, "path", "genre", "bpm"]) | st.text(max_size=8),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
inbox_items = st.one_of(
    values,
    st.dictionaries(st.sampled_from(["path", *KEYS]), values, min_size=1, max_size=4),
)
configs = st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=10),
    values,
    max_size=6,
) | st.fixed_dictionaries(
    {"inboxes": st.lists(inbox_items, max_size=3)},
    optional={
        "outbox": values,
        "on_done": st.sampled_from(["keep", "move", "delete"]),
        "archive": values,
    },
)


def _names_a_key(key: str, raw: dict[Any, Any]) -> bool:
    """``key`` (of a ConfigError) is one of ``raw``'s keys, as written or quoted (and maybe
    cut), or a setting every config has (``inbox``, ``inboxes[i]...``, ``outbox``...)."""
    names = {"inbox", "outbox", "archive"}
    for k in raw:
        names |= {str(k), repr(k)[:57], repr(str(k))[:57]}
    return any(key.startswith(name) for name in names if name)


def _holds(raw: dict[Any, Any], make: Any) -> None:
    try:
        config = make()
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text and "\r" not in text, text
        assert text.startswith(f"config: {exc.key}: "), text
        assert _names_a_key(exc.key, raw), text
        return
    assert isinstance(config, Config)
    config.inboxes()
    config.not_inputs()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Defaults (~/sp404d/...) inside tmp_path, and relative paths resolved there too."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@given(raw=configs)
def test_build_config_gives_a_config_or_one_line_naming_the_key(
    home: Path, raw: dict[Any, Any]
) -> None:
    _holds(raw, lambda: build_config(raw))


@given(raw=configs)
def test_any_yaml_config_file_loads_or_is_one_line(home: Path, raw: dict[Any, Any]) -> None:
    """The same settings written out as YAML and read back through load_config."""
    try:
        text = yaml.safe_dump(raw, allow_unicode=True)
    except yaml.YAMLError:
        return
    path = home / "c.yaml"
    path.write_text(text, encoding="utf-8")
    _holds({**raw, **_keys(text.encode()), str(path): None}, lambda: load_config(path))


def _keys(data: bytes) -> dict[Any, None]:
    """The keys of a file as YAML reads them back (a NEL in a key comes back a space)."""
    try:
        parsed = safeyaml.parse(data)
    except safeyaml.InvalidYamlError:
        return {}
    return dict.fromkeys(parsed) if isinstance(parsed, dict) else {}


@given(data=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8")))
def test_any_bytes_as_a_config_file(home: Path, data: bytes) -> None:
    """Random bytes or text: a Config (an empty or lucky file) or one line naming the file."""
    path = home / "c.yaml"
    path.write_bytes(data)
    _holds({**_keys(data), str(path): None}, lambda: load_config(path))


@given(
    key=st.sampled_from(KEYS),
    snippet=st.sampled_from(
        [
            "[1, 2",
            "{a: 1",
            "\n\t- x",
            "&a 1",
            "*a",
            "!!python/object:os.system x",
            "'unclosed",
            "- a\n- b",
            ": :",
            "\x07",
            "a: b: c",
            "|\n bad\nindent",
        ]
    ),
    line=st.integers(0, 3),
)
def test_malformed_yaml_near_a_key(home: Path, key: str, snippet: str, line: int) -> None:
    """Syntax errors after some valid lines: one line, with the file and the line number."""
    path = home / "c.yaml"
    path.write_text("layout: flat\n" * line + f"{key}: {snippet}\n", encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        if exc.key.startswith(str(path)):
            assert exc.key == str(path) or exc.key.startswith(f"{path} line "), str(exc)


def test_nothing_was_created(home: Path) -> None:
    """Validation only looks: no folder of a config that was refused or accepted is made."""
    build_config({"inbox": str(home / "a" / "b"), "outbox": str(home / "c")})
    assert not os.path.exists(home / "a") and not os.path.exists(home / "c")
