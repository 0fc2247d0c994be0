"""Content stage: what the kiosk knows. City staff write entries as JSON Lines, CSV or
Markdown; this module turns them into validated `Entry` records or a list of problems, each
naming file, line/row and field, so a bad file never reaches the index.

CONTRACT (the importer, the staff desk and bundles rely on these names):
    Entry, ContentProblem, ContentError
    validate_content(paths, settings=None) -> (list[Entry], list[ContentProblem])
                          — every problem in every file (errors and warnings); never raises
                            for bad content
    load_content(paths, settings=None) -> list[Entry]
                          — raises ContentError listing EVERY error; warnings do not block
    csv_bytes(entries) -> bytes / write_csv(entries, path)
                          — the staff CSV export; it loads back unchanged (round trip)
    write_atomically(path, data, mode=0o644) — temp file + fsync + rename

The formats are described for staff in docs/content.md. Nothing here prints: callers (the
CLI, the staff desk) decide how to show problems.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from kiosk import KioskError
from kiosk.atomic import write_atomically
from kiosk.config import ContentSettings, Settings
from kiosk.content.contract import Entry


@dataclass(frozen=True)
class ContentProblem:
    """One thing wrong in a content file, located precisely enough for staff to fix it."""

    file: str
    line: int | None  # line (JSONL, Markdown) or row (CSV, header = row 1); None = whole file
    field: str | None
    message: str
    warning: bool = False  # warnings are reported but do not block an import

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"'{self.field}' " if self.field else ""
        kind = "warning: " if self.warning else ""
        return f"{where}: {kind}{what}{self.message}"


class ContentError(KioskError):
    """Content that cannot be imported; carries every problem found, not just the first."""

    def __init__(self, problems: list[ContentProblem]):
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        lines = "\n".join(f"  {p}" for p in errors[:50])
        more = f"\n  … and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(
            f"{len(errors)} problem(s) in the content; nothing was changed:\n{lines}{more}"
        )


# ---------------------------------------------------------------------------- field rules

FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Entry))
REQUIRED = ("id", "title", "body")
#: Fields that hold one line of text (a line break in them is a mistake, e.g. a cut cell).
ONE_LINE = ("id", "title", "category", "source", "updated", "address", "phone", "hours")
#: Japanese column / key names staff may use instead of the English ones.
ALIASES = {
    "ｉｄ": "id", "番号": "id", "識別子": "id",
    "タイトル": "title", "題名": "title", "質問": "title", "見出し": "title", "名称": "title",
    "本文": "body", "回答": "body", "答え": "body", "説明": "body",
    "読み上げ": "spoken", "読み上げ文": "spoken", "音声": "spoken",
    "分類": "category", "カテゴリ": "category", "カテゴリー": "category",
    "キーワード": "keywords", "keyword": "keywords", "同義語": "keywords",
    "出典": "source", "更新日": "updated", "住所": "address", "所在地": "address",
    "電話": "phone", "電話番号": "phone", "時間": "hours", "受付時間": "hours",
    "開館時間": "hours", "緯度": "lat", "経度": "lon", "latitude": "lat", "longitude": "lon",
}
#: A keywords cell is split at '|' when it has one, otherwise at '、' or a comma.
KEYWORD_SEPARATOR = "|"
_SOFT_SEPARATORS = re.compile(r"[、,，]")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")
#: Control characters other than tab and line break, lone surrogates, and U+FFFD.
_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_SLASH_DATE = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$")
#: Roughly Japan, to catch swapped or mistyped coordinates (only a warning).
_JAPAN_LAT, _JAPAN_LON = (20.0, 46.0), (122.0, 154.0)
CONTENT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".md": "markdown",
                    ".markdown": "markdown"}
_HELP_FORMATS = "use .jsonl (JSON Lines), .csv, .md (Markdown) or a folder of them"


def field_name(raw: str) -> str | None:
    """The Entry field a column/key name means (English or Japanese), or None."""
    key = unicodedata.normalize("NFKC", raw).strip().lower()
    if key in FIELDS:
        return key
    return ALIASES.get(key) or ALIASES.get(raw.strip())


def split_keywords(cell: str) -> list[str]:
    """Keywords written in one cell: 'a|b|c', or 'a、b、c' / 'a,b' when there is no '|'."""
    parts = cell.split(KEYWORD_SEPARATOR) if KEYWORD_SEPARATOR in cell else \
        _SOFT_SEPARATORS.split(cell)
    return [p.strip() for p in parts if p.strip()]


def join_keywords(keywords: Iterable[str]) -> str:
    """The inverse of split_keywords: always splits back into exactly these keywords."""
    words = list(keywords)
    text = KEYWORD_SEPARATOR.join(words)
    if len(words) == 1 and _SOFT_SEPARATORS.search(words[0]):
        text += KEYWORD_SEPARATOR  # so a lone 'a、b' is not split at '、'
    return text


def _limits(settings: ContentSettings | Settings | None) -> ContentSettings:
    if settings is None:
        return ContentSettings()
    return settings.content if isinstance(settings, Settings) else settings


# ------------------------------------------------------------------------------ records


@dataclass
class _Record:
    """One entry as written, before checking: raw values plus where each one came from."""

    file: str
    line: int | None
    values: dict[str, Any]
    field_lines: dict[str, int] = dataclasses.field(default_factory=dict)

    def where(self, name: str | None) -> int | None:
        return self.field_lines.get(name, self.line) if name else self.line


class _Checker:
    """Collects problems while turning records into entries."""

    def __init__(self, limits: ContentSettings):
        self.limits = limits
        self.problems: list[ContentProblem] = []
        self.errors = 0
        self.seen_ids: dict[str, str] = {}

    def error(self, file: str, line: int | None, name: str | None, message: str) -> None:
        self.problems.append(ContentProblem(file, line, name, message))
        self.errors += 1

    def warn(self, file: str, line: int | None, name: str | None, message: str) -> None:
        self.problems.append(ContentProblem(file, line, name, message, warning=True))

    # -- one record

    def entry(self, rec: _Record) -> Entry | None:
        before, first_problem = self.errors, len(self.problems)
        values: dict[str, Any] = {}
        for name in FIELDS:
            raw = rec.values.get(name)
            if name == "keywords":
                values[name] = self._keywords(rec, raw)
            elif name in ("lat", "lon"):
                values[name] = self._coordinate(rec, name, raw)
            else:
                values[name] = self._text(rec, name, raw)
        for name in REQUIRED:
            if values[name] == "" and not any(
                    p.field == name and not p.warning for p in self.problems[first_problem:]):
                self.error(rec.file, rec.where(name), name,
                           "is empty" if name in rec.values else "is missing")
        if values["updated"]:
            values["updated"] = self._date(rec, values["updated"])
        self._check_place(rec, values)
        if values["spoken"]:
            self._check_sentences(rec, values["spoken"])
        if self.errors > before:
            return None
        entry = Entry(**values)
        first = self.seen_ids.get(entry.id)
        here = _place(rec.file, rec.where("id"))
        if first is not None:
            self.error(rec.file, rec.where("id"), "id",
                       f"'{entry.id}' is used twice: at {first} and here at {here}; every "
                       "entry needs its own id (change one of them)")
            return None
        self.seen_ids[entry.id] = here
        return entry

    # -- field kinds

    def _text(self, rec: _Record, name: str, raw: Any) -> str:
        if raw is None:
            return ""
        if not isinstance(raw, str):
            hint = f' (write it in quotes: "{raw}")' if isinstance(raw, (int, float)) else ""
            self.error(rec.file, rec.where(name), name,
                       f"must be text, not {_kind(raw)}{hint}")
            return ""
        text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
        if not self._clean(rec, name, text):
            return ""
        if name in ONE_LINE and "\n" in text:
            self.error(rec.file, rec.where(name), name,
                       "must be one line, but it has a line break; join the lines")
            return ""
        limit = {"id": self.limits.max_id_chars, "title": self.limits.max_title_chars,
                 "body": self.limits.max_body_chars,
                 "spoken": self.limits.max_spoken_chars}.get(name, self.limits.max_field_chars)
        if len(text) > limit:
            self.error(rec.file, rec.where(name), name,
                       f"is {len(text)} characters long; at most {limit} are allowed. Shorten "
                       "it (or split the entry in two)")
            return ""
        if name == "id" and re.search(r"\s", text):
            self.error(rec.file, rec.where(name), name,
                       f"'{text}' contains a space; use letters, digits and '-' only, "
                       "e.g. library-hours")
            return ""
        return text

    def _clean(self, rec: _Record, name: str, text: str) -> bool:
        """False (with an error) when the text holds binary junk or damaged characters."""
        bad = _JUNK.search(text)
        if bad is None:
            return True
        ch = bad.group()
        if ch == "\ufffd":
            what = ("the character '\ufffd', which marks text damaged by a wrong encoding; "
                    "retype the damaged part")
        elif unicodedata.category(ch) == "Cs":
            what = f"a broken character (U+{ord(ch):04X}); retype it"
        else:
            what = (f"a control character (U+{ord(ch):04X}), which is not text (often copied "
                    "in from another program); delete it")
        self.error(rec.file, rec.where(name), name, f"contains {what} (character {bad.start() + 1})")
        return False

    def _keywords(self, rec: _Record, raw: Any) -> tuple[str, ...]:
        if raw is None or raw == "":
            return ()
        if isinstance(raw, str):
            items: list[Any] = split_keywords(raw)
        elif isinstance(raw, list):
            items = raw
        else:
            self.error(rec.file, rec.where("keywords"), "keywords",
                       f"must be a list of words or text like 'a|b|c', not {_kind(raw)}")
            return ()
        words: list[str] = []
        for item in items:
            if not isinstance(item, str):
                self.error(rec.file, rec.where("keywords"), "keywords",
                           f"must hold only words (text), but one is {_kind(item)}: {item!r}")
                return ()
            word = item.strip()
            if not word:
                continue
            if not self._clean(rec, "keywords", word):
                return ()
            if "\n" in word or KEYWORD_SEPARATOR in word:
                self.error(rec.file, rec.where("keywords"), "keywords",
                           f"the keyword {word[:30]!r} contains a line break or '|'; "
                           "write each keyword separately")
                return ()
            if len(word) > self.limits.max_field_chars:
                self.error(rec.file, rec.where("keywords"), "keywords",
                           f"one keyword is {len(word)} characters long; at most "
                           f"{self.limits.max_field_chars} are allowed")
                return ()
            words.append(word)
        if len(words) > self.limits.max_keywords:
            self.error(rec.file, rec.where("keywords"), "keywords",
                       f"has {len(words)} keywords; at most {self.limits.max_keywords} are "
                       "allowed. Keep the words people really say")
            return ()
        return tuple(words)

    def _coordinate(self, rec: _Record, name: str, raw: Any) -> float | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            text = unicodedata.normalize("NFKC", raw).strip()
            if not text:
                return None
            try:
                value = float(text)
            except ValueError:
                self.error(rec.file, rec.where(name), name,
                           f"is not a number: {raw.strip()[:30]!r}; write decimal degrees, "
                           "e.g. 35.4433")
                return None
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
        else:
            self.error(rec.file, rec.where(name), name,
                       f"must be a number (decimal degrees), not {_kind(raw)}")
            return None
        bound = 90.0 if name == "lat" else 180.0
        if not math.isfinite(value) or abs(value) > bound:
            what = "latitude" if name == "lat" else "longitude"
            self.error(rec.file, rec.where(name), name,
                       f"{value} is not a possible {what} (it must be between -{bound:g} and "
                       f"{bound:g}); are lat and lon swapped?")
            return None
        return value

    def _date(self, rec: _Record, text: str) -> str:
        """Accept 2026-11-27 (and Excel's 2026/11/27); return the ISO form."""
        slash = _SLASH_DATE.match(unicodedata.normalize("NFKC", text))
        try:
            if slash:
                return date(*(int(g) for g in slash.groups())).isoformat()
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            return datetime.fromisoformat(text).isoformat()
        except ValueError:
            self.error(rec.file, rec.where("updated"), "updated",
                       f"is not a date: {text[:30]!r}; write year-month-day, e.g. 2026-11-27")
            return ""

    def _check_place(self, rec: _Record, values: dict[str, Any]) -> None:
        lat, lon = values["lat"], values["lon"]
        given = {n for n in ("lat", "lon") if rec.values.get(n) not in (None, "")}
        if len(given) == 1:
            (has,) = given
            other = "lon" if has == "lat" else "lat"
            self.error(rec.file, rec.where(has), other,
                       f"is missing while '{has}' is given; give both lat and lon, or neither")
        elif lat is not None and lon is not None and not (
                _JAPAN_LAT[0] <= lat <= _JAPAN_LAT[1] and _JAPAN_LON[0] <= lon <= _JAPAN_LON[1]):
            self.warn(rec.file, rec.where("lat"), "lat",
                      f"the place ({lat}, {lon}) is outside Japan; check the numbers "
                      "(lat ≈ 35.4, lon ≈ 139.3 in Atsugi)")

    def _check_sentences(self, rec: _Record, spoken: str) -> None:
        limit = self.limits.max_spoken_sentence_chars
        sentences = [s.strip() for s in _SENTENCE_END.split(spoken) if s and s.strip()]
        for n, sentence in enumerate(sentences, 1):
            if len(sentence) > limit:
                self.warn(rec.file, rec.where("spoken"), "spoken",
                          f"sentence {n} is {len(sentence)} characters long (more than "
                          f"{limit}): 「{sentence[:20]}…」. Short sentences are easier to "
                          "follow by ear (やさしい日本語): split it at 、 or after a fact")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    return {int: "a number", float: "a number", list: "a list", dict: "an object",
            str: "text"}.get(type(value), type(value).__name__)


def _place(file: str, line: int | None) -> str:
    return file if line is None else f"{file}:{line}"


# ------------------------------------------------------------------------------ reading


@dataclass
class _Text:
    """A file decoded to text, with the lines that could not be decoded."""

    text: str
    encoding: str
    bad_lines: dict[int, str]  # line number → what was wrong


def _decode(label: str, data: bytes, checker: _Checker) -> _Text | None:
    """UTF-8 (with or without BOM) or Shift_JIS/CP932, chosen per file; undecodable lines are
    reported with their line number instead of being silently replaced."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        checker.error(label, None, None,
                      "is saved as UTF-16 (Excel 'Unicode text'); save it as "
                      "'CSV UTF-8 (comma delimited)' and import that")
        return None
    if b"\x00" in data:
        what = ("an Excel workbook or zip file" if data.startswith(b"PK\x03\x04")
                else "a binary file, not text")
        checker.error(label, None, None,
                      f"is {what}; save the content as CSV (UTF-8), JSON Lines or Markdown")
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data, candidates = data[3:], ["utf-8"]
    else:
        try:
            return _Text(data.decode("utf-8"), "utf-8", {})
        except UnicodeDecodeError:
            candidates = ["utf-8", "cp932"]
    lines = data.split(b"\n")
    best: tuple[int, str] | None = None
    for enc in candidates:
        good = 0
        for raw in lines:
            if raw.isascii():
                continue
            try:
                raw.decode(enc)
                good += 1
            except UnicodeDecodeError:
                pass
        if best is None or good > best[0]:
            best = (good, enc)
    assert best is not None
    encoding = best[1]
    name = "UTF-8" if encoding == "utf-8" else "Shift_JIS"
    bad: dict[int, str] = {}
    for no, raw in enumerate(lines, 1):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as exc:
            sample = raw[exc.start:exc.start + 4].hex(" ")
            bad[no] = (f"has bytes that are not {name} text (at byte {exc.start + 1}: {sample}); "
                       f"the file is read as {name}, so save the whole file in one encoding, "
                       "best 'CSV UTF-8 (comma delimited)' in Excel")
    return _Text(data.decode(encoding, errors="replace"), encoding, bad)


def _read(path: Path, label: str, checker: _Checker) -> _Text | None:
    try:
        size = path.stat().st_size
        if size > checker.limits.max_file_bytes:
            checker.error(label, None, None,
                          f"is {size:,} bytes; files over {checker.limits.max_file_bytes:,} "
                          "bytes are refused. Split it into several files")
            return None
        data = path.read_bytes()
    except OSError as exc:
        checker.error(label, None, None, f"cannot be read ({exc.strerror or exc}); check "
                      "that it exists and that you may read it")
        return None
    return _decode(label, data, checker)


def _report_bad_lines(label: str, text: _Text, checker: _Checker) -> None:
    for no, message in text.bad_lines.items():
        checker.error(label, no, None, message)


def _read_jsonl(label: str, text: _Text, checker: _Checker) -> list[_Record]:
    _report_bad_lines(label, text, checker)
    records: list[_Record] = []
    for no, line in enumerate(text.text.split("\n"), 1):
        line = line.strip()
        if not line or no in text.bad_lines:
            continue
        try:
            data = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKey as dup:
            checker.error(label, no, str(dup), "appears twice in this line; keep one")
            continue
        except json.JSONDecodeError as exc:
            checker.error(label, no, None,
                          f"is not valid JSON ({exc.msg} at character {exc.colno}); each line "
                          'must be one entry like {"id": "…", "title": "…", "body": "…"}')
            continue
        if not isinstance(data, dict):
            hint = (" — this looks like one JSON array; write one {…} entry per line instead"
                    if isinstance(data, list) and no == 1 else "")
            checker.error(label, no, None,
                          f'must be one entry in braces {{"id": …}}, not {_kind(data)}{hint}')
            continue
        records.append(_Record(label, no, _named(label, no, data, checker)))
    return records


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _named(label: str, line: int | None, data: dict[str, Any], checker: _Checker,
           lines: dict[str, int] | None = None) -> dict[str, Any]:
    """Map keys (English or Japanese) to fields; unknown keys are a warning, a field given
    twice under two names an error."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        where = (lines or {}).get(key, line)
        name = field_name(key)
        if name is None:
            checker.warn(label, where, key,
                         f"is not a known field and is ignored; known fields: {', '.join(FIELDS)}")
        elif name in out:
            checker.error(label, where, name, f"is given twice (also as {key!r}); keep one")
        else:
            out[name] = value
            if lines is not None and key in lines:
                lines[name] = lines[key]
    return out


def _read_csv(label: str, text: _Text, checker: _Checker) -> list[_Record]:
    reader = csv.reader(io.StringIO(text.text, newline=""), strict=True)
    records: list[_Record] = []
    columns: list[str | None] | None = None
    row_no = 0
    last_line = 0
    try:
        for cells in reader:
            row_no += 1
            first_line, last_line = last_line + 1, reader.line_num
            damaged = [n for n in range(first_line, last_line + 1) if n in text.bad_lines]
            if damaged:
                checker.error(label, row_no, None,
                              f"(line {damaged[0]} of the file) {text.bad_lines[damaged[0]]}")
                continue
            if columns is None:
                columns = _csv_header(label, cells, checker)
                if columns is None:
                    return records
                continue
            if not any(c.strip() for c in cells):
                continue
            extra = cells[len(columns):]
            if any(c.strip() for c in extra):
                checker.error(label, row_no, None,
                              f"has {len(cells)} cells but the header has {len(columns)}; a "
                              "comma inside a cell needs the whole cell in double quotes")
                continue
            values = {name: cell for name, cell in zip(columns, cells) if name}
            records.append(_Record(label, row_no, values))
    except csv.Error as exc:
        checker.error(label, row_no + 1, None,
                      f"cannot be read as CSV ({exc}); check that every opening double quote "
                      "has a closing one")
    if columns is None and not any(p.file == label for p in checker.problems):
        checker.error(label, None, None, "is empty; the first row must name the columns "
                      "(id,title,body,…) and each further row is one entry")
    return records


def _csv_header(label: str, cells: list[str], checker: _Checker) -> list[str | None] | None:
    """Column → field for the header row; None (with errors) when it is not a usable header."""
    if len(cells) == 1 and "\t" in cells[0]:
        checker.error(label, 1, None, "the file is separated by tabs, not commas; save it as "
                      "CSV (comma delimited)")
        return None
    columns: list[str | None] = []
    for n, cell in enumerate(cells, 1):
        name = field_name(cell) if cell.strip() else None
        if cell.strip() and name is None:
            checker.warn(label, 1, cell.strip(),
                         f"(column {n}) is not a known column and is ignored; known columns: "
                         f"{', '.join(FIELDS)}")
        if name is not None and name in columns:
            checker.error(label, 1, name, f"(column {n}) appears twice in the header; keep one")
            return None
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        checker.error(label, 1, None,
                      f"the header row has no {', '.join(repr(m) for m in missing)} column; "
                      f"the first row must name the columns, e.g. {','.join(FIELDS)}")
        return None
    return columns


_FRONT = "---"
_KEY_LINE = re.compile(r"^([^\s:：][^:：]*?)\s*[:：]\s?(.*)$")


def _read_markdown(label: str, path: Path, text: _Text, checker: _Checker) -> list[_Record]:
    """Front matter ('---', 'name: value' lines, '---') then the answer text. The id defaults
    to the file name and the title to a first '# heading' line."""
    _report_bad_lines(label, text, checker)
    if text.bad_lines:
        return []
    lines = text.text.split("\n")
    values: dict[str, Any] = {}
    key_lines: dict[str, int] = {}
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    body_start = start
    if start < len(lines) and lines[start].strip() == _FRONT:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == _FRONT), None)
        if end is None:
            checker.error(label, start + 1, None,
                          "the front matter starts with '---' here but has no closing '---' "
                          "line; add one after the last 'name: value' line")
            return []
        if not _front_matter(label, lines, start + 1, end, values, key_lines, checker):
            return []
        body_start = end + 1
    values = _named(label, None, values, checker, key_lines)
    while body_start < len(lines) and not lines[body_start].strip():
        body_start += 1
    body_lines = lines[body_start:]
    if "title" not in values and body_lines and body_lines[0].startswith("# "):
        values["title"] = body_lines[0][2:].strip()
        key_lines["title"] = body_start + 1
        body_lines = body_lines[1:]
        body_start += 1
    body = "\n".join(body_lines).strip()
    if body:
        if values.get("body"):
            checker.error(label, key_lines.get("body"), "body",
                          "is given in the front matter and as text below it; keep one")
            return []
        values["body"] = body
        key_lines["body"] = body_start + 1
    values.setdefault("id", path.stem)
    return [_Record(label, 1, values, key_lines)]


def _front_matter(label: str, lines: list[str], start: int, end: int, values: dict[str, Any],
                  key_lines: dict[str, int], checker: _Checker) -> bool:
    """'name: value' lines; '|' starts an indented block, '- item' lines make a list."""
    i = start
    ok = True
    while i < end:
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        match = _KEY_LINE.match(line.strip())
        if not match or line[:1].isspace():
            checker.error(label, i + 1, None,
                          f"is not a 'name: value' line ({line.strip()[:30]!r}); write one "
                          "field per line, e.g. 'title: 図書館の開館時間'")
            ok = False
            i += 1
            continue
        key, value = match.group(1).strip(), match.group(2).strip()
        key_lines[key] = i + 1
        i += 1
        block: list[str] = []
        while i < end and (not lines[i].strip() or lines[i][:1].isspace()):
            block.append(lines[i])
            i += 1
        items = [b.strip()[1:].strip() for b in block if b.strip()]
        if value in ("|", ">"):
            glue = "\n" if value == "|" else ""
            values[key] = glue.join(b.strip() for b in block).strip()
        elif not value and block and all(b.strip().startswith("-") for b in block if b.strip()):
            values[key] = [_unquote(item) for item in items]
        elif block and any(b.strip() for b in block):
            checker.error(label, i - len(block) + 1, key,
                          "has indented lines after it; for text over several lines write "
                          f"'{key}: |' and indent the lines below")
            ok = False
        elif value.startswith("[") and value.endswith("]"):
            values[key] = [_unquote(v) for v in split_keywords(value[1:-1])]
        else:
            values[key] = _unquote(value)
    return ok


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


# ------------------------------------------------------------------------------ public


def content_files(paths: Iterable[str | Path] | str | Path,
                  problems: list[ContentProblem] | None = None) -> list[tuple[Path, str]]:
    """The content files named (folders expanded, sorted), each with its format. Paths that
    do not exist or have an unknown kind are added to `problems`."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[tuple[Path, str]] = []
    problems = problems if problems is not None else []
    for given in paths:
        path = Path(given)
        label = str(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in CONTENT_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            readme = [p for p in found if p.stem.lower() == "readme"]
            for p in readme:
                problems.append(ContentProblem(str(p), None, None, "skipped: a README is notes "
                                               "for people, not an entry", warning=True))
            found = [p for p in found if p not in readme]
            if not found:
                problems.append(ContentProblem(label, None, None,
                                               f"is a folder with no content files; {_HELP_FORMATS}"))
            out += [(p, CONTENT_SUFFIXES[p.suffix.lower()]) for p in found]
        elif not path.exists():
            problems.append(ContentProblem(label, None, None,
                                           "does not exist; check the file name and folder"))
        elif path.suffix.lower() in CONTENT_SUFFIXES:
            out.append((path, CONTENT_SUFFIXES[path.suffix.lower()]))
        else:
            hint = (" (Excel workbooks cannot be read: save as 'CSV UTF-8')"
                    if path.suffix.lower() in (".xls", ".xlsx", ".ods") else "")
            problems.append(ContentProblem(label, None, None,
                                           f"is not a content file{hint}; {_HELP_FORMATS}"))
    return out


def validate_content(paths: Iterable[str | Path] | str | Path,
                     settings: ContentSettings | Settings | None = None,
                     ) -> tuple[list[Entry], list[ContentProblem]]:
    """Read and check every file; return the good entries and ALL problems (errors and
    warnings). Bad content never raises: the caller decides whether errors block."""
    checker = _Checker(_limits(settings))
    files = content_files(paths, checker.problems)
    entries: list[Entry] = []
    for path, kind in files:
        label = str(path)
        text = _read(path, label, checker)
        if text is None:
            continue
        if kind == "jsonl":
            records = _read_jsonl(label, text, checker)
        elif kind == "csv":
            records = _read_csv(label, text, checker)
        else:
            records = _read_markdown(label, path, text, checker)
        if not records and not any(p.file == label and not p.warning for p in checker.problems):
            checker.error(label, None, None, "has no entries; add at least one")
        entries += [e for e in map(checker.entry, records) if e is not None]
    if not files and not checker.problems:
        checker.error("(no files)", None, None, f"no content files were given; {_HELP_FORMATS}")
    rank: dict[str, int] = {}
    for p in checker.problems:
        rank.setdefault(p.file, len(rank))
    problems = sorted(checker.problems, key=lambda p: (rank[p.file], p.line or 0))
    return entries, problems


def load_content(paths: Iterable[str | Path] | str | Path,
                 settings: ContentSettings | Settings | None = None) -> list[Entry]:
    """Every entry of the files, or ContentError listing every error (warnings pass)."""
    entries, problems = validate_content(paths, settings)
    if any(not p.warning for p in problems):
        raise ContentError(problems)
    return entries


def csv_bytes(entries: Iterable[Entry]) -> bytes:
    """The staff CSV: UTF-8 with a BOM (so Excel shows Japanese correctly), one column per
    field, keywords joined with '|'. Loading it back gives the same entries."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for e in entries:
        row = []
        for name in FIELDS:
            value = getattr(e, name)
            if name == "keywords":
                value = join_keywords(value)
            elif value is None:
                value = ""
            elif isinstance(value, float):
                value = repr(value)
            row.append(value)
        writer.writerow(row)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def write_csv(entries: Iterable[Entry], path: str | Path) -> Path:
    """Write the staff CSV to `path` atomically (a half-written export never replaces a
    good one)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, csv_bytes(entries))
    except OSError as exc:
        raise KioskError(f"cannot write {target}: {exc.strerror or exc}; check the folder "
                         "exists and you may write there") from None
    return target
