"""Settings: one table that is the config keys, their defaults, validators and docs.

Each setting is declared once (name, default, validator, description), as gunicorn does, so the
YAML key, the command-line override and ``config/sp404d.example.yaml`` cannot drift apart. The
result is a frozen :class:`Config`; a reload builds a new one and swaps it in only if it
validates.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sp404d.errors import ConfigError

LAYOUTS = ("flat", "genre", "bpm", "kit")
FORMATS = ("wav", "aiff")
QUALITIES = ("hq", "vhq")
SHORT_POLICIES = ("reject", "pad")
OVERS_POLICIES = ("limit", "clip")
DISPOSITIONS = ("keep", "move", "delete")
LOG_FORMATS = ("auto", "console", "json")


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def default_base() -> Path:
    """Where the default inbox and outbox live: ``~/sp404d``, easy to find in a file manager."""
    return _home() / "sp404d"


def default_state_dir() -> Path:
    """Per-user state folder for the journal (XDG on Linux, Application Support on macOS)."""
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support" / "sp404d"
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else _home() / ".local" / "state") / "sp404d"


def default_config_path() -> Path:
    """The config file read when none is given (used only if it exists)."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else _home() / ".config") / "sp404d" / "config.yaml"


# --- validators: each takes the raw YAML value and returns the typed one or raises ValueError


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a folder or file path (text)")
    # Absolute, so the journal's paths stay meaningful whatever folder a later command runs in.
    return Path(os.path.expandvars(os.path.expanduser(value.strip()))).absolute()


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).lower() if isinstance(value, str) else None
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}; got {value!r}")
        return text

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false; got {value!r}")
    return value


def _number(low: float, high: float, *, integer: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or not low <= value <= high:
            kind = "a whole number" if integer else "a number"
            raise ValueError(f"must be {kind} from {low:g} to {high:g}; got {value!r}")
        return value  # type: ignore[no-any-return]

    return check


def _patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("must be a list of file name patterns, e.g. ['*.bak', 'drafts/*']")
    return tuple(value)


def _defaults(value: Any) -> Mapping[str, Any]:
    from sp404d.metadata import parse_defaults

    if not isinstance(value, dict):
        raise ValueError("must be a mapping of metadata fields, e.g. {genre: hiphop}")
    return parse_defaults(value, "config defaults")


@dataclass(frozen=True)
class Setting:
    """One config key: its default, how to check it, and what it means (for the docs)."""

    name: str
    default: Any
    check: Callable[[Any], Any]
    doc: str
    per_inbox: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("outbox", None, _path, "Where converted files go. On an SD card: <card>/IMPORT."),
    Setting(
        "outbox_removable",
        False,
        _bool,
        "The outbox is on removable media (an SD card): "
        "never create it, write only while it is mounted, wait while it is away.",
    ),
    Setting("journal", None, _path, "The TinyDB journal file (one record per job)."),
    Setting("layout", "flat", _choice(*LAYOUTS), "flat | genre | bpm | kit.", per_inbox=True),
    Setting("format", "wav", _choice(*FORMATS), "wav | aiff (16-bit PCM, 48 kHz).", per_inbox=True),
    Setting(
        "name_length",
        23,
        _number(8, 64, integer=True),
        "Longest file name stem; the SP-404MK2 shows 23 characters.",
        per_inbox=True,
    ),
    Setting("quality", "hq", _choice(*QUALITIES), "soxr quality: hq (default) or vhq."),
    Setting(
        "min_duration_ms",
        100,
        _number(1, 10_000, integer=True),
        "Shortest sample the unit takes reliably.",
        per_inbox=True,
    ),
    Setting(
        "short_files",
        "reject",
        _choice(*SHORT_POLICIES),
        "What to do with files under min_duration_ms: reject, or pad with silence.",
        per_inbox=True,
    ),
    Setting(
        "max_duration_s",
        960,
        _number(1, 24 * 3600),
        "Longest input accepted; the unit takes about 16 minutes.",
        per_inbox=True,
    ),
    Setting(
        "overs",
        "limit",
        _choice(*OVERS_POLICIES),
        "Peaks past full scale after resampling: limit (turn the file down just enough, "
        "recorded as gain_db) or clip (recorded as clipped_samples).",
        per_inbox=True,
    ),
    Setting(
        "truncated",
        "reject",
        _choice("reject", "keep"),
        "A file that ends before its header says (a broken download, a copy cut short): "
        "reject it, or keep what it holds (recorded as truncated in the journal).",
        per_inbox=True,
    ),
    Setting(
        "write_txt",
        False,
        _bool,
        "Write NAME.txt with the metadata beside each output.",
        per_inbox=True,
    ),
    Setting(
        "defaults", {}, _defaults, "Metadata used when nothing else gives a value.", per_inbox=True
    ),
    Setting("ignore", (), _patterns, "Extra file name patterns never to process.", per_inbox=True),
    Setting("workers", 0, _number(0, 256, integer=True), "Worker processes; 0 = every core."),
    Setting(
        "on_done",
        "keep",
        _choice(*DISPOSITIONS),
        "After a source is converted: keep it, move it to `archive`, or delete it.",
        per_inbox=True,
    ),
    Setting("archive", None, _path, "Folder for sources when on_done is move.", per_inbox=True),
    Setting(
        "error_files",
        True,
        _bool,
        "Write NAME.error.txt beside a rejected file saying why.",
        per_inbox=True,
    ),
    Setting(
        "settle_seconds",
        2.0,
        _number(0, 600),
        "How long size and mtime must stay still before a file that arrived without a "
        "close event is taken as complete.",
    ),
    Setting(
        "polling",
        False,
        _bool,
        "Poll the inboxes instead of using OS events (network and FUSE folders).",
    ),
    Setting("poll_interval", 2.0, _number(0.1, 600), "Seconds between polls in polling mode."),
    Setting(
        "rescan_interval",
        300.0,
        _number(0, 86_400),
        "Seconds between full rescans of the inboxes; 0 turns them off.",
    ),
    Setting("job_timeout", 600.0, _number(0.1, 86_400), "Longest one file may take to convert."),
    Setting(
        "log_format",
        "auto",
        _choice(*LOG_FORMATS),
        "auto: readable on a terminal, JSON lines otherwise.",
    ),
    Setting("log_level", "info", _choice("debug", "info", "warning", "error"), "Log level."),
)
_BY_NAME = {s.name: s for s in SETTINGS}
_PER_INBOX = {s.name for s in SETTINGS if s.per_inbox}


@dataclass(frozen=True)
class Inbox:
    """A watched folder and the settings that apply to files in it."""

    path: Path
    settings: Config


@dataclass(frozen=True)
class Config:
    """Every setting, validated. Built only by :func:`load_config` / :func:`build_config`."""

    outbox: Path
    journal: Path
    inbox_paths: tuple[Path, ...] = ()
    inbox_overrides: tuple[Mapping[str, Any], ...] = ()
    outbox_removable: bool = False
    layout: str = "flat"
    format: str = "wav"
    name_length: int = 23
    quality: str = "hq"
    min_duration_ms: int = 100
    short_files: str = "reject"
    max_duration_s: float = 960
    overs: str = "limit"
    truncated: str = "reject"
    write_txt: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    workers: int = 0
    on_done: str = "keep"
    archive: Path | None = None
    error_files: bool = True
    settle_seconds: float = 2.0
    polling: bool = False
    poll_interval: float = 2.0
    rescan_interval: float = 300.0
    job_timeout: float = 600.0
    log_format: str = "auto"
    log_level: str = "info"
    source: Path | None = None  # the config file this came from, if any

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def inboxes(self) -> tuple[Inbox, ...]:
        """Each inbox with its own settings (the top-level ones plus its overrides)."""
        return tuple(
            Inbox(path, replace(self, **dict(over)))
            for path, over in zip(self.inbox_paths, self.inbox_overrides, strict=True)
        )

    def for_inbox(self, path: Path) -> Config:
        """The settings for a file below ``path`` (a top-level or overriding inbox)."""
        for inbox in self.inboxes():
            if inbox.path == path:
                return inbox.settings
        return self


def _check(name: str, value: Any) -> Any:
    setting = _BY_NAME.get(name)
    if setting is None:
        allowed = ", ".join(["inbox", "inboxes", *sorted(_BY_NAME)])
        raise ConfigError(name, f"unknown setting; allowed: {allowed}")
    if value is None and setting.default is None:
        return None
    try:
        return setting.check(value)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


def _inboxes(raw: Mapping[str, Any]) -> tuple[tuple[Path, ...], tuple[Mapping[str, Any], ...]]:
    if "inbox" in raw and "inboxes" in raw:
        raise ConfigError("inboxes", "give either inbox or inboxes, not both")
    if "inboxes" not in raw:
        value = raw.get("inbox")
        if value is None:
            return (default_base() / "inbox",), ({},)
        try:
            return (_path(value),), ({},)
        except ValueError as exc:
            raise ConfigError("inbox", str(exc)) from None
    items = raw["inboxes"]
    if not isinstance(items, list) or not items:
        raise ConfigError("inboxes", "must be a list of folders or of {path: ..., <setting>: ...}")
    paths: list[Path] = []
    overrides: list[Mapping[str, Any]] = []
    for i, item in enumerate(items):
        entry = {"path": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or "path" not in entry:
            raise ConfigError(f"inboxes[{i}]", "must be a folder or a mapping with a path")
        try:
            paths.append(_path(entry["path"]))
        except ValueError as exc:
            raise ConfigError(f"inboxes[{i}].path", str(exc)) from None
        over: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "path":
                continue
            if key not in _PER_INBOX:
                raise ConfigError(
                    f"inboxes[{i}].{key}",
                    f"cannot be set per inbox; allowed: {', '.join(sorted(_PER_INBOX))}",
                )
            over[key] = _check(key, value)
        overrides.append(over)
    return tuple(paths), tuple(overrides)


def build_config(raw: Mapping[str, Any], *, source: Path | None = None) -> Config:
    """Validate a mapping of settings (from YAML and flags) into a :class:`Config`."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("inbox", "inboxes"):
            continue
        values[key] = _check(str(key), value)
    paths, overrides = _inboxes(raw)
    values["inbox_paths"] = paths
    values["inbox_overrides"] = overrides
    if values.get("outbox") is None:
        values["outbox"] = default_base() / "outbox"
    if values.get("journal") is None:
        values["journal"] = default_state_dir() / "journal.jsonl"
    if values.get("on_done") == "move" and values.get("archive") is None:
        raise ConfigError("archive", "on_done is move, so archive must name a folder")
    known = {f.name for f in fields(Config)}
    return Config(source=source, **{k: v for k, v in values.items() if k in known})


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file safely; a missing or malformed file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror or exc}") from None
    import yaml  # only when there is a config file to read

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must be a mapping of settings")
    return data


def load_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """The config from ``path`` (or the per-user default file if it exists), flags on top."""
    raw: dict[str, Any] = {}
    source = path
    if path is None and default_config_path().is_file():
        source = default_config_path()
    if source is not None:
        raw = read_config_file(source)
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
    return build_config(raw, source=source)


def example_yaml() -> str:
    """The documented example config, generated from the settings table."""
    import yaml

    lines = [
        "# sp404d configuration. Every key is optional; these are the defaults.",
        "# Generated from sp404d/config.py (python -m sp404d.config > config/sp404d.example.yaml).",
        "",
        "# The folder to watch. Or several, each able to override per-inbox settings:",
        "# inboxes:",
        "#   - ~/Dropbox/sp404",
        "#   - {path: ~/kits, layout: kit}",
        "inbox: ~/sp404d/inbox",
    ]
    shown = {
        "outbox": "~/sp404d/outbox",
        "journal": str(Path("~/.local/state/sp404d/journal.jsonl")),
        "archive": None,
    }
    for s in SETTINGS:
        lines.append("")
        lines.append(f"# {s.doc}" + ("  (per inbox)" if s.per_inbox else ""))
        value = shown.get(s.name, s.default)
        if isinstance(value, tuple):
            value = list(value)
        if value is None:
            lines.append(f"# {s.name}: ~/sp404d/archive")
            continue
        dumped = yaml.safe_dump({s.name: value}, default_flow_style=True, sort_keys=False)
        lines.append(dumped.strip().removeprefix("{").removesuffix("}"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(example_yaml())
