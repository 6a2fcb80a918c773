"""sp404d: any audio file in, a Roland SP-404MK2-ready file out."""

import os as _os

# The one place the version is written (pyproject.toml reads it). A literal, not
# importlib.metadata: that import alone costs every command ~40 ms of start-up.
__version__ = "0.1.0"

# One thread of BLAS per process, before numpy loads: sp404d's parallelism is its pool of
# worker processes, and OpenBLAS's own threads in each fought them (measured: four more CPU
# seconds on the convert benchmark's 640 files when analysis ran a filterbank per file).
# A user's own setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__all__ = ["__version__"]
