"""feredge: facial-expression recognition from training to the edge."""

from feredge.version import __version__

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> object:
    """``feredge.load`` on first use (feredge.api), so ``import feredge`` loads no runtime."""
    if name == "load":
        from feredge.api import load

        return load
    raise AttributeError(f"module 'feredge' has no attribute {name!r}")
