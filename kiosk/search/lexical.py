"""The lexical ranking as array arithmetic: whoosh's BM25F over one sparse matrix.

whoosh scores a query by walking every posting of every term in Python — for a spoken
question that is an OR of dozens of words and reading n-grams, the n-grams matching most of
the content, so its cost grew with the whole content (1,000 entries: 250 ms a question on 2
cores; 10,000 entries: seconds). The import therefore copies the postings whoosh wrote
(term frequency per entry, per field) into a compressed sparse column matrix, with each
entry's field lengths as whoosh sees them; a question's score is then the same BM25F sum

    score(entry) = Σ over the query's terms  boost × idf × tf × (K1 + 1) /
                   (tf + K1 × (1 − B + B × field length / average field length))

(idf = log(entries / (df + 1)) + 1, whoosh's) computed by numpy over only the postings of the
question's terms: tens of milliseconds at 10,000 entries, and no Python loop per posting.
The arrays are read into the process's memory when a version opens (a few tens of MB at
10,000 entries): a question touches the postings of dozens of terms spread over the whole
matrix, and mapped pages the kernel has reclaimed meanwhile are read back from disk one page
fault at a time, which made a 40 ms question take seconds on a box short of page cache. The import makes the matrix straight from
the terms whoosh's analysers give each field (LexicalBuilder; the same arrays whoosh's
postings gave, checked in tests/test_prepared_versions.py), and whoosh keeps only the schema;
a version built by an earlier release has its matrix copied out of its whoosh postings
(from_whoosh). K1 and B are read from the settings at every search, so changing them needs
no re-import.

CONTRACT:
    LexicalMatrix.from_whoosh(reader, fields, row_of_doc, rows) -> LexicalMatrix
    LexicalBuilder(fields).add(terms per field) … .finish() -> LexicalMatrix (the import)
    LexicalMatrix.write(folder) / .read(folder) -> LexicalMatrix | None (None: not stored)
    LexicalMatrix.rank(leaves, k1, b) -> Ranking
    Ranking.top(depth) -> rows, Ranking.score(row), Ranking.matched(rows) -> {row: terms}
    LexicalMatrix.doc_frequency(field, term) -> int
    query_leaves(query) -> ([(field, term, boost)], coordination scale or None)
"""

from __future__ import annotations

import functools
import json
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from whoosh import query as wq
from whoosh.util.numeric import byte_to_length, length_to_byte

from kiosk.i18n import _

#: Inside a version folder (beside whoosh's files): the matrix's three arrays, each entry's
#: field lengths, and which term each column is.
_ARRAYS = ("data", "indices", "indptr", "lengths")
LEXICAL_META = "lexical.json"
TERMS_FILE = "lexical.terms.bin"
LEXICAL_FORMAT = 1
#: Term columns remembered per open version (a long-running kiosk hears many new words).
COLUMN_MEMO = 100_000

Leaf = tuple[str, str, float]  # (field, term, boost)


def _array_file(name: str) -> str:
    return f"lexical.{name}.npy"


def _compact(values: np.ndarray) -> np.ndarray:
    """The same numbers in the smallest unsigned integer type that holds them exactly
    (term counts fit a byte, entry rows two bytes up to 65,535 entries: at 10,000 entries
    the postings take 17 MB of memory instead of 45). The ranking widens them to float64 and
    int64 as it did the stored types, so every score is unchanged."""
    if not len(values) or values.min() < 0 or values.max() > np.iinfo(np.uint32).max:
        return values
    small = values.astype(np.min_scalar_type(int(values.max())))
    return small if np.array_equal(small, values) else values


def query_leaves(query: wq.Query | None) -> tuple[list[Leaf], float | None]:
    """The term leaves of the query stage's OR query, in order (a term repeated in two
    groups counts twice, as whoosh's sum does), and the top OR's coordination scale."""
    if query is None:
        return [], None
    return _leaves(query), getattr(query, "scale", None) or None


def _leaves(query: wq.Query) -> list[Leaf]:
    if isinstance(query, wq.Term):
        return [(query.fieldname, str(query.text), float(query.boost))]
    if isinstance(query, wq.Or) and query.boost == 1.0:
        return [leaf for sub in query.subqueries for leaf in _leaves(sub)]
    # anything else would no longer be whoosh's ranking: a programming error, not input
    raise TypeError(f"the lexical matrix scores OR queries of terms, not {query!r}")


class TermColumns:
    """Which column each (field, term) is: every term's UTF-8 bytes one after another,
    field by field and sorted within a field, found by binary search — one bytes object, so
    a version with hundreds of thousands of terms holds no Python string for them."""

    def __init__(self, blob: bytes, offsets: np.ndarray,
                 ranges: dict[str, tuple[int, int]]):
        self._blob = blob
        self._offsets = offsets
        self.ranges = ranges

    @classmethod
    def from_terms(cls, by_field: dict[str, list[bytes]]) -> TermColumns:
        parts: list[bytes] = []
        ranges: dict[str, tuple[int, int]] = {}
        for name, terms in by_field.items():
            ranges[name] = (len(parts), len(parts) + len(terms))
            parts += terms
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(p) for p in parts], dtype=np.int64)
        return cls(b"".join(parts), offsets, ranges)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _bytes(self, col: int) -> bytes:
        return self._blob[int(self._offsets[col]):int(self._offsets[col + 1])]

    def column(self, field: str, term: str) -> int | None:
        lo, hi = self.ranges.get(field, (0, 0))
        key = term.encode("utf-8")
        while lo < hi:  # bisect_left over this field's sorted terms
            mid = (lo + hi) // 2
            if self._bytes(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        end = self.ranges.get(field, (0, 0))[1]
        return lo if lo < end and self._bytes(lo) == key else None

    def field_of_column(self, fields: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(self), dtype=np.int16)
        for f, name in enumerate(fields):
            lo, hi = self.ranges.get(name, (0, 0))
            out[lo:hi] = f
        return out

    def write(self, folder: Path) -> None:
        (folder / TERMS_FILE).write_bytes(bytes(self._blob))
        np.save(folder / _array_file("term_offsets"), self._offsets, allow_pickle=False)

    @classmethod
    def read(cls, folder: Path, ranges: dict[str, tuple[int, int]]) -> TermColumns:
        offsets = np.load(folder / _array_file("term_offsets"), allow_pickle=False)
        blob = (folder / TERMS_FILE).read_bytes()
        if int(offsets[-1]) != len(blob):
            raise ValueError(_("{file} does not match its offsets").format(file=TERMS_FILE))
        return cls(blob, offsets, ranges)


@dataclass
class LexicalMatrix:
    fields: tuple[str, ...]
    terms: TermColumns  # (field, term) → column
    field_of_column: np.ndarray  # (columns,) index into `fields`
    data: np.ndarray  # term frequencies (float32 stored; the smallest integer type read), CSC order
    indices: np.ndarray  # row (entry) of each value (int32 stored; as small as fits, read)
    indptr: np.ndarray  # int64 (columns + 1,) where each column starts
    lengths: np.ndarray  # float64 (fields, rows): field length as whoosh stores it
    averages: np.ndarray  # float64 (fields,): whoosh's average field length (or 1)
    docs: int  # whoosh's doc_count_all
    # (field, term) → column of the terms asked lately: a binary search over the stored
    # terms is ~20 slices of Python; a question has dozens of terms, mostly heard before
    _columns: dict[tuple[str, str], int | None] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_whoosh(cls, reader, fields: Sequence[str], row_of_doc: Callable[[int], int],
                    rows: int) -> LexicalMatrix:
        """Copy the postings of `fields` out of a whoosh reader; entry rows are given by
        `row_of_doc` (whoosh's document number → the entry's row)."""
        doc_rows = np.array([row_of_doc(d) for d in range(reader.doc_count_all())],
                            dtype=np.int32)
        by_field: dict[str, list[bytes]] = {}
        data: list[np.ndarray] = []
        indices: list[np.ndarray] = []
        indptr = [0]
        for name in fields:
            raws = sorted(raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
                          for raw in reader.lexicon(name)) if name in reader.schema.names() else []
            by_field[name] = raws
            for raw in raws:
                ids, weights = _postings(reader.postings(name, raw))
                order = np.argsort(doc_rows[ids], kind="stable")
                indices.append(doc_rows[ids][order])
                data.append(weights[order])
                indptr.append(indptr[-1] + len(ids))
        lengths = np.zeros((len(fields), rows), dtype=np.float64)
        averages = np.ones(len(fields), dtype=np.float64)
        for f, name in enumerate(fields):
            if name not in reader.schema.names():
                continue
            for d in range(reader.doc_count_all()):
                lengths[f, doc_rows[d]] = reader.doc_field_length(d, name, 1)
            if reader.doc_count_all():
                averages[f] = (reader.field_length(name) / reader.doc_count_all()) or 1
        terms = TermColumns.from_terms(by_field)
        return cls(tuple(fields), terms, terms.field_of_column(fields),
                   np.concatenate(data) if data else np.zeros(0, np.float32),
                   np.concatenate(indices) if indices else np.zeros(0, np.int32),
                   np.array(indptr, dtype=np.int64), lengths, averages,
                   int(reader.doc_count_all()))

    def write(self, folder: Path) -> None:
        for name in _ARRAYS:
            np.save(folder / _array_file(name), getattr(self, name), allow_pickle=False)
        self.terms.write(folder)
        meta = {"format": LEXICAL_FORMAT, "fields": list(self.fields), "docs": self.docs,
                "averages": [float(a) for a in self.averages],
                "columns": {name: list(r) for name, r in self.terms.ranges.items()}}
        (folder / LEXICAL_META).write_text(json.dumps(meta, ensure_ascii=False),
                                           encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> LexicalMatrix | None:
        """The stored matrix, read into memory (see the module docstring); None when the
        version has none (an earlier release's, or an unknown format): the caller then builds
        it from whoosh."""
        meta_file = folder / LEXICAL_META
        if not meta_file.is_file():
            return None
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("format") != LEXICAL_FORMAT:
            return None
        arrays = {name: np.load(folder / _array_file(name), allow_pickle=False)
                  for name in _ARRAYS}
        for name in ("data", "indices"):  # term counts and entry rows: small integers
            arrays[name] = _compact(arrays[name])
        fields = tuple(meta["fields"])
        terms = TermColumns.read(folder, {k: (int(a), int(b))
                                          for k, (a, b) in meta["columns"].items()})
        if len(arrays["indptr"]) != len(terms) + 1:
            raise ValueError(_("{file}: {terms} terms for "
                               "{columns} columns").format(
                                   file=LEXICAL_META, terms=len(terms), columns=len(arrays['indptr']) - 1))
        return cls(fields, terms, terms.field_of_column(fields), arrays["data"],
                   arrays["indices"], arrays["indptr"], arrays["lengths"],
                   np.array(meta["averages"], dtype=np.float64), int(meta["docs"]))

    def close(self) -> None:
        """Let go of the arrays (a closed version's memory is freed at once, even if
        something still holds the closed index)."""
        empty = np.zeros(0)
        self.data = self.indices = empty
        self.indptr = np.zeros(1, dtype=np.int64)
        self.lengths = np.zeros((len(self.fields), 0))
        self.terms = TermColumns(b"", np.zeros(1, dtype=np.int64), {})
        self._columns.clear()

    # ------------------------------------------------------------------ searching

    @property
    def rows(self) -> int:
        return self.lengths.shape[1]

    def column(self, field: str, term: str) -> int | None:
        key = (field, term)
        try:
            return self._columns[key]
        except KeyError:
            if len(self._columns) >= COLUMN_MEMO:
                self._columns.clear()
            col = self._columns[key] = self.terms.column(field, term)
            return col

    def doc_frequency(self, field: str, term: str) -> int:
        col = self.column(field, term)
        return 0 if col is None else int(self.indptr[col + 1] - self.indptr[col])

    def rank(self, leaves: Sequence[Leaf], k1: float, b: float,
             scale: float | None = None) -> Ranking:
        """BM25F of every entry for these query terms (whoosh's formula and statistics;
        with `scale`, whoosh's coordination bonus, its CoordMatcher)."""
        known = [(self.column(f, t), boost, (f, t)) for f, t, boost in leaves]
        known = [(c, boost, term) for c, boost, term in known if c is not None]
        if not known:
            return Ranking(np.zeros(self.rows), np.zeros(0, np.int32), np.zeros(0, np.int32), [])
        cols = np.array([c for c, _, _ in known], dtype=np.int64)
        starts, ends = np.asarray(self.indptr[cols]), np.asarray(self.indptr[cols + 1])
        counts = ends - starts
        # the positions of every posting of the chosen columns, without a Python loop
        leaf_of = np.repeat(np.arange(len(cols)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        positions = np.repeat(starts, counts) + offsets
        rows = np.asarray(self.indices[positions]).astype(np.int64)
        tf = np.asarray(self.data[positions]).astype(np.float64)
        fields = self.field_of_column[cols][leaf_of]
        fl = np.asarray(self.lengths)[fields, rows]
        avg = self.averages[fields]
        idf = np.log(self.docs / (counts + 1.0)) + 1.0
        boost = np.array([bst for _, bst, _ in known], dtype=np.float64)
        weight = (idf[leaf_of] * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avg)))
                  * boost[leaf_of])
        scores = np.bincount(rows, weights=weight, minlength=self.rows)
        if scale:
            terms = len(cols)
            matching = np.bincount(rows, minlength=self.rows)
            hit = matching > 0
            scores[hit] = ((scores[hit] + (matching[hit] - 1) / (terms - scale) ** 2)
                           * ((terms - 1) / terms))
        return Ranking(scores, rows, leaf_of, [term for _, _, term in known])


class LexicalBuilder:
    """The matrix made straight from the analysed content, entry by entry, as whoosh's
    writer would have stored it (term counts per field, quantised field lengths, whoosh's
    averages): the import no longer writes, merges and reads back whoosh postings it never
    searches — at 1,000 entries that was a third of the import's time.

    Each entry's terms are counted as they come and kept as flat 32-bit arrays (term,
    count), one value per distinct term of the entry: the builder used to keep every
    occurrence as two int64 arrays per entry and field, then sort them all at the end,
    ~20 MB per 1,000 entries and most of the import's peak memory (848 MB at 10,000
    entries without the vectors; see docs/search.md)."""

    def __init__(self, fields: Sequence[str]):
        self.fields = tuple(fields)
        self._vocab: list[dict[str, int]] = [{} for _ in self.fields]
        # per field, entry after entry: each distinct term's id and count in that entry
        self._terms = [array("i") for _ in self.fields]
        self._counts = [array("i") for _ in self.fields]
        self._distinct = [array("i") for _ in self.fields]  # distinct terms per entry
        self._lengths = [array("q") for _ in self.fields]  # terms per entry, repeats counted

    def add(self, field_terms: Sequence[Sequence[str]]) -> None:
        """One entry (the next row): its terms per field, in `fields` order, repeats kept."""
        for f, terms in enumerate(field_terms):
            vocab = self._vocab[f]
            counted = Counter(terms)
            self._terms[f].extend([vocab.setdefault(t, len(vocab)) for t in counted])
            self._counts[f].extend(counted.values())
            self._distinct[f].append(len(counted))
            self._lengths[f].append(len(terms))

    def finish(self) -> LexicalMatrix:
        """The matrix; the builder's buffers are let go field by field (it is used once)."""
        docs = len(self._lengths[0]) if self.fields else 0
        by_field: dict[str, list[bytes]] = {}
        data: list[np.ndarray] = []
        indices: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        lengths = np.zeros((len(self.fields), docs), dtype=np.float64)
        averages = np.ones(len(self.fields), dtype=np.float64)
        rows_of_entries = np.arange(docs, dtype=np.int32)
        for f, name in enumerate(self.fields):
            raws = [t.encode("utf-8") for t in self._vocab[f]]
            self._vocab[f] = {}
            order = sorted(range(len(raws)), key=raws.__getitem__)  # whoosh's term order
            column = np.empty(len(raws), dtype=np.int32)
            column[order] = np.arange(len(raws), dtype=np.int32)
            by_field[name] = [raws[i] for i in order]
            del raws, order
            columns = column[np.frombuffer(self._terms[f], dtype=np.int32)]
            self._terms[f] = array("i")
            rows = np.repeat(rows_of_entries, np.frombuffer(self._distinct[f], dtype=np.int32))
            # one posting per (term, entry), added entry by entry: a stable sort by column
            # leaves each column's rows ascending, which is the CSC layout
            by_column = np.argsort(columns, kind="stable")
            indices.append(rows[by_column])
            del rows
            data.append(np.frombuffer(self._counts[f], dtype=np.int32)[by_column]
                        .astype(np.float32))
            self._counts[f] = array("i")
            del by_column
            counts.append(np.bincount(columns, minlength=len(column)))
            del columns
            field_lengths = np.frombuffer(self._lengths[f], dtype=np.int64)
            lengths[f] = [_stored_length(n) for n in field_lengths.tolist()]
            if docs:
                averages[f] = (field_lengths.sum() / docs) or 1
        indptr = np.zeros(sum(len(c) for c in counts) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(np.concatenate(counts)) if counts else []
        term_columns = TermColumns.from_terms(by_field)
        return LexicalMatrix(self.fields, term_columns, term_columns.field_of_column(self.fields),
                             np.concatenate(data) if data else np.zeros(0, np.float32),
                             np.concatenate(indices) if indices else np.zeros(0, np.int32),
                             indptr, lengths, averages, docs)


@functools.lru_cache(maxsize=4096)
def _stored_length(tokens: int) -> float:
    """A field length as whoosh stores it (one byte, so only a few hundred values)."""
    return byte_to_length(length_to_byte(tokens)) if tokens else 0.0


def _postings(matcher) -> tuple[np.ndarray, np.ndarray]:
    """(document numbers, weights) of one term, a block at a time (whoosh 2.7's leaf
    matcher; any other matcher posting by posting)."""
    ids: list[int] = []
    weights: list[float] = []
    if hasattr(matcher, "_read_ids") and hasattr(matcher, "_next_block"):
        while matcher.is_active():
            matcher._read_ids()
            matcher._read_weights()
            ids.extend(matcher._ids[matcher._i:])
            weights.extend(matcher._weights[matcher._i:])
            matcher._next_block()
    else:  # pragma: no cover - another codec
        while matcher.is_active():
            ids.append(matcher.id())
            weights.append(matcher.weight())
            matcher.next()
    return np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float32)


@dataclass
class Ranking:
    """One question's BM25F over every entry, and which of its terms each entry holds."""

    scores: np.ndarray  # (rows,) 0 where no term matched
    posting_rows: np.ndarray  # the row of each posting of the question's terms
    posting_leaf: np.ndarray  # which leaf each posting belongs to
    leaves: list[tuple[str, str]]

    def top(self, depth: int) -> list[int]:
        """Rows of the `depth` best matching entries, best first; ties in import order
        (as whoosh breaks them)."""
        matched = np.flatnonzero(self.scores > 0)
        if len(matched) > depth:
            # a linear partition first, so the sort is over `depth` rows, not all of them
            cut = np.argpartition(-self.scores[matched], depth - 1)[:depth]
            edge = self.scores[matched[cut]].min()
            matched = matched[self.scores[matched] >= edge]  # keep every tie at the edge
        order = np.lexsort((matched, -self.scores[matched]))
        return [int(r) for r in matched[order][:depth]]

    def score(self, row: int) -> float:
        return float(self.scores[row])

    def matched(self, rows: Sequence[int]) -> dict[int, set[tuple[str, str]]]:
        """The question's (field, term) pairs each of `rows` holds (one pass over the
        postings for all of them)."""
        found: dict[int, set[tuple[str, str]]] = {row: set() for row in rows}
        if not found or not len(self.posting_rows):
            return found
        mask = np.isin(self.posting_rows, np.fromiter(found, dtype=np.int64))
        for row, leaf in zip(self.posting_rows[mask].tolist(), self.posting_leaf[mask].tolist()):
            found[row].add(self.leaves[leaf])
        return found


__all__ = ["LexicalBuilder", "LexicalMatrix", "Ranking", "query_leaves", "LEXICAL_META"]
