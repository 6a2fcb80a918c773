"""Signals to messages: SIGTERM, SIGINT, SIGHUP and SIGUSR1 (``sp404d retry``) reach the
daemon's loop as queue messages.

They arrive through ``signal.set_wakeup_fd`` and a small relay thread, so no Python code runs
inside a signal handler while the main thread might hold a lock (gunicorn's arbiter does the
same with a pipe).
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from typing import Any

from sp404d.daemon.messages import SignalReceived


class SignalRelay:
    """Puts a :class:`SignalReceived` on ``q`` for each signal, until :meth:`close`."""

    def __init__(self, q: queue.Queue[Any]) -> None:
        self.q = q
        self._r, self._w = os.pipe()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        os.set_blocking(self._w, False)
        signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, lambda *_: None)  # the wakeup fd carries the signal number
        # A writer opening a file during the read-lease probe (watcher.open_for_writing) makes
        # the kernel send SIGIO to the lease holder; its default action would end the daemon.
        signal.signal(signal.SIGIO, signal.SIG_IGN)
        self._thread = threading.Thread(target=self._relay, name="sp404d-signals", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while True:
            for signum in os.read(self._r, 64):
                if signum == 0:
                    return
                self.q.put(SignalReceived(signum))

    def close(self) -> None:
        os.write(self._w, b"\x00")
        if self._thread is not None:
            self._thread.join(timeout=2)
        signal.set_wakeup_fd(-1)
