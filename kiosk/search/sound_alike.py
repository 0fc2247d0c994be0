"""Sound-alike lookup: entries whose title or keyword *sounds like* a stretch of a question
the recogniser garbled, for the ask-back's choices only.

In a reverberant, noisy lobby whisper often keeps a word's sound and loses the word:
「婚姻届」 comes out as 「コニットとけ」 or 「5人届け」, 「母子手帳」 as 「押して庁」 or
「御指定帳」. No word of the entry is in the transcript, and the reading n-grams of the index
are too short to find it, but spelled out in letters the sound is still close
(konintodoke / konittotoke). This stage compares the question's sound with every title's and
keyword's sound (romanised kana, long vowels and look-alike kana folded first, so ボシテチョー
and オシテチョー differ in one letter) and returns the entries whose best phrase matches
some stretch of the question closely enough.

It only ever offers: the answer stage adds what it finds to the choices of a question it
already doubts (kiosk.answer.composer), and never reads such an entry out at once — a near
sound is a reason to ask, not to answer.

Short phrases are left out ([search] sound_alike_min_letters): any six letters of Japanese
sound match some stretch of a long question nearly as well by chance (measured on the
simulated lobby's transcripts: the best chance match of a 6-letter keyword reached 0.91,
while most right phrases of 7 letters and more came at 0.8–0.95).

CONTRACT:
    SoundAlikes(entries, settings: SearchSettings)
    SoundAlikes.find(texts: Sequence[str], limit: int) -> list[(entry number, closeness)]
        — closest first; the search index turns them into Hits (confidence = closeness)
    sound_of(text) -> str                           — the letters a text sounds like
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import jaconv
from rapidfuzz import fuzz, process

from kiosk.config import SearchSettings
from kiosk.content.contract import Entry
from kiosk.search.analysis import fold_kana, fold_reading, kana_reading

_NOT_LETTER = re.compile(r"[^a-z]")


def sound_of(text: str) -> str:
    """`text` as the letters it sounds like: kanji read by Sudachi, kana folded
    (kiosk.search.analysis.fold_reading), romanised, everything but letters dropped
    (「母子手帳」 → boshitecho, 「押して庁」 → oshitecho)."""
    folded = fold_reading(fold_kana(kana_reading(text)))
    return _NOT_LETTER.sub("", jaconv.kata2alphabet(folded).lower())


class SoundAlikes:
    """Every entry's title and keywords by their sound, to look a garbled question up in."""

    def __init__(self, entries: Iterable[Entry], settings: SearchSettings):
        """`entries` in the order `find` numbers them (an index version's rows); only their
        phrases' sounds are kept, not the entries."""
        self.min_similarity = settings.sound_alike_min_similarity
        self.sounds: list[str] = []
        self.owners: list[int] = []  # the entry's number in `entries`
        for number, entry in enumerate(entries):
            for phrase in dict.fromkeys((entry.title, *entry.keywords)):
                sound = sound_of(phrase)
                if len(sound) >= settings.sound_alike_min_letters:
                    self.sounds.append(sound)
                    self.owners.append(number)

    def find(self, texts: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """(entry number, closeness 0..1) of the entries with a title or keyword that
        sounds like a stretch of any of `texts` (the recogniser's transcripts) at [search]
        sound_alike_min_similarity or closer, closest first. A phrase written in a
        transcript as it is counts too (the word search has found that entry already;
        offering it again changes nothing)."""
        if limit <= 0 or not self.sounds or self.min_similarity > 1:
            return []
        best: dict[int, float] = {}
        for text in texts:
            heard = sound_of(text)
            if not heard:
                continue
            for _, score, i in process.extract_iter(
                    heard, self.sounds, scorer=fuzz.partial_ratio,
                    score_cutoff=self.min_similarity * 100):
                if len(self.sounds[i]) <= len(heard):  # a longer phrase is not "in" it
                    owner = self.owners[i]
                    best[owner] = max(best.get(owner, 0.0), score / 100)
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]


__all__ = ["SoundAlikes", "sound_of"]
