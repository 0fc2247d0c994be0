"""Japanese analysis for the index and the query, as whoosh tokenizers.

Spoken questions reach the search as speech-recognition text: wrong homophone kanji, long runs
of hiragana, no particles, colloquial words. Two analyses cover that:

* `LemmaAnalyzer` — SudachiPy morphemes (mode C, plus the mode A parts of compounds so
  「粗大ごみ」 also meets 「ごみ」), each as its normalized form and dictionary form, NFKC'd,
  lower-cased and folded to katakana (ごみ = ゴミ); particles, auxiliaries, symbols and
  blanks are dropped.
* `ReadingAnalyzer` — the katakana reading of runs of content words, with long vowels and
  look-alike kana folded (ホーズイ ≈ コウズイ share ーズ/ズイ), cut into character n-grams.
  A query in kana or with the wrong kanji still shares most n-grams with the right entry.

Why these classes are tiny: whoosh pickles the analyzer of every field into the index's
TOC. Each analyzer here pickles as its importable class name plus a couple of ints; the
Sudachi dictionary is a lazily-created module-level singleton, so an index written by one
process reopens in any other (and the dictionary loads once per process). Do not rename
these classes: existing indexes refer to them by name. Indexes written before the stage
folders name this module `kiosk.analysis`; `kiosk.search` registers that old name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jaconv
from whoosh.analysis import Token, Tokenizer

from kiosk import KioskError, sudachi
from kiosk.i18n import _

#: Parts of speech that carry no searchable meaning.
_DROPPED_POS = frozenset({"助詞", "助動詞", "補助記号", "記号", "空白", "代名詞"})
#: Parts of speech that are not pronounced.
_SILENT_POS = frozenset({"補助記号", "記号", "空白"})
#: Not words to search for (あのー, えっと), but Sudachi also tags misheard kana this way
#: (「ほーずい」 → ほー + ずい), so their sound stays in the reading field.
_SOUND_ONLY_POS = frozenset({"感動詞", "フィラー"})
#: Sudachi refuses inputs above ~49 KB; analyse long bodies in slices this many characters.
_CHUNK_CHARS = 4000
_HIRAGANA = re.compile(r"[ぁ-ゖー]+")
_CHUNK_BREAK = re.compile(r"(?<=[。．！？!?\n])")

def _tokenizer():
    """This thread's Sudachi tokenizer, over the one dictionary the whole process shares
    (kiosk.sudachi: the end-of-turn model and the voice use the same one)."""
    return sudachi.tokenizer()


def normalize_text(text: str) -> str:
    """NFKC (full-width letters/digits → ASCII, half-width kana → full) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def fold_kana(text: str) -> str:
    """Hiragana → katakana, so ごみ and ゴミ are one term."""
    return jaconv.hira2kata(text)


def unfold_kana(text: str) -> str:
    """Katakana → hiragana: a reading as a person types it into an input method."""
    return jaconv.kata2hira(text)


# Kana whose vowel is a/i/u/e/o, for folding long vowels in readings.
_VOWEL_ROWS = {
    "ア": "アカガサザタダナハバパマヤャラワァ",
    "イ": "イキギシジチヂニヒビピミリィ",
    "ウ": "ウクグスズツヅヌフブプムユュルゥヴ",
    "エ": "エケゲセゼテデネヘベペメレェ",
    "オ": "オコゴソゾトドノホボポモヨョロヲォ",
}
_VOWEL_OF = {k: v for v, ks in _VOWEL_ROWS.items() for k in ks}
#: A second vowel that speech and spelling blur into a long-vowel mark: おう/おお/えい/…
_LENGTHENERS = {"ア": "ア", "イ": "イエ", "ウ": "ウオ", "エ": "エイ", "オ": "オウ"}
_KANA_ALIASES = str.maketrans({"ヂ": "ジ", "ヅ": "ズ", "ヲ": "オ", "ヴ": "ブ", "ヮ": "ワ",
                                "ァ": "ア", "ィ": "イ", "ゥ": "ウ", "ェ": "エ", "ォ": "オ"})


def fold_reading(reading: str) -> str:
    """Fold a katakana reading so spellings that sound alike compare equal:
    コウズイ/コーズイ/コオズイ → コーズイ, ヂ→ジ, ヲ→オ. Small ァィゥェォ fold too."""
    out: list[str] = []
    for c in fold_kana(reading):
        prev = out[-1] if out else ""
        vowel = _VOWEL_OF.get(prev)
        if c == "ー" and prev == "ー":
            continue
        if vowel and c in _LENGTHENERS[vowel]:
            out.append("ー")
            continue
        out.append(c)
    return "".join(out).translate(_KANA_ALIASES)


@dataclass(frozen=True)
class Morpheme:
    """One word of analysed text, already normalised for matching."""

    forms: tuple[str, ...]  # normalized form and dictionary form (one if they agree)
    parts: tuple[str, ...]  # forms of the mode-A parts of a compound, minus `forms`
    reading: str  # folded katakana reading of the surface
    content: bool  # False for particles, auxiliaries, symbols, pronouns, fillers
    hiragana: bool = False  # written all in hiragana: Sudachi's guess, less reliable
    sound: str = ""  # folded reading of any spoken morpheme, particles included


def _chunks(text: str) -> Iterator[str]:
    if len(text) <= _CHUNK_CHARS:
        yield text
        return
    piece = ""
    for part in _CHUNK_BREAK.split(text):
        while len(part) > _CHUNK_CHARS:  # one huge sentence: hard split
            yield piece + part[: _CHUNK_CHARS - len(piece)]
            part = part[_CHUNK_CHARS - len(piece):]
            piece = ""
        if len(piece) + len(part) > _CHUNK_CHARS:
            yield piece
            piece = ""
        piece += part
    if piece:
        yield piece


def term_of(form: str) -> str:
    """A word as the index stores it: NFKC, lower case, katakana."""
    return fold_kana(normalize_text(form)).strip()


def _unique(forms: list[str], exclude: list[str] = ()) -> list[str]:
    out: list[str] = []
    for f in forms:
        t = term_of(f)
        if t and t not in out and t not in exclude:
            out.append(t)
    return out


#: Morphemes already worked out, by what Sudachi said of the word: content repeats its
#: words, so an import builds each distinct word's Morpheme once (the NFKC, kana folding
#: and mode-A split are most of the analysis's Python time). Capped for a long-running kiosk.
_MORPHEMES: dict[tuple, Morpheme] = {}
_MORPHEMES_MAX = 100_000


def forget_words() -> None:
    """Drop the words an import worked out (tens of MB at 10,000 entries): a serving kiosk
    hears few of them, and the memory is the kiosk's."""
    _MORPHEMES.clear()
    analyse.cache_clear()


def _morpheme(m, surface: str, mode_a) -> Morpheme:
    """One Sudachi morpheme as the index and the query see it."""
    pos = m.part_of_speech()[0]
    sounded = pos not in _DROPPED_POS and bool(surface.strip())
    content = sounded and pos not in _SOUND_ONLY_POS
    forms: list[str] = []
    parts: list[str] = []
    if content:
        forms = _unique([m.normalized_form(), m.dictionary_form()])
        split = m.split(mode_a)
        if len(split) > 1:
            parts = _unique(
                [f for p in split if p.part_of_speech()[0] not in _DROPPED_POS
                 for f in (p.normalized_form(), p.dictionary_form())], forms)
    spoken = pos not in _SILENT_POS and bool(surface.strip())
    sound = fold_reading(normalize_text(m.reading_form())) if spoken else ""
    if sound == "キゴー":  # Sudachi's reading of unknown symbols
        sound = ""
    return Morpheme(tuple(forms), tuple(parts), sound if sounded else "", content,
                    bool(_HIRAGANA.fullmatch(surface)), sound)


@functools.lru_cache(maxsize=2048)
def analyse(text: str) -> tuple[Morpheme, ...]:
    """Morphemes of `text`. Cached: the index analyses each title for two fields, and the
    query builder for lemma terms, reading grams and confidence."""
    from sudachipy import tokenizer as sudachi_tokenizer

    mode_c = sudachi_tokenizer.Tokenizer.SplitMode.C
    mode_a = sudachi_tokenizer.Tokenizer.SplitMode.A
    tok = _tokenizer()
    out: list[Morpheme] = []
    known = _MORPHEMES
    for chunk in _chunks(unicodedata.normalize("NFKC", text)):
        for m in tok.tokenize(chunk, mode_c):
            surface = m.surface()
            # the word's lexicon entry and everything the Morpheme is made of
            key = (surface, m.word_id(), m.part_of_speech_id(), m.normalized_form(),
                   m.dictionary_form(), m.reading_form())
            morpheme = known.get(key)
            if morpheme is None:
                if len(known) >= _MORPHEMES_MAX:
                    known.clear()
                morpheme = known[key] = _morpheme(m, surface, mode_a)
            out.append(morpheme)
    return tuple(out)


_KATAKANA_WORD = re.compile(r"[ァ-ヺー]+")
_JAPANESE_LETTER = re.compile(r"[ぁ-ゖァ-ヺ一-鿿々〆ヶ]")
_HIRAGANA_LETTER = re.compile(r"[ぁ-ゖ]")


def mostly_kana(text: str, share: float) -> bool:
    """True when at least `share` of the Japanese letters in `text` are hiragana: a question
    a recogniser wrote in kana, not a typed one whose particles and endings are kana."""
    letters = len(_JAPANESE_LETTER.findall(text))
    return letters > 0 and len(_HIRAGANA_LETTER.findall(text)) >= share * letters


def kana_reading(text: str) -> str:
    """`text` as a person would type it into an input method: every Japanese word in
    hiragana (kanji words by Sudachi's reading), everything else as written."""
    tok = _tokenizer()
    from sudachipy import tokenizer as sudachi_tokenizer

    mode_c = sudachi_tokenizer.Tokenizer.SplitMode.C
    out: list[str] = []
    for chunk in _chunks(unicodedata.normalize("NFKC", text)):
        for m in tok.tokenize(chunk, mode_c):
            surface = m.surface()
            if _HIRAGANA.fullmatch(surface) or not _JAPANESE_LETTER.search(surface):
                out.append(surface)
            else:
                out.append(unfold_kana(surface if _KATAKANA_WORD.fullmatch(surface)
                                       else m.reading_form()))
    return "".join(out)


def lemma_terms(text: str) -> list[str]:
    """The index terms of `text`, in order (repeats kept, as term frequency counts)."""
    return [t for m in analyse(text) if m.content for t in m.forms + m.parts]


def reading_runs(text: str, skip: Callable[[Morpheme], bool] | None = None) -> list[str]:
    """Readings of consecutive content words joined into runs; particles and symbols (and
    words `skip` rejects) break runs. Joining makes the n-grams independent of how a kana
    run was segmented."""
    runs: list[str] = []
    current = ""
    for m in analyse(text):
        if m.reading and not (skip and skip(m)):
            current += m.reading
        elif current:
            runs.append(current)
            current = ""
    if current:
        runs.append(current)
    return runs


def reading_grams(text: str, gram_min: int, gram_max: int,
                  skip: Callable[[Morpheme], bool] | None = None) -> list[str]:
    """Character n-grams (gram_min..gram_max) of the reading runs; a run shorter than
    gram_min is kept whole so one-syllable words still count."""
    grams: list[str] = []
    for run in reading_runs(text, skip):
        if len(run) < gram_min:
            grams.append(run)
            continue
        for n in range(gram_min, gram_max + 1):
            grams += [run[i: i + n] for i in range(len(run) - n + 1)]
    return grams


class _TermTokenizer(Tokenizer):
    """Shared whoosh plumbing: yields one Token per string from `self._strings(value)`."""

    def _strings(self, value: str) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, tokenize=True, mode="",
                 **kwargs):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        strings = self._strings(value) if tokenize else [value]
        for i, text in enumerate(strings):
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = text
            if positions:
                token.pos = start_pos + i
            if chars:  # offsets are not tracked (no highlighting); keep them monotonic
                token.startchar = start_char + i
                token.endchar = start_char + i + 1
            yield token


class LemmaAnalyzer(_TermTokenizer):
    """Normalized-form terms for title, body and keywords. Pickles as its name only."""

    def _strings(self, value: str) -> list[str]:
        return lemma_terms(value)


class ReadingAnalyzer(_TermTokenizer):
    """Katakana reading n-grams for the reading field. Pickles as its name and gram sizes,
    which are a property of the index (the query must cut grams the same way)."""

    def __init__(self, gram_min: int = 2, gram_max: int = 3):
        if not 1 <= gram_min <= gram_max:
            raise KioskError(_(
                "reading n-gram sizes must satisfy 1 <= min <= max (got {low}, {high}); fix "
                "reading_ngram_min/max in the [search] config section").format(
                    low=gram_min, high=gram_max))
        self.gram_min = gram_min
        self.gram_max = gram_max

    def _strings(self, value: str) -> list[str]:
        return reading_grams(value, self.gram_min, self.gram_max)

