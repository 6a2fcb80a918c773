"""sp404d.daemon.service: unit and plist rendering, and installing into a throwaway home."""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sp404d.daemon.service import (
    LAUNCHD_LABEL,
    MARKER,
    SYSTEMD_UNIT_TEMPLATE,
    ServiceInstallError,
    install_service,
    render_launchd_plist,
    render_systemd_unit,
    systemd_unit_path,
)

ROOT = Path(__file__).resolve().parent.parent
EXE = "/home/me/.local/bin/sp404d"


def exec_start(unit: str) -> str:
    """The one ExecStart line of a rendered unit."""
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return line


def settings(unit: str) -> set[str]:
    """Every ``Key=value`` line of a unit, comments left out."""
    return {line for line in unit.splitlines() if "=" in line and not line.startswith("#")}


def example_plist() -> str:
    """The example plist shipped in config/launchd, rendered for a user called ``you``."""
    return render_launchd_plist(
        "/Users/you/.local/bin/sp404d",
        Path("/Users/you/.config/sp404d/config.yaml"),
        Path("/Users/you/Library/Logs/sp404d"),
        working_dir=Path("/Users/you"),
    )


class TestRenderSystemdUnit:
    @pytest.mark.parametrize(
        "setting",
        [
            pytest.param("Type=notify", id="notify"),
            pytest.param("NotifyAccess=main", id="notify-access"),
            pytest.param("ExecReload=/bin/kill -HUP $MAINPID", id="reload"),
            pytest.param("Restart=on-failure", id="restart"),
            pytest.param("RestartSec=5", id="restart-sec"),
            pytest.param("WatchdogSec=30", id="watchdog"),
            pytest.param("TimeoutStopSec=30", id="stop-timeout"),
            pytest.param("KillMode=mixed", id="kill-mode"),
            pytest.param("Environment=PYTHONUNBUFFERED=1", id="unbuffered"),
            pytest.param("NoNewPrivileges=yes", id="no-new-privileges"),
            pytest.param("WantedBy=default.target", id="wanted-by"),
        ],
    )
    def test_settings(self, setting: str) -> None:
        """The unit carries every setting the daemon's lifecycle relies on."""
        assert setting in settings(render_systemd_unit(EXE, None))

    @pytest.mark.parametrize(
        "option",
        ["ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateUsers", "MemoryDenyWriteExecute"],
    )
    def test_no_namespace_sandboxing(self, option: str) -> None:
        """Options that would hide /run/media (or break cffi) appear only in comments."""
        assert not any(line.startswith(option) for line in settings(SYSTEMD_UNIT_TEMPLATE))

    @pytest.mark.parametrize(
        ("exe", "config", "expected"),
        [
            pytest.param(EXE, None, f"ExecStart={EXE} run", id="no-config"),
            pytest.param(
                EXE,
                Path("/home/me/.config/sp404d/config.yaml"),
                f"ExecStart={EXE} run --config /home/me/.config/sp404d/config.yaml",
                id="config",
            ),
            pytest.param(
                "/home/Jo Smith/.local/bin/sp404d",
                Path("/home/Jo Smith/My Samples/sp404d.yaml"),
                'ExecStart="/home/Jo Smith/.local/bin/sp404d" run'
                ' --config "/home/Jo Smith/My Samples/sp404d.yaml"',
                id="spaces",
            ),
            pytest.param(
                "/opt/100%/sp404d",
                Path("/cfg/50%.yaml"),
                "ExecStart=/opt/100%%/sp404d run --config /cfg/50%%.yaml",
                id="percent-doubled-everywhere",
            ),
            pytest.param(
                "/opt/$x/sp404d",
                Path("/cfg/$HOME.yaml"),
                'ExecStart="/opt/$x/sp404d" run --config "/cfg/$$HOME.yaml"',
                id="dollar-doubled-in-arguments-only",
            ),
            pytest.param(
                "/opt/sp404d",
                Path('/cfg/say "hi".yaml'),
                'ExecStart=/opt/sp404d run --config "/cfg/say \\"hi\\".yaml"',
                id="double-quote",
            ),
            pytest.param(
                "/opt/sp404d",
                Path("/cfg/back\\slash.yaml"),
                'ExecStart=/opt/sp404d run --config "/cfg/back\\\\slash.yaml"',
                id="backslash",
            ),
            pytest.param(
                "/opt/sp404d",
                Path("/cfg/it's.yaml"),
                'ExecStart=/opt/sp404d run --config "/cfg/it\'s.yaml"',
                id="single-quote",
            ),
            pytest.param(
                ["/home/me/venv/bin/python", "-m", "sp404d"],
                None,
                "ExecStart=/home/me/venv/bin/python -m sp404d run",
                id="python-m",
            ),
        ],
    )
    def test_exec_start_quoting(
        self, exe: str | list[str], config: Path | None, expected: str
    ) -> None:
        """Paths survive systemd's specifier, variable and word-splitting rules unchanged."""
        assert exec_start(render_systemd_unit(exe, config)) == expected

    def test_only_exec_start_changes(self) -> None:
        """Rendering fills in the command and leaves every other line of the template alone."""
        rendered = render_systemd_unit(EXE, None).splitlines()
        template = SYSTEMD_UNIT_TEMPLATE.splitlines()
        changed = [(a, b) for a, b in zip(template, rendered, strict=True) if a != b]
        assert changed == [("ExecStart=%h/.local/bin/sp404d run", f"ExecStart={EXE} run")]

    def test_marker(self) -> None:
        """The marker is what allows a later install to overwrite the file."""
        assert MARKER in render_systemd_unit(EXE, None)

    @pytest.mark.parametrize(
        ("exe", "config", "message"),
        [
            pytest.param("sp404d", None, "absolute", id="relative-exe"),
            pytest.param([], None, "absolute", id="empty-argv"),
            pytest.param(EXE, Path("/cfg/a\nb.yaml"), "control character", id="newline"),
            pytest.param('/opt/"q"/sp404d', None, "quotes or backslashes", id="quote-in-program"),
            pytest.param("/opt/a\\b/sp404d", None, "quotes or backslashes", id="backslash-program"),
        ],
    )
    def test_rejects(self, exe: str | list[str], config: Path | None, message: str) -> None:
        """What systemd cannot express is refused instead of written wrong."""
        with pytest.raises(ServiceInstallError, match=message):
            render_systemd_unit(exe, config)

    def test_shipped_unit_is_the_template(self) -> None:
        """systemd/sp404d.service (for installing by hand) is the template install-service uses."""
        shipped = (ROOT / "systemd" / "sp404d.service").read_text(encoding="utf-8")
        assert shipped == SYSTEMD_UNIT_TEMPLATE

    @pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
    def test_systemd_accepts_unit(self, tmp_path: Path) -> None:
        """systemd itself parses the unit and finds the program behind an awkward path."""
        home = tmp_path / "home"
        program = tmp_path / "Jo Smith" / "100% $real é" / "sp404d"
        program.parent.mkdir(parents=True)
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
        config = tmp_path / "My Samples" / "sp404d.yaml"
        unit = tmp_path / "sp404d.service"
        unit.write_text(render_systemd_unit(str(program), config), encoding="utf-8")
        runtime = tmp_path / "run"
        runtime.mkdir(mode=0o700)
        env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
        result = subprocess.run(
            ["systemd-analyze", "--user", "verify", str(unit)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if "Failed to initialize manager" in result.stderr:
            pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()}")
        assert (result.returncode, result.stderr) == (0, "")


class TestRenderLaunchdPlist:
    def parse(self, text: str) -> dict[str, Any]:
        job: dict[str, Any] = plistlib.loads(text.encode("utf-8"))
        return job

    def test_keys(self) -> None:
        """The agent starts at login, restarts after a crash and is not throttled."""
        job = self.parse(example_plist())
        assert job["Label"] == LAUNCHD_LABEL
        assert job["ProgramArguments"] == [
            "/Users/you/.local/bin/sp404d",
            "run",
            "--config",
            "/Users/you/.config/sp404d/config.yaml",
        ]
        assert job["RunAtLoad"] is True
        assert job["KeepAlive"] == {"SuccessfulExit": False}
        assert job["ProcessType"] == "Interactive"
        assert job["ThrottleInterval"] == 10
        assert job["StandardOutPath"] == "/Users/you/Library/Logs/sp404d/sp404d.log"
        assert job["StandardErrorPath"] == job["StandardOutPath"]
        assert job["WorkingDirectory"] == "/Users/you"
        assert job["EnvironmentVariables"]["PYTHONUNBUFFERED"] == "1"

    def test_path_starts_with_the_program_folder(self) -> None:
        """launchd's bare PATH gets sp404d's folder and Homebrew's in front."""
        path = self.parse(example_plist())["EnvironmentVariables"]["PATH"].split(":")
        assert path[:3] == ["/Users/you/.local/bin", "/opt/homebrew/bin", "/usr/local/bin"]
        assert len(path) == len(set(path))

    @pytest.mark.parametrize(
        ("exe", "config", "arguments"),
        [
            pytest.param(EXE, None, [EXE, "run"], id="no-config"),
            pytest.param(
                "/Users/Jo Smith/bin/sp404d",
                Path("/Volumes/SP 404 & <co>/sp404d.yaml"),
                [
                    "/Users/Jo Smith/bin/sp404d",
                    "run",
                    "--config",
                    "/Volumes/SP 404 & <co>/sp404d.yaml",
                ],
                id="spaces-and-xml-characters",
            ),
            pytest.param(
                ["/usr/bin/python3", "-m", "sp404d"],
                None,
                ["/usr/bin/python3", "-m", "sp404d", "run"],
                id="python-m",
            ),
        ],
    )
    def test_program_arguments(
        self, exe: str | list[str], config: Path | None, arguments: list[str]
    ) -> None:
        """Arguments are separate strings, so spaces need no quoting and XML is escaped."""
        job = self.parse(render_launchd_plist(exe, config, Path("/tmp/logs")))
        assert job["ProgramArguments"] == arguments
        assert "WorkingDirectory" not in job

    def test_marker_in_a_comment(self) -> None:
        """The marker sits in an XML comment that launchd (and plistlib) ignore."""
        text = example_plist()
        assert f"<!--\n  {MARKER}" in text
        assert "--" not in text.split("<!--", 1)[1].split("-->", 1)[0]

    def test_shipped_example(self) -> None:
        """config/launchd/com.sp404d.agent.plist is exactly what install-service would write."""
        shipped = ROOT / "config" / "launchd" / f"{LAUNCHD_LABEL}.plist"
        assert shipped.read_text(encoding="utf-8") == example_plist()


class TestSystemdUnitPath:
    def test_explicit_home(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """An explicit home wins over $XDG_CONFIG_HOME, so tests never touch the real one."""
        monkeypatch.setenv("XDG_CONFIG_HOME", "/elsewhere")
        assert systemd_unit_path(tmp_path) == tmp_path / ".config/systemd/user/sp404d.service"

    @pytest.mark.parametrize(
        ("xdg", "expected"),
        [
            pytest.param("/xdg", Path("/xdg/systemd/user/sp404d.service"), id="xdg"),
            pytest.param("relative", None, id="relative-xdg-ignored"),
        ],
    )
    def test_xdg_config_home(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str, expected: Path | None
    ) -> None:
        """systemd reads user units from $XDG_CONFIG_HOME/systemd/user when it is absolute."""
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
        monkeypatch.setenv("HOME", str(tmp_path))
        default = tmp_path / ".config/systemd/user/sp404d.service"
        assert systemd_unit_path() == (expected or default)


class TestInstallService:
    @pytest.fixture
    def config(self, tmp_path: Path) -> Path:
        path = tmp_path / "My Samples" / "sp404d.yaml"
        path.parent.mkdir()
        path.write_text("inbox: ~/inbox\n", encoding="utf-8")
        return path

    def test_linux(self, tmp_path: Path, config: Path) -> None:
        """Linux gets a readable user unit with the paths filled in, and the commands to run."""
        home = tmp_path / "home"
        path, instructions = install_service(config=config, platform="linux", home=home, exe=EXE)
        assert path == home / ".config" / "systemd" / "user" / "sp404d.service"
        assert path.read_text(encoding="utf-8") == render_systemd_unit(EXE, config)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert os.listdir(path.parent) == ["sp404d.service"]
        for command in (
            "systemctl --user daemon-reload",
            "systemctl --user enable --now sp404d",
            "loginctl enable-linger $USER",
            "journalctl --user -u sp404d -f",
        ):
            assert command in instructions

    def test_darwin(self, tmp_path: Path, config: Path) -> None:
        """macOS gets a LaunchAgent, its log folder, and the privacy-settings advice."""
        home = tmp_path / "Jo Smith"
        path, instructions = install_service(config=config, platform="darwin", home=home, exe=EXE)
        assert path == home / "Library" / "LaunchAgents" / "com.sp404d.agent.plist"
        job = plistlib.loads(path.read_bytes())
        assert job["ProgramArguments"] == [EXE, "run", "--config", str(config)]
        assert job["WorkingDirectory"] == str(home)
        assert (home / "Library" / "Logs" / "sp404d").is_dir()
        assert f"launchctl bootstrap gui/$(id -u) '{path}'" in instructions
        assert "Full Disk Access" in instructions

    def test_overwrites_its_own_file(self, tmp_path: Path, config: Path) -> None:
        """Installing again (new version, other config) replaces what sp404d wrote before."""
        install_service(config=None, platform="linux", home=tmp_path, exe=EXE)
        path, _ = install_service(config=config, platform="linux", home=tmp_path, exe=EXE)
        assert f'--config "{config}"' in path.read_text(encoding="utf-8")

    @pytest.mark.parametrize("platform", ["linux", "darwin"])
    def test_refuses_foreign_file(self, tmp_path: Path, platform: str) -> None:
        """A unit or plist the user wrote is never overwritten, and the message says what to do."""
        install_service(config=None, platform=platform, home=tmp_path, exe=EXE)
        path, _ = install_service(config=None, platform=platform, home=tmp_path, exe=EXE)
        path.write_text("[Service]\nExecStart=/usr/bin/my-own-thing\n", encoding="utf-8")
        with pytest.raises(ServiceInstallError, match="not written by sp404d; move it away"):
            install_service(config=None, platform=platform, home=tmp_path, exe=EXE)
        assert path.read_text(encoding="utf-8").startswith("[Service]\nExecStart=/usr/bin/my-own")

    def test_unsupported_platform(self, tmp_path: Path) -> None:
        """Windows and the BSDs get a clear refusal and nothing is written."""
        with pytest.raises(ServiceInstallError, match="'win32'"):
            install_service(config=None, platform="win32", home=tmp_path, exe=EXE)
        assert list(tmp_path.iterdir()) == []

    def test_relative_config_made_absolute(
        self, tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The service runs from another folder, so a relative --config is anchored now."""
        monkeypatch.chdir(config.parent)
        path, _ = install_service(
            config=Path(config.name), platform="linux", home=tmp_path / "h", exe=EXE
        )
        assert f'--config "{config}"' in path.read_text(encoding="utf-8")

    def test_missing_config(self, tmp_path: Path) -> None:
        """A service pointed at a missing config would only crash-loop: refuse up front."""
        with pytest.raises(ServiceInstallError, match="config file not found"):
            install_service(config=tmp_path / "nope.yaml", platform="linux", home=tmp_path, exe=EXE)

    def test_default_exe_is_absolute(self, tmp_path: Path) -> None:
        """Without ``exe`` the unit runs this installation's sp404d by absolute path."""
        path, _ = install_service(config=None, platform="linux", home=tmp_path)
        program = exec_start(path.read_text(encoding="utf-8")).removeprefix("ExecStart=")
        assert program.strip('"').startswith("/")
