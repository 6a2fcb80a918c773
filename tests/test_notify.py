"""Tests for sp404d.daemon.notify: real datagrams on a notify socket we bind ourselves."""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from sp404d.daemon.notify import Notifier


class FakeManager:
    """The service manager's end: a bound AF_UNIX datagram socket we can read from."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.settimeout(2.0)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def receive(self) -> str:
        return self.sock.recv(65536).decode()

    def fields(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.receive().splitlines())

    def nothing_pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(65536)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(2.0)
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeManager]:
    """A notify socket on the filesystem; a short folder keeps it under the 108-byte limit."""
    fake = FakeManager(str(tmp_path_factory.mktemp("ns") / "notify"))
    yield fake
    fake.close()


@pytest.fixture
def no_systemd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as if started from a terminal, whatever the test runner inherited."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_systemd_env")
class TestNotifier:
    def test_disabled_without_notify_socket(self) -> None:
        """Outside systemd every call is a silent no-op, as in gunicorn."""
        notifier = Notifier()
        assert notifier.enabled is False
        notifier.ready("up")
        notifier.watchdog()
        notifier.send(STATUS="x")

    def test_reads_notify_socket_from_environment(
        self, manager: FakeManager, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With no explicit path, ``$NOTIFY_SOCKET`` says where to send."""
        monkeypatch.setenv("NOTIFY_SOCKET", manager.address)
        notifier = Notifier()
        assert notifier.enabled is True
        notifier.status("hello")
        assert manager.receive() == "STATUS=hello\n"

    @pytest.mark.parametrize(
        "address",
        [
            pytest.param("", id="empty"),
            pytest.param("vsock:2:1234", id="vsock"),
            pytest.param("relative/notify", id="relative-path"),
        ],
    )
    def test_unusable_addresses_disable(self, address: str) -> None:
        """Addresses we cannot reach with AF_UNIX behave like no systemd at all."""
        notifier = Notifier(address)
        assert notifier.enabled is False
        notifier.ready()

    def test_one_datagram_with_all_fields(self, manager: FakeManager) -> None:
        """Fields travel together, in order, one ``KEY=VALUE`` line each."""
        Notifier(manager.address).send(READY=1, STATUS="watching inbox", MAINPID=42)
        assert manager.receive() == "READY=1\nSTATUS=watching inbox\nMAINPID=42\n"
        assert manager.nothing_pending()

    @pytest.mark.skipif(sys.platform != "linux", reason="abstract sockets are Linux-only")
    def test_abstract_namespace(self) -> None:
        """A leading ``@`` names a socket in the abstract namespace, as systemd uses."""
        fake = FakeManager(f"@sp404d-test-{os.getpid()}-{uuid.uuid4().hex}")
        try:
            Notifier(fake.address).watchdog()
            assert fake.receive() == "WATCHDOG=1\n"
        finally:
            fake.close()

    @pytest.mark.parametrize(
        ("call", "expected"),
        [
            pytest.param(lambda n: n.ready(), "READY=1\n", id="ready"),
            pytest.param(
                lambda n: n.ready("3 jobs queued"),
                "READY=1\nSTATUS=3 jobs queued\n",
                id="ready-with-status",
            ),
            pytest.param(lambda n: n.status("converting"), "STATUS=converting\n", id="status"),
            pytest.param(lambda n: n.stopping(), "STOPPING=1\n", id="stopping"),
            pytest.param(lambda n: n.watchdog(), "WATCHDOG=1\n", id="watchdog"),
        ],
    )
    def test_messages(
        self, manager: FakeManager, call: Callable[[Notifier], None], expected: str
    ) -> None:
        """Each helper sends the documented sd_notify(3) assignment."""
        call(Notifier(manager.address))
        assert manager.receive() == expected

    def test_reloading_carries_monotonic_time(self, manager: FakeManager) -> None:
        """systemd >= 253 matches a reload by ``MONOTONIC_USEC`` on CLOCK_MONOTONIC."""
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        Notifier(manager.address).reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        fields = manager.fields()
        assert fields["RELOADING"] == "1"
        assert before <= int(fields["MONOTONIC_USEC"]) <= after

    def test_newlines_cannot_inject_fields(self, manager: FakeManager) -> None:
        """A multi-line status (an error message, say) stays one assignment."""
        Notifier(manager.address).status("bad file\nREADY=1")
        assert manager.receive() == "STATUS=bad file READY=1\n"

    def test_missing_listener_does_not_raise(
        self, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """A socket path nobody listens on is swallowed: status must never stop a job."""
        Notifier(str(tmp_path_factory.mktemp("ns") / "gone")).ready("up")

    def test_closed_listener_does_not_raise(self, manager: FakeManager) -> None:
        """The manager going away mid-run (socket closed, file left) is swallowed too."""
        manager.close()
        Notifier(manager.address).watchdog()

    def test_nothing_sent_without_fields(self, manager: FakeManager) -> None:
        """An empty datagram would mean nothing to systemd; none is sent."""
        Notifier(manager.address).send()
        assert manager.nothing_pending()


@pytest.mark.usefixtures("no_systemd_env")
class TestWatchdogInterval:
    @pytest.mark.parametrize(
        ("usec", "pid", "expected"),
        [
            pytest.param(None, None, None, id="unset"),
            pytest.param("30000000", None, 15.0, id="half-of-watchdog-usec"),
            pytest.param("30000000", "self", 15.0, id="pid-is-ours"),
            pytest.param("30000000", "1", None, id="pid-is-another-process"),
            pytest.param("30000000", "junk", None, id="pid-garbage"),
            pytest.param("thirty", None, None, id="usec-garbage"),
            pytest.param("0", None, None, id="usec-zero"),
        ],
    )
    def test_interval(
        self,
        manager: FakeManager,
        monkeypatch: pytest.MonkeyPatch,
        usec: str | None,
        pid: str | None,
        expected: float | None,
    ) -> None:
        """Half of ``$WATCHDOG_USEC``, and only for the process ``$WATCHDOG_PID`` names."""
        if usec is not None:
            monkeypatch.setenv("WATCHDOG_USEC", usec)
        if pid is not None:
            monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
        assert Notifier(manager.address).watchdog_interval() == expected

    def test_none_when_disabled(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a notify socket the pings would go nowhere, so no interval is reported."""
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        assert Notifier().watchdog_interval() is None
