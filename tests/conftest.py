"""Shared test helpers: real audio written with soundfile, real folders, no leaked threads."""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from tests.daemon_harness import DaemonFactory

# Property tests stay bounded (the suite runs in minutes) and, on CI, repeatable: a fixed seed.
settings.register_profile(
    "sp404d",
    max_examples=40,
    deadline=None,  # a loaded machine must not turn a slow example into a failure
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("ci", parent=settings.get_profile("sp404d"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "sp404d")

ROOT = Path(__file__).resolve().parent.parent


def tone(
    rate: int,
    freq: float = 1000.0,
    dbfs: float = -6.0,
    seconds: float = 0.5,
    channels: int = 1,
) -> np.ndarray:
    """A sine at ``dbfs`` (peak), shape (frames, channels); channel k is phase-shifted."""
    t = np.arange(round(rate * seconds)) / rate
    amp = 10 ** (dbfs / 20)
    cols = [amp * np.sin(2 * np.pi * freq * t + k * 0.3) for k in range(channels)]
    return np.stack(cols, axis=1)


def write_audio(
    path: Path,
    rate: int = 44100,
    *,
    seconds: float = 0.5,
    channels: int = 1,
    subtype: str = "PCM_16",
    format: str | None = None,
    freq: float = 1000.0,
    dbfs: float = -6.0,
) -> Path:
    """Write a test tone file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = tone(rate, freq, dbfs, seconds, channels)
    sf.write(os.fsencode(path), data, rate, subtype=subtype, format=format)
    return path


def fit_sine(y: np.ndarray, rate: int, freq: float) -> tuple[float, float]:
    """Least-squares fit of a sine at ``freq`` on the steady middle: (amplitude, residual rms)."""
    y = y[len(y) // 4 : 3 * len(y) // 4]
    t = np.arange(len(y)) / rate
    a = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)], 1)
    c, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ c
    return float(np.hypot(c[0], c[1])), float(np.sqrt(np.mean(r**2)))


def level_db(y: np.ndarray, rate: int, freq: float) -> float:
    amp, _ = fit_sine(y, rate, freq)
    return 20 * math.log10(amp + 1e-20)


def run_env(home: Path) -> dict[str, str]:
    """Environment for a subprocess of sp404d with its own home (no user config leaks in)."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        PYTHONUNBUFFERED="1",
    )
    env.pop("NOTIFY_SOCKET", None)
    return env


SP404D = [sys.executable, "-m", "sp404d"]


def journal_records(path: Path) -> list[dict[str, Any]]:
    """Every record of the journal at ``path``, read by a reader that is closed again: an
    unclosed Journal keeps its file open for the rest of the process."""
    from sp404d.journal.journal import Journal

    with Journal(path, readonly=True) as journal:
        return journal.all()


def open_fds() -> int:
    """How many file descriptors this process holds now."""
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonFactory]:
    """A factory of real ``sp404d run`` subprocesses on tmp_path, all killed at the end."""
    from tests.daemon_harness import DaemonProc

    procs: list[DaemonProc] = []

    def make(**settings: Any) -> DaemonProc:
        d = DaemonProc(tmp_path, **settings)
        procs.append(d)
        return d

    yield make
    for d in procs:
        d.kill()


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread running (as watchdog's own suite does)."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith(("QueueFeederThread",))
    ]
    for t in leaked:
        t.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads leaked: {still}"
