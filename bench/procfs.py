"""Reading processes from Linux's /proc: shared by the daemon and memory benchmarks."""

from __future__ import annotations

import os


def read(path: str) -> str | None:
    """A /proc file's text, or None when the process is gone."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat after the command name (field 3 on); None when the process is gone."""
    text = read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def status_kb(text: str, key: str) -> int:
    """A ``Key:  123 kB`` value from /proc/PID/status or smaps_rollup text."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (workers sit under the forkserver, below the daemon)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = stat_fields(entry)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found
