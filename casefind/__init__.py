"""casefind: case-finding for GP vulnerable-family (safeguarding) meetings."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("casefind")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
