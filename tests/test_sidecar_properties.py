"""Sidecars from anywhere: any YAML a tired person (or a tool) writes beside a file is read, or
refused with one line naming the file and the key; a plan made from it never leads outside the
outbox, and a chop's names keep their numbers within the name length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sp404d.config.loading import build_config
from sp404d.errors import JobError
from sp404d.journal.journal import Journal
from sp404d.metadata.base import FIELDS, SHAPING_KEYS
from sp404d.metadata.read import read_metadata
from sp404d.pipeline.planner import Early, Planner, Request

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        ["off", "onsets", "onsets 8", "onsets 0", "16", "peak -1", "lufs -14", "mono", "fold"]
    )
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=8,
)
sidecars = st.dictionaries(
    st.sampled_from([*FIELDS, *SHAPING_KEYS]) | st.text(max_size=10), values, max_size=5
) | st.fixed_dictionaries(
    {"chop": st.sampled_from([2, 3, 16, 64, "onsets", "onsets 5", "off"])},
    optional={
        "title": st.text(max_size=60),
        "kit": st.text(max_size=30),
        "bank": st.sampled_from(list("ABCDEFGHIJ")),
        "pad": st.integers(1, 16),
        "bpm": st.floats(20, 999),
    },
)


def _loop(folder: Path) -> Path:
    source = folder / "loop.wav"
    if not source.exists():
        t = np.arange(44100) / 44100
        sf.write(str(source), 0.3 * np.sin(2 * np.pi * 220 * t), 44100)
    return source


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sidecar=sidecars, layout=st.sampled_from(["flat", "genre", "bpm", "kit"]))
def test_any_sidecar_is_read_or_refused_in_one_line_and_plans_inside_the_outbox(
    tmp_path: Path, sidecar: dict[Any, Any], layout: str
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir(exist_ok=True)
    source = _loop(inbox)
    (inbox / "loop.wav.yaml").write_text(yaml.safe_dump(sidecar, allow_unicode=True))
    try:
        read_metadata(source, inbox)
    except JobError as exc:
        assert exc.reason and "\n" not in exc.reason
        assert "loop.wav.yaml" in exc.reason
    outbox = tmp_path / "out"
    config = build_config(
        {
            "inbox": str(inbox),
            "outbox": str(outbox),
            "journal": str(tmp_path / "j.jsonl"),
            "layout": layout,
        }
    )
    with Journal(config.journal, readonly=True) as journal:
        item = Planner(journal).plan(Request(source, inbox, config))
    if isinstance(item, Early):
        assert item.outcome.reason and "\n" not in item.outcome.reason
        return
    finals = [p.final for p in item.pieces] or [item.final]
    for final in finals:
        assert final.is_relative_to(outbox) and ".." not in final.parts
        assert len(final.stem) <= config.name_length
    if item.pieces:
        assert item.rules.chop is not None and len(item.pieces) == item.rules.chop[1]
        assert [f.stem[-3:] for f in finals] == [f"_{i:02d}" for i in range(1, len(finals) + 1)]
        assert len({f.name.casefold() for f in finals}) == len(finals)
