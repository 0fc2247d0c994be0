"""Japanese analysis: the forms speech recognition produces must meet the forms staff write."""

from __future__ import annotations

import pickle

from kiosk.search.analysis import (
    LemmaAnalyzer,
    ReadingAnalyzer,
    fold_kana,
    fold_reading,
    lemma_terms,
    normalize_text,
    reading_grams,
)


def test_kana_folding_makes_hiragana_and_katakana_one_term():
    assert fold_kana("ごみ") == "ゴミ"
    assert set(lemma_terms("ごみ")) & set(lemma_terms("ゴミ"))


def test_width_and_case_are_normalised():
    assert normalize_text("Ｗｉ－Ｆｉ ＡＢＣ１２３") == "wi-fi abc123"
    assert lemma_terms("Ｗｉ－Ｆｉ") == lemma_terms("Wi-Fi")


def test_particles_auxiliaries_and_symbols_are_dropped():
    terms = lemma_terms("「住民票」を取りたいのですが、。")
    assert "住民票" in terms
    for dropped in ("ヲ", "ノ", "デス", "ガ", "「", "、"):
        assert dropped not in terms


def test_inflected_words_meet_their_dictionary_form():
    assert set(lemma_terms("出せば")) & set(lemma_terms("出す"))


def test_compounds_also_index_their_parts():
    assert {"粗大", "ゴミ"} <= set(lemma_terms("粗大ごみ"))


def test_long_vowels_fold_so_spoken_spellings_meet():
    assert fold_reading("コウズイ") == fold_reading("コーズイ") == fold_reading("コオズイ")
    assert fold_reading("ヒョウ") == "ヒョー"


def test_kana_and_kanji_share_reading_grams():
    kanji = set(reading_grams("避難所", 2, 3))
    kana = set(reading_grams("ひなんじょ", 2, 3))
    assert len(kanji & kana) >= 3
    # a wrong homophone still sounds the same
    assert set(reading_grams("高齢者", 2, 3)) == set(reading_grams("公例者", 2, 3))


def test_analyzers_pickle_without_the_dictionary():
    """whoosh stores field analyzers in the index; ours must pickle as a name + ints."""
    lemma, reading = LemmaAnalyzer(), ReadingAnalyzer(2, 3)
    list(lemma("住民票"))  # dictionary loaded
    blob = pickle.dumps(reading)
    assert len(pickle.dumps(lemma)) < 200 and len(blob) < 200
    again = pickle.loads(blob)
    assert [t.text for t in again("ごみ")] == [t.text for t in reading("ゴミ")]


def test_long_bodies_are_analysed_in_slices():
    text = "図書館の本を返します。" * 3000  # ~33k chars; Sudachi alone refuses this size
    assert lemma_terms(text).count("図書館") == 3000


def test_mostly_kana_tells_a_kana_question_from_a_typed_one():
    from kiosk.search.analysis import mostly_kana

    assert mostly_kana("じゅうみんひょうほしい", 0.8)
    assert mostly_kana("じゅうみんひょう欲しい", 0.8)  # one kanji in a kana question
    assert not mostly_kana("住民票の写しがほしいのですが", 0.8)
    assert not mostly_kana("図書館は何時まで開いていますか", 0.8)
    assert not mostly_kana("Wi-Fi", 0.8) and not mostly_kana("", 0.8)


def test_kana_reading_spells_every_japanese_word_in_hiragana():
    from kiosk.search.analysis import kana_reading

    assert kana_reading("ごみの出し方を教えて") == "ごみのだしかたをおしえて"
    assert kana_reading("マイナンバーカード") == "まいなんばーかーど"
    assert kana_reading("Wi-Fiは3階") .startswith("Wi-Fiは3")
