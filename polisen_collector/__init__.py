"""The collector's version, shared by the User-Agent, metrics and the health file."""

__version__ = "1.0.0"
