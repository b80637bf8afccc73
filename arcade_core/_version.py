"""The version of Arcade (one place; the distribution metadata and the wire read it)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
