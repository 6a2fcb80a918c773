"""Refusals decided while planning, before a file takes a name or a pad: metadata that asks for
a kit under another layout, and a kit's file (or a loop to chop) whose header already says the
job would refuse it. The words are the worker's own."""

from __future__ import annotations

from sp404d.audio import dsp, slices_too_short, too_long_to_chop
from sp404d.audio.probe import probe
from sp404d.config import Rules
from sp404d.errors import JobError, RejectedError
from sp404d.metadata import Metadata
from sp404d.pipeline.job import check_duration
from sp404d.pipeline.plan import Outcome
from sp404d.pipeline.request import Request


def kit_keys_need_kit_layout(meta: Metadata, layout: str) -> None:
    """A kit, bank or pad a sidecar or folder file sets is refused under another layout: it
    would be ignored, and the musician who wrote it expects a kit."""
    if layout == "kit":
        return
    for name in ("kit", "bank", "pad"):
        origin = meta.origins.get(name, "")
        value = getattr(meta, name)
        if value is not None and origin.startswith(("sidecar:", "folder:")):
            where = origin.replace("sidecar:", "sidecar ").replace("folder:", "folder file ")
            raise RejectedError(
                f"{name}: {value} in {where}, but the layout here is {layout}: "
                "add layout: kit to that file (or to the inbox's settings)"
            )


def judged(request: Request, rules: Rules) -> Outcome | None:
    """A kit's file, or a loop to chop, is judged before it takes its pads (a header read, as
    the worker's first look): a file refused later would leave a hole in the kit, and ``check``
    would promise a chop the job refuses. The refusal is the worker's, word for word."""
    info = None
    try:
        info = probe(request.source)
        check_duration(info, rules)
        if rules.chop is not None:
            why = too_long_to_chop(info.frames, info.rate, exact=info.exact_length)
            way, count = rules.chop
            # Equal slices too short: known from the header, unless a trim shortens it first.
            sure = info.exact_length and rules.short_files == "reject" and not rules.trim
            if why is None and way == "equal" and sure:
                least = round(rules.min_duration_ms * dsp.OUT_RATE / 1000)
                why = slices_too_short(info.frames * dsp.OUT_RATE // info.rate, count, least)
            if why is not None:
                raise RejectedError(why)
    except JobError as exc:
        return Outcome("failed" if exc.retry else "rejected", exc.reason, info=info)
    return None
