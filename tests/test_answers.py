"""The bundled Atsugi content answers everyday questions — typed, all-hiragana and the way
speech recognition mangles them — and declines questions it has no answer for.

Runs the real pipeline (bundled JSONL → whoosh index → search → AnswerComposer)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import pytest

from kiosk.answer.composer import AnswerComposer
from kiosk.answer.contract import Answer, AnswerKind, topic_of
from kiosk.config import AnswerSettings, Settings
from kiosk.content.contract import Entry
from kiosk.content.entries import load_content, validate_content
from kiosk.content.publishing import default_sources
from kiosk.dialogue.ask import ask as ask_heard
from kiosk.search.contract import Hit
from kiosk.search.index import SearchIndex, build_index

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "kiosk" / "data"
ATTRIBUTION = "出典：国土地理院 指定緊急避難場所データ"

# (question, expected entry id). Variety on purpose: polite and blunt, kanji and all-kana,
# wrong homophone kanji (表/票, 間/館, 非難/避難, 開帳/開庁, 放火/放課, 保健/保険), no particles,
# colloquial words (ゴミ, 学童, 国保, 年寄り, ワイファイ), the way a visitor speaks.
QUESTIONS = [
    ("図書館は何時まで開いていますか", "library-hours"),
    ("としょかんはなんじまであいてますか", "library-hours"),
    ("図書間は何時まで", "library-hours"),
    ("住民票の写しがほしいのですが", "juminhyo"),
    ("住民票ほしい", "juminhyo"),
    ("じゅうみんひょうほしい", "juminhyo"),
    ("住民表がほしい", "juminhyo"),
    ("ゴミいつ出せばいいの", "garbage-schedule"),
    ("ごみのしゅうしゅうびはいつ", "garbage-schedule"),
    ("粗大ごみを出したいです", "garbage-oversized"),
    ("そだいごみだしたい", "garbage-oversized"),
    ("タンスを捨てたい", "garbage-oversized"),
    ("ほーずいのときのひなんじょ", "evacuation-flood"),
    ("洪水のときの避難場所はどこ", "evacuation-flood"),
    ("こうずいのときのひなんばしょ", "evacuation-flood"),
    ("洪水のときの非難場所", "evacuation-flood"),
    ("近くの避難所はどこですか", "shelters-designated-list"),
    ("ちかくのひなんじょはどこ", "shelters-designated-list"),
    ("東名中学校は避難所ですか", "shelter-E14212000021"),
    ("とうめいちゅうがっこうはひなんじょですか", "shelter-E14212000021"),
    ("厚木中学校は避難所", "shelter-E14212001041"),
    ("荻野中学校は指定非難所ですか", "shelter-E14212001141"),
    ("地震のときの避難場所", "evacuation-earthquake"),
    ("じしんのときのひなんばしょ", "evacuation-earthquake"),
    ("荻野運動公園でワイファイ使える", "wifi-ogino"),
    ("駅の近くでフリーWi-Fiはありますか", "wifi-public"),
    ("わいふぁいつかえるところ", "wifi-public"),
    ("市役所の電話番号を教えて", "cityhall-phone"),
    ("市役所は何時まで", "cityhall-hours"),
    ("しやくしょはなんじまでですか", "cityhall-hours"),
    ("市役所の開帳時間", "cityhall-hours"),
    ("印鑑登録したい", "inkan-toroku"),
    ("いんかんとうろくをしたい", "inkan-toroku"),
    ("実印の証明書がほしい", "inkan-shomei"),
    ("マイナンバーカードを作りたい", "mynumber-apply"),
    ("まいなんばーかーどなくした", "mynumber-lost"),
    ("引っ越してきたので手続きしたい", "moving-in"),
    ("ひっこしてきました", "moving-in"),
    ("市外に引っ越すときの手続き", "moving-out"),
    ("学童に入れたい", "after-school-club"),
    ("がくどうほいく", "after-school-club"),
    ("放火後児童クラブ", "after-school-club"),
    ("保育園に入りたい", "nursery-school"),
    ("ほいくえんにいれたい", "nursery-school"),
    ("児童手当の申請", "child-allowance"),
    ("じどうてあてをもらいたい", "child-allowance"),
    ("年寄りの介護の相談", "elderly-consult"),
    ("介護保険を使いたい", "care-insurance-apply"),
    ("かいごほけんのしんせい", "care-insurance-apply"),
    ("介護保健料はいくら", "care-insurance-premium"),
    ("会社をやめたので国保に入りたい", "nhi-join"),
    ("こくみんけんこうほけんにはいりたい", "nhi-join"),
    ("固定資産税はいつ払う", "property-tax"),
    ("住民税について", "resident-tax"),
    ("ペットボトルの捨て方", "garbage-cans-bottles"),
    ("冷蔵庫を捨てたい", "garbage-appliances"),
    ("れいぞうこすてたい", "garbage-appliances"),
    ("ハザードマップ見たい", "hazard-map"),
    ("戸籍謄本をとりたい", "koseki"),
    ("こせきとうほんほしい", "koseki"),
    ("コンビニで住民票とれる", "convenience-store-certificates"),
    ("公民館の部屋を予約したい", "facility-reservation"),
    ("体育館を借りたい", "facility-reservation"),
    ("図書館で本を借りたい", "library-card"),
    ("本を返したい", "library-return-renew"),
    ("もえるごみの袋", "garbage-burnable"),
    ("赤ちゃんが生まれた", "birth-registration"),
    ("母子手帳をもらいたい", "pregnancy"),
    ("犬を飼った", "dog-registration"),
    ("確定申告はどこでする", "tax-return"),
    ("非常食の準備", "stockpile"),
    ("台風のときどうする", "flood-action"),
    ("パスポートをとりたい", "passport"),
    ("ぱすぽーとほしい", "passport"),
    ("救急車を呼びたい", "emergency-medical"),
    ("夜中に熱が出た", "emergency-medical"),
    ("土砂災害の避難場所", "evacuation-landslide"),
    ("乾電池の捨て方", "garbage-nonburnable"),
    ("ふるぎ", "garbage-paper-cloth"),
    ("しゃくしょのでんわばんごう", "cityhall-phone"),
    ("暗証番号を忘れた", "mynumber-renew"),
    ("森の里小学校は避難所ですか", "shelter-E14212001001"),
    ("もりのさとしょうがっこうはひなんじょ", "shelter-E14212001001"),
    ("おとしよりのみまもり", "elderly-services"),
    ("訪問販売でだまされた", "consumer-trouble"),
    ("夫から暴力をうけている", "dv-consult"),
    ("期日前投票はどこでできる", "election-early-voting"),
    # all-kana, read back into kanji before searching (kiosk/search/kana_kanji.py); Sudachi alone
    # cut きじつ… into the wrong words and the reading n-grams lost it
    ("きじつまえとうひょう", "election-early-voting"),
    ("ぜいきんのはらいかたをおしえて", "tax-payment"),
    ("しみんかのまどぐちはなんじまで", "cityhall-hours"),
    ("そだいごみのもうしこみ", "garbage-oversized"),
    ("道路に穴があいている", "road-repair"),
    ("スズメバチの巣がある", "bee-nest-animals"),
    ("財布を落とした", "lost-property"),
    ("使い方がわからない", "kiosk-help"),
]

# Questions the kiosk has no content for: it must say so, not guess.
OFF_TOPIC = [
    "おすすめの映画",
    "東京タワーの高さ",
    "ビールが飲みたい",
    "月曜日のドラマ",
    "恐竜はいつ絶滅した",
    "野球の試合",
    "こんにちは",
    "あいうえお",
    "ABCDEFG",
    "んんんん",
    "今日の天気は",  # てんき ≈ てんきょ (転居) by sound
    "ピザを注文したい",  # ちゅうもん ≈ ほうもん (訪問販売) by sound
    "プロ野球の結果を教えて",
    "ラーメンのおいしい店",
    "明日は雨が降りますか",
    "温泉に行きたい",  # 行く alone matches 「市役所への行き方」
]

# Off-topic questions that still come out as a (wrong) answer: a search-quality gap reported
# to the search owner (confidence gives sound-alikes and single common words too much credit).
OFF_TOPIC_KNOWN_GAPS = [
    "株価はいくら",  # いくら alone matches 「国民健康保険税はいくらですか」
    "宇宙人はいますか",
    "新しいスマホがほしい",
    "今何時",  # 何時 alone matches the opening-hours entries
]


def bundled_entries() -> list[Entry]:
    """The default content, loaded and validated the way the first run loads it."""
    return load_content(default_sources(Settings()))


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("answers") / "index"
    build_index(bundled_entries(), folder, Settings())
    ix = SearchIndex.open(folder, Settings())
    yield ix
    ix.close()


@pytest.fixture(scope="module")
def ask(index):
    composer = AnswerComposer(Settings().answer, index.categories())

    def run(question: str) -> Answer:
        return composer.compose(question, index.search(question))

    return run


# --------------------------------------------------------------------------- answers


def test_at_least_forty_everyday_questions_with_kana_and_asr_forms():
    kana_only = [q for q, _ in QUESTIONS if re.fullmatch(r"[ぁ-ゖー]+", q)]
    assert len(QUESTIONS) >= 40 and len(kana_only) >= 15


@pytest.mark.parametrize("question,expected", QUESTIONS,
                         ids=[f"{n:02d}-{e}" for n, (_, e) in enumerate(QUESTIONS)])
def test_everyday_question_gets_the_right_entry(ask, question, expected):
    answer = ask(question)
    assert answer.kind is not AnswerKind.NONE, f"{question!r} was declined"
    got = [(h.entry.id, round(h.score, 1), h.confidence) for h in answer.candidates[:3]]
    assert answer.best.entry.id == expected, f"{question!r}: {got}"


@pytest.mark.parametrize("question", OFF_TOPIC, ids=lambda q: f"off-{OFF_TOPIC.index(q)}")
def test_off_topic_question_is_declined_with_categories(ask, question):
    answer = ask(question)
    got = [(h.entry.id, round(h.score, 1), h.confidence) for h in answer.candidates[:3]]
    assert answer.kind is AnswerKind.NONE, f"{question!r}: {answer.kind} {got}"
    assert answer.suggestions and answer.choices == () and answer.ask_back == ""


@pytest.mark.xfail(reason="search confidence still credits sound-alikes / single common words",
                   strict=False)
@pytest.mark.parametrize("question", OFF_TOPIC_KNOWN_GAPS,
                         ids=lambda q: f"gap-{OFF_TOPIC_KNOWN_GAPS.index(q)}")
def test_off_topic_question_known_gaps(ask, question):
    assert ask(question).kind is AnswerKind.NONE


def test_a_runner_up_transcript_the_content_fits_is_answered(index):
    """A recogniser's first transcript may hold a word the content never uses; its
    runner-up that the content covers is the one asked back about."""
    composer = AnswerComposer(Settings().answer, index.categories())
    heard = ["レッドボトルはどうやって捨てればいいですか", "ペットボトルはどうやって捨てればいいですか"]
    answer = ask_heard(index, composer, heard)
    assert answer.query == heard[1]
    assert answer.best.entry.id == "garbage-cans-bottles"
    # the recogniser preferred the other transcript: confirm before reading it out
    assert answer.kind is AnswerKind.UNSURE
    assert answer.ask_back == "缶・びん・ペットボトルの出し方についてですか？"


def test_the_first_transcript_keeps_the_benefit_of_the_doubt(index):
    """When an entry covers the first transcript fully, the others are not even searched;
    with the margin at 1 they never replace it."""
    composer = AnswerComposer(Settings().answer, index.categories())
    searched: list[str] = []

    class Spy:
        def search(self, text: str, limit: int | None = None):
            searched.append(text)
            return index.search(text, limit)

        def categories(self):
            return index.categories()

        def entries(self):
            return index.entries()

        def entries_in(self, category):
            return index.entries_in(category)

    answer = ask_heard(Spy(), composer, ["粗大ごみを出したいです", "相対ごみを出したいです"])
    assert answer.query == "粗大ごみを出したいです" and searched == ["粗大ごみを出したいです"]
    never = AnswerComposer(dataclasses.replace(Settings().answer, alternative_margin=1.0),
                           index.categories())
    heard = ["レッドボトルはどうやって捨てればいいですか", "ペットボトルはどうやって捨てればいいですか"]
    assert ask_heard(index, never, heard).query == heard[0]
    assert ask_heard(index, composer, ["", "  "]).kind is AnswerKind.NONE


def test_plain_question_is_answered_outright(ask):
    answer = ask("粗大ごみを出したいです")
    assert answer.kind is AnswerKind.CONFIDENT
    assert answer.best.entry.source and answer.best.entry.spoken


def test_close_candidates_ask_back_with_the_topic(ask):
    answer = ask("印鑑登録したい")  # 印鑑登録 itself, or the lost 印鑑登録証?
    assert answer.kind is AnswerKind.UNSURE
    assert answer.ask_back == "印鑑登録についてですか？"
    assert [h.entry.id for h in answer.choices][:2] == ["inkan-toroku", "inkan-lost"]


def test_shelter_answer_names_address_hazards_and_attribution(ask):
    best = ask("東名中学校は避難所ですか").best.entry
    assert best.title == "東名中学校（指定避難所・指定緊急避難場所）"
    assert "愛甲1809" in best.body and "洪水" in best.body and "地震" in best.body
    assert best.source == ATTRIBUTION and best.category == "防災"
    assert best.lat and best.lon


# --------------------------------------------------------------------------- composer


def _hit(id: str, score: float, confidence: float, category: str = "c") -> Hit:
    return Hit(Entry(id=id, title=f"{id}の手続き", body="…", category=category),
               score, confidence)


def test_composer_declines_when_nothing_or_only_weak_hits():
    composer = AnswerComposer(AnswerSettings(), ["ごみ", "防災"])
    assert composer.compose("x", []).kind is AnswerKind.NONE
    weak = composer.compose("x", [_hit("a", 5.0, 0.1, "税金")])
    assert weak.kind is AnswerKind.NONE
    assert weak.suggestions == ("税金", "ごみ", "防災")  # the weak hit's category first


def test_composer_thresholds_follow_settings():
    hits = [_hit("a", 10.0, 0.4), _hit("b", 2.0, 0.1)]
    assert AnswerComposer(AnswerSettings(), []).compose("q", hits).kind is AnswerKind.UNSURE
    lenient = AnswerSettings(min_score=0.2, sure_score=0.3)
    assert AnswerComposer(lenient, []).compose("q", hits).kind is AnswerKind.CONFIDENT
    strict = AnswerSettings(min_score=0.5)
    assert AnswerComposer(strict, []).compose("q", hits).kind is AnswerKind.NONE


def test_composer_keeps_the_search_order():
    # The search score already weighs coverage of the question; the composer must not
    # re-weight by confidence (that counted coverage twice and lifted generic entries).
    hits = [_hit("specific", 100.0, 0.6), _hit("generic", 60.0, 1.0), _hit("other", 30.0, 0.9)]
    answer = AnswerComposer(AnswerSettings(), []).compose("q", hits)
    assert answer.kind is AnswerKind.CONFIDENT
    assert [h.entry.id for h in answer.candidates] == ["specific", "generic", "other"]


def test_composer_asks_back_when_two_candidates_tie():
    hits = [_hit("a", 10.0, 0.9), _hit("b", 9.5, 0.9), _hit("c", 9.0, 0.88),
            _hit("d", 8.9, 0.87), _hit("e", 1.0, 0.2)]
    answer = AnswerComposer(AnswerSettings(max_choices=3), []).compose("q", hits)
    assert answer.kind is AnswerKind.UNSURE
    assert [h.entry.id for h in answer.choices] == ["a", "b", "c"]
    assert answer.ask_back == "aの手続きについてですか？"


@pytest.mark.parametrize("title,topic", [
    ("住民票の写しがほしい", "住民票の写し"),
    ("図書館は何時まで開いていますか", "図書館"),
    ("厚木市に引っ越してきました（転入届）", "転入届"),
    ("東名中学校（指定避難所・指定緊急避難場所）", "東名中学校"),
    ("保育所（保育園）に入りたい", "保育所（保育園）"),
    ("洪水のときの避難場所の一覧", "洪水のときの避難場所"),
    ("避難所と避難場所のちがいは", "避難所と避難場所のちがい"),
    ("税金の払い方", "税金の払い方"),
])
def test_topic_of_title(title, topic):
    assert topic_of(title) == topic


# --------------------------------------------------------------------------- content


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def test_bundled_content_passes_validation_without_warnings():
    entries, problems = validate_content(default_sources(Settings()))
    assert not problems, "\n".join(map(str, problems))
    assert len(entries) == len(_jsonl("city_services.jsonl")) + len(_jsonl("atsugi_shelters.jsonl")) \
        + len(_jsonl("site_guide.jsonl"))


def test_city_services_are_complete_plain_and_point_to_an_office():
    entries = _jsonl("city_services.jsonl")
    assert len(entries) >= 70
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    for e in entries:
        for key in ("id", "title", "body", "spoken", "category", "keywords", "source", "updated"):
            assert e.get(key), f"{e['id']}: '{key}' is empty"
        sentences = [s for s in re.split(r"(?<=[。？])", e["spoken"]) if s]
        assert len(sentences) <= 3, e["id"]
        assert all(len(s) <= 60 for s in sentences), e["id"]
    # every answer says where to ask (a phone number), since facts change; the number comes
    # from the offices table ({office} in the text), so check the entries as loaded
    loaded = [e for e in bundled_entries() if e.id in set(ids)]
    assert len(loaded) == len(entries)
    for e in loaded:
        assert re.search(r"\d{2,4}-\d{2,4}-\d{4}|119", e.body + e.phone), e.id
        assert "{office" not in e.body + e.spoken, e.id
    text = "\n".join(e.body for e in loaded)
    assert "046-223-1511" in text
    for topic in ("住民票", "戸籍", "印鑑登録", "マイナンバーカード", "転入", "転出", "粗大ごみ",
                  "図書館", "公民館", "予約", "Wi-Fi", "荻野運動公園", "保育所", "児童手当",
                  "放課後児童クラブ", "介護保険", "国民健康保険", "税", "避難"):
        assert topic in text, topic


def test_shelter_entries_cover_every_site_with_attribution():
    entries = _jsonl("atsugi_shelters.jsonl")
    sites = [e for e in entries if e["id"].startswith("shelter-")]
    shelters = [e for e in sites if "指定避難所" in e["title"]]
    evacuation = [e for e in sites if "指定緊急避難場所" in e["title"]]
    assert len(shelters) == 48 and len(evacuation) == 144
    assert all(e["source"] == ATTRIBUTION for e in entries)
    assert all(e["lat"] and e["lon"] and e["address"] for e in sites)
    titles = {e["title"] for e in entries}
    assert {"洪水のときの避難場所の一覧", "地震のときの避難場所の一覧"} <= titles


def _converter():
    """tools/convert_atsugi.py, imported from its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("convert_atsugi",
                                                  ROOT / "tools" / "convert_atsugi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_shelter_file_matches_the_converter(tmp_path):
    converter = _converter()
    out = tmp_path / "shelters.jsonl"
    assert converter.main(["--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (DATA / "atsugi_shelters.jsonl").read_text(
        encoding="utf-8"), "run: python3 tools/convert_atsugi.py"


def test_converter_names_a_bad_input_file(tmp_path, capsys):
    converter = _converter()
    (tmp_path / converter.SHELTERS_FILE).write_text("{not json", encoding="utf-8")
    assert converter.main(["--src", str(tmp_path), "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert converter.SHELTERS_FILE in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()


# --------------------------------------------------------------------------- noisy rooms


def test_a_noisy_question_the_recogniser_doubts_is_asked_back(index):
    """In a noisy room (the front end's noise floor above [answer] noisy_room_dbfs) a
    transcript the recogniser rates below min_heard_confidence_noisy is asked back with the
    entry offered, never read out: babble makes whisper write garbled questions with fair
    confidence."""
    composer = AnswerComposer(Settings().answer, index.categories())
    question = ("住民票の写しがほしいです",)
    quiet = ask_heard(index, composer, question, confidence=0.6, noise_dbfs=-60.0)
    assert quiet.kind is AnswerKind.CONFIDENT
    noisy = ask_heard(index, composer, question, confidence=0.6, noise_dbfs=-30.0)
    assert noisy.kind is AnswerKind.UNSURE
    assert quiet.candidates[0].entry.id in [h.entry.id for h in noisy.choices]
    sure = ask_heard(index, composer, question, confidence=0.9, noise_dbfs=-30.0)
    assert sure.kind is AnswerKind.CONFIDENT


def test_in_noise_runners_up_that_disagree_make_the_kiosk_ask_back(index):
    """Even a confident transcript is asked back in a noisy room when the recogniser's other
    transcripts lead elsewhere (measured: 「マイナンバーを楽しんでしまいました」 read out as
    the application entry for a lost card)."""
    composer = AnswerComposer(Settings().answer, index.categories())
    agreeing = ("住民票の写しがほしいです", "住民票の写しが欲しいです")
    disagreeing = ("住民票の写しがほしいです", "粗大ごみの出し方")
    assert ask_heard(index, composer, agreeing, confidence=0.9,
                     noise_dbfs=-30.0).kind is AnswerKind.CONFIDENT
    asked = ask_heard(index, composer, disagreeing, confidence=0.9, noise_dbfs=-30.0)
    assert asked.kind is AnswerKind.UNSURE and asked.query == "住民票の写しがほしいです"
    # in a quiet room the first transcript keeps the benefit of the doubt when the
    # recogniser is sure of it, but not below [answer] agreement_below
    assert ask_heard(index, composer, disagreeing, confidence=0.9,
                     noise_dbfs=-60.0).kind is AnswerKind.CONFIDENT
    assert ask_heard(index, composer, disagreeing, confidence=0.6,
                     noise_dbfs=-60.0).kind is AnswerKind.UNSURE
    assert ask_heard(index, composer, ("住民票の写しがほしいです",), confidence=0.3,
                     noise_dbfs=-60.0).kind is AnswerKind.UNSURE
    lax = AnswerComposer(dataclasses.replace(Settings().answer, noisy_needs_agreement=False),
                         index.categories())
    assert ask_heard(index, lax, disagreeing, confidence=0.9,
                     noise_dbfs=-30.0).kind is AnswerKind.CONFIDENT


def _offered(answer: Answer) -> list[str]:
    return [h.entry.id for h in answer.choices]


def test_a_doubted_question_offers_what_all_its_transcripts_found(index):
    """In noise the right entry is often second for one transcript and first for another:
    the ask-back pools them (measured in the simulated lobby, fan 20 dB: 印鑑登録証を
    なくしました heard as below; the first transcript alone offered only マイナンバーカード)."""
    composer = AnswerComposer(Settings().answer, index.categories())
    heard = ("いっかこのクショーがくしました", "いっかこのクショーなくしました",
             "いっかこのクションをなくしました。")
    answer = ask_heard(index, composer, heard, confidence=0.43, noise_dbfs=-37.0)
    assert answer.kind is AnswerKind.UNSURE
    assert "inkan-lost" in _offered(answer)
    assert len(answer.choices) <= Settings().answer.max_choices


def test_a_doubted_question_nothing_was_found_for_is_still_offered_choices(index):
    """「困ったことを相談…」 heard in babble as 「決まったこと…」: both transcripts find the
    consultation entry, too weakly to ask back about; offered, not declined. A garbled
    transcript whose hits stay below [answer] heard_choice_min_score (a fifth of the
    question covered: its 「ください」) is still declined (the lookup by sound, which
    may offer an entry for it, is left out here: the next tests cover it)."""
    composer = AnswerComposer(dataclasses.replace(Settings().answer, sound_alike_weight=0.0),
                              index.categories())
    heard = ("決まったことを相談できるところがありますか?",
             "止まったことを相談できるところがありますか?")
    assert composer.compose(heard[0], index.search(heard[0])).kind is AnswerKind.NONE
    answer = ask_heard(index, composer, heard, confidence=0.79, noise_dbfs=-27.0)
    assert answer.kind is AnswerKind.UNSURE
    assert _offered(answer)[0] == "consultation-citizen"
    garbled = ask_heard(index, composer, ("しらすその映画マットを信じてください",),
                        confidence=0.38, noise_dbfs=-31.0)
    assert garbled.kind is AnswerKind.NONE and garbled.choices == ()
    strict = AnswerComposer(dataclasses.replace(Settings().answer, heard_choice_min_score=1.0),
                            index.categories())
    assert ask_heard(index, strict, heard, confidence=0.79,
                     noise_dbfs=-27.0).kind is AnswerKind.NONE


def test_a_garbled_word_whose_sound_survived_is_offered_by_its_sound(index):
    """「母子手帳をもらいたいです」 heard in the reverberant lobby as 「押して庁…」: no word of
    the pregnancy entry is in the transcripts, but 母子手帳 (boshitecho) sounds like 押して庁
    (oshitecho), so a doubted question offers it — and only offers it: an entry found by
    sound alone is never read out at once. With [answer] sound_alike_weight 0 it is not
    offered (measured: bench/asr_bench.py --room)."""
    composer = AnswerComposer(Settings().answer, index.categories())
    heard = ("押して頂戻大体です", "押して庁を乗題たいです", "押して頂戸大体です。")
    assert "pregnancy" in [h.entry.id for h in index.sounds_like(heard, 3)]
    answer = ask_heard(index, composer, heard, confidence=0.55, noise_dbfs=-40.0)
    assert answer.kind is AnswerKind.UNSURE and "pregnancy" in _offered(answer)
    assert len(answer.choices) <= Settings().answer.max_choices
    off = AnswerComposer(dataclasses.replace(Settings().answer, sound_alike_weight=0.0),
                         index.categories())
    assert "pregnancy" not in _offered(ask_heard(index, off, heard, confidence=0.55,
                                                 noise_dbfs=-40.0))
    # a question heard clearly is not looked up by sound at all
    typed = ask_heard(index, composer, ("押して庁をもらいたいです",))
    assert "pregnancy" not in _offered(typed)


def test_sound_alikes_need_a_long_enough_close_enough_phrase(index):
    """Short keywords match some stretch of any long question by chance, so they are left
    out ([search] sound_alike_min_letters); a clean question finds its own entry by sound
    (its words are in it), and a different question does not find the pregnancy entry."""
    from kiosk.search.sound_alike import SoundAlikes, sound_of

    assert sound_of("母子手帳") == "boshitecho" and sound_of("押して庁") == "oshitecho"
    assert sound_of("コーズイ") == sound_of("こうずい")
    settings = Settings().search
    entries = index.entries()
    alikes = SoundAlikes(entries, settings)
    assert all(len(sound) >= settings.sound_alike_min_letters for sound in alikes.sounds)

    def found(text: str) -> list[str]:
        return [entries[number].id for number, _ in alikes.find((text,), 3)]

    assert "marriage-registration" in found("婚姻届を出したい")
    assert "pregnancy" not in found("粗大ごみを出したいです")
    off = SoundAlikes(index.entries(), dataclasses.replace(
        settings, sound_alike_min_similarity=1.01))
    assert off.find(("押して庁をもらいたいです",), 3) == []
    assert alikes.find(("",), 3) == [] and alikes.find(("押して庁",), 0) == []


def test_in_noise_an_entry_covered_by_one_generic_word_is_asked_back(index):
    """Measured in the simulated lobby (echo and fan): 「住民票をとりたいです」 heard as
    「以上取りたいです」, both transcripts covering 「戸籍謄本をとりたい」 by its verb alone
    (confidence 0.45), was read out as the family-register entry. Where the hearing is
    doubted (here: a noisy room) an entry needs [answer] sure_score_doubted to be read out
    at once; for a typed question sure_score still rules."""
    composer = AnswerComposer(Settings().answer, index.categories())
    heard = ("以上取りたいです", "以上を取りたいです")
    noisy = ask_heard(index, composer, heard, confidence=0.83, noise_dbfs=-42.0)
    assert noisy.kind is not AnswerKind.CONFIDENT
    assert "koseki" in _offered(noisy)
    assert ask_heard(index, composer, heard[:1]).kind is AnswerKind.CONFIDENT
    lax = AnswerComposer(dataclasses.replace(Settings().answer, sure_score_doubted=0.0),
                         index.categories())
    assert ask_heard(index, lax, heard, confidence=0.83,
                     noise_dbfs=-42.0).kind is AnswerKind.CONFIDENT


def test_a_question_heard_clearly_keeps_the_first_transcripts_choices(index):
    """Pooling is for doubted hearing only: a confident recogniser in a quiet room (and a
    typed question) gets the first transcript's own decision, and pooling never reads an
    answer out."""
    composer = AnswerComposer(Settings().answer, index.categories())
    heard = ("いっかこのクショーがくしました", "いっかこのクショーなくしました",
             "いっかこのクションをなくしました。")
    first = composer.compose(heard[0], index.search(heard[0]))
    clear = ask_heard(index, composer, heard[:1], confidence=0.95, noise_dbfs=-60.0)
    assert (clear.kind, _offered(clear)) == (first.kind, _offered(first))
    typed = ask_heard(index, composer, heard[:1])
    assert (typed.kind, _offered(typed)) == (first.kind, _offered(first))
    doubted = ask_heard(index, composer, ("住民票の写しがほしいです", "粗大ごみの出し方"),
                        confidence=0.6, noise_dbfs=-30.0)
    assert doubted.kind is AnswerKind.UNSURE
    assert {"juminhyo", "garbage-oversized"} <= set(_offered(doubted))


def test_in_noise_transcripts_that_all_lead_to_one_entry_are_answered_outright(index):
    """Different words, same entry: in a noisy room two or more transcripts agreeing on the
    entry lower the bar to [answer] min_heard_confidence_agreeing; one transcript alone, or
    a recogniser below min_heard_confidence, is still asked back."""
    composer = AnswerComposer(Settings().answer, index.categories())
    agreeing = ("住民票の写しがほしいです", "住民表の写しが欲しいです")
    assert ask_heard(index, composer, agreeing, confidence=0.6,
                     noise_dbfs=-30.0).kind is AnswerKind.CONFIDENT
    assert ask_heard(index, composer, agreeing[:1], confidence=0.6,
                     noise_dbfs=-30.0).kind is AnswerKind.UNSURE
    assert ask_heard(index, composer, agreeing, confidence=0.4,
                     noise_dbfs=-30.0).kind is AnswerKind.UNSURE
    strict = AnswerComposer(dataclasses.replace(Settings().answer,
                                                min_heard_confidence_agreeing=0.8),
                            index.categories())
    assert ask_heard(index, strict, agreeing, confidence=0.6,
                     noise_dbfs=-30.0).kind is AnswerKind.UNSURE
