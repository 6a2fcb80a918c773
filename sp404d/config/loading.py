"""The config: the settings of :mod:`sp404d.config.settings`, read from YAML and flags, validated.

The result is a frozen :class:`Config`; a reload builds a new one and swaps it in only if it
validates. Besides each value's own check, the folders are checked against each other, so a
config that would feed sp404d its own outputs (or hide an inbox from it) is refused at start.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sp404d.config.folders import check_folders, real_path
from sp404d.config.settings import Rules, Setting, defaults_check, setting, settings_of
from sp404d.errors import ConfigError
from sp404d.values.checks import (
    DISPOSITIONS,
    FORMATS,
    LAYOUTS,
    LOG_FORMATS,
    LOG_LEVELS,
    boolean,
    check_path,
    number,
    patterns,
    shown,
)

__all__ = ["FORMATS", "LAYOUTS", "SETTINGS", "Config", "build_config", "load_config"]


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


#: What sp404d writes beside its journal ``J``: ``J`` itself, the daemon's live state
#: (``J.state.json``, written through ``J.state.json.tmp``), the write-ahead notes
#: (``J.intents``) and lock files (``J.run.lock``: one daemon per journal). None of them is
#: ever taken as input, should the journal sit in an inbox or a folder given to ``convert``;
#: a scan (:func:`sp404d.watch.discover.walk`) also leaves out any other ``J.*`` beside an
#: existing journal.
JOURNAL_SIDE_FILES = (
    "",
    ".state.json",
    ".state.json.tmp",
    ".intents",
    ".lock",
    ".run.lock",
    ".index",
    ".damaged",
    ".replaced",
    ".seen",
    ".retry",
)


@dataclass(frozen=True)
class Inbox:
    """A watched folder and the settings that apply to files in it."""

    path: Path
    settings: Config


@dataclass(frozen=True, kw_only=True)
class Config(Rules):
    """Every setting, validated: the job's :class:`Rules` and the service's own. Built only by
    :func:`load_config` / :func:`build_config`."""

    journal: Path = setting(
        None,
        check_path,
        "The TinyDB journal file (one record per job).",
        flag=True,
        required=True,
    )
    layout: str = setting("flat", LAYOUTS, "flat | genre | bpm | kit.", per_inbox=True, flag=True)
    name_length: int = setting(
        23,
        number(8, 64, integer=True),
        "Longest file name stem; the SP-404MK2 shows 23 characters.",
        per_inbox=True,
    )
    defaults: Mapping[str, Any] = setting(
        {}, defaults_check, "Metadata used when nothing else gives a value.", per_inbox=True
    )
    ignore: tuple[str, ...] = setting(
        (), patterns, "Extra file name patterns never to process.", per_inbox=True
    )
    workers: int = setting(
        0, number(0, 256, integer=True), "Worker processes; 0 = every core.", flag=True
    )
    on_done: str = setting(
        "keep",
        DISPOSITIONS,
        "After a source is converted: keep it, move it to `archive`, or delete it.",
        per_inbox=True,
    )
    archive: Path | None = setting(
        None,
        check_path,
        "Folder for sources when on_done is move.",
        per_inbox=True,
        example="~/sp404d/archive",
    )
    error_files: bool = setting(
        True, boolean, "Write NAME.error.txt beside a rejected file saying why.", per_inbox=True
    )
    settle_seconds: float = setting(
        2.0,
        number(0, 600),
        "How long size and mtime must stay still before a file that arrived without a "
        "close event is taken as complete.",
    )
    polling: bool = setting(
        False, boolean, "Poll the inboxes instead of using OS events (network and FUSE folders)."
    )
    poll_interval: float = setting(2.0, number(0.1, 600), "Seconds between polls in polling mode.")
    rescan_interval: float = setting(
        300.0,
        number(0, 86_400),
        "Seconds between full rescans of the inboxes; 0 turns them off.",
    )
    job_timeout: float = setting(
        600.0, number(0.1, 86_400), "Longest one file may take to convert."
    )
    notify: str = setting(
        "off",
        ("off", "desktop"),
        "desktop: a notification when files are refused or fail (notify-send on Linux, "
        "osascript on macOS; many at once are one notification).",
    )
    card_manifest: bool = setting(
        True,
        boolean,
        "With outbox_removable: keep SP404D.TXT in the card's root (beside IMPORT) listing each "
        "sample sp404d put on the card and the file it came from.",
    )
    log_format: str = setting(
        "auto", LOG_FORMATS, "auto: readable on a terminal, JSON lines otherwise."
    )
    log_level: str = setting("info", LOG_LEVELS, "Log level.")
    # Not settings: where the inboxes are, their overrides, and the file this came from.
    inbox_paths: tuple[Path, ...] = ()
    inbox_overrides: tuple[Mapping[str, Any], ...] = ()
    source: Path | None = None

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

    def journal_files(self) -> tuple[Path, ...]:
        """The journal and the files sp404d keeps beside it (:data:`JOURNAL_SIDE_FILES`)."""
        return tuple(self.journal.with_name(self.journal.name + s) for s in JOURNAL_SIDE_FILES)

    def not_inputs(self) -> tuple[Path, ...]:
        """Folders and files never taken as input, wherever they sit: the outbox, every
        archive, the journal and its side files.

        Each as configured, resolved, and as spelled below every inbox that holds it (an inbox
        reached through a symlink), so a plain prefix test on an event's path finds it.
        """
        archives = [s.archive for s in (self, *(i.settings for i in self.inboxes()))]
        own = [self.outbox, *(a for a in archives if a is not None), *self.journal_files()]
        inboxes = [(inbox, real_path(inbox)) for inbox in self.inbox_paths]
        found: dict[Path, None] = {}
        for path in own:
            real = real_path(path)
            found[path] = found[real] = None
            for inbox, inbox_real in inboxes:
                if real.is_relative_to(inbox_real):
                    found[inbox / real.relative_to(inbox_real)] = None
        return tuple(found)


#: The config keys, in the order the example file shows them: the job's rules, then the rest.
SETTINGS: tuple[Setting, ...] = settings_of(Config)
_BY_NAME = {s.name: s for s in SETTINGS}
_PER_INBOX = {s.name for s in SETTINGS if s.per_inbox}


def _key_text(key: object) -> str:
    """A key as a message shows it: as written, or quoted if it is not plain text."""
    if isinstance(key, str) and key and key.isprintable() and key.strip() == key:
        return key
    return shown(key)


def _check(name: str, value: Any) -> Any:
    setting = _BY_NAME.get(name)
    if setting is None:
        allowed = ", ".join(["inbox", "inboxes", *sorted(_BY_NAME)])
        raise ConfigError(_key_text(name), f"unknown setting; allowed: {allowed}")
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
            return (check_path(value),), ({},)
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
            paths.append(check_path(entry["path"]))
        except ValueError as exc:
            raise ConfigError(f"inboxes[{i}].path", str(exc)) from None
        over: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "path":
                continue
            if key not in _PER_INBOX:
                raise ConfigError(
                    f"inboxes[{i}].{_key_text(key)}",
                    f"cannot be set per inbox; allowed: {', '.join(sorted(_PER_INBOX))}",
                )
            try:
                over[key] = _check(key, value)
            except ConfigError as exc:
                raise ConfigError(f"inboxes[{i}].{key}", exc.message) from None
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
    if "inboxes" in raw:
        inboxes = [(f"inboxes[{i}].path", path) for i, path in enumerate(paths)]
    else:
        inboxes = [("inbox" if "inbox" in raw else "inbox (the default)", paths[0])]
    archives = [("archive", values.get("archive"))] + [
        (f"inboxes[{i}].archive", over.get("archive")) for i, over in enumerate(overrides)
    ]
    check_folders(values["outbox"], inboxes, [(k, a) for k, a in archives if a is not None])
    known = {f.name for f in fields(Config)}
    return Config(source=source, **{k: v for k, v in values.items() if k in known})


MAX_CONFIG_BYTES = 1024 * 1024


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file safely; a missing or malformed file is a ConfigError.

    Through the same strict loader as sidecars (:mod:`sp404d.values.safeyaml`): UTF-8 only, no
    anchors, aliases or tags, a key given twice refused instead of the last one winning, and
    every problem one line with the file and the line (``config: FILE line 3: ...``).
    """
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(str(path), "is a folder; give the config file")
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            raise ConfigError(str(path), "is not a regular file; give the config file")
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), f"too big for a config file (over {MAX_CONFIG_BYTES} bytes)")
    from sp404d.values import safeyaml  # only when there is a config file to read

    try:
        parsed = safeyaml.parse(data)
    except safeyaml.InvalidYamlError as exc:
        where = f"{path} line {exc.line}" if exc.line is not None else str(path)
        raise ConfigError(where, exc.detail) from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        kind = "a list" if isinstance(parsed, list) else shown(parsed)
        raise ConfigError(
            str(path), f"must be a mapping of settings (lines like 'layout: kit'), got {kind}"
        )
    return parsed


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
        "# Generated from the settings table: sp404d example-config > config/sp404d.example.yaml",
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
            lines.append(f"# {s.name}: {s.example}")
            continue
        dumped = yaml.safe_dump({s.name: value}, default_flow_style=True, sort_keys=False)
        lines.append(dumped.strip().removeprefix("{").removesuffix("}"))
    return "\n".join(lines) + "\n"
