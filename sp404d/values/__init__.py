"""The dialect of what a musician writes, in a config or a sidecar: the strict YAML loader
(:mod:`~sp404d.values.safeyaml`), the checks of every setting value
(:mod:`~sp404d.values.checks`) and the rules of every metadata field
(:mod:`~sp404d.values.fields`). It imports nothing of sp404d: configs and metadata both
stand on it."""

from __future__ import annotations

from sp404d.values import checks, fields, safeyaml
from sp404d.values.fields import (
    FIELDS,
    PER_FILE_ONLY,
    SHAPING_KEYS,
    InvalidValueError,
    parse_defaults,
    parse_key,
)
from sp404d.values.safeyaml import InvalidYamlError, parse

__all__ = [
    "FIELDS",
    "PER_FILE_ONLY",
    "SHAPING_KEYS",
    "InvalidValueError",
    "InvalidYamlError",
    "checks",
    "fields",
    "parse",
    "parse_defaults",
    "parse_key",
    "safeyaml",
]
