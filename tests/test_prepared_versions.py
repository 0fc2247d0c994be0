"""An index version carries what it needs to answer (kiosk.search.prepared, kiosk.search.lexical):
opening it analyses no content, a version built by the previous release still opens and
answers exactly as before, and one from a newer release is refused in plain words."""

from __future__ import annotations

import json
import logging
import os
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from whoosh import index as windex
from whoosh import scoring
from whoosh.fields import STORED

from kiosk import KioskError
from kiosk.config import Settings
from kiosk.content.contract import Entry
from kiosk.content.entries import validate_content
from kiosk.content.publishing import default_sources
from kiosk.search import analysis
from kiosk.search.index import SearchIndex, build_index, lexical_matrix, make_schema
from kiosk.search.lexical import LEXICAL_META, LexicalMatrix, query_leaves
from kiosk.search.prepared import ENTRIES_FILE, PREPARED_FILE, PreparedVersion, entry_to_json
from kiosk.search.semantic import VECTORS_FILE, VECTORS_META

#: Questions asked of both versions: typed, in kana (written back in kanji, heard by sound),
#: everyday words (synonyms), meaning only, off-topic.
QUESTIONS = ["図書館は何時まで開いていますか", "住民票がほしい", "そだいごみだしたい",
             "こくみんけんこうほけんにはいりたい", "じゅうみんひょうはどこでとれますか",
             "ひなんじょはどこですか", "引っ越しの手続き", "子どもを預けたい",
             "バイクがうるさい", "マイナンバーカードをなくした", "今日の天気はどうですか",
             "ピカチュウはどこにいますか", "えきのちかくのWi-Fi", "介護の相談をしたい"]


@pytest.fixture(scope="module")
def bundled() -> list[Entry]:
    settings = Settings()
    entries, problems = validate_content(default_sources(settings), settings)
    assert not [p for p in problems if not p.warning]
    return entries


@pytest.fixture(scope="module")
def version_dir(tmp_path_factory, bundled) -> Path:
    folder = tmp_path_factory.mktemp("prepared") / "version"
    build_index(bundled, folder, Settings())
    return folder


@pytest.fixture(scope="module")
def old_dir(tmp_path_factory, bundled, version_dir) -> Path:
    return previous_release_version(bundled, version_dir,
                                    tmp_path_factory.mktemp("previous") / "version")


def previous_release_version(entries: list[Entry], built: Path, folder: Path) -> Path:
    """An index folder as the previous release wrote it: the entry records inside whoosh
    (a stored `entry` field), the entry vectors beside it, nothing prepared."""
    search = Settings().search
    schema = make_schema(search)
    schema.add("entry", STORED)
    folder.mkdir(parents=True)
    ix = windex.create_in(str(folder), schema)
    writer = ix.writer()
    for e in entries:
        keywords = " ".join(e.keywords)
        writer.add_document(id=e.id, title=e.title, body=e.body, keywords=keywords,
                            reading=f"{e.title}\n{keywords}\n{e.body}", category=e.category,
                            entry=entry_to_json(e))
    writer.commit()
    ix.close()
    for name in (VECTORS_FILE, VECTORS_META):
        shutil.copyfile(built / name, folder / name)
    return folder


class TokenizerSpy:
    """Sudachi, recording every text it is asked to analyse."""

    def __init__(self, real):
        self.real = real
        self.texts: list[str] = []

    def tokenize(self, text, *args):
        self.texts.append(text)
        return self.real.tokenize(text, *args)


@pytest.fixture
def sudachi_spy(monkeypatch) -> TokenizerSpy:
    spy = TokenizerSpy(analysis._tokenizer())
    monkeypatch.setattr(analysis, "_tokenizer", lambda: spy)
    analysis.analyse.cache_clear()  # what the build analysed must not hide an analysis now
    yield spy
    analysis.analyse.cache_clear()


def analysed_entries(spy: TokenizerSpy, entries: list[Entry]) -> int:
    """How many entries had their title or body analysed."""
    texts = "\n".join(spy.texts)  # Sudachi is given NFKC text
    return sum(any(unicodedata.normalize("NFKC", part) in texts for part in (e.title, e.body[:20]))
               for e in entries)


def test_a_version_stores_its_tables_beside_the_index(version_dir, bundled):
    for name in (PREPARED_FILE, ENTRIES_FILE, LEXICAL_META, VECTORS_FILE):
        assert (version_dir / name).is_file(), name
    with SearchIndex.open(version_dir, Settings()) as index:
        assert index.entries() == bundled
        counts: dict[str, int] = {}
        for e in bundled:
            counts[e.category] = counts.get(e.category, 0) + 1
        assert index.categories() == sorted((c for c in counts if c), key=lambda c: -counts[c])
        for category in index.categories():  # the screen's list of one category
            assert index.entries_in(category) == [e for e in bundled if e.category == category]


def test_listing_a_category_decodes_only_its_entries(version_dir, bundled, monkeypatch):
    from kiosk.search import prepared

    decoded: list[str] = []
    real = prepared.entry_from_json
    monkeypatch.setattr(prepared, "entry_from_json",
                        lambda text: decoded.append(text) or real(text))
    with SearchIndex.open(version_dir, Settings()) as index:
        category = index.categories()[-1]
        listed = index.entries_in(category)
    assert listed and len(decoded) == len(listed) < len(bundled)


def test_opening_a_stored_version_analyses_no_content(version_dir, old_dir, bundled,
                                                      sudachi_spy):
    with SearchIndex.open(version_dir, Settings()) as index:
        assert analysed_entries(sudachi_spy, bundled) == 0
        index.categories()
        index.entries()
        assert analysed_entries(sudachi_spy, bundled) == 0
        assert index.search("図書館は何時まで開いていますか")[0].entry.id == "library-hours"
    # the spy does see an analysis when there is one: an earlier release's version
    with SearchIndex.open(old_dir, Settings()):
        assert analysed_entries(sudachi_spy, bundled) == len(bundled)


def test_a_version_built_by_the_previous_release_opens_and_answers_the_same(
        version_dir, old_dir, bundled, caplog):
    questions = QUESTIONS + [e.title for e in bundled[::3]]
    with caplog.at_level(logging.WARNING, logger="kiosk.search.index"):
        previous = SearchIndex.open(old_dir, Settings())
    assert "imported again" in caplog.text
    with previous, SearchIndex.open(version_dir, Settings()) as stored:
        for q in questions:
            before = [(h.entry, h.score, h.confidence) for h in previous.search(q)]
            after = [(h.entry, h.score, h.confidence) for h in stored.search(q)]
            assert after == before, q
        assert stored.entries() == previous.entries()
        assert stored.categories() == previous.categories()


def test_the_lexical_matrix_ranks_as_whoosh_does(version_dir, old_dir, bundled):
    """The BM25F sum over the stored matrix is whoosh's own search over the same index:
    same entries in the same order, same scores."""
    settings = Settings().search
    weighting = scoring.BM25F(B=settings.bm25_b, K1=settings.bm25_k1)
    with SearchIndex.open(version_dir, Settings()) as index:
        with windex.open_dir(str(old_dir)).searcher(weighting=weighting) as searcher:
            for q in QUESTIONS + [e.title for e in bundled[::7]]:
                built = index.builder.build(q)
                results = searcher.search(built.query, limit=30, terms=True)
                expected = [(r["id"], r.score) for r in results]
                ranking = index.lexical.rank(*_leaves_and_settings(built.query, settings))
                rows = ranking.top(30)
                assert [index.prepared.ids[r] for r in rows] == [i for i, _ in expected], q
                for row, (_, score) in zip(rows, expected):
                    assert ranking.score(row) == pytest.approx(score, rel=1e-12)
                matched = ranking.matched(rows)
                for row, r in zip(rows, results):
                    assert matched[row] == {(f, t.decode()) for f, t in r.matched_terms()}


def test_the_import_makes_the_matrix_whoosh_postings_would_give(version_dir, old_dir):
    """The import builds the matrix from its own analysis instead of writing whoosh
    postings and copying them back: every array must be what the copy gave."""
    stored = LexicalMatrix.read(version_dir)
    with windex.open_dir(str(old_dir)).reader() as reader:
        copied = lexical_matrix(reader, PreparedVersion.read(version_dir))
    assert stored is not None and stored.docs == copied.docs and stored.fields == copied.fields
    for name in ("data", "indices", "indptr", "averages", "field_of_column"):
        assert np.array_equal(getattr(stored, name), getattr(copied, name)), name
    assert stored.terms.ranges == copied.terms.ranges
    assert [stored.terms._bytes(c) for c in range(len(stored.terms))] == \
        [copied.terms._bytes(c) for c in range(len(copied.terms))]
    used = stored.lengths > 0  # whoosh keeps no length for an empty field
    assert np.array_equal(stored.lengths[used], np.asarray(copied.lengths)[used])
    assert not np.any(np.nan_to_num(np.asarray(copied.lengths)[~used]) > 1)


def _leaves_and_settings(query, settings):
    leaves, scale = query_leaves(query)
    return leaves, settings.bm25_k1, settings.bm25_b, scale


def test_a_version_from_a_newer_release_is_refused_in_plain_words(version_dir, tmp_path):
    newer = tmp_path / "newer"
    shutil.copytree(version_dir, newer)
    tables = json.loads((newer / PREPARED_FILE).read_text(encoding="utf-8"))
    tables["format"] = 99
    (newer / PREPARED_FILE).write_text(json.dumps(tables), encoding="utf-8")
    with pytest.raises(KioskError, match="another release.*import the content again"):
        SearchIndex.open(newer, Settings())


def test_a_damaged_entry_file_is_refused_with_what_to_do(version_dir, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(version_dir, damaged)
    with (damaged / ENTRIES_FILE).open("ab") as f:
        f.write(b'{"id": "half')
    with pytest.raises(KioskError, match="damaged.*rollback.*import the content again"):
        SearchIndex.open(damaged, Settings())


def test_an_open_version_answers_from_memory_not_from_its_files(version_dir, tmp_path):
    """A version's records, postings and vectors are read in when it opens: a question never
    waits for the disk to bring back pages the kernel dropped (seconds on a box short of
    page cache). Its files overwritten after the open change no answer."""
    copy = tmp_path / "version"
    shutil.copytree(version_dir, copy)
    stored = [p for p in copy.iterdir()
              if p.name.startswith(("entries", "lexical", "vectors")) and p.is_file()]
    assert {ENTRIES_FILE, LEXICAL_META, VECTORS_FILE} <= {p.name for p in stored}
    questions = QUESTIONS + ["図書館の場所"]
    with SearchIndex.open(version_dir, Settings()) as reference, \
            SearchIndex.open(copy, Settings()) as opened:
        for p in stored:  # in place, same size: what a mapping of the file would now see
            size = p.stat().st_size
            with p.open("r+b") as f:
                f.write(b"\0" * size)
        for q in questions:
            assert ([(h.entry, h.score, h.confidence) for h in opened.search(q)]
                    == [(h.entry, h.score, h.confidence) for h in reference.search(q)]), q
        assert opened.entries() == reference.entries()


def test_closing_a_version_frees_what_it_read_in(version_dir):
    """After a publish while serving the old version is closed: its arrays go at once, even
    while something (a request being finished, the dialogue) still holds the index."""
    import gc
    import weakref

    index = SearchIndex.open(version_dir, Settings())
    index.search("図書館は何時まで開いていますか")
    held = [weakref.ref(a) for a in (index.lexical.data, index.lexical.indices,
                                     index.lexical.lengths, index._vectors.matrix)]
    index.close()
    gc.collect()
    assert [ref() is None for ref in held] == [True] * len(held)


def test_the_ranking_does_not_depend_on_the_process_string_hashing(version_dir):
    """Python salts string hashes per process, so anything summed in a set's order differs
    in its last bits between two kiosk processes, and entries that tie (district copies of
    one answer) came back in another order. The title match is summed in the title's order."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from kiosk.config import Settings; "
            "from kiosk.search.index import SearchIndex\n"
            "ix = SearchIndex.open(Path(sys.argv[1]), Settings())\n"
            "for q in sys.argv[2:]:\n"
            "    w = ix._weights(ix.builder.build(q))\n"
            "    print([repr(ix._title_match(w, r)) for r in range(len(ix.prepared))])\n")
    questions = ["図書館は何時まで開いていますか", "住民票の写しを取りたい", "粗大ごみの出し方",
                 "子どもの予防接種の予約"]
    runs = {subprocess.run([sys.executable, "-c", code, str(version_dir), *questions],
                           capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED=str(seed))).stdout
            for seed in (1, 2, 3)}
    assert len(runs) == 1
