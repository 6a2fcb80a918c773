"""The audio stages: reading an input (``probe``, ``decode``), measuring and shaping its samples
(``dsp``) and writing the 48 kHz/16-bit file (``render``, ``pcmfile``). They know nothing of
jobs, configs or the journal: these modules import only one another and :mod:`sp404d.errors`,
so the audio can be tested, benchmarked and changed on its own, and the rest of sp404d sees
only what they return or raise.
"""
