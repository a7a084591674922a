"""The version of fastbp (also the package metadata's: ``pyproject.toml`` reads it)."""

__version__ = "0.1.0"
