"""The Settler's decisions on real files, with the clock passed in (no sleeping)."""

from __future__ import annotations

import time
from pathlib import Path

from sp404d.watch.watcher import Settler


def _file(tmp_path: Path, name: str = "take.wav", size: int = 1000) -> Path:
    path = tmp_path / name
    path.write_bytes(b"x" * size)
    return path


def test_a_closed_file_is_complete_at_once(tmp_path: Path) -> None:
    path, settler = _file(tmp_path), Settler(2.0)
    settler.saw(path, tmp_path, closed=True, now=0.0, wall=time.time())
    assert settler.due(0.0) == [(path, tmp_path)]
    assert settler.due(10.0) == []  # each returned once


def test_a_changed_file_waits_the_settle_time_and_a_touch_restarts_it(tmp_path: Path) -> None:
    path, settler = _file(tmp_path), Settler(2.0)
    settler.saw(path, tmp_path, closed=False, now=0.0, wall=time.time())
    assert settler.due(1.0) == []
    assert settler.touch(path, 1.5)  # written again
    assert settler.due(3.0) == []  # 2 s after the first event, but only 1.5 s after the touch
    assert settler.due(3.6) == [(path, tmp_path)]


def test_touch_does_not_start_watching_an_unknown_file(tmp_path: Path) -> None:
    settler = Settler(2.0)
    assert not settler.touch(_file(tmp_path), 0.0)
    assert len(settler) == 0


def test_a_file_that_grew_since_the_last_check_is_not_complete(tmp_path: Path) -> None:
    path, settler = _file(tmp_path), Settler(2.0)
    settler.saw(path, tmp_path, closed=False, now=0.0, wall=time.time())
    with path.open("ab") as f:
        f.write(b"more")
    assert settler.due(2.5) == []  # size changed: the settle time starts again
    assert settler.due(4.6) == [(path, tmp_path)]
