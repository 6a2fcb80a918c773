"""sp404d: any audio file in, a Roland SP-404MK2-ready file out."""

# The one place the version is written (pyproject.toml reads it). A literal, not
# importlib.metadata: that import alone costs every command ~40 ms of start-up.
__version__ = "0.1.0"

__all__ = ["__version__"]
