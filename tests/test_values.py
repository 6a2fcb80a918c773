"""The dialect of what a musician writes, on its own: each check and field rule turns a YAML
value into the typed one, or says in one line what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from sp404d.values import checks, fields, safeyaml


@pytest.mark.parametrize(
    ("check", "raw", "typed"),
    [
        pytest.param(checks.chop, 16, ("equal", 16), id="chop-count"),
        pytest.param(checks.chop, "onsets", ("onsets", 16), id="chop-onsets"),
        pytest.param(checks.chop, "Onsets 8", ("onsets", 8), id="chop-onsets-n"),
        pytest.param(checks.chop, "off", None, id="chop-off"),
        pytest.param(checks.normalize, "peak -1", ("peak", -1.0), id="normalize-peak"),
        pytest.param(checks.normalize, "LUFS -14", ("lufs", -14.0), id="normalize-lufs"),
        pytest.param(checks.trim, {"threshold_db": -50}, (-50.0, 5.0), id="trim-default-keep"),
        pytest.param(checks.boolean, "yes", True, id="bool-yes"),
        pytest.param(checks.choice("keep", "mono"), "MONO", "mono", id="choice-any-case"),
        pytest.param(checks.mono_below_s, 2, 2, id="mono-below"),
    ],
)
def test_a_value_is_read_as_a_config_means_it(check: Any, raw: Any, typed: Any) -> None:
    assert check(raw) == typed


@pytest.mark.parametrize(
    ("check", "raw", "words"),
    [
        pytest.param(checks.chop, 1, "2 to 64", id="chop-one"),
        pytest.param(checks.chop, "onsets many", "onsets N", id="chop-words"),
        pytest.param(checks.normalize, "peak +3", "from -40 to 0", id="normalize-loud"),
        pytest.param(checks.trim, {"keep": 5}, "threshold_db", id="trim-key"),
        pytest.param(checks.number(1, 10, integer=True), 2.5, "a whole number", id="number"),
        pytest.param(checks.check_path, "a\x07b", "control characters", id="path-control"),
    ],
)
def test_a_wrong_value_says_what_is_allowed(check: Any, raw: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check(raw)


@pytest.mark.parametrize(
    ("written", "key"),
    [("Am", "Am"), ("A minor", "Am"), ("c# min", "C#m"), ("Bbmaj", "Bb"), ("F sharp", "F#")],
)
def test_keys_have_one_spelling(written: str, key: str) -> None:
    assert fields.parse_key(written) == key


def test_fields_are_checked_together_with_reasons() -> None:
    clean = fields.validate_fields({"BPM": "92 bpm", "pad": "07", "layout": "Kit"}, shared=None)
    assert clean == {"bpm": 92.0, "pad": 7, "layout": "kit"}
    with pytest.raises(fields.InvalidValueError, match="pad cannot be set in a folder file"):
        fields.validate_fields({"pad": 3}, shared="a folder file")
    with pytest.raises(fields.InvalidValueError, match="did you mean 'genre'"):
        fields.validate_fields({"genere": "lofi"}, shared=None)


def test_the_yaml_dialect_keeps_words_as_words() -> None:
    assert safeyaml.parse(b"title: On\npad: 08\n") == {"title": "On", "pad": "08"}
    with pytest.raises(safeyaml.InvalidYamlError, match="given twice"):
        safeyaml.parse(b"bpm: 90\nbpm: 92\n")
