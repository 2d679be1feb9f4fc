"""Runtime of the digital public services assistant: settings, storage, service, channels."""

__version__ = "0.1.0"
