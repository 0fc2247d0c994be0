"""Query stage: turns recognised or typed text into a whoosh query.

Spoken questions are long, particle-less and full of filler (「ゴミいつ出せばいいの」), so the
query is an OR of the question's words — never whoosh's default AND, which finds nothing for
a long question. Each content word becomes one *group*: its normalized/dictionary forms and
compound parts, searched in title, body and keywords with the configured field weights; the
synonym table adds city terms to the group of the everyday word they replace; the question's
katakana reading, cut into n-grams, is searched in the reading field so kana or wrong-kanji
words still meet the right entry. Groups are also what `kiosk.search.index` counts to compute a
confidence (how much of the question the best entry covers).

CONTRACT:
    SynonymTable.load(path: Path | None) -> SynonymTable   — None = the bundled table
    SoundVocabulary.from_texts(texts, min_kana, stopwords) -> SoundVocabulary
    SoundVocabulary.from_sounds(sounds, min_kana, stopwords) -> SoundVocabulary
    QueryBuilder(settings: SearchSettings, synonyms: SynonymTable | None,
                 gram_min: int, gram_max: int, vocabulary: SoundVocabulary | None,
                 converter: KanaKanjiConverter | None)
    QueryBuilder.build(text: str) -> BuiltQuery
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from whoosh import query as wq

from kiosk import DATA_DIR, KioskError
from kiosk.config import SearchSettings
from kiosk.i18n import _
from kiosk.search.analysis import (
    Morpheme,
    analyse,
    kana_reading,
    lemma_terms,
    mostly_kana,
    normalize_text,
    reading_grams,
    reading_runs,
    term_of,
)
from kiosk.search.places import PlaceNames

if TYPE_CHECKING:
    from kiosk.search.kana_kanji import KanaKanjiConverter

log = logging.getLogger(__name__)

BUNDLED_SYNONYMS = DATA_DIR / "synonyms.tsv"
#: Lemma fields searched for every word, with the SearchSettings attribute of their weight.
LEMMA_FIELDS = (("title", "title_weight"), ("body", "body_weight"),
                ("keywords", "keywords_weight"))
READING_FIELD = "reading"
#: Compound parts count less than the whole word (a part also matches other compounds).
PART_WEIGHT = 0.5
#: Synonym keys shorter than this (in kana) match only as written, never by sound.
MIN_READING_KEY = 3


class SynonymError(KioskError):
    """The synonym table has a line the kiosk cannot use."""


@dataclass(frozen=True)
class Synonym:
    """One line of the table: when `key` is heard, also search for `expansions`."""

    key: str
    expansions: tuple[str, ...]
    line: int
    match_text: str = ""  # key normalised for substring matching (NFKC, katakana)
    match_reading: str = ""  # key's folded reading, for kana/wrong-kanji questions


@dataclass(frozen=True)
class SynonymTable:
    """The staff-editable synonym table (format in docs/search.md)."""

    entries: tuple[Synonym, ...] = ()
    source: str = ""

    @classmethod
    def load(cls, path: Path | str | None = None) -> SynonymTable:
        """Read a table; every malformed line is reported as file:line with the fix."""
        file = Path(path) if path else BUNDLED_SYNONYMS
        try:
            text = file.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            raise SynonymError(
                _("synonym table {file} does not exist; fix content.synonyms_file in the "
                  "config, or set it to \"\" for the bundled table").format(file=file)) from None
        except UnicodeDecodeError as exc:
            raise SynonymError(
                _("synonym table {file} is not UTF-8 text (byte {at}); save it as UTF-8 "
                  "(tab-separated)").format(file=file, at=exc.start)) from None
        return cls.parse(text, str(file))

    @classmethod
    def parse(cls, text: str, source: str = "synonyms") -> SynonymTable:
        entries: list[Synonym] = []
        problems: list[str] = []
        seen: dict[str, int] = {}
        for no, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            cells = [c.strip() for c in raw.split("\t")]
            where = f"{source}:{no}"
            if len(cells) < 2:
                problems.append(
                    _("{where}: no tab found; write the everyday word, a TAB, then the city "
                      "term(s), each separated by a TAB (got {line!r})").format(where=where, line=line[:40]))
                continue
            key, expansions = cells[0], tuple(c for c in cells[1:] if c)
            if not key:
                problems.append(_("{where}: the first column (the word people say) is empty").format(
                    where=where))
                continue
            if not expansions:
                problems.append(_("{where}: '{key}' has no city term after the tab").format(
                    where=where, key=key))
                continue
            norm = term_of(key)
            if norm in seen:
                problems.append(_("{where}: '{key}' is already listed on line {line}; "
                                  "merge the two lines").format(where=where, key=key, line=seen[norm]))
                continue
            seen[norm] = no
            reading = "".join(reading_runs(key))
            entries.append(Synonym(key, expansions, no, norm,
                                   reading if len(reading) >= MIN_READING_KEY else ""))
        if problems:
            raise SynonymError(
                _("{n} problem(s) in the synonym table; fix them and try again:").format(
                    n=len(problems)) + "\n  " + "\n  ".join(problems))
        return cls(tuple(entries), source)

    def expansions_for(self, text: str) -> list[Synonym]:
        """Table lines whose key occurs in `text`, as written or by sound."""
        norm = term_of(text)
        sound = "".join(reading_runs(text))
        return [s for s in self.entries
                if s.match_text in norm or (s.match_reading and s.match_reading in sound)]


class SoundVocabulary:
    """The index's own words by their sound, to recognise them inside a kana question.

    A recogniser that writes 「こくみんねんきんのめんじょ」 gives Sudachi a kana run to guess at;
    looking the run's sound up among the words the entries actually use (コクミン → 国民,
    ネンキン → 年金, メンジョ → 免除) recovers the kanji words — a tiny input method that only
    knows the city's vocabulary, so homophones outside it (非難所) land on the word in it
    (避難所)."""

    def __init__(self, by_sound: dict[str, tuple[str, ...]], known: frozenset[str],
                 min_kana: int):
        self.by_sound = by_sound
        self.known = known
        self.min_kana = min_kana
        self.longest = max((len(k) for k in by_sound), default=0)

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_kana: int = 3,
                   stopwords: frozenset[str] = frozenset()) -> SoundVocabulary:
        """Analyse `texts` (slow: Sudachi over all of them; an index version stores the
        analysed words instead, see kiosk.search.prepared)."""
        return cls.from_sounds(((m.reading, m.forms, m.hiragana) for text in texts
                                for m in analyse(text) if m.content), min_kana, stopwords)

    @classmethod
    def from_sounds(cls, sounds: Iterable[tuple[str, tuple[str, ...], bool]],
                    min_kana: int = 3, stopwords: frozenset[str] = frozenset(),
                    ) -> SoundVocabulary:
        """From already analysed content words: (folded reading, forms, all hiragana), in
        the order they occur (the first form heard for a sound is the one searched)."""
        by_sound: dict[str, dict[str, None]] = {}
        known: set[str] = set()
        for reading, forms, hiragana in sounds:
            known.update(forms)
            if (not hiragana and len(reading) >= min_kana
                    and not any(f in stopwords for f in forms)):
                by_sound.setdefault(reading, {}).update(dict.fromkeys(forms[:1]))
        return cls({k: tuple(v) for k, v in by_sound.items()}, frozenset(known), min_kana)

    def words_in(self, text: str) -> list[tuple[str, tuple[str, ...], frozenset[int]]]:
        """(sound, words, morphemes) for the longest known sounds in the doubtful stretches
        of `text` (kana runs, kanji words the entries never use), none inside another;
        `morphemes` are the indexes (in analyse(text)) of the morphemes the sound spans."""
        found: list[tuple[str, tuple[str, ...], frozenset[int]]] = []
        for sound, spans in self._doubtful_runs(text):
            end = 0
            for i in range(len(sound)):
                for j in range(min(len(sound), i + self.longest), i + self.min_kana - 1, -1):
                    if sound[i:j] in self.by_sound and self._fits(spans, i, j):
                        if j > end:
                            inside = frozenset(k for k, a, b, _ in spans if a >= i and b <= j)
                            found.append((sound[i:j], self.by_sound[sound[i:j]], inside))
                            end = j
                        break
        return found

    @staticmethod
    def _fits(spans: list[tuple[int, int, int, bool]], i: int, j: int) -> bool:
        """A heard word may cut through kana (Sudachi only guessed where kana words end) but
        not through a kanji/katakana word: 宇宙 (ウチュー) does not contain 中 (チュー)."""
        return all(kana or b <= i or a >= j or (a >= i and b <= j)
                   for _, a, b, kana in spans)

    def _doubtful_runs(self, text: str) -> list[tuple[str, list[tuple[int, int, int, bool]]]]:
        """Runs of untrusted morphemes as (sound, [(morpheme index, start, end, kana)])."""
        runs: list[tuple[str, list[tuple[int, int, int, bool]]]] = []
        sound, spans = "", []
        for k, m in enumerate(analyse(text)):
            trusted = m.content and not m.hiragana and any(f in self.known for f in m.forms)
            if trusted or not m.sound:
                if sound:
                    runs.append((sound, spans))
                sound, spans = "", []
            else:
                spans.append((k, len(sound), len(sound) + len(m.sound), m.hiragana))
                sound += m.sound
        return runs + [(sound, spans)] if sound else runs


@dataclass(frozen=True)
class GroupTerm:
    """One index term that stands for a word of the question."""

    text: str
    weight: float  # multiplies the field weight in the query
    credit: float  # how much of the word an entry containing this term covers (0..1)


@dataclass(frozen=True)
class TermGroup:
    """One word of the question and everything that may stand for it in an entry."""

    label: str  # the word as analysed (for logs and docs)
    terms: tuple[GroupTerm, ...]
    kana: bool = False  # written all in hiragana (a recogniser's unsure guess)


@dataclass(frozen=True)
class BuiltQuery:
    """A whoosh query plus what the index needs to judge how well a hit covers it."""

    text: str
    query: wq.Query | None  # None: nothing searchable was said
    groups: tuple[TermGroup, ...] = ()
    grams: tuple[str, ...] = ()  # reading n-grams searched in the reading field
    synonyms: tuple[str, ...] = field(default=())  # keys of the table lines used
    heard: tuple[str, ...] = ()  # the entries' words recognised by sound in kana stretches
    asked: str = ""  # the question as it arrived, when it came in kana and `text` is in kanji

    @property
    def meaning_text(self) -> str:
        """The question for the embedding model: as asked, plus the city words heard in
        its kana (e5 reads 「こくみんねんきん」 poorly, 国民 年金 well)."""
        return " ".join((self.text, *self.heard)) if self.heard else self.text


class QueryBuilder:
    """Builds the OR query for a question (see the module docstring)."""

    def __init__(self, settings: SearchSettings, synonyms: SynonymTable | None = None,
                 gram_min: int | None = None, gram_max: int | None = None,
                 vocabulary: SoundVocabulary | None = None,
                 converter: KanaKanjiConverter | None = None,
                 places: PlaceNames | None = None):
        self.settings = settings
        self.converter = converter
        self.places = places  # the city's place names by reading (kiosk/search/places.py)
        self.synonyms = synonyms if synonyms is not None else SynonymTable()
        self.vocabulary = vocabulary
        self.gram_min = gram_min or settings.reading_ngram_min
        self.gram_max = gram_max or settings.reading_ngram_max
        self.stopwords = frozenset(t for w in settings.query_stopwords for t in lemma_terms(w))

    def _places(self, text: str) -> list[tuple[str, bool]]:
        return self.places.split(text) if self.places is not None else [(text, False)]

    def build(self, text: str) -> BuiltQuery:
        text = normalize_text(text).strip()
        asked = ""
        if self.converter is None or not mostly_kana(text, self.settings.kana_share):
            text = "".join(piece for piece, _ in self._places(text))
        if self.converter is not None and mostly_kana(text, self.settings.kana_share):
            # a question in kana is searched as the same question in kanji; its sound (the
            # reading n-grams) does not change, its words and meaning become readable
            try:  # place names by their reading first (ぬるみず → 温水), the rest by Mozc
                written = normalize_text("".join(
                    piece if is_place else self.converter.to_kanji(kana_reading(piece))
                    for piece, is_place in self._places(text))).strip()
            except Exception as exc:  # never lose a question to the converter
                log.warning(_("kana-to-kanji conversion failed (%s); searching %r as heard"),
                            exc, text)
                written = ""
            if written and written != text:
                asked, text = text, written
        groups: list[TermGroup] = []
        group_of: dict[int, int] = {}  # morpheme index → its group
        seen: set[str] = set()
        for k, m in enumerate(analyse(text)):
            if not m.content or not m.forms or self._is_stopword(m):
                continue
            if m.forms[0] in seen:
                continue
            seen.add(m.forms[0])
            group_of[k] = len(groups)
            w = self.settings.hiragana_word_weight if m.hiragana else 1.0
            terms = [GroupTerm(t, w, 1.0) for t in m.forms]
            terms += [GroupTerm(t, w * PART_WEIGHT, PART_WEIGHT) for t in m.parts]
            groups.append(TermGroup(m.forms[0], tuple(terms), m.hiragana))
        used = self.synonyms.expansions_for(text) if text else []
        weight = self.settings.synonym_weight
        for syn in used:
            extra = [GroupTerm(t, weight, 1.0)
                     for t in dict.fromkeys(t for e in syn.expansions for t in lemma_terms(e))]
            key_terms = set(lemma_terms(syn.key))
            target = next((i for i, g in enumerate(groups)
                           if key_terms & {gt.text for gt in g.terms}), None)
            if target is None:
                groups.append(TermGroup(syn.key, tuple(extra)))
            else:
                g = groups[target]
                have = {gt.text for gt in g.terms}
                groups[target] = TermGroup(
                    g.label, g.terms + tuple(gt for gt in extra if gt.text not in have), g.kana)
        heard: list[str] = []
        if self.vocabulary is not None and self.settings.sound_weight > 0:
            groups = self._add_heard_words(text, groups, group_of, heard)
        grams = tuple(dict.fromkeys(  # the sound as heard: a wrong kanji guess keeps it
            reading_grams(asked or text, self.gram_min, self.gram_max, skip=self._is_stopword)))
        q = self._whoosh_query(groups, grams)
        if used:
            log.debug("synonyms used for %r: %s", text, [s.key for s in used])
        return BuiltQuery(text, q, tuple(groups), grams, tuple(s.key for s in used),
                          tuple(heard), asked)

    def _add_heard_words(self, text: str, groups: list[TermGroup], group_of: dict[int, int],
                         heard: list[str]) -> list[TermGroup]:
        """Add the entries' words heard in kana stretches; the kana fragments Sudachi cut
        the stretch into (じゅう/みん/ひょう) merge into the heard word's group, so the
        question counts one word 住民票, not three doubtful ones. Each heard word is also
        appended to `heard`."""
        have = {gt.text for g in groups for gt in g.terms}
        merged: set[int] = set()
        extra: list[TermGroup] = []
        for sound, words, inside in self.vocabulary.words_in(text):
            heard.append(words[0])
            new = [w for w in words if w not in have]
            # the word may already be asked for (typed elsewhere, or added by a synonym):
            # then the fragments join that group instead of a new one
            owner = None if new else next(
                (i for i, g in enumerate(groups)
                 if i not in merged and any(gt.text in words for gt in g.terms)), None)
            if not new and owner is None:
                continue
            have.update(new)
            terms = [GroupTerm(w, self.settings.sound_weight, 1.0) for w in new]
            for k in sorted(inside):
                g = group_of.get(k)
                if g is not None and g != owner and g not in merged:
                    merged.add(g)
                    terms += [GroupTerm(gt.text, gt.weight, min(gt.credit, PART_WEIGHT))
                              for gt in groups[g].terms]
            if owner is None:
                extra.append(TermGroup(sound, tuple(terms)))
            else:
                groups[owner] = TermGroup(groups[owner].label, groups[owner].terms + tuple(terms),
                                          groups[owner].kana)
        return [g for i, g in enumerate(groups) if i not in merged] + extra

    def _is_stopword(self, m: Morpheme) -> bool:
        return any(f in self.stopwords for f in m.forms)

    def _whoosh_query(self, groups: list[TermGroup], grams: tuple[str, ...]) -> wq.Query | None:
        s = self.settings
        subs: list[wq.Query] = []
        for g in groups:
            leaves = [wq.Term(fname, gt.text, boost=gt.weight * getattr(s, attr))
                      for gt in g.terms for fname, attr in LEMMA_FIELDS
                      if getattr(s, attr) > 0]
            if leaves:
                subs.append(wq.Or(leaves))
        if grams and s.reading_weight > 0:
            subs.append(wq.Or([wq.Term(READING_FIELD, gram, boost=s.reading_weight)
                               for gram in grams]))
        if not subs:
            return None
        return wq.Or(subs, scale=s.or_scale or None)


__all__ = ["BuiltQuery", "GroupTerm", "QueryBuilder", "SoundVocabulary", "Synonym", "SynonymError", "SynonymTable",
           "TermGroup", "BUNDLED_SYNONYMS"]
