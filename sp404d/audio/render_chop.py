"""A chopped loop: its slices cut from the whole, shaped and limited as one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from sp404d.audio import chop, dsp
from sp404d.audio.listen import hear
from sp404d.audio.probe import AudioInfo
from sp404d.audio.render import IN_MEMORY_FRAMES, finish, prepare_whole
from sp404d.audio.render_common import RenderResult, RenderSpec, with_warning
from sp404d.errors import RejectedError

#: An MP3 without a length tag (CBR, no Xing header) has its length estimated from its
#: bitrate: a loop whose estimate is this much over the limit is still decoded and judged.
ESTIMATE_SLACK = 1.1


def too_long_to_chop(frames: int, rate: int, *, exact: bool = True) -> str | None:
    """Why a file of ``frames`` at ``rate`` is too long to chop, or None. The limit is the
    48 kHz output's length (a 96 kHz loop of 25 s is well within it), held whole in memory;
    ``exact``: the length is known, not estimated (then the decode has the last word)."""
    most = IN_MEMORY_FRAMES * (1.0 if exact else ESTIMATE_SLACK)
    if frames * dsp.OUT_RATE <= most * rate:
        return None
    seconds = frames / rate
    length = f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
    return f"too long to chop: {length}; chop takes files up to 43 s"


def slices_too_short(frames: int, count: int, least: int) -> str | None:
    """Why ``count`` equal slices of ``frames`` (at 48 kHz) are too short to keep (each under
    ``least`` frames), or None."""
    if frames // count >= least:
        return None
    ms = 1000 * frames / count / dsp.OUT_RATE
    return f"chop {count}: slices of {ms:.0f} ms, minimum {1000 * least / dsp.OUT_RATE:.0f} ms"


def render_chopped(
    src: Path, info: AudioInfo, dsts: Sequence[Path], spec: RenderSpec
) -> list[tuple[chop.Slice, RenderResult]]:
    """Write ``src`` as slices (``spec.chop``) to the first of ``dsts``, one a slice: as many
    as the way of chopping gives, at most ``len(dsts)``.

    The whole loop is shaped, normalised and limited as one (slices keep their levels against
    each other); each slice is then cut, faded where its cut is inside sound, and dithered
    with its own seed.
    """
    assert spec.chop is not None
    way, count = spec.chop
    if (why := too_long_to_chop(info.frames, info.rate, exact=info.exact_length)) is not None:
        raise RejectedError(why)
    whole = prepare_whole(src, info, spec)
    x = whole.x
    if not info.exact_length and len(x) > IN_MEMORY_FRAMES:  # its length was an estimate
        raise RejectedError(str(too_long_to_chop(len(x), dsp.OUT_RATE, exact=True)))
    least = spec.slice_min_frames
    crowded = None
    if spec.cuts:  # where it was cut before (rebuild): the same slices, whatever finds onsets
        parts = [chop.Slice(a, min(b, len(x)), fi, fo) for a, b, fi, fo in spec.cuts if a < len(x)]
    elif way == "equal":
        if not spec.pad_slices and (why := slices_too_short(len(x), count, least)) is not None:
            raise RejectedError(why)
        parts = chop.slices(x, chop.equal_cuts(len(x), count), dsp.OUT_RATE, snapped=False)
    else:
        room = min(count, len(dsts))
        if way == "markers":
            # The markers were placed on the file as it was: a trimmed start moves them.
            trimmed = float(str(whole.shaping.get("trim_start_ms", 0.0)))
            shift = round(trimmed * dsp.OUT_RATE / 1000)
            marks = tuple(m - shift for m in spec.markers if m > shift)
            starts, found = chop.marker_starts(len(x), marks, room, least)
        else:
            sensitivity = way.split()[1] if " " in way else "mid"
            starts, found = chop.onset_starts(x, dsp.OUT_RATE, room, least, sensitivity)
        if found > room and room < count:  # fewer pads free in its kit than sounds found
            crowded = (
                f"{found} sounds found, room for {room} slices on its pads: the strongest kept"
            )
        parts = chop.slices_from(x, starts, dsp.OUT_RATE)
    done = []
    for i, (part, dst) in enumerate(zip(parts, dsts, strict=False)):
        y = chop.cut_out(x, part, dsp.OUT_RATE)
        if len(y) < least:
            y = np.concatenate([y, dsp.silence(least - len(y), y.shape[1])])
        done.append((part, finish(whole, y, info, dst, spec, (spec.seed, i))))
    if crowded:
        done = [(part, with_warning(result, crowded)) for part, result in done]
    if way != "equal" and len(done) == 1:
        what = "markers" if way == "markers" else "transients"
        part, result = done[0]
        done[0] = (part, with_warning(result, f"no {what} found to chop at: one slice"))
    if spec.hear_bpm or spec.hear_key:  # the loop's BPM and key, on each of its slices
        heard = hear(whole.x[: whole.sounded], dsp.OUT_RATE, spec.hear_bpm, spec.hear_key) or None
        done = [(part, replace(result, heard=heard)) for part, result in done]
    return done
