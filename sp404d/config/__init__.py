"""The settings: declared once (:mod:`~sp404d.config.settings`), read from YAML and flags and
validated into a frozen :class:`Config` (:mod:`~sp404d.config.loading`), its folders judged
against each other (:mod:`~sp404d.config.folders`)."""

from __future__ import annotations

from sp404d.config.folders import real_path, within
from sp404d.config.loading import (
    SETTINGS,
    Config,
    Inbox,
    build_config,
    default_base,
    default_config_path,
    default_state_dir,
    example_yaml,
    load_config,
    read_config_file,
)
from sp404d.config.settings import Rules, Setting, rules_from_record, said, settings_of

__all__ = [
    "SETTINGS",
    "Config",
    "Inbox",
    "Rules",
    "Setting",
    "build_config",
    "default_base",
    "default_config_path",
    "default_state_dir",
    "example_yaml",
    "load_config",
    "read_config_file",
    "real_path",
    "rules_from_record",
    "said",
    "settings_of",
    "within",
]
