"""Offline Japanese voice-search kiosk: audio → recogniser → query → index → answer → voice."""

__version__ = "0.1.0"


class KioskError(Exception):
    """A problem a person can fix; the message says what happened and what to do, in plain
    words. The CLI prints it without a traceback."""
