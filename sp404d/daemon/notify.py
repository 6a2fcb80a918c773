"""Tell systemd how the daemon is doing, without libsystemd.

The notify protocol is one datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX`` socket named
by ``$NOTIFY_SOCKET`` (see sd_notify(3)); a leading ``@`` names a socket in Linux's abstract
namespace. That is all ``sd_notify()`` does, so a few lines of :mod:`socket` replace the C
library and its build dependency.

Like gunicorn's ``sd_notify``, every method here is a no-op when the daemon is not run by
systemd (no ``$NOTIFY_SOCKET``): the daemon calls them unconditionally, in a terminal, under
launchd or in tests. Sending never raises either: a status line must never be what stops a
conversion, and a manager that went away is not our problem to report.
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["Notifier"]


def _address(socket_path: str) -> str | None:
    """The address to ``sendto``, or None for a ``$NOTIFY_SOCKET`` we cannot use.

    ``@name`` is the abstract namespace, spelled with a leading NUL byte in the socket API.
    systemd also accepts ``vsock:`` addresses (for virtual machines); those are left
    unsupported, which is the same as running without systemd.
    """
    if socket_path.startswith("@"):
        return "\0" + socket_path[1:]
    if socket_path.startswith("/"):
        return socket_path
    return None


def _monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd compares ``MONOTONIC_USEC`` with."""
    clock = getattr(time, "CLOCK_MONOTONIC", None)
    if clock is None:  # pragma: no cover - every platform with systemd has CLOCK_MONOTONIC
        return time.monotonic_ns() // 1000
    return time.clock_gettime_ns(clock) // 1000


def _clean(value: str | int) -> str:
    """One line: a newline inside a value would start a new, bogus assignment."""
    return " ".join(str(value).splitlines())


class Notifier:
    """Sends state changes to the service manager; does nothing outside systemd.

    One socket is opened per message: messages are rare (a status change, a watchdog ping
    every few seconds), and a fresh socket keeps the object free of shared state, so any
    thread may call it.
    """

    def __init__(self, socket_path: str | None = None) -> None:
        """Use ``socket_path``, or ``$NOTIFY_SOCKET`` when it is None.

        The environment is read once, here: a reload must not change where we report.
        """
        if socket_path is None:
            socket_path = os.environ.get("NOTIFY_SOCKET")
        self._address = _address(socket_path) if socket_path else None

    @property
    def enabled(self) -> bool:
        """True when messages go somewhere (we were started by systemd with ``Type=notify``)."""
        return self._address is not None

    def send(self, **fields: str | int) -> None:
        """Send ``fields`` as one datagram of ``KEY=VALUE`` lines; never raises.

        Values are flattened to one line. An ``OSError`` (no listener, socket gone, message too
        big) is swallowed without logging: the manager either got the message or cannot be
        told anything, and a log line per watchdog ping would flood the journal.
        """
        if self._address is None or not fields:
            return
        payload = "".join(f"{key}={_clean(value)}\n" for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(payload.encode("utf-8", "replace"), self._address)
        except OSError:
            pass

    def ready(self, status: str = "") -> None:
        """Start-up (or a reload) is complete: systemd now considers the service active."""
        if status:
            self.send(READY=1, STATUS=status)
        else:
            self.send(READY=1)

    def status(self, text: str) -> None:
        """A one-line status shown by ``systemctl --user status sp404d``."""
        self.send(STATUS=text)

    def reloading(self) -> None:
        """A reload started; send :meth:`ready` when it is done.

        ``MONOTONIC_USEC`` lets systemd >= 253 tell this reload from an earlier one; without
        it such versions may ignore the message and let ``systemctl reload`` return early.
        Older versions ignore the extra field.
        """
        self.send(RELOADING=1, MONOTONIC_USEC=_monotonic_usec())

    def stopping(self) -> None:
        """Shutdown started: systemd shows "deactivating" while jobs drain."""
        self.send(STOPPING=1)

    def watchdog(self) -> None:
        """Keep-alive; must arrive every ``WatchdogSec`` or systemd kills and restarts us."""
        self.send(WATCHDOG=1)

    def watchdog_interval(self) -> float | None:
        """Seconds between :meth:`watchdog` pings, or None when there is nothing to ping.

        Half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises, so one late ping does
        not kill the service. ``$WATCHDOG_PID``, when set, names the process the watchdog is
        meant for: a child that inherited the environment must not think it is watched.
        None too when this notifier is disabled, since its pings would go nowhere.
        """
        usec = os.environ.get("WATCHDOG_USEC")
        if not usec or not self.enabled:
            return None
        pid = os.environ.get("WATCHDOG_PID")
        if pid:
            try:
                if int(pid) != os.getpid():
                    return None
            except ValueError:
                return None
        try:
            value = int(usec)
        except ValueError:
            return None
        if value <= 0:
            return None
        return value / 2_000_000
