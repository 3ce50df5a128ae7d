"""A self-hosted PyPI registry whose whole state lives in git."""

__version__ = "0.1.0"
