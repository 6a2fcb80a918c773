"""Desktop notifications of refused and failed files (``notify: desktop``).

The unit itself "won't tell you what the problem is"; a daemon in the background should. Jobs
that end badly within ``MERGE_S`` of each other make one notification ("12 files refused: 9 too
short, 3 corrupt"), so a bad sample pack is one message, not a hundred. Sent with ``notify-send``
on Linux and ``osascript`` on macOS; a missing tool is a one-time warning in the log, never an
error, and a notification never holds up the daemon (the tool runs in the background).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sp404d.logs import get_logger

MERGE_S = 2.0  # refusals this close together make one notification
SHOWN_NAMES = 3  # file names shown in one notification


def reason_kind(reason: str | None) -> str:
    """What a reason is about, for a summary: the words before its first ``:`` (``too short``
    from ``too short: 62 ms, minimum 100 ms``)."""
    text = (reason or "unknown reason").strip()
    return text.split(":", 1)[0].strip() or text


def summary(jobs: list[tuple[str, str, str | None]]) -> tuple[str, str]:
    """Title and body for ``jobs`` (status, file name, reason), most common reasons first."""
    rejected = sum(1 for status, _, _ in jobs if status == "rejected")
    failed = len(jobs) - rejected
    parts = []
    if rejected:
        parts.append(f"{rejected} file{'s' if rejected != 1 else ''} refused")
    if failed:
        parts.append(f"{failed} failed")
    kinds = Counter(reason_kind(reason) for _, _, reason in jobs)
    title = "sp404d: " + " and ".join(parts)
    by_kind = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
    names = [name for _, name, _ in jobs[:SHOWN_NAMES]]
    more = len(jobs) - len(names)
    shown = ", ".join(names) + (f" and {more} more" if more else "")
    if len(jobs) == 1:
        return title, f"{names[0]}: {jobs[0][2]}\nsp404d status shows why and what to do."
    return title, f"{by_kind}\n{shown}\nsp404d status shows why and what to do."


def _command(title: str, body: str) -> list[str] | None:
    if sys.platform == "darwin":
        tool = shutil.which("osascript")
        if tool is None:
            return None
        script = f"display notification {_applescript(body)} with title {_applescript(title)}"
        return [tool, "-e", script]
    tool = shutil.which("notify-send")
    return [tool, "--app-name=sp404d", title, body] if tool else None


def _applescript(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DesktopNotifier:
    """Collects refused and failed jobs; :meth:`flush` sends them merged once they stop coming."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.log = get_logger()
        self.pending: list[tuple[str, str, str | None]] = []
        self.last_added = 0.0
        self.warned = False
        self._children: list[subprocess.Popen[bytes]] = []

    def add(self, rec: Mapping[str, Any], now: float) -> None:
        if not self.enabled or rec.get("status") not in ("rejected", "failed"):
            return
        name = Path(str(rec.get("source"))).name
        self.pending.append((str(rec["status"]), name, rec.get("reason")))
        self.last_added = now

    def due(self) -> float | None:
        """When the pending notification goes out (monotonic), if one is pending."""
        return self.last_added + MERGE_S if self.pending else None

    def flush(self, now: float, *, force: bool = False) -> None:
        self._children = [c for c in self._children if c.poll() is None]
        if not self.pending or (now < self.last_added + MERGE_S and not force):
            return
        title, body = summary(self.pending)
        self.pending = []
        command = _command(title, body)
        if command is None:
            if not self.warned:
                self.warned = True
                tool = "osascript" if sys.platform == "darwin" else "notify-send"
                self.log.warning(
                    "notify_unavailable",
                    tool=tool,
                    action="no desktop notifications; install it (libnotify-bin) or set "
                    "notify: off",
                )
            return
        try:
            self._children.append(
                subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        except OSError as exc:
            if not self.warned:
                self.warned = True
                self.log.warning("notify_unavailable", tool=command[0], error=str(exc))
