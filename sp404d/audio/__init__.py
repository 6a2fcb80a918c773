"""The audio stages: reading an input (``probe``, ``decode``), measuring and shaping its samples
(``dsp``) and writing the 48 kHz/16-bit file (``render``, ``pcmfile``). They know nothing of
jobs, configs or the journal: these modules import only one another and :mod:`sp404d.errors`,
so the audio can be tested, benchmarked and changed on its own, and the rest of sp404d sees
only what they return or raise.
"""

from __future__ import annotations

from sp404d.audio import dsp
from sp404d.audio.chop import Slice
from sp404d.audio.listen import hear, hear_file
from sp404d.audio.probe import AudioInfo, probe, shown, truncated_reason
from sp404d.audio.render import RenderResult, RenderSpec, heard_as_rendered
from sp404d.audio.render_chop import render_chopped, slices_too_short, too_long_to_chop

__all__ = [
    "AudioInfo",
    "RenderResult",
    "RenderSpec",
    "Slice",
    "dsp",
    "hear",
    "hear_file",
    "heard_as_rendered",
    "probe",
    "render_chopped",
    "shown",
    "slices_too_short",
    "too_long_to_chop",
    "truncated_reason",
]
