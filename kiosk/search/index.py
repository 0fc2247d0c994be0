"""Index stage: the whoosh full-text index over content entries (BM25F over title, body,
keywords and a katakana reading field). Japanese analysis lives in kiosk.search.analysis; index
versions and atomic swaps live in kiosk.search.versions.

CONTRACT (other stages rely on these names):
    Hit                                   — one ranked candidate
    build_index(entries, directory, settings) -> None
                                          — write a complete whoosh index into an empty folder
    SearchIndex.open(directory, settings) -> SearchIndex
    SearchIndex.search(query: str, limit: int | None = None) -> list[Hit]
    SearchIndex.entries() -> list[Entry]  — everything indexed (for vocabularies, exports)
    SearchIndex.categories() -> list[str]
    SearchIndex.close()

Hit.confidence is the share of the question's words (weighted by rarity) that the entry
contains — see SearchIndex._confidence and docs/search.md for how to pick a threshold.

With [search] semantic on, build_index also stores one embedding per entry in the index
folder (kiosk.search.semantic), and search fuses the lexical ranking with the question's cosine to
each entry. An index without them (older, or built with semantic off) searches by words.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from whoosh import index as windex
from whoosh import query as wq
from whoosh import scoring
from whoosh.fields import ID, STORED, TEXT, Schema

from kiosk import KioskError
from kiosk.config import SearchSettings, Settings
from kiosk.content.contract import Entry
from kiosk.i18n import _
from kiosk.progress import Progress
from kiosk.search.analysis import LemmaAnalyzer, ReadingAnalyzer, lemma_terms
from kiosk.search.contract import Hit
from kiosk.search.kana_kanji import get_converter
from kiosk.search.places import PlaceNames
from kiosk.search.query import (
    LEMMA_FIELDS,
    READING_FIELD,
    BuiltQuery,
    QueryBuilder,
    SoundVocabulary,
    SynonymTable,
)
from kiosk.search.semantic import EntryVectors, TextEncoder, get_encoder

log = logging.getLogger(__name__)


class SearchIndexError(KioskError):
    """An index folder that cannot be written or read."""


def _split_settings(settings: Settings | SearchSettings | None,
                    ) -> tuple[SearchSettings, Path | None]:
    """Accept the whole Settings (search section + synonym table path) or just the search
    section (bundled synonyms), so callers and tests can pass whichever they hold."""
    if settings is None:
        return SearchSettings(), None
    if isinstance(settings, SearchSettings):
        return settings, None
    syn = settings.content.synonyms_file
    return settings.search, (settings.path(syn) if syn else None)


def make_schema(settings: SearchSettings) -> Schema:
    """The index schema. Analyzers pickle by class name (see kiosk.search.analysis)."""
    lemma = LemmaAnalyzer()
    return Schema(
        id=ID(stored=True, unique=True),
        title=TEXT(analyzer=lemma, phrase=False),
        body=TEXT(analyzer=lemma, phrase=False),
        keywords=TEXT(analyzer=lemma, phrase=False),
        reading=TEXT(analyzer=ReadingAnalyzer(settings.reading_ngram_min,
                                              settings.reading_ngram_max), phrase=False),
        category=ID(stored=True),
        entry=STORED,
    )


def _entry_to_json(entry: Entry) -> str:
    return json.dumps(dataclasses.asdict(entry), ensure_ascii=False)


def _entry_from_json(text: str) -> Entry:
    data = json.loads(text)
    data["keywords"] = tuple(data.get("keywords") or ())
    known = {f.name for f in dataclasses.fields(Entry)}
    return Entry(**{k: v for k, v in data.items() if k in known})


def build_index(entries: Iterable[Entry], directory: str | Path,
                settings: Settings | SearchSettings | None = None) -> None:
    """Write a complete index of `entries` into `directory` (created if missing; must be
    empty, so an existing index is never overwritten in place)."""
    search, _voice = _split_settings(settings)
    folder = Path(directory)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SearchIndexError(
            _("cannot build an index in {folder}: it is not an empty folder. Give a new or "
              "empty folder (kiosk content import builds new versions for you)")
            .format(folder=folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ix = windex.create_in(str(folder), make_schema(search))
        writer = ix.writer(limitmb=128)
    except OSError as exc:
        raise SearchIndexError(_("cannot write an index in {folder}: {reason}; check the "
                                 "folder's permissions and free disk space").format(
            folder=folder, reason=exc.strerror or exc)) from None
    indexed: list[Entry] = list(entries)
    try:
        with Progress(_("analysing entries"), len(indexed), _("entries")) as bar:
            for e in indexed:
                keywords = " ".join(e.keywords)
                writer.add_document(
                    id=e.id, title=e.title, body=e.body, keywords=keywords,
                    reading=f"{e.title}\n{keywords}\n{e.body}", category=e.category,
                    entry=_entry_to_json(e))
                bar.update()
        with Progress(_("writing the index")):
            writer.commit()
    except BaseException:
        writer.cancel()
        raise
    ix.close()
    encoder = get_encoder(search)
    if encoder is not None:
        # beside whoosh's files, never in its pickled schema: the index stays readable
        # without the model, and the vectors travel with the version (swap, rollback)
        EntryVectors.build(indexed, encoder, search).write(folder)


@dataclass(frozen=True)
class _Meaning:
    """How close in meaning one question is to each entry.

    e5's cosines crowd into 0.75–0.9 whatever is asked, so only the distance from this
    question's average entry says anything: `closeness` rescales it so the average entry is
    0 and the closest 1 (for ranking); `confidence` maps the plain distance onto 0..1 with
    [search] semantic_margin_low/high, so it can be compared across questions."""

    cos: np.ndarray
    mean: float
    best: float
    rows: dict[str, int]
    closest: list[str]  # ids of the semantic_depth closest entries, if closer than average

    def _cos(self, entry_id: str) -> float:
        row = self.rows.get(entry_id)
        return float(self.cos[row]) if row is not None else self.mean

    def closeness(self, entry_id: str) -> float:
        """0 for an entry no closer than average (meaning never pushes an entry down), 1 for
        the closest."""
        return max(0.0, self._cos(entry_id) - self.mean) / (self.best - self.mean)

    def confidence(self, entry_id: str, settings: SearchSettings) -> float:
        low, high = settings.semantic_margin_low, settings.semantic_margin_high
        if high <= low:
            return 0.0
        margin = self._cos(entry_id) - self.mean
        return round(min(1.0, max(0.0, (margin - low) / (high - low))), 4)


def _usable_vectors(folder: Path, settings: SearchSettings,
                    ) -> tuple[TextEncoder | None, EntryVectors | None]:
    """The encoder and the stored entry vectors, when semantic search can be used on this
    index; otherwise (None, None) and the index searches by words only."""
    if not settings.semantic:
        return None, None
    vectors = EntryVectors.read(folder)
    if vectors is None:
        log.info("the index in %s has no entry vectors (built before semantic search, or "
                 "with it off); searching by words only until the content is imported again",
                 folder)
        return None, None
    encoder = get_encoder(settings)
    if encoder is None:
        return None, None
    if vectors.model != encoder.name:
        log.warning("the entry vectors in %s come from %r, not %r; searching by words only "
                    "until the content is imported again", folder, vectors.model, encoder.name)
        return None, None
    return encoder, vectors


class SearchIndex:
    """An open index: one searcher kept for the life of the object (searches are fast and
    see one consistent version even while a new version is being published)."""

    def __init__(self, ix, settings: SearchSettings, synonyms: SynonymTable, directory: Path):
        self._ix = ix
        self.directory = directory
        self.settings = settings
        reading = ix.schema[READING_FIELD].analyzer
        self._searcher = ix.searcher(weighting=scoring.BM25F(B=settings.bm25_b,
                                                             K1=settings.bm25_k1))
        self._lock = threading.Lock()
        self._n_docs = max(1, self._searcher.doc_count())
        self._df_cache: dict[tuple[str, str], int] = {}
        probe = QueryBuilder(settings, synonyms)
        entries = self.entries()
        vocabulary = SoundVocabulary.from_texts(
            (f"{e.title}\n{' '.join(e.keywords)}\n{e.body}" for e in entries),
            settings.sound_min_kana, probe.stopwords)
        self._title_terms = {e.id: frozenset(lemma_terms(e.title)) - probe.stopwords
                             for e in entries}
        self.builder = QueryBuilder(settings, synonyms, getattr(reading, "gram_min", None),
                                    getattr(reading, "gram_max", None), vocabulary,
                                    get_converter(settings), PlaceNames.bundled())
        self._encoder, self._vectors = _usable_vectors(directory, settings)
        self._by_id = {e.id: e for e in entries} if self._vectors is not None else {}
        self._rows = ({i: j for j, i in enumerate(self._vectors.ids)}
                      if self._vectors is not None else {})

    @classmethod
    def open(cls, directory: str | Path,
             settings: Settings | SearchSettings | None = None) -> SearchIndex:
        search, synonyms_file = _split_settings(settings)
        folder = Path(directory)
        try:
            present = folder.is_dir() and windex.exists_in(str(folder))
        except Exception as exc:  # a damaged table of contents raises instead of saying False
            raise SearchIndexError(
                f"the search index in {folder} cannot be read ({exc}); run `kiosk content "
                "rollback` or re-import the content") from None
        if not present:
            raise SearchIndexError(
                _("there is no search index in {folder}; build one with "
                  "`kiosk content import FILE...` (or check paths.index_dir in the config)")
                .format(folder=folder))
        try:
            ix = windex.open_dir(str(folder))
        except Exception as exc:
            raise SearchIndexError(
                _("the search index in {folder} cannot be read ({reason}); run `kiosk content "
                  "rollback` or re-import the content").format(folder=folder, reason=exc)
            ) from None
        return cls(ix, search, SynonymTable.load(synonyms_file), folder)

    def search(self, query: str, limit: int | None = None) -> list[Hit]:
        """Ranked candidates for a question; [] when nothing searchable was said."""
        built = self.builder.build(query)
        if built.query is None:
            return []
        limit = limit or self.settings.limit
        depth = max(limit, self.settings.rerank_depth)
        meaning = self._meaning(built.meaning_text)
        with self._lock:
            results = self._searcher.search(built.query, limit=depth, terms=True)
            scored = []
            for r in results:
                entry = _entry_from_json(r["entry"])
                conf = self._confidence(built, r.matched_terms())
                scored.append((entry, float(r.score), conf, self._title_match(built, entry)))
            best = (scored[0][1] if scored else 0.0) or 1.0
            if meaning is not None:
                found = {e.id for e, *_ in scored}
                scored += self._lexical_scores(built, [i for i in meaning.closest
                                                       if i not in found])
        if scored and (self.settings.coverage_weight > 0 or self.settings.title_match_weight > 0):
            # BM25 rewards an entry that repeats one word; a question is better answered by
            # the entry that covers most of its words, and whose own question (the title)
            # is mostly made of the asker's words. Blend the three, then re-rank.
            # The blend is put back on the BM25 scale of the best candidate, so `score`
            # stays in rank order and ratios between candidates still mean something.
            cw, tw = self.settings.coverage_weight, self.settings.title_match_weight
            scored = [(e, s + best * (cw * c + tw * t), c, t) for e, s, c, t in scored]
        if meaning is not None:
            # Words and meaning fused: the lexical score relative to the best one, plus
            # closeness (0 = this question's average entry, 1 = its closest) × the semantic
            # weight, again on the best candidate's scale. Meaning fills in where the words
            # fail: the weight shrinks as the best lexical candidate covers more of the
            # question (all of it: the words decide alone, so 国保に入りたい stays with
            # 国保に入る rather than the entry about leaving it). An entry close in meaning
            # is as sure an answer as one holding the question's words.
            top, covered = max(((s, c) for _, s, c, _ in scored), default=(1.0, 0.0))
            top = top or 1.0
            w = self.settings.semantic_weight * (1.0 - covered)
            scored = [(e, s + top * w * meaning.closeness(e.id),
                       max(c, meaning.confidence(e.id, self.settings)), t)
                      for e, s, c, t in scored]
        scored.sort(key=lambda x: -x[1])
        return [Hit(entry, round(score, 4), conf) for entry, score, conf, _ in scored[:limit]]

    def _meaning(self, text: str) -> _Meaning | None:
        """The question's cosine with every entry, or None when searching by words only."""
        if self._vectors is None or self._encoder is None or not text:
            return None
        cos = self._vectors.similarities(self._encoder.encode_query(text))
        mean, best = float(cos.mean()), float(cos.max())
        if best <= mean:
            return None
        ids = self._vectors.ids
        closest = [ids[j] for j in np.argsort(-cos)[:self.settings.semantic_depth]
                   if cos[j] > mean and ids[j] in self._by_id]
        return _Meaning(cos, mean, best, self._rows, closest)

    def _lexical_scores(self, built: BuiltQuery, ids: list[str],
                        ) -> list[tuple[Entry, float, float, float]]:
        """(entry, BM25, confidence, title match) for entries found by meaning that the
        lexical search did not rank (0 where no word of the question is in them)."""
        if not ids:
            return []
        found = {}
        only = wq.Or([wq.Term("id", i) for i in ids])
        for r in self._searcher.search(built.query, filter=only, limit=len(ids), terms=True):
            found[r["id"]] = (float(r.score), self._confidence(built, r.matched_terms()))
        rows = []
        for i in ids:
            entry = self._by_id[i]
            score, conf = found.get(i, (0.0, 0.0))
            rows.append((entry, score, conf, self._title_match(built, entry)))
        return rows

    def _title_match(self, built: BuiltQuery, entry: Entry) -> float:
        """Rarity-weighted F1 between the question's words and the entry title's words."""
        asked = {gt.text for g in built.groups for gt in g.terms}
        title = self._title_terms.get(entry.id, frozenset())
        if not title or not built.groups:
            return 0.0
        idf = {t: self._idf("title", t) for t in title}
        shared = sum(idf[t] for t in title if t in asked)
        precision = shared / sum(idf.values())
        covered = total = 0.0
        for g in built.groups:
            w = self._idf("title", g.terms[0].text)
            total += w
            covered += w if any(gt.text in title for gt in g.terms) else 0.0
        recall = covered / total if total else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def explain(self, query: str) -> BuiltQuery:
        """The query actually run for `query` (for `--verbose` output and docs)."""
        return self.builder.build(query)

    def _idf(self, field: str, term: str) -> float:
        """BM25's idf; document frequencies are memoised (an open index never changes; the
        memo is capped for a long-running kiosk that hears many new words)."""
        df = self._df(field, term)
        return math.log(1 + (self._n_docs - df + 0.5) / (df + 0.5))

    def _df(self, field: str, term: str) -> int:
        key = (field, term)
        df = self._df_cache.get(key)
        if df is None:
            if len(self._df_cache) > 100_000:
                self._df_cache.clear()
            df = self._df_cache[key] = self._searcher.doc_frequency(field, term)
        return df

    def _confidence(self, built: BuiltQuery, matched: Iterable[tuple[str, object]]) -> float:
        """How much of the question this entry covers, weighting each word by its rarity.

        lemma coverage = Σ idf(word) × credit(best matching form) / Σ idf(word)
        reading coverage = Σ idf(gram) over matched reading n-grams / Σ idf(gram)
        confidence = max(lemma, reading_trust × reading × (1 − share of unknown words))

        A word the index has never seen has the highest idf, so an unknown or off-topic
        question scores low even if some filler word matched; an entry that contains every
        rare word of the question scores near 1, whatever the raw BM25 scale."""
        hit_terms: dict[str, set[str]] = {}
        for fname, text in matched:
            t = text.decode("utf-8") if isinstance(text, bytes) else str(text)
            hit_terms.setdefault(fname, set()).add(t)
        lemma_hits = set().union(*(hit_terms.get(f, set()) for f, _ in LEMMA_FIELDS))
        total = got = 0.0
        for g in built.groups:
            idf = max(self._idf(f, g.terms[0].text) for f, _ in LEMMA_FIELDS)
            total += idf
            got += idf * max((gt.credit for gt in g.terms if gt.text in lemma_hits), default=0.0)
        lemma_cov = got / total if total else 0.0
        reading_hits = hit_terms.get(READING_FIELD, set())
        total = got = 0.0
        for gram in built.grams:
            idf = self._idf(READING_FIELD, gram)
            total += idf
            got += idf if gram in reading_hits else 0.0
        reading_cov = got / total if total else 0.0
        # A word written in kanji or katakana that no entry uses (天気, ピザ) is what the
        # visitor asked about; sounding like a word in an entry (テンキ ≈ テンキョ) is then
        # a coincidence, not a match, so the reading coverage is discounted by its share.
        unknown = total_words = 0.0
        for g in built.groups:
            idf = max(self._idf(f, g.terms[0].text) for f, _ in LEMMA_FIELDS)
            total_words += idf
            if not g.kana and not any(self._df(f, gt.text) for gt in g.terms
                                      if gt.credit >= 1.0 for f, _ in LEMMA_FIELDS):
                unknown += idf
        if total_words:
            reading_cov *= 1 - unknown / total_words
        return round(max(lemma_cov, self.settings.reading_trust * reading_cov), 4)

    def entries(self) -> list[Entry]:
        """Every indexed entry, in import order."""
        with self._lock:
            return [_entry_from_json(doc["entry"]) for doc in self._searcher.all_stored_fields()]

    def categories(self) -> list[str]:
        """Distinct categories, most entries first (offered when nothing fits)."""
        counts: dict[str, int] = {}
        for e in self.entries():
            if e.category:
                counts[e.category] = counts.get(e.category, 0) + 1
        return sorted(counts, key=lambda c: -counts[c])

    def close(self) -> None:
        with self._lock:
            self._searcher.close()
            self._ix.close()

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
