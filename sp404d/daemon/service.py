"""``sp404d install-service``: run the daemon at login under systemd (Linux) or launchd (macOS).

The unit and the plist are rendered here from templates kept in this module, so an installed
wheel needs no data files; ``systemd/sp404d.service`` and
``config/launchd/com.sp404d.agent.plist`` in the source tree are the same templates, written
out for people who install by hand (a test keeps them identical).

A file that sp404d wrote carries :data:`MARKER` and is overwritten by the next install; any
other file at that path is the user's and is never touched.
"""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from sp404d.durable import replace_whole
from sp404d.errors import Sp404dError

__all__ = [
    "LAUNCHD_LABEL",
    "MARKER",
    "SYSTEMD_UNIT_NAME",
    "SYSTEMD_UNIT_TEMPLATE",
    "ServiceInstallError",
    "install_service",
    "launchd_plist_path",
    "render_launchd_plist",
    "render_systemd_unit",
    "systemd_unit_path",
]

#: Present in every file sp404d writes; only such files are overwritten.
MARKER = "Managed by sp404d"
SYSTEMD_UNIT_NAME = "sp404d.service"
LAUNCHD_LABEL = "com.sp404d.agent"

# The ExecStart line of the template; install-service replaces it with the real command.
_TEMPLATE_EXEC_START = "ExecStart=%h/.local/bin/sp404d run"

SYSTEMD_UNIT_TEMPLATE = f"""\
# {MARKER}: `sp404d install-service` writes this file and may overwrite it.
# Change settings in a drop-in instead: systemctl --user edit sp404d
#
# sp404d as a systemd *user* service: it runs as you, sees your inbox and the SD card your
# desktop mounts under /run/media/$USER, and logs to the journal:
#   journalctl --user -u sp404d -f

[Unit]
Description=sp404d: convert dropped audio files for the Roland SP-404MK2
# A crash loop (a broken config, say) gives up after 5 starts in 2 minutes instead of
# restarting forever; `systemctl --user reset-failed sp404d` clears it.
StartLimitIntervalSec=120
StartLimitBurst=5

[Service]
# sp404d sends READY=1 once it watches the inbox, RELOADING=1 then READY=1 around a reload,
# STOPPING=1 on shutdown and WATCHDOG=1 pings. Only the main process may report: the
# conversion workers inherit $NOTIFY_SOCKET, and systemd ignores anything they send.
Type=notify
NotifyAccess=main
# install-service puts the absolute path of the sp404d it ran from here (and --config).
{_TEMPLATE_EXEC_START}
# SIGHUP re-reads the config; an invalid new config is reported and the old one kept.
# (Type=notify-reload would not need kill, but only exists from systemd 253 on.)
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# sp404d pings every WatchdogSec/2: a main loop stuck for 30 s is killed and restarted.
WatchdogSec=30
# On stop, SIGTERM goes to sp404d alone: it takes no new jobs, lets running conversions
# finish (or stops them) and exits. Whatever is still running after TimeoutStopSec,
# workers included, gets SIGKILL. The default (control-group) would send SIGTERM to the
# workers at the same moment, killing conversions mid-write before the daemon can clean
# up. Keep sp404d's own drain timeout below 30 s.
KillMode=mixed
TimeoutStopSec=30
# Log lines reach the journal as they are written, not when a buffer fills.
Environment=PYTHONUNBUFFERED=1
# Converting is batch work: a DAW playing audio gets the CPU first.
Nice=10

# Hardening, only what works in a user unit writing to removable media.
# Left out on purpose: ProtectSystem=, ProtectHome=, PrivateTmp= and the other options that
# need a mount namespace. In a user unit they imply PrivateUsers=, which fails to start
# where unprivileged user namespaces are disabled, and the service would no longer share
# the host's view of /run/media/$USER, where the SD card appears; ProtectHome= would also
# hide the inbox. MemoryDenyWriteExecute= is left out because soundfile reaches libsndfile
# through cffi, whose callbacks may need writable and executable memory.
# The options below are seccomp filters, which need no namespace.
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native

[Install]
WantedBy=default.target
"""

_PLIST_COMMENT = f"""\
<!--
  {MARKER}: `sp404d install-service` writes this file with your paths and may overwrite it.
  RunAtLoad starts sp404d at login; KeepAlive/SuccessfulExit=false restarts it after a crash
  but not after a clean stop. ProcessType=Interactive: without it macOS throttles the CPU and
  disk I/O of background jobs. Nice=10 lets a DAW have the CPU first. ThrottleInterval waits
  10 s between restarts; ExitTimeOut gives running conversions 30 s to finish on stop.
  Logs go to ~/Library/Logs/sp404d/sp404d.log (Console.app shows them too).
  Load:   launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/{LAUNCHD_LABEL}.plist
  Unload: launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}
-->
"""

# launchd starts agents with PATH=/usr/bin:/bin:/usr/sbin:/sbin; Homebrew lives elsewhere.
_LAUNCHD_PATH = ("/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")

# Arguments made only of these characters need no quoting in an Exec line.
_SYSTEMD_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


class ServiceInstallError(Sp404dError):
    """The service file cannot be written (unsupported OS, foreign file in the way, ...)."""


def _command(exe: str | Sequence[str]) -> list[str]:
    """``exe`` as an argv prefix: a string is one program path, a sequence is used as is."""
    argv = [exe] if isinstance(exe, str) else list(exe)
    if not argv or not os.path.isabs(argv[0]):
        raise ServiceInstallError(f"the sp404d command must be an absolute path, got {exe!r}")
    return argv


def _run_args(config: Path | None) -> list[str]:
    return ["run"] if config is None else ["run", "--config", str(config)]


def _systemd_quote(arg: str, *, program: bool = False) -> str:
    """One argument of an ``Exec*=`` line, so that systemd passes it on unchanged.

    systemd expands ``%`` specifiers in the whole line, then splits it into words (double
    quotes group, backslash escapes inside them), then expands ``$VAR`` in the arguments but
    not in the program path. So ``%`` is always doubled, ``$`` only in arguments. The
    program path may not contain quotes or backslashes at all (systemd 252 rejects the unit).
    """
    if any(ord(char) < 32 or char == "\x7f" for char in arg):
        raise ServiceInstallError(f"a control character cannot go in a systemd unit: {arg!r}")
    if program and any(char in arg for char in "\"'\\"):
        raise ServiceInstallError(
            f"systemd refuses to run a program whose path contains quotes or backslashes: {arg}; "
            "install sp404d in another folder"
        )
    if not program:
        arg = arg.replace("$", "$$")
    if not _SYSTEMD_SAFE.fullmatch(arg):
        arg = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg.replace("%", "%%")


def render_systemd_unit(exe: str | Sequence[str], config: Path | None) -> str:
    """The user unit with ``ExecStart`` running ``exe run [--config CONFIG]``.

    ``exe`` is the absolute path of the ``sp404d`` script, or an argv prefix such as
    ``[python, "-m", "sp404d"]``. Spaces, ``%`` and ``$`` are quoted by systemd's rules (and
    quotes too, except in the program path, where systemd allows none).
    """
    argv = _command(exe)
    words = [_systemd_quote(argv[0], program=True)]
    words += [_systemd_quote(arg) for arg in [*argv[1:], *_run_args(config)]]
    return SYSTEMD_UNIT_TEMPLATE.replace(_TEMPLATE_EXEC_START, "ExecStart=" + " ".join(words))


def render_launchd_plist(
    exe: str | Sequence[str],
    config: Path | None,
    log_dir: Path,
    *,
    working_dir: Path | None = None,
) -> str:
    """The LaunchAgent plist running ``exe run [--config CONFIG]`` at login.

    launchd expands neither ``~`` nor variables, so every path must be absolute.
    ``working_dir`` (install-service uses the home folder, as systemd does) is optional.
    """
    argv = _command(exe)
    log = str(log_dir / "sp404d.log")
    search_path = dict.fromkeys([os.path.dirname(argv[0]), *_LAUNCHD_PATH])
    job: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [*argv, *_run_args(config)],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Interactive",
        "Nice": 10,
        "ThrottleInterval": 10,
        "ExitTimeOut": 30,
        "StandardOutPath": log,
        "StandardErrorPath": log,
        "EnvironmentVariables": {
            "PATH": ":".join(search_path),
            "PYTHONUNBUFFERED": "1",
        },
    }
    if working_dir is not None:
        job["WorkingDirectory"] = str(working_dir)
    text = plistlib.dumps(job).decode("utf-8")
    head, sep, body = text.partition("<plist ")
    return head + _PLIST_COMMENT + sep + body


def systemd_unit_path(home: Path | None = None) -> Path:
    """Where the user unit goes: ``$XDG_CONFIG_HOME/systemd/user`` or ``~/.config/...``.

    ``$XDG_CONFIG_HOME`` is honoured only when ``home`` is not given, so an explicit home
    (tests, ``--home``) always means that home.
    """
    if home is None:
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
    else:
        base = home / ".config"
    return base / "systemd" / "user" / SYSTEMD_UNIT_NAME


def launchd_plist_path(home: Path | None = None) -> Path:
    """Where the LaunchAgent goes: ``~/Library/LaunchAgents/com.sp404d.agent.plist``."""
    return (home or Path.home()) / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def _default_exe() -> list[str]:
    """The command that runs *this* sp404d.

    First the ``sp404d`` script beside the running interpreter (same venv or pipx
    installation), then one on ``$PATH``, then ``python -m sp404d``. Paths are made absolute
    but symlinks are kept: resolving a venv's ``python`` symlink would escape the venv.
    """
    beside = Path(sys.executable).parent / "sp404d"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [os.path.abspath(beside)]
    found = shutil.which("sp404d")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "sp404d"]


def _check_replaceable(path: Path) -> None:
    """Refuse to overwrite a file that sp404d did not write."""
    if not os.path.lexists(path):
        return
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ServiceInstallError(f"cannot read {path}: {exc.strerror or exc}") from None
    if MARKER not in text:
        raise ServiceInstallError(
            f"{path} exists and was not written by sp404d; "
            "move it away (or delete it) and run `sp404d install-service` again"
        )


def _write_atomically(path: Path, text: str) -> None:
    """Never a half-written unit: see :func:`sp404d.durable.replace_whole`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_whole(path, text.encode("utf-8"), durable=True, mode=0o644)


def _systemd_instructions() -> str:
    return """\
Start sp404d now and at every login:
  systemctl --user daemon-reload
  systemctl --user enable --now sp404d
If it was already running, load the new file with:
  systemctl --user restart sp404d
Keep it running while you are logged out (and start it at boot):
  loginctl enable-linger $USER
Follow the log:
  journalctl --user -u sp404d -f
After editing the config:
  systemctl --user reload sp404d
"""


def _pythons_for_privacy_settings() -> list[str]:
    """The binaries macOS may ask about: Python.app for framework builds, the interpreter.

    python.org and Homebrew framework builds re-launch ``bin/python3.x`` as ``Python.app``
    inside the framework, and that is the program the privacy settings must list; the
    interpreter itself is listed as well in case the build is not a framework.
    """
    real = os.path.realpath(sys.executable)
    found = "/Python.framework/Versions/"
    if found not in real:
        return [real]
    root, _, rest = real.partition(found)
    version = rest.split("/", 1)[0]
    return [f"{root}{found}{version}/Resources/Python.app", real]


def _launchd_instructions(path: Path, log_dir: Path) -> str:
    target = f"gui/$(id -u)/{LAUNCHD_LABEL}"
    pythons = "\n".join(f"  {python}" for python in _pythons_for_privacy_settings())
    return f"""\
Start sp404d now (it also starts at every login):
  launchctl bootstrap gui/$(id -u) {shlex.quote(str(path))}
If it was loaded before, unload the old version first:
  launchctl bootout {target}
Follow the log:
  tail -f {shlex.quote(str(log_dir / "sp404d.log"))}
After editing the config:
  launchctl kill HUP {target}
Restart:
  launchctl kickstart -k {target}

macOS asks before a program may read ~/Documents, ~/Desktop, ~/Downloads, iCloud Drive
or removable volumes such as your SD card, and a program started by launchd is often
refused without a question. If the log says "Operation not permitted", open System Settings
> Privacy & Security > Full Disk Access (or Files and Folders), click +, press Cmd-Shift-G
and add the Python that runs sp404d:
{pythons}
then restart sp404d.
"""


def install_service(
    *,
    config: Path | None,
    platform: str = sys.platform,
    home: Path | None = None,
    exe: str | Sequence[str] | None = None,
) -> tuple[Path, str]:
    """Write the service file for ``platform``; return its path and the commands to run next.

    Linux: a systemd user unit in ``~/.config/systemd/user/sp404d.service``. macOS: a
    LaunchAgent in ``~/Library/LaunchAgents/com.sp404d.agent.plist`` (its log folder is
    created too, since launchd does not create it). ``exe`` defaults to the ``sp404d`` that
    is running; ``config`` is made absolute and must exist, because a service that cannot
    find its config would only crash-loop.

    The file is written atomically. An existing file is replaced only if sp404d wrote it
    (:data:`MARKER`); otherwise :class:`ServiceInstallError` is raised and nothing changes.
    """
    argv = _command(exe) if exe is not None else _default_exe()
    log_dir: Path | None = None
    if config is not None:
        config = Path(os.path.abspath(config.expanduser()))
        if not config.is_file():
            raise ServiceInstallError(f"config file not found: {config}")
    if platform.startswith("linux"):
        path = systemd_unit_path(home)
        text = render_systemd_unit(argv, config)
        instructions = _systemd_instructions()
    elif platform == "darwin":
        user_home = home or Path.home()
        path = launchd_plist_path(user_home)
        log_dir = user_home / "Library" / "Logs" / "sp404d"
        text = render_launchd_plist(argv, config, log_dir, working_dir=user_home)
        instructions = _launchd_instructions(path, log_dir)
    else:
        raise ServiceInstallError(
            f"install-service knows systemd (Linux) and launchd (macOS), not {platform!r}; "
            "run `sp404d run` from your system's own autostart instead"
        )
    _check_replaceable(path)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, text)
    return path, instructions
