"""Offline Japanese voice-search kiosk: audio → recogniser → query → index → answer → voice."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from kiosk.i18n import _

__version__ = "0.1.0"

#: The bundled default content and the search and voice tables (kiosk/data/README.md).
DATA_DIR = Path(__file__).with_name("data")

T = TypeVar("T")


class KioskError(Exception):
    """A problem a person can fix; the message says what happened and what to do, in plain
    words. The CLI prints it without a traceback."""


class OptionalModel(Generic[T]):
    """The one process-wide instance of a helper model the kiosk can search without (the
    embedding model, the kana-to-kanji converter): loaded on first use; when loading fails
    with `unavailable`, the reason is logged once and remembered, so the kiosk goes on
    without it instead of retrying (and logging) on every question."""

    def __init__(self, unavailable: type[KioskError], log: logging.Logger, prefix: str = ""):
        self._unavailable = unavailable
        self._log = log
        self._prefix = prefix  # what the warning says before the reason
        self._value: T | None = None
        self._failed = ""
        self._lock = threading.Lock()

    def get(self, load: Callable[[], T]) -> T | None:
        if self._failed:
            return None
        with self._lock:
            if self._value is None and not self._failed:
                try:
                    self._value = load()
                except self._unavailable as exc:
                    self._failed = str(exc)
                    self._log.warning("%s%s", _(self._prefix) if self._prefix else "", exc)
            return self._value
