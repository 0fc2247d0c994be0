"""City content that is true: every bundled entry is sourced, dated and safe (issue 11), the
format carries source_url / checked / status / office through every path, and freshness is
visible to visitors (voice, screen) and to staff (desk, `kiosk content review`).

Real components throughout: the bundled files through the real loader, the real CLI in a
subprocess with its own state folder, the real staff desk on loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_staff_desk import Desk, session_cookie

from kiosk.config import ContentSettings, Settings
from kiosk.content.contract import Entry, as_of, review_list, stale
from kiosk.content.entries import (
    BUNDLED_OFFICES,
    PHONE_FORMAT,
    csv_bytes,
    read_offices,
    validate_content,
)
from kiosk.content.publishing import ContentPublisher, default_sources
from kiosk.dialogue.conversation import Conversation
from kiosk.voice.speakable import Speakable

ROOT = Path(__file__).resolve().parent.parent
CITY = ROOT / "kiosk" / "data" / "city_services.jsonl"
#: The city's own sites: its web site, its disaster portal, and its 広報あつぎ as published
#: on mykoho (マイ広報紙); and the sites the city runs: its hospital (厚木市立病院) and
#: マイタウンクラブ (the city's portal for the library and facility booking).
CITY_HOSTS = ("www.city.atsugi.kanagawa.jp", "city.atsugi.kanagawa.jp",
              "bousai.city.atsugi.kanagawa.jp", "mykoho.jp", "atsugi.mykoho.jp",
              "www.atsugicity-hp.jp", "www.mytownclub.com")
YEN = re.compile(r"\d[\d,]*\s*円")
CLOCK = re.compile(r"\d+\s*時|\d{1,2}:\d{2}|午前|午後")


def city_entries() -> list[Entry]:
    entries, problems = validate_content(CITY)
    assert not problems, "\n".join(map(str, problems))
    return entries


def raw_city_rows() -> list[dict]:
    return [json.loads(line) for line in CITY.read_text(encoding="utf-8").splitlines()
            if line.strip()]


# ------------------------------------------------------------------ the bundled content


def test_every_bundled_city_entry_is_sourced_dated_and_safe():
    today = date.today().isoformat()
    entries = city_entries()
    assert len(entries) >= 100
    for e in entries:
        assert e.status in ("verified", "unverified"), e.id
        assert e.checked and e.checked <= today, e.id
        date.fromisoformat(e.checked)
        if e.status == "verified":
            host = urlparse(e.source_url).hostname or ""
            assert host in CITY_HOSTS, f"{e.id}: {e.source_url}"
            if host.endswith("mykoho.jp"):  # the city's 広報 only, not another town's
                assert "142123" in e.source_url or "%E5%8E%9A%E6%9C%A8%E5%B8%82" in \
                    e.source_url.upper() or "厚木市" in e.source_url, e.source_url
        if e.phone:
            assert PHONE_FORMAT.match(e.phone), f"{e.id}: {e.phone}"
        for number in re.findall(r"\d{2,5}-\d{1,4}-\d{3,4}", e.body + e.spoken):
            assert PHONE_FORMAT.match(number), f"{e.id}: {number}"
        if e.status == "unverified":
            text = e.body + e.spoken
            assert not YEN.search(text), f"{e.id}: a fee it cannot source: {YEN.search(text)}"
            assert not CLOCK.search(text), f"{e.id}: a time it cannot source: {CLOCK.search(text)}"
            assert not e.hours, e.id


def test_every_entry_names_an_office_from_the_one_offices_table():
    problems: list = []
    offices = read_offices(BUNDLED_OFFICES, problems)
    assert not problems, problems
    for o in offices.values():
        assert o.phone == "" or PHONE_FORMAT.match(o.phone), o.id
        assert urlparse(o.source_url).hostname in CITY_HOSTS, o.id
        date.fromisoformat(o.checked)
    rows = raw_city_rows()
    for row in rows:
        assert row.get("office") in offices, row["id"]
        # the number and place come from the table, so a move is one edit there
        assert "{office" in row["body"], row["id"]


def test_the_whole_default_content_still_loads_without_a_warning():
    entries, problems = validate_content(default_sources(Settings()))
    assert not problems, "\n".join(map(str, problems))
    assert len(entries) == sum(len(path.read_text(encoding="utf-8").splitlines())
                               for path in default_sources(Settings()))


def test_the_city_pages_correct_the_old_entries():
    e = {x.id: x for x in city_entries()}
    battery = e["garbage-nonburnable"]
    assert "充電式電池" in battery.body and "モバイルバッテリー" in battery.body
    assert "「電池」" in battery.body and "お店の回収箱を使って" not in battery.body
    burnable = e["garbage-burnable"].body
    for place in ("厚木北", "厚木南", "依知南", "金田", "まつかげ台", "小野", "戸別収集", "敷地"):
        assert place in burnable, place
    premium = e["nhi-premium"]
    assert premium.title == "国民健康保険料はいくらですか" and "国民健康保険料" in premium.body
    assert "nhi-tax" not in e
    branches = e["garbage-branches"]
    assert "046-242-4600" in branches.body and "046-225-2790" not in branches.body


# ------------------------------------------------------------ `kiosk ask` on the examples


def kiosk(*args: str, home: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "KIOSK_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("KIOSK_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=home, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ask-home")


@pytest.mark.parametrize("question,must,must_not", [
    ("充電式電池はどうやって捨てますか",
     ("もえないごみ", "「電池」", "充電式電池", "出典：厚木市ホームページ", "1725.html"),
     ("お店の回収箱を使って",)),
    ("もえるごみはどこに出せばいいですか",
     ("厚木北・厚木南・依知南", "金田・まつかげ台・小野", "戸別収集", "32921.html",
      "確認日：2022年9月1日"), ()),
    ("国民健康保険税はいくらですか",
     ("国民健康保険料はいくらですか", "「保険税」ではなく「国民健康保険料」", "22689.html"), ()),
])
def test_kiosk_ask_gives_the_citys_current_rule(home, question, must, must_not):
    run = kiosk("ask", question, home=home)
    assert run.returncode == 0, run.stderr
    for text in must:
        assert text in run.stdout, (text, run.stdout)
    for text in must_not:
        assert text not in run.stdout, (text, run.stdout)


def test_kiosk_content_review_lists_stale_and_unverified_first(home):
    run = kiosk("content", "review", str(CITY), home=home)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stdout.splitlines() if re.match(r"\s+\d{4}-\d{2}-\d{2}", ln)]
    assert lines, run.stdout
    summary = run.stdout.strip().splitlines()[-1]
    n = len(raw_city_rows())
    m = re.match(rf"{n} entries: (\d+) to review \((\d+) checked over 12 months ago, (\d+) "
                 r"unverified, 0 with no checked date\); (\d+) up to date\.", summary)
    assert m, summary
    assert int(m.group(1)) + int(m.group(4)) == n
    assert len(lines) == int(m.group(1))  # only the ones to review, without --all
    first_dates = [ln.split()[0] for ln in lines]
    stale_part = [d for ln, d in zip(lines, first_dates) if "verified " in ln]
    assert first_dates[: len(stale_part)] == sorted(first_dates[: len(stale_part)])
    as_json = json.loads(kiosk("content", "review", "--json", "--all", str(CITY),
                               home=home).stdout)
    assert len(as_json) == n
    flags = [item["needs_review"] for item in as_json]
    assert flags == sorted(flags, reverse=True)  # every entry to review before the others


# ------------------------------------------------------------------- validator messages


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


GOOD = {"id": "a", "title": "t", "body": "本文です。", "source": "厚木市ホームページ"}


def test_a_malformed_checked_date_and_a_bad_status_are_named_with_their_line(tmp_path):
    f = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in (
        {**GOOD, "id": "ok", "checked": "2025/3/4", "status": "確認済み"},
        {**GOOD, "id": "bad-date", "checked": "2025-02-30"},
        {**GOOD, "id": "bad-status", "status": "maybe"},
        {**GOOD, "id": "moment", "checked": "2025-03-04T10:00:00"},
    )) + "\n")
    entries, problems = validate_content(f)
    assert [str(p) for p in problems] == [
        f"{f}:2: 'checked' is not a date: '2025-02-30'; write year-month-day, e.g. 2026-11-27",
        f"{f}:3: 'status' is 'maybe'; write 'verified' (each fact checked against the city's "
        "page) or 'unverified' (no page found)",
        f"{f}:4: 'checked' is not a date: '2025-03-04T10:00:00'; write year-month-day, e.g. "
        "2026-11-27",
    ]
    (ok,) = entries
    assert ok.checked == "2025-03-04" and ok.status == "verified"


def test_csv_rows_are_counted_and_japanese_column_names_work(tmp_path):
    f = write(tmp_path / "c.csv", "id,title,body,出典,出典URL,確認日,状態\n"
              "a,t,本文,市,https://www.city.atsugi.kanagawa.jp/x.html,2025-01-01,verified\n"
              "b,t,本文,市,www.city.atsugi.kanagawa.jp,2025-13-01,unknown\n")
    entries, problems = validate_content(f)
    assert [e.id for e in entries] == ["a"]
    assert [(p.line, p.field) for p in problems] == [(3, "checked"), (3, "status"),
                                                      (3, "source_url")]
    assert "starting with https://" in problems[2].message


def test_a_missing_source_is_a_warning_not_an_error(tmp_path):
    f = write(tmp_path / "c.jsonl", json.dumps({"id": "a", "title": "t", "body": "b"}) + "\n"
              + json.dumps({"id": "u", "title": "t", "body": "b", "status": "unverified"}) + "\n")
    entries, problems = validate_content(f)
    assert len(entries) == 2
    (w,) = problems
    assert w.warning and w.line == 1 and w.field == "source_url" and "is missing" in w.message


def test_office_references_are_checked_and_filled_from_the_table(tmp_path):
    table = write(tmp_path / "offices.tsv",
                  "id\tname\tphone\tbuilding\tfloor\tcounter\n"
                  "cityhall\t市役所\t046-223-1511\t本庁舎\t\t\n"
                  "desk\t窓口課\t\t第二庁舎\t3階\t5番窓口\n"
                  "bad\t悪い課\t2251511\t\t\t\n")
    f = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in (
        {**GOOD, "id": "ok", "office": "desk", "body": "くわしくは{office}へ。",
         "spoken": "{office_name}は{office_place}です。"},
        {**GOOD, "id": "unknown", "office": "nowhere", "body": "{office}へ。"},
        {**GOOD, "id": "no-office", "body": "{office}へ。"},
        {**GOOD, "id": "typo", "office": "desk", "body": "{offices}へ。"},
    )) + "\n")
    entries, problems = validate_content(f, ContentSettings(offices_file=str(table)))
    (ok,) = entries
    assert ok.body == "くわしくは窓口課（第二庁舎3階 5番窓口、市役所の代表電話 046-223-1511）へ。"
    assert ok.spoken == "窓口課は第二庁舎3階 5番窓口です。" and ok.phone == "046-223-1511"
    messages = {(p.line, p.field): p.message for p in problems}
    assert "'nowhere' is not in the offices table" in messages[(2, "office")]
    assert "uses {office}" in messages[(3, "office")]
    assert "{offices}, which is not known" in messages[(4, "body")]
    assert f"{table}" in str(next(p for p in problems if p.file == str(table)))
    assert "not a phone number" in messages[(4, "phone")]


# ----------------------------------------------------------- formats and round trips


def test_new_fields_travel_in_a_signed_bundle_to_another_kiosk(tmp_path):
    from kiosk.config import load_settings
    from kiosk.content.bundles import make_bundle, new_key_pair, pull_bundle

    private, public = new_key_pair(tmp_path / "keys")

    def settings_in(folder: Path, *lines: str):
        folder.mkdir(parents=True)
        (folder / "kiosk.toml").write_text("\n".join(
            ["[paths]", 'index_dir = "index"', 'state_dir = "var"', "[bundle]", *lines]) + "\n",
            encoding="utf-8")
        return load_settings(folder / "kiosk.toml")

    office = settings_in(tmp_path / "office")
    entries = city_entries()[:12]
    ContentPublisher(office).publish_entries(entries, who="office")
    make_bundle(office, private, tmp_path / "content.kiosk", version=5)
    kiosk_settings = settings_in(tmp_path / "kiosk", f'public_key_file = "{public}"')
    pull_bundle(kiosk_settings, str(tmp_path / "content.kiosk"))
    assert ContentPublisher(kiosk_settings).live_entries() == entries


def test_filled_in_text_with_an_office_this_kiosk_does_not_know_still_loads(tmp_path):
    f = write(tmp_path / "c.jsonl", json.dumps(
        {**GOOD, "office": "elsewhere", "body": "くわしくは別の課（電話 046-000-0000）へ。"},
        ensure_ascii=False) + "\n")
    entries, problems = validate_content(f)
    assert len(entries) == 1 and [p.warning for p in problems] == [True]


def test_new_fields_survive_the_csv_export_round_trip(tmp_path):
    entries = city_entries()
    f = tmp_path / "export.csv"
    f.write_bytes(csv_bytes(entries))
    again, problems = validate_content(f)
    assert not problems, problems[:3]
    assert again == entries
    assert {e.status for e in again} == {"verified", "unverified"}


def test_markdown_front_matter_carries_the_fields(tmp_path):
    f = write(tmp_path / "pool.md", "---\ntitle: プール\nsource: 厚木市\n"
              "source_url: https://www.city.atsugi.kanagawa.jp/pool.html\nchecked: 2024-05-01\n"
              "status: verified\n---\nプールは夏に開きます。\n")
    (e,), problems = validate_content(f)
    assert not problems and (e.checked, e.status) == ("2024-05-01", "verified")


# ------------------------------------------------------------- freshness for visitors


def test_a_stale_answer_ends_with_the_month_it_is_as_of():
    old = Entry(id="o", title="t", body="b", spoken="古い答えです。", source="厚木市ホームページ",
                checked="2024-10-01", status="verified")
    fresh = Entry(id="f", title="t", body="b", spoken="新しい答えです。", checked="2026-06-01",
                  status="verified")
    speak = Speakable(Settings(), today=lambda: date(2026, 12, 1))
    assert speak.for_entry(old).endswith("この情報は2024年10月時点のものです。")
    assert "時点" not in speak.for_entry(fresh)
    assert "時点" in Speakable(Settings(), review_months=3,
                             today=lambda: date(2026, 12, 1)).for_entry(fresh)
    unverified = Entry(id="u", title="t", body="b", spoken="担当の課に聞いてください。",
                       source="市のページで未確認", checked="2026-12-01", status="unverified")
    assert "出典" not in speak.for_entry(unverified)
    assert stale(old, 12, date(2026, 12, 1)) and not stale(old, 36, date(2026, 12, 1))
    assert as_of(old) == "2024年10月"


def test_the_screen_line_gives_source_date_and_as_of():
    conv = Conversation(Settings())
    e = Entry(id="x", title="t", body="b", source="厚木市ホームページ",
              source_url="https://www.city.atsugi.kanagawa.jp/x.html", checked="2022-09-01",
              status="verified")
    line = conv.provenance(e, today=date(2026, 12, 1))
    assert line == ("出典：厚木市ホームページ https://www.city.atsugi.kanagawa.jp/x.html　"
                    "確認日：2022年9月1日　この情報は2022年9月時点のものです。")
    u = Entry(id="u", title="t", body="b", source="市のページで未確認", checked="2026-12-01",
              status="unverified")
    assert conv.provenance(u, today=date(2026, 12, 1)) == \
        "出典：市のページで未確認　確認日：2026年12月1日"


def test_review_list_puts_stale_and_unverified_first_then_undated():
    today = date(2026, 12, 1)
    items = review_list([
        Entry(id="fresh", title="t", body="b", checked="2026-11-01", status="verified"),
        Entry(id="undated", title="t", body="b"),
        Entry(id="old", title="t", body="b", checked="2020-01-01", status="verified"),
        Entry(id="unverified", title="t", body="b", checked="2026-11-30", status="unverified"),
    ], 12, today)
    assert [i.entry.id for i in items] == ["old", "unverified", "undated", "fresh"]
    assert [i.needs_review for i in items] == [True, True, True, False]


# ------------------------------------------------------------------ the staff desk


def test_the_staff_desk_review_page_lists_entries_by_checked_date(tmp_path, monkeypatch):
    from kiosk import i18n

    monkeypatch.delenv(i18n.LANGUAGE_ENV)  # the desk in its default language, Japanese
    desk = Desk(tmp_path / "desk")
    try:
        ContentPublisher(desk.settings).publish_entries([
            Entry(id="new", title="新しい項目", body="b", checked=date.today().isoformat(),
                  status="verified", source_url="https://www.city.atsugi.kanagawa.jp/n.html"),
            Entry(id="old", title="古い項目", body="b", checked="2019-04-01", status="verified",
                  source_url="https://www.city.atsugi.kanagawa.jp/o.html"),
            Entry(id="guess", title="未確認の項目", body="b", checked=date.today().isoformat(),
                  status="unverified"),
        ], who="test")
        _, headers, _ = desk.sign_in()
        status, _, page = desk.request("GET", "/review",
                                       headers={"Cookie": session_cookie(headers)})
        assert status == 200
        rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th><td>(.*?)</td><td>(.*?)</td>"
                          r"<td>(.*?)</td>", page)
        assert [r[3] for r in rows] == ["old", "guess", "new"]
        assert rows[0][:3] == ("2019年4月1日", "確認済み", "古い")
        assert rows[1][1:3] == ("未確認", "未確認")
        assert '<a href="https://www.city.atsugi.kanagawa.jp/o.html">' in page
        assert "見直しが必要なのは 2 件" in page and 'href="/review" aria-current="page"' in page
    finally:
        desk.close()
        monkeypatch.setenv(i18n.LANGUAGE_ENV, "en")
        i18n.set_language()
