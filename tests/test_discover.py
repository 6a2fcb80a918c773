"""discover.walk on a real folder: what it takes, what it leaves out, and what it tells."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sp404d.watch.discover import BROKEN_LINK, HIDDEN, LINKED_FOLDER, NOT_REGULAR, walk


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_takes_samples_in_name_order_and_tells_what_it_passed_over(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for name in ["b.wav", "A.flac", "sub/c.aif", "sub/deeper/d.mp3"]:
        _touch(root / name)
    for quiet in [
        "kick.wav.yaml",
        "sp404.yaml",
        ".DS_Store",
        "x.wav.part",
        "notes.txt",
        ".stversions/old.wav",
        "x.wav.error.txt",
        "~SABCDEF.TMP",
    ]:
        _touch(root / quiet)
    _touch(root / ".secret.wav")
    _touch(root / ".old" / "e.wav")
    os.mkfifo(root / "pipe.wav")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "s.wav"))
    sock.close()
    (root / "gone.wav").symlink_to(root / "nowhere")
    (root / "link").symlink_to(root / "sub", target_is_directory=True)
    (root / "linked.wav").symlink_to(root / "b.wav")  # a link to a file is followed
    passed: list[tuple[Path, str]] = []
    found = list(walk(root, passed=passed))
    assert [p.relative_to(root).as_posix() for p in found] == [
        "A.flac",
        "b.wav",
        "linked.wav",
        "sub/c.aif",
        "sub/deeper/d.mp3",
    ]
    assert sorted((p.relative_to(root).as_posix(), r) for p, r in passed) == [
        (".old", HIDDEN),
        (".secret.wav", HIDDEN),
        ("gone.wav", BROKEN_LINK),
        ("link", LINKED_FOLDER),
        ("pipe.wav", NOT_REGULAR),
        ("s.wav", NOT_REGULAR),
    ]
    assert list(walk(root)) == found  # the collector changes nothing


def test_excluded_folders_and_the_journal_with_every_side_file(tmp_path: Path) -> None:
    """The journal excludes itself and any JOURNAL.* beside it, even one sp404d adds later."""
    root = tmp_path / "in"
    _touch(root / "kick.wav")
    _touch(root / "out" / "kick.wav")
    journal = _touch(root / "state" / "journal.jsonl")
    for side in [".intents", ".run.lock", ".some-future-file"]:
        _touch(journal.with_name(journal.name + side))
    _touch(root / "state" / "journal.jsonl2.wav")  # only a common prefix: a sample
    found = walk(root, exclude=[root / "out", journal])
    assert [p.relative_to(root).as_posix() for p in found] == [
        "kick.wav",
        "state/journal.jsonl2.wav",
    ]


def test_exclusions_compare_resolved_paths(tmp_path: Path) -> None:
    """An inbox reached through a symlink, the outbox given by its real path."""
    real = tmp_path / "real"
    _touch(real / "kick.wav")
    _touch(real / "out" / "x.wav")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    found = list(walk(tmp_path / "link", exclude=[real / "out"]))
    assert found == [tmp_path / "link" / "kick.wav"]


def test_user_ignore_patterns_are_quiet(tmp_path: Path) -> None:
    root = tmp_path / "in"
    _touch(root / "drafts" / "a.wav")
    _touch(root / "b.wav")
    passed: list[tuple[Path, str]] = []
    assert list(walk(root, extra_ignore=["drafts"], passed=passed)) == [root / "b.wav"]
    assert passed == []
