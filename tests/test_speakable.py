"""Readings: the kana the kiosk voice will actually pronounce for tricky kiosk sentences.

Each case goes through the speakable-text stage and then Open JTalk's own frontend
(pyopenjtalk.g2p(kana=True)), so a case fails if either our rewriting or the voice's reading
is wrong. The expected kana were checked by ear-knowledge of Atsugi names and Japanese
conventions (三田 = さんだ; town names as Japan Post reads them, 中町 = なかちょう,
温水 = ぬるみず; phone numbers digit by digit).
"""

from __future__ import annotations

from pathlib import Path

import pyopenjtalk
import pytest

from kiosk.answer.contract import Answer, AnswerKind
from kiosk.config import VoiceSettings
from kiosk.content.contract import Entry
from kiosk.search.contract import Hit
from kiosk.voice.speakable import (
    BUNDLED_PLACE_READINGS,
    BUNDLED_READINGS,
    ReadingDictionary,
    ReadingsError,
    Speakable,
    split_sentences,
)


@pytest.fixture(scope="module")
def speakable() -> Speakable:
    return Speakable(VoiceSettings())


def reading(speakable: Speakable, text: str) -> str:
    return pyopenjtalk.g2p(speakable.normalise(text).replace("\n", ""), kana=True)


CASES = [
    ("受付時間は8:30〜17:15です。",
     "ウケツケジカンワハチジサンジュップンカラジューシチジジューゴフンデス。"),
    ("窓口は午前9:00から午後5:00まで開いています。",
     "マドグチワゴゼンクジカラゴゴゴジマデアイテイマス。"),
    ("開館時間は10:00〜18:30です。",
     "カイカンジカンワジュージカラジューハチジサンジュップンデス。"),
    ("最終受付は16時45分です。",
     "サイシューウケツケワジューロクジヨンジューゴフンデス。"),
    ("令和7年4月1日（火）から受付を始めます。",
     "レーワナナネンシガツツイタチ、カヨービカラウケツケヲハジメマス。"),
    ("R7.10.1から新しい制度が始まります。",
     "レーワナナネンジューガツツイタチカラアタラシイセードガハジマリマス。"),
    ("申請は2025/4/1から受け付けます。",
     "シンセーワニセンニジューゴネンシガツツイタチカラウケツケマス。"),
    ("平成31年4月30日までに届け出てください。",
     "ヘーセーサンジューイチネンシガツサンジューニチマデニトドケデテクダサイ。"),
    ("令和元年に開館しました。",
     "レーワガンネンニカイカンシマシタ。"),
    ("締め切りは3/31です。",
     "シメキリワサンガツサンジューイチニチデス。"),
    ("お問い合わせは046-223-1511までお電話ください。",
     "オトイアワセワゼロヨンロク，ニーニーサン，イチゴーイチイチマデオデンワクダサイ。"),
    ("電話番号は(046)225-2350です。",
     "デンワバンゴーワゼロヨンロク，ニーニーゴー，ニーサンゴーゼロデス。"),
    ("フリーダイヤル0120-123-456をご利用ください。",
     "フリーダイヤルゼロイチニーゼロ，イチニーサン，ヨンゴーロクヲゴリヨークダサイ。"),
    ("内線123におつなぎします。",
     "ナイセン、イチニーサンニオツナギシマス。"),
    ("夜間の急な病気は#7119に相談できます。",
     "ヤカンノキューナビョーキワシャープ、ナナイチイチキューニソーダンデキマス。"),
    ("火事や救急のときは119番に電話してください。",
     "カジヤキューキューノトキワイチイチキュウバンニデンワシテクダサイ。"),
    ("手数料は1通300円です。",
     "テスーリョーワイッツーサンビャクエンデス。"),
    ("使用料は1,500円です。",
     "シヨーリョーワセンゴヒャクエンデス。"),
    ("駐車料金は¥2,000です。",
     "チューシャリョーキンワニセンエンデス。"),
    ("〒243-8511 厚木市中町3-17-17",
     "ユービンバンゴー、ニーヨンサン，ハチゴーイチイチ、アツギシナカチョウサンノジューナナノジューナナ"),
    ("月〜金曜日の9:00-17:00に対応しています。",
     "ゲツヨービカラキンヨービノクジカラジューシチジニタイオーシテイマス。"),
    ("土・日・祝日は休みです。",
     "ドヨービ、ニチヨービ、シュクジツワヤスミデス。"),
    ("館内では無料Wi-Fiが使えます。",
     "カンナイデワムリョーワイファイガツカエマス。"),
    ("QRコードを読み取ってください。",
     "キューアールコードヲヨミトッテクダサイ。"),
    ("AEDは1階の受付にあります。",
     "エーイーディーワイッカイノウケツケニアリマス。"),
    ("会議室は2Fにあります。",
     "カイギシツワニカイニアリマス。"),
    ("本厚木駅から歩いて5分です。",
     "ホンアツギエキカラアルイテゴフンデス。"),
    ("愛甲石田駅からバスに乗ってください。",
     "アイコウイシダエキカラバスニノッテクダサイ。"),
    ("荻野運動公園の体育館です。",
     "オギノウンドーコーエンノタイイクカンデス。"),
    ("相川公民館と依知南公民館で受け付けます。",
     "アイカワコーミンカントエチミナミコーミンカンデウケツケマス。"),
    ("睦合北公民館と玉川公民館は避難所です。",
     "ムツアイキタコーミンカントタマガワコーミンカンワヒナンジョデス。"),
    ("小鮎地区と南毛利地区が対象です。",
     "コアユチクトミナミモウリチクガタイショーデス。"),
    ("緑ヶ丘の公園に集まってください。",
     "ミドリガオカノコーエンニアツマッテクダサイ。"),
    ("三田と温水の避難場所をご確認ください。",
     "サンダトヌルミズノヒナンバショヲゴカクニンクダサイ。"),
    ("温水プールは休館日です。",
     "オンスイプールワキューカンビデス。"),
    ("飯山温泉は七沢の近くです。",
     "イイヤマオンセンワナナサワノチカクデス。"),
    ("何曜日が休みですか。",
     "ナンヨービガヤスミデスカ。"),
    ("詳しくは https://www.city.atsugi.kanagawa.jp/ をご覧ください。",
     "クワシクワ、ホームページヲゴランクダサイ。"),
    ("※予約が必要です。",
     "ヨヤクガヒツヨーデス。"),
    ("広さは30m2です。",
     "ヒロサワサンジューヘーホーメートルデス。"),
    ("何時から開いていますか。",
     "ナンジカラアイテイマスカ。"),
    ("第2・第4水曜日は休みです。",
     "ダイニ、ダイヨンスイヨービワヤスミデス。"),
    ("厚木清南高校と睦合東中学校は避難所です。",
     "アツギセイナンコーコートムツアイヒガシチュウガッコウワヒナンジョデス。"),
    ("中戸田児童館と愛甲原児童館に集まってください。",
     "ナカトダジドーカントアイコウハラジドーカンニアツマッテクダサイ。"),
]


@pytest.mark.parametrize(("text", "kana"), CASES, ids=[c[0][:14] for c in CASES])
def test_reading(speakable: Speakable, text: str, kana: str):
    assert reading(speakable, text) == kana


def test_there_are_at_least_30_reading_cases():
    assert len(CASES) >= 30


def test_phone_number_is_read_digit_by_digit_with_pauses(speakable: Speakable):
    assert speakable.normalise("046-223-1511") == "ゼロヨンロク，ニーニーサン，イチゴーイチイチ"
    # Open JTalk makes a pause at the full-width comma, like at 、
    phones = [lab.split("-")[1].split("+")[0]
              for lab in pyopenjtalk.extract_fullcontext(speakable.normalise("046-223-1511"))]
    assert phones.count("pau") == 2


def test_long_sentences_are_split_at_a_comma_but_never_inside_a_number(speakable: Speakable):
    text = ("市役所の本庁舎は、本厚木駅から歩いて十分ほどの場所にあり、受付の電話番号は"
            "046-223-1511で、平日の8:30から17:15まで、職員がご案内しています。")
    lines = speakable.normalise(text).splitlines()
    assert len(lines) > 1
    assert all(len(line) <= VoiceSettings().sentence_max_chars for line in lines)
    assert any("ゼロヨンロク，ニーニーサン，イチゴーイチイチ" in line for line in lines)


def test_split_sentences_keeps_marks():
    assert split_sentences("はい。そうです！本当？\n次の行") == ["はい。", "そうです！", "本当？", "次の行"]


def test_entry_spoken_field_is_used_and_source_is_said(speakable: Speakable):
    entry = Entry(id="e1", title="市役所の受付時間", body="長い本文。|表|表|",
                  spoken="受付は8:30からです。", source="出典：国土地理院")
    assert speakable.for_entry(entry) == "受付は8時30分からです。\n出典は、国土地理院です。"


def test_summary_has_first_sentences_without_urls_or_tables(speakable: Speakable):
    body = ("# ごみの出し方\n"
            "燃えるごみは週2回です。詳しくは https://www.city.atsugi.kanagawa.jp/ をご覧ください。\n"
            "| 地区 | 曜日 |\n|---|---|\n| 荻野 | 月・木 |\n"
            "- 粗大ごみは予約制です。\n4つ目の文です。5つ目の文です。")
    said = speakable.for_entry(Entry(id="g", title="ごみ", body=body))
    assert "http" not in said and "|" not in said and "地区" not in said
    assert said.splitlines()[0] == "ごみの出し方。"
    assert "ホームページ" in said
    assert len(said.splitlines()) <= VoiceSettings().summary_max_sentences


def test_answers_that_are_not_confident_are_phrased_for_listening(speakable: Speakable):
    a = Entry(id="a", title="住民票の写しがほしい", body="本文。")
    b = Entry(id="b", title="印鑑登録をしたい", body="本文。")
    unsure = Answer(AnswerKind.UNSURE, "証明書", (Hit(a, 2.0, 0.5), Hit(b, 1.9, 0.48)),
                    choices_count=2)
    said = speakable.for_answer(unsure)
    assert said.startswith("住民票の写しについてですか？") and "それとも" in said
    none = Answer(AnswerKind.NONE, "宇宙", suggestions=("ごみ", "防災"))
    assert "見つかりませんでした" in speakable.for_answer(none)
    assert "ごみ、防災" in speakable.for_answer(none)


def test_staff_reading_file_overrides_the_bundled_one(tmp_path: Path):
    staff = tmp_path / "readings.tsv"
    staff.write_text("# staff additions\n妻田\tツマタ\nあつぎ大橋\tアツギオオハシ\n", encoding="utf-8")
    readings = ReadingDictionary.load(BUNDLED_READINGS, staff, places=BUNDLED_PLACE_READINGS)
    s = Speakable(VoiceSettings(), readings)
    assert s.normalise("妻田の公園") == "ツマタの公園"  # the staff file beats Japan Post's table
    assert s.normalise("本厚木") == "ホンアツギ"  # bundled entries stay


def test_longest_written_form_wins_and_latin_ignores_case(speakable: Speakable):
    assert speakable.normalise("温水の温水プール") == "ヌルミズのオンスイプール"
    assert speakable.normalise("wifiとWIFI") == "ワイファイとワイファイ"
    assert speakable.normalise("ONLINE") != "ONライン"


def test_bad_reading_line_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "r.tsv"
    bad.write_text("厚木\tアツギ\n荻野 オギノ\n", encoding="utf-8")
    with pytest.raises(ReadingsError, match=r"r.tsv:2: expected 'written form<TAB>reading'"):
        ReadingDictionary.load(bad)


def test_missing_staff_reading_file_says_what_to_do(tmp_path: Path):
    from kiosk.config import Settings

    settings = Settings(base_dir=tmp_path, voice=VoiceSettings(readings_file="mine.tsv"))
    with pytest.raises(ReadingsError, match="readings_file"):
        ReadingDictionary.for_settings(settings)


def test_shift_jis_reading_file_is_refused_plainly(tmp_path: Path):
    sjis = tmp_path / "r.tsv"
    sjis.write_bytes("厚木\tアツギ\n".encode("shift_jis"))
    with pytest.raises(ReadingsError, match="UTF-8"):
        ReadingDictionary.load(sjis)


def test_normalising_twice_changes_nothing(speakable: Speakable):
    """The kiosk loop may normalise text that is already speakable."""
    for text, _ in CASES:
        once = speakable.normalise(text)
        assert speakable.normalise(once) == once, text


def test_whole_settings_bring_the_staff_file_from_the_config_folder(tmp_path: Path):
    from kiosk.config import Settings

    (tmp_path / "mine.tsv").write_text("妻田\tツマタ\n", encoding="utf-8")
    settings = Settings(base_dir=tmp_path, voice=VoiceSettings(readings_file="mine.tsv"))
    assert Speakable(settings).normalise("妻田") == "ツマタ"


@pytest.mark.parametrize("text, kana", [
    ("中町", "ナカチョー"),
    ("寿町", "コトブキチョウ"),
    ("旭町と栄町と東町", "アサヒチョートサカエチョートヒガシチョウ"),
    ("元町、幸町、田村町", "モトチョウ、サイワイチョウ、タムラチョウ"),
    ("松枝の公園", "マツエノコーエン"),
    ("189（いちはやく）に電話してください。", "イチハチキュー、イチハヤク、ニデンワシテクダサイ。"),
    ("110番と119番", "ヒャクトウバントイチイチキュウバン"),
    ("救急は119、警察は110です。", "キューキューワイチイチキュー、ケーサツワイチイチゼロデス。"),
    ("#7119に相談できます。", "シャープ、ナナイチイチキューニソーダンデキマス。"),
    ("189円と110人", "ヒャクハチジューキューエントヒャクジューニン"),
    ("森林と林中学校", "シンリントハヤシチューガッコー"),
])
def test_town_names_and_service_numbers(speakable: Speakable, text: str, kana: str):
    assert reading(speakable, text) == kana
