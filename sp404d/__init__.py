"""sp404d: any audio file in, a Roland SP-404MK2-ready file out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sp404d")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
