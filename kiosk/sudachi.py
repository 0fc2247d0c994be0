"""The one Sudachi dictionary of the process, shared by every stage that analyses Japanese
(search analysis, the end-of-turn model, Open JTalk's reading fixes).

Each `sudachipy.Dictionary` maps sudachidict-core again and builds its own tables: about
80 MB more resident memory per copy (measured by bench/memory_bench.py), for identical
results. So the dictionary is created once, on first use, and each thread gets its own
tokenizer from it (a tokenizer is small, and Sudachi's tokenizers are not meant to be shared
between threads; the dictionary is).

    dictionary() -> sudachipy.Dictionary     — created once per process
    tokenizer()  -> sudachipy.Tokenizer      — one per thread, from that dictionary
    created() -> int                          — how many dictionaries this process made (tests)
    share_with_openjtalk()                    — pyopenjtalk-plus's reading fixes use it too
"""

from __future__ import annotations

import threading
from typing import Any

from kiosk import KioskError
from kiosk.i18n import _

_lock = threading.Lock()
_dictionary: Any = None
_created = 0
_local = threading.local()


def dictionary() -> Any:
    """The process-wide Sudachi dictionary (sudachidict-core), loaded on first use."""
    global _dictionary, _created
    if _dictionary is None:
        with _lock:
            if _dictionary is None:
                try:
                    from sudachipy import dictionary as sudachi_dictionary
                except ImportError as exc:  # pragma: no cover - install problem
                    raise KioskError(_(
                        "Japanese analysis needs SudachiPy and its dictionary; install them "
                        "with: python3 -m pip install sudachipy sudachidict-core")) from exc
                try:
                    _dictionary = sudachi_dictionary.Dictionary(dict="core")
                except Exception as exc:  # pragma: no cover - install problem
                    raise KioskError(_(
                        "The Sudachi dictionary could not be loaded ({reason}); install it "
                        "with: python3 -m pip install sudachidict-core").format(reason=exc)
                    ) from exc
                _created += 1
    return _dictionary


def tokenizer() -> Any:
    """This thread's tokenizer over the shared dictionary."""
    tok = getattr(_local, "tokenizer", None)
    if tok is None:
        d = dictionary()
        tok = d.tokenizer() if hasattr(d, "tokenizer") else d.create()  # SudachiPy < 0.6.9
        _local.tokenizer = tok
    return tok


def created() -> int:
    """How many Sudachi dictionaries this module has created (one at most)."""
    return _created


def share_with_openjtalk() -> None:
    """pyopenjtalk-plus corrects kanji readings with Sudachi and would load its own copy of
    the same dictionary (its default one, sudachidict-core) on the first sentence it reads:
    hand it this one instead. Its module keeps the dictionary in `_SUDACHI_DICTIONARY` and
    makes per-thread tokenizers from it, as here; a release without that name keeps its own."""
    try:
        from pyopenjtalk import utils as openjtalk_utils
    except ImportError:  # pragma: no cover - the voice reports a missing pyopenjtalk itself
        return
    with openjtalk_utils._SUDACHI_DICTIONARY_LOCK if hasattr(
            openjtalk_utils, "_SUDACHI_DICTIONARY_LOCK") else _lock:
        if getattr(openjtalk_utils, "_SUDACHI_DICTIONARY", "") is None:
            openjtalk_utils._SUDACHI_DICTIONARY = dictionary()
