"""Kill -9 in the middle of a batch, again and again, then finish: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from sp404d.journal.journal import Journal
from sp404d.pipeline.outbox import TEMP_RE
from tests.conftest import SP404D, journal_records, run_env

FILES = 90


def _corpus(inbox: Path) -> list[Path]:
    """Distinct 1.5 s stereo files at 96 kHz: slow enough to be caught mid-batch."""
    rng = np.random.default_rng(1)
    paths = []
    for i in range(FILES):
        p = inbox / f"take {i:03d}.wav"
        sf.write(str(p), rng.uniform(-0.5, 0.5, (144000, 2)), 96000, subtype="PCM_24")
        paths.append(p)
    return paths


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def test_sigkill_at_several_points_then_rerun(tmp_path: Path) -> None:
    """Each kill leaves a loadable journal; the final run converts every input exactly once."""
    inbox, outbox, journal = tmp_path / "in", tmp_path / "out", tmp_path / "j.jsonl"
    inbox.mkdir()
    sources = _corpus(inbox)
    cmd = [*SP404D, "convert", str(inbox), "--outbox", str(outbox), "--journal", str(journal)]
    env = run_env(tmp_path / "home")
    kills = 0
    for target in (3, 20, 45, 70):
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and _lines(journal) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        survivors = journal_records(journal)  # loads after every kill
        assert all(r["status"] in ("done", "skipped") and r["source"] for r in survivors)
    assert kills >= 2, "the batch finished before it could be killed: make it slower"

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    files = [p for p in outbox.rglob("*") if p.is_file()]
    assert not [p for p in files if TEMP_RE.match(p.name)], "a temp file survived"
    assert sorted(p.name for p in files) == sorted(s.name.replace(" ", "_") for s in sources)
    for p in files:
        info = sf.info(str(p))  # every file complete and readable
        assert info.frames == 72000 and info.samplerate == 48000
    records = journal_records(journal)
    done_by_source: dict[str, int] = {}
    for rec in records:
        if rec["status"] == "done":
            done_by_source[rec["source"]] = done_by_source.get(rec["source"], 0) + 1
    assert set(done_by_source) == {str(s) for s in sources}
    assert all(n == 1 for n in done_by_source.values()), "a source was converted twice"


def _workers(pid: int) -> list[int]:
    """The pool's forked workers: children sharing the parent's command line."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    kids = [
        int(k)
        for t in Path(f"/proc/{pid}/task").iterdir()
        for k in (t / "children").read_text().split()
    ]
    return [k for k in kids if Path(f"/proc/{k}/cmdline").read_bytes() == cmdline]


def test_a_worker_killed_mid_batch_costs_no_file(tmp_path: Path) -> None:
    """The OOM killer takes a worker: its jobs and the ones queued with it run again, and the
    batch still ends with every input converted exactly once and exit status 0."""
    inbox, outbox, journal = tmp_path / "in", tmp_path / "out", tmp_path / "j.jsonl"
    inbox.mkdir()
    sources = _corpus(inbox)
    cmd = [*SP404D, "convert", str(inbox), "--outbox", str(outbox), "--journal", str(journal)]
    proc = subprocess.Popen(
        cmd, env=run_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and _lines(journal) < 5 and time.monotonic() < deadline:
        time.sleep(0.002)
    workers = _workers(proc.pid)
    assert workers and _lines(journal) < FILES, "the batch finished before a worker was killed"
    os.kill(workers[0], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()
    files = [p for p in outbox.rglob("*") if p.is_file()]
    assert not [p for p in files if TEMP_RE.match(p.name)], "a temp file survived"
    assert len(files) == FILES
    assert all(sf.info(str(p)).frames == 72000 for p in files)
    records = journal_records(journal)
    assert all(r["status"] == "done" for r in records)
    assert sorted(r["source"] for r in records) == sorted(str(s) for s in sources)


def test_small_files_travel_in_chunks_and_long_ones_alone() -> None:
    from collections import deque
    from types import SimpleNamespace
    from typing import Any

    from sp404d.pipeline.scheduler import CHUNK_BYTES, CHUNK_FILES, next_trip

    def trips(items: list[Any], slots: int, alone: frozenset[Any] = frozenset()) -> list[list[Any]]:
        queue: deque[Any] = deque(items)
        out = []
        while queue:
            out.append([n(p) for p in next_trip(queue, slots, lambda p: n(p) in alone)])
        return out

    def n(plan: object) -> Any:
        assert isinstance(plan, SimpleNamespace)  # stands in for a Plan: next_trip reads .size
        return plan.n

    small = [SimpleNamespace(size=1000, n=i) for i in range(3 * CHUNK_FILES)]
    big = SimpleNamespace(size=CHUNK_BYTES, n="big")
    # A backlog goes CHUNK_FILES at a time; a long file closes its chunk.
    assert trips([*small[:2], big, *small[2:]], slots=1)[:2] == [
        [0, 1, "big"],
        list(range(2, 2 + CHUNK_FILES)),
    ]
    # A short queue is cut finer, so that it still spreads over every worker.
    assert trips(small[:5], slots=4) == [[0, 1], [2], [3], [4]]
    assert trips(small[:1], slots=4) == [[0]]
    # A file that must run alone (its chunk ran late, or a worker died under it) does.
    assert trips(small[:6], slots=1, alone=frozenset({2})) == [[0, 1], [2], [3, 4, 5]]


def test_a_job_failed_after_its_rename_is_retried_onto_its_own_output(tmp_path: Path) -> None:
    """A job recorded as failed although its output was already renamed into place (its worker
    killed a moment later, or the folder fsync failing): the retry adopts that file instead of
    reserving the same name again and failing with "appeared in the outbox meanwhile"."""
    from sp404d.config.loading import build_config
    from sp404d.pipeline.intents import Intents
    from sp404d.pipeline.job import execute
    from sp404d.pipeline.plan import Outcome, Plan
    from sp404d.pipeline.planner import Planner, Request

    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    source = inbox / "kick.wav"
    sf.write(str(source), np.random.default_rng(0).uniform(-0.3, 0.3, (44100, 2)), 44100)
    config = build_config(
        {"inbox": str(inbox), "outbox": str(outbox), "journal": str(tmp_path / "j.jsonl")}
    )
    planner = Planner(Journal(config.journal), Intents(config.journal))
    first = planner.plan(Request(source, inbox, config))
    assert isinstance(first, Plan)
    assert execute(first).status == "done"  # renamed into place...
    planner.settle(first, Outcome("failed", "worker process failed"))  # ...yet recorded failed
    retry = planner.plan(Request(source, inbox, config))
    assert isinstance(retry, Plan)
    outcome = execute(retry)
    assert (outcome.status, outcome.output) == ("done", first.final), outcome.reason
    assert sorted(p.name for p in outbox.iterdir()) == ["kick.wav"]


def test_a_plan_whose_name_leads_outside_the_outbox_writes_nothing(tmp_path: Path) -> None:
    """The planner's names are safe by construction; if one were not (a bug in name cleaning),
    the worker refuses to write it, and nothing appears outside the outbox."""
    from dataclasses import replace

    from sp404d.config.loading import build_config
    from sp404d.pipeline.job import execute
    from sp404d.pipeline.plan import Plan
    from sp404d.pipeline.planner import Planner, Request

    inbox, outbox = tmp_path / "in", tmp_path / "deep" / "out"
    inbox.mkdir()
    source = inbox / "kick.wav"
    sf.write(str(source), np.random.default_rng(0).uniform(-0.3, 0.3, (44100, 2)), 44100)
    config = build_config(
        {"inbox": str(inbox), "outbox": str(outbox), "journal": str(tmp_path / "j.jsonl")}
    )
    with Journal(config.journal) as journal:
        plan = Planner(journal).plan(Request(source, inbox, config))
    assert isinstance(plan, Plan)
    before = sorted(tmp_path.rglob("*"))
    for final in (outbox / ".." / "escaped.wav", tmp_path / "escaped.wav", outbox / ".."):
        outcome = execute(replace(plan, final=final))
        assert outcome.status == "failed" and "refusing to write" in str(outcome.reason)
    assert [p for p in sorted(tmp_path.rglob("*")) if p not in (outbox, outbox.parent)] == before
    assert list(outbox.iterdir()) == []
