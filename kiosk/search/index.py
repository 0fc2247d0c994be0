"""Index stage: the whoosh full-text index over content entries (BM25F over title, body,
keywords and a katakana reading field). Japanese analysis lives in kiosk.search.analysis; index
versions and atomic swaps live in kiosk.search.versions.

whoosh writes the index; the import also stores, beside it, everything a search needs
(kiosk.search.prepared: entry records, sound vocabulary, title words, categories;
kiosk.search.lexical: the postings as a matrix that ranks exactly as whoosh's BM25F), so an
open analyses nothing and a search's cost follows the question's terms, not the content.

CONTRACT (other stages rely on these names):
    Hit                                   — one ranked candidate
    build_index(entries, directory, settings, previous=None) -> None
                                          — write a complete whoosh index into an empty folder
    SearchIndex.open(directory, settings) -> SearchIndex
    SearchIndex.search(query: str, limit: int | None = None) -> list[Hit]
    SearchIndex.entries() -> list[Entry]  — everything indexed (for vocabularies, exports)
    SearchIndex.categories() -> list[str]
    SearchIndex.entries_in(category) -> list[Entry]  — one category's entries, only those decoded
    SearchIndex.close()

Hit.confidence is the share of the question's words (weighted by rarity) that the entry
contains — see SearchIndex._confidence and docs/search.md for how to pick a threshold.

With [search] semantic on, build_index also stores one embedding per entry in the index
folder (kiosk.search.semantic), and search fuses the lexical ranking with the question's cosine to
each entry. An index without them (older, or built with semantic off) searches by words.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from whoosh import index as windex
from whoosh.fields import ID, TEXT, Schema

from kiosk import KioskError
from kiosk.config import SearchSettings, Settings
from kiosk.content.contract import Entry
from kiosk.i18n import _
from kiosk.progress import Progress
from kiosk.search.analysis import (
    LemmaAnalyzer,
    ReadingAnalyzer,
    forget_words,
    lemma_terms,
    reading_grams,
)
from kiosk.search.contract import Hit
from kiosk.search.kana_kanji import get_converter
from kiosk.search.lexical import LexicalBuilder, LexicalMatrix, Ranking, query_leaves
from kiosk.search.places import PlaceNames
from kiosk.search.prepared import (
    PREPARED_FILE,
    PreparedBuilder,
    PreparedVersion,
    entry_from_json,
    searchable_text,
)
from kiosk.search.query import (
    LEMMA_FIELDS,
    READING_FIELD,
    BuiltQuery,
    QueryBuilder,
    SoundVocabulary,
    SynonymTable,
)
from kiosk.search.semantic import QUERY_CACHE, EntryVectors, TextEncoder, get_encoder
from kiosk.search.sound_alike import SoundAlikes

log = logging.getLogger(__name__)

#: (process id, the thread that embeds questions beside the lexical ranking): one thread is
#: enough, the encoder runs one embedding at a time (see meaning_worker)
_meaning_worker: tuple[int, ThreadPoolExecutor] | None = None
_meaning_worker_lock = threading.Lock()


def meaning_worker() -> ThreadPoolExecutor:
    """This process's question-embedding thread, made on first use (and again in a forked
    child, where the parent's thread does not exist and its queue would never be served)."""
    global _meaning_worker
    with _meaning_worker_lock:
        if _meaning_worker is None or _meaning_worker[0] != os.getpid():
            _meaning_worker = (os.getpid(), ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="question-meaning"))
        return _meaning_worker[1]


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
    )


def build_index(entries: Iterable[Entry], directory: str | Path,
                settings: Settings | SearchSettings | None = None,
                previous: Path | None = None) -> None:
    """Write a complete index of `entries` into `directory` (created if missing; must be
    empty, so an existing index is never overwritten in place). `previous`, the live
    version's folder: its meaning vectors of unchanged entries are reused, not recomputed."""
    search, _voice = _split_settings(settings)
    folder = Path(directory)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SearchIndexError(
            _("cannot build an index in {folder}: it is not an empty folder. Give a new or "
              "empty folder (kiosk content import builds new versions for you)")
            .format(folder=folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # whoosh keeps the schema (the analysers, the reading n-gram sizes) and marks the
        # folder as an index; the postings it would hold are the lexical matrix below
        windex.create_in(str(folder), make_schema(search)).close()
    except OSError as exc:
        raise SearchIndexError(_("cannot write an index in {folder}: {reason}; check the "
                                 "folder's permissions and free disk space").format(
            folder=folder, reason=exc.strerror or exc)) from None
    indexed: list[Entry] = list(entries)
    encoder = get_encoder(search)
    # meaning vectors are worked out beside the analysis (the engine leaves the
    # interpreter free while it runs, so the two share the machine's cores)
    vectors = (EntryVectors.start(indexed, encoder, search, _import_threads(search), previous)
               if encoder is not None else None)
    try:
        _write_tables(indexed, folder, search)
        forget_words()  # before the vectors are waited for: the memory is free meanwhile
        if vectors is not None:
            # beside whoosh's files, never in its pickled schema: the index stays readable
            # without the model, and the vectors travel with the version (swap, rollback)
            vectors.result().write(folder)
    finally:
        if vectors is not None:
            vectors.cancel()
        forget_words()


def _write_tables(indexed: list[Entry], folder: Path, search: SearchSettings) -> None:
    """Analyse the entries and write everything but the vectors. Its own function, so the
    builders' buffers (hundreds of MB at 20,000 entries) are let go before the import waits
    for the vectors still being computed."""
    tables = PreparedBuilder()
    fields = [name for name, _ in LEMMA_FIELDS] + [READING_FIELD]
    matrix = LexicalBuilder(fields)
    gram_min, gram_max = search.reading_ngram_min, search.reading_ngram_max
    with Progress(_("analysing entries"), len(indexed), _("entries")) as bar:
        for e in indexed:
            # the terms whoosh's analysers would index, field by field
            matrix.add((lemma_terms(e.title), lemma_terms(e.body),
                        lemma_terms(" ".join(e.keywords)),
                        reading_grams(searchable_text(e), gram_min, gram_max)))
            tables.add(e)  # right after: the analyses are still cached
            bar.update()
    with Progress(_("writing the index")):
        # the entry records, everything an open would otherwise analyse
        # (kiosk.search.prepared) and the postings as a matrix (kiosk.search.lexical)
        tables.finish().write(folder)
        del tables
        matrix.finish().write(folder)


def _import_threads(settings: SearchSettings) -> int:
    """Threads the import's embedding uses once the analysis is done."""
    return max(1, settings.semantic_import_threads)


def lexical_matrix(reader, prepared: PreparedVersion) -> LexicalMatrix:
    """The postings of the searched fields as one matrix, rows in the entries' order."""
    rows = [prepared.row_of(fields["id"]) for fields in reader.all_stored_fields()]
    if None in rows or len(set(rows)) != len(rows):
        raise SearchIndexError(_("the search index and its entry records disagree; import the "
                                 "content again"))
    fields = [name for name, _ in LEMMA_FIELDS] + [READING_FIELD]
    return LexicalMatrix.from_whoosh(reader, fields, rows.__getitem__, len(prepared))


@dataclass(frozen=True)
class _QuestionWeights:
    """One question's words with their rarity (SearchIndex._weights)."""

    groups: tuple[tuple[float, tuple[tuple[str, float], ...]], ...]  # (idf, (term, credit)…)
    grams: tuple[tuple[str, float], ...]  # (reading n-gram, idf)
    known_share: float  # 1 − the rarity-weighted share of words no entry uses
    asked: frozenset[str]  # every term standing for a word of the question
    title_groups: tuple[tuple[float, tuple[str, ...]], ...]  # (title idf, terms) per word


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
        log.info(_("the index in %s has no entry vectors (built before semantic search, or "
                   "with it off); searching by words only until the content is imported again"),
                 folder)
        return None, None
    encoder = get_encoder(settings)
    if encoder is None:
        return None, None
    if vectors.model != encoder.name:
        if not encoder.compares_with(vectors.model):
            log.warning(_("the entry vectors in %s come from %r, not %r; searching by words "
                          "only until the content is imported again"),
                        folder, vectors.model, encoder.name)
            return None, None
        # the same model run by the other engine: near-identical vectors, used as they are;
        # the next import embeds every entry again rather than mix the two in one version
        log.info(_("the entry vectors in %s were computed by %r, the same model as %r; "
                   "they are used until the content is imported again"),
                 folder, vectors.model, encoder.name)
    return encoder, vectors


class SearchIndex:
    """An open index version: its stored tables (kiosk.search.prepared), lexical matrix
    (kiosk.search.lexical) and entry vectors, read into memory; no content is analysed here. Searches
    are fast and see one consistent version even while a new one is being published."""

    def __init__(self, ix, settings: SearchSettings, synonyms: SynonymTable, directory: Path):
        self._ix = ix
        self.directory = directory
        self.settings = settings
        reading = ix.schema[READING_FIELD].analyzer
        self._lock = threading.Lock()
        self._df_cache: dict[tuple[str, str], int] = {}
        self._idf_cache: dict[tuple[str, str], float] = {}
        self._answers: dict[tuple[str, int], list[Hit]] = {}  # recent questions' hits
        self._sound_alikes: SoundAlikes | None = None
        self._alike_lock = threading.Lock()
        self.prepared, self.lexical = self._stored_tables(directory)
        self._n_docs = max(1, self.lexical.docs)
        stopwords = QueryBuilder(settings, synonyms).stopwords
        vocabulary = SoundVocabulary.from_sounds(self.prepared.sounds, settings.sound_min_kana,
                                                 stopwords)
        self._stopwords = stopwords
        self.builder = QueryBuilder(settings, synonyms, getattr(reading, "gram_min", None),
                                    getattr(reading, "gram_max", None), vocabulary,
                                    get_converter(settings), PlaceNames.bundled())
        self._encoder, self._vectors = _usable_vectors(directory, settings)
        self._rows = ({i: j for j, i in enumerate(self._vectors.ids)}
                      if self._vectors is not None else {})

    def _stored_tables(self, directory: Path) -> tuple[PreparedVersion, LexicalMatrix]:
        """The tables the import stored; for a version built by an earlier release, the
        same worked out now from whoosh's stored entries and postings (slow: Sudachi over
        everything, logged), until the content is imported again."""
        prepared = PreparedVersion.read(directory)
        try:
            lexical = LexicalMatrix.read(directory) if prepared is not None else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SearchIndexError(_(
                "the index version in {folder} is damaged ({reason}); run `kiosk content "
                "rollback`, or import the content again").format(folder=directory, reason=exc)) from None
        if prepared is not None and lexical is not None:
            return prepared, lexical
        if prepared is None and "entry" not in self._ix.schema.names():
            raise SearchIndexError(_(
                "the search index in {folder} has lost its entry records "
                "({file} is missing); import the content again with `kiosk content "
                "import FILE...`, or run `kiosk content rollback`").format(
                    folder=directory, file=PREPARED_FILE))
        log.warning(_("the index version in %s was built by an earlier release: it opens "
                      "slowly and holds more memory until the content is imported again "
                      "(`kiosk content import FILE...`)"), directory)
        with self._ix.searcher() as searcher:
            if prepared is None:
                prepared = PreparedVersion.build(
                    [entry_from_json(doc["entry"]) for doc in searcher.all_stored_fields()])
            lexical = lexical_matrix(searcher.reader(), prepared)
        return prepared, lexical

    @classmethod
    def open(cls, directory: str | Path,
             settings: Settings | SearchSettings | None = None) -> SearchIndex:
        search, synonyms_file = _split_settings(settings)
        folder = Path(directory)
        try:
            present = folder.is_dir() and windex.exists_in(str(folder))
        except Exception as exc:  # a damaged table of contents raises instead of saying False
            raise SearchIndexError(_(
                "the search index in {folder} cannot be read ({reason}); run `kiosk content "
                "rollback` or re-import the content").format(folder=folder, reason=exc)) from None
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
        limit = limit or self.settings.limit
        key = (query, limit)
        cached = self._answers.get(key)
        if cached is not None:  # an open version never changes: same question, same hits
            return list(cached)
        hits = self._search(query, limit)
        with self._lock:
            if len(self._answers) >= QUERY_CACHE:
                del self._answers[next(iter(self._answers))]  # the oldest
            self._answers[key] = hits
        return list(hits)

    def _search(self, query: str, limit: int) -> list[Hit]:
        built = self.builder.build(query)
        if built.query is None:
            return []
        depth = max(limit, self.settings.rerank_depth)
        # the question's meaning is embedded on another thread while this one ranks it by
        # its words: the engine runs outside the interpreter's lock, so on two cores a
        # question takes the longer of the two instead of their sum
        pending = (meaning_worker().submit(self._meaning, built.meaning_text)
                   if self._vectors is not None and built.meaning_text else None)
        leaves, scale = query_leaves(built.query)
        ranking = self.lexical.rank(leaves, self.settings.bm25_k1, self.settings.bm25_b, scale)
        rows = ranking.top(depth)
        best = (ranking.score(rows[0]) if rows else 0.0) or 1.0
        weights = self._weights(built)  # once per question, not once per candidate
        # (row, BM25F, confidence, title match); entries are decoded only for the hits
        scored = self._scored(ranking, weights, rows)
        meaning = pending.result() if pending is not None else None
        if meaning is not None:  # entries close in meaning that the words did not rank
            found = set(rows)
            scored += self._scored(ranking, weights, [
                r for r in (self.prepared.row_of(i) for i in meaning.closest)
                if r is not None and r not in found])
        if scored and (self.settings.coverage_weight > 0 or self.settings.title_match_weight > 0):
            # BM25 rewards an entry that repeats one word; a question is better answered by
            # the entry that covers most of its words, and whose own question (the title)
            # is mostly made of the asker's words. Blend the three, then re-rank.
            # The blend is put back on the BM25 scale of the best candidate, so `score`
            # stays in rank order and ratios between candidates still mean something.
            cw, tw = self.settings.coverage_weight, self.settings.title_match_weight
            scored = [(r, s + best * (cw * c + tw * t), c, t) for r, s, c, t in scored]
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
            ids = self.prepared.ids
            scored = [(r, s + top * w * meaning.closeness(ids[r]),
                       max(c, meaning.confidence(ids[r], self.settings)), t)
                      for r, s, c, t in scored]
        scored.sort(key=lambda x: -x[1])
        return [Hit(self.prepared.entry(row), round(score, 4), conf)
                for row, score, conf, _ in scored[:limit]]

    def _scored(self, ranking: Ranking, weights: _QuestionWeights,
                rows: list[int]) -> list[tuple[int, float, float, float]]:
        """(row, BM25F, confidence, title match) of each candidate row, in order."""
        matched = ranking.matched(rows)
        return [(row, ranking.score(row), self._confidence(weights, matched[row]),
                 self._title_match(weights, row)) for row in rows]

    def _meaning(self, text: str) -> _Meaning | None:
        """The question's cosine with every entry, or None when searching by words only."""
        if self._vectors is None or self._encoder is None or not text:
            return None  # (also when the version was closed meanwhile)
        cos = self._vectors.similarities(self._encoder.encode_query(text))
        mean, best = float(cos.mean()), float(cos.max())
        if best <= mean:
            return None
        ids = self._vectors.ids
        depth = min(self.settings.semantic_depth, len(cos))
        # the closest `depth` rows without sorting all of them (argpartition is linear)
        top = np.argpartition(-cos, depth - 1)[:depth] if depth < len(cos) else np.arange(len(cos))
        top = top[np.argsort(-cos[top], kind="stable")]
        closest = [ids[j] for j in top
                   if cos[j] > mean and self.prepared.row_of(ids[j]) is not None]
        return _Meaning(cos, mean, best, self._rows, closest)

    def _title_match(self, weights: _QuestionWeights, row: int | None) -> float:
        """Rarity-weighted F1 between the question's words and the entry title's words."""
        # summed in the title's own order, not a set's: a set of strings iterates in an
        # order salted per process, and the sums' last bits decided between tied entries
        title = (tuple(t for t in dict.fromkeys(self.prepared.title_terms(row))
                       if t not in self._stopwords) if row is not None else ())
        if not title or not weights.groups:
            return 0.0
        idf = {t: self._idf("title", t) for t in title}
        shared = sum(idf[t] for t in title if t in weights.asked)
        precision = shared / sum(idf.values())
        covered = total = 0.0
        for w, texts in weights.title_groups:
            total += w
            covered += w if any(t in idf for t in texts) else 0.0
        recall = covered / total if total else 0.0
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    def explain(self, query: str) -> BuiltQuery:
        """The query actually run for `query` (for `--verbose` output and docs)."""
        return self.builder.build(query)

    def _idf(self, field: str, term: str) -> float:
        """BM25's idf; document frequencies are memoised (an open index never changes; the
        memo is capped for a long-running kiosk that hears many new words)."""
        key = (field, term)
        idf = self._idf_cache.get(key)
        if idf is None:
            if len(self._idf_cache) > 100_000:
                self._idf_cache.clear()
            df = self._df(field, term)
            idf = self._idf_cache[key] = math.log(1 + (self._n_docs - df + 0.5) / (df + 0.5))
        return idf

    def _df(self, field: str, term: str) -> int:
        key = (field, term)
        df = self._df_cache.get(key)
        if df is None:
            if len(self._df_cache) > 100_000:
                self._df_cache.clear()
            df = self._df_cache[key] = self.lexical.doc_frequency(field, term)
        return df

    def _weights(self, built: BuiltQuery) -> _QuestionWeights:
        """What the confidence and the title match weigh a question's words by (their
        rarity, which words the entries never use): the same for every candidate, so
        worked out once per question."""
        groups = []
        unknown = total_words = 0.0
        for g in built.groups:
            idf = max(self._idf(f, g.terms[0].text) for f, _ in LEMMA_FIELDS)
            groups.append((idf, tuple((gt.text, gt.credit) for gt in g.terms)))
            total_words += idf
            if not g.kana and not any(self._df(f, gt.text) for gt in g.terms
                                      if gt.credit >= 1.0 for f, _ in LEMMA_FIELDS):
                unknown += idf
        return _QuestionWeights(
            groups=tuple(groups),
            grams=tuple((gram, self._idf(READING_FIELD, gram)) for gram in built.grams),
            known_share=1 - unknown / total_words if total_words else 1.0,
            asked=frozenset(gt.text for g in built.groups for gt in g.terms),
            title_groups=tuple((self._idf("title", g.terms[0].text),
                                tuple(gt.text for gt in g.terms)) for g in built.groups))

    def _confidence(self, weights: _QuestionWeights,
                    matched: Iterable[tuple[str, object]]) -> float:
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
        for idf, terms in weights.groups:
            total += idf
            got += idf * max((credit for text, credit in terms if text in lemma_hits),
                             default=0.0)
        lemma_cov = got / total if total else 0.0
        reading_hits = hit_terms.get(READING_FIELD, set())
        total = got = 0.0
        for gram, idf in weights.grams:
            total += idf
            got += idf if gram in reading_hits else 0.0
        reading_cov = got / total if total else 0.0
        # A word written in kanji or katakana that no entry uses (天気, ピザ) is what the
        # visitor asked about; sounding like a word in an entry (テンキ ≈ テンキョ) is then
        # a coincidence, not a match, so the reading coverage is discounted by its share.
        reading_cov *= weights.known_share
        return round(max(lemma_cov, self.settings.reading_trust * reading_cov), 4)

    def entries(self) -> list[Entry]:
        """Every indexed entry, in import order."""
        return self.prepared.entries()

    def sounds_like(self, texts: Sequence[str], limit: int) -> list[Hit]:
        """Entries whose title or keyword sounds like a stretch of `texts`
        (kiosk.search.sound_alike); the lookup is built on first use, once per version."""
        return [Hit(self.prepared.entry(row), closeness, closeness)
                for row, closeness in self.prepare_sound_alikes().find(texts, limit)]

    def prepare_sound_alikes(self) -> SoundAlikes:
        """The version's sound-alike lookup, built now if it is not yet: 0.1 s of Sudachi for
        the bundled content, seconds at 10,000 entries, so the live index builds it in the
        background after a swap rather than on a visitor's question. Searches do not wait."""
        with self._alike_lock:
            if self._sound_alikes is None:
                self._sound_alikes = SoundAlikes(self.prepared.entries(), self.settings)
            return self._sound_alikes

    def categories(self) -> list[str]:
        """Distinct categories, most entries first (offered when nothing fits); stored by
        the import, so asking on every question costs nothing."""
        return list(self.prepared.categories)

    def entries_in(self, category: str) -> list[Entry]:
        """The entries of one category, in import order (the screen's category list):
        only those are decoded."""
        return [self.prepared.entry(row) for row in self.prepared.rows_in(category)]

    def close(self) -> None:
        """Close the version and free what it read in (its arrays, records and vectors):
        after a publish while serving, the old version's memory goes with the swap."""
        with self._lock:
            self._ix.close()
            self.prepared.close()
            self.lexical.close()
            self._encoder, self._vectors, self._rows = None, None, {}
            self._sound_alikes = None

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
