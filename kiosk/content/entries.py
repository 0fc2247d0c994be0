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
    Office, read_offices(path, problems), offices_path(settings)
                          — the offices table entries name in `office`; {office} and
                            friends in body/spoken are filled from it at load
    (freshness — stale, as_of, review_list — lives with Entry in kiosk/content/contract.py)

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

from kiosk import DATA_DIR, KioskError
from kiosk.atomic import write_atomically
from kiosk.config import ContentSettings, Settings
from kiosk.content.contract import SITE_GUIDE_CATEGORY, Entry
from kiosk.i18n import N_, _
from kiosk.progress import Progress


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
        kind = _("warning: ") if self.warning else ""
        return f"{where}: {kind}{what}{self.message}"


class ContentError(KioskError):
    """Content that cannot be imported; carries every problem found, not just the first."""

    #: `kiosk content import` exits like `validate`: problems found (kiosk/cli/exit_codes.py).
    exit_code = 1

    def __init__(self, problems: list[ContentProblem]):
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        lines = "\n".join(f"  {p}" for p in errors[:50])
        more = ("\n  " + _("… and {n} more").format(n=len(errors) - 50)
                if len(errors) > 50 else "")
        super().__init__(
            _("{n} problem(s) in the content; nothing was changed:").format(n=len(errors))
            + f"\n{lines}{more}")


# ---------------------------------------------------------------------------- field rules

FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Entry))
REQUIRED = ("id", "title", "body")
#: Fields that hold one line of text (a line break in them is a mistake, e.g. a cut cell).
ONE_LINE = ("id", "title", "category", "source", "updated", "address", "phone", "hours",
            "office", "source_url", "checked", "status")
#: What `status` may say: checked against the city's page, or no page found for it.
STATUSES = ("verified", "unverified")
_STATUS_ALIASES = {"確認済み": "verified", "確認済": "verified", "検証済み": "verified",
                   "未確認": "unverified", "未検証": "unverified"}
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
    "担当": "office", "担当課": "office", "窓口": "office",
    "出典url": "source_url", "出典ページ": "source_url", "url": "source_url",
    "確認日": "checked", "確認した日": "checked", "状態": "status", "確認状況": "status",
}
#: What an id may be: it appears in addresses, file names and logs, so plain ASCII only.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: A CSV cell starting with one of these is a formula to Excel (CSV injection); the export
#: writes such cells with a leading apostrophe, and the import removes it again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
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
_HELP_FORMATS = N_("use .jsonl (JSON Lines), .csv, .md (Markdown) or a folder of them")


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


# ------------------------------------------------------------------------------ offices

#: The bundled table of offices entries refer to (`office` field).
BUNDLED_OFFICES = DATA_DIR / "offices.tsv"
OFFICE_COLUMNS = ("id", "name", "phone", "building", "floor", "counter", "address",
                  "source_url", "checked")
#: The office that answers for the others: its number is given for offices without their own.
SWITCHBOARD = "cityhall"
_OFFICE_FIELDS = ("office", "office_name", "office_phone", "office_place")
_OFFICE_PLACEHOLDER = re.compile(r"\{(office[a-z_]*)\}")
#: A Japanese phone number as the city writes it: 046-225-2190, 0120-95-0178, 0180-99-4422;
#: or a short national line (188, #8008, 119).
PHONE_FORMAT = re.compile(r"^(?:0\d{1,4}-\d{1,4}-\d{3,4}|#?\d{3,4})$")


@dataclass(frozen=True)
class Office:
    """One office that handles matters: kept in one table so a move is one edit."""

    id: str
    name: str
    phone: str = ""
    building: str = ""  # 本庁舎 / 第二庁舎 / another building's name
    floor: str = ""  # 2階
    counter: str = ""  # 10番窓口
    address: str = ""
    source_url: str = ""
    checked: str = ""

    @property
    def place(self) -> str:
        """Where it sits, as said to a visitor: 「本庁舎2階 10番窓口」."""
        where = f"{self.building}{self.floor}"
        return f"{where} {self.counter}".strip() if self.counter else where

    def placeholder(self, kind: str, switchboard: Office | None = None) -> str:
        """The text for {office} / {office_name} / {office_phone} / {office_place}; an office
        without its own number is reached through the switchboard (the 'cityhall' row)."""
        if kind == "office_name":
            return self.name
        if kind == "office_place":
            return self.place
        if self.phone:
            phone = f"電話 {self.phone}"
        elif switchboard is not None and switchboard.phone and switchboard is not self:
            phone = f"市役所の代表電話 {switchboard.phone}"
        else:
            phone = ""
        if kind == "office_phone":
            return phone.removeprefix("電話 ") or "市役所の代表電話"
        details = "、".join(p for p in (self.place, phone) if p)
        return f"{self.name}（{details}）" if details else self.name


def read_offices(path: str | Path, problems: list[ContentProblem]) -> dict[str, Office]:
    """The offices table (TSV with a header row naming OFFICE_COLUMNS); every problem is
    added to `problems` with its line, and a bad row is left out."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ContentProblem(label, None, None, _("the offices table cannot be read "
                                       "({reason}); check [content] offices_file").format(
                                           reason=getattr(exc, 'strerror', None) or exc)))
        return {}
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    if not rows:
        problems.append(ContentProblem(label, None, None, _("the offices table is empty; the "
                                       "first row must name the columns: {columns}").format(
                                           columns=", ".join(OFFICE_COLUMNS))))
        return {}
    header = [c.strip() for c in rows[0]]
    missing = [c for c in ("id", "name") if c not in header]
    if missing:
        problems.append(ContentProblem(label, 1, None, _("the header row has no "
                                       "{missing} column; name the columns "
                                       "{columns} separated by tabs").format(
                                           missing=", ".join(missing),
                                           columns=", ".join(OFFICE_COLUMNS))))
        return {}
    offices: dict[str, Office] = {}
    for no, cells in enumerate(rows[1:], 2):
        if not any(c.strip() for c in cells) or cells[0].startswith("#"):
            continue
        row = {name: (cells[i].strip() if i < len(cells) else "")
               for i, name in enumerate(header) if name in OFFICE_COLUMNS}
        bad = _office_problem(row, offices)
        if bad:
            problems.append(ContentProblem(label, no, bad[0], bad[1]))
            continue
        offices[row["id"]] = Office(**row)
    return offices


def _office_problem(row: dict[str, str], seen: dict[str, Office]) -> tuple[str, str] | None:
    if not row.get("id") or not row.get("name"):
        return ("id" if not row.get("id") else "name"), _("is empty; every office needs an id and a name")
    if row["id"] in seen:
        return "id", _("'{id}' is used twice; every office needs its own id").format(id=row["id"])
    if row.get("phone") and not PHONE_FORMAT.match(row["phone"]):
        return "phone", _("{phone!r} is not a phone number as written in Japan; write "
                          "it with hyphens, e.g. 046-225-2190").format(phone=row["phone"])
    if row.get("checked"):
        try:
            date.fromisoformat(row["checked"])
        except ValueError:
            return "checked", _("is not a date: {value!r}; write e.g. 2026-11-27").format(
                value=row["checked"])
    return None


def offices_path(settings: ContentSettings | Settings | None) -> Path:
    """[content] offices_file (against the config's folder when Settings are given), or the
    bundled table."""
    configured = _limits(settings).offices_file
    if not configured:
        return BUNDLED_OFFICES
    return settings.path(configured) if isinstance(settings, Settings) else Path(configured)


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
        self.offices: dict[str, Office] | None = None  # read when the first entry needs it
        self.offices_label = ""
        self.office_used = False

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
                           _("is empty") if name in rec.values else _("is missing"))
        for name in ("updated", "checked"):
            if values[name]:
                values[name] = self._date(rec, name, values[name])
        if values["status"]:
            values["status"] = self._status(rec, values["status"])
        if values["source_url"] and not re.match(r"^https?://[^\s/]+", values["source_url"]):
            self.error(rec.file, rec.where("source_url"), "source_url",
                       _("is not a web address: {value!r}; copy the page's "
                         "address from the browser, starting with https://").format(
                             value=values['source_url'][:40]))
        elif not values["source_url"] and not values["source"] \
                and values["status"] != "unverified" and self.errors == before:
            self.warn(rec.file, rec.line, "source_url",
                      _("is missing, and so is 'source': say which page the facts come from "
                        "(or set status to 'unverified' when no page was found)"))
        self._offices(rec, values)
        self._check_place(rec, values)
        self._check_site_guide(rec, values)
        if values["spoken"]:
            self._check_sentences(rec, values["spoken"])
        if self.errors > before:
            return None
        entry = Entry(**values)
        first = self.seen_ids.get(entry.id)
        here = _place(rec.file, rec.where("id"))
        if first is not None:
            self.error(rec.file, rec.where("id"), "id",
                       _("'{id}' is used twice: at {first} and here at {here}; every entry "
                         "needs its own id (change one of them)").format(
                           id=entry.id, first=first, here=here))
            return None
        self.seen_ids[entry.id] = here
        return entry

    # -- field kinds

    def _text(self, rec: _Record, name: str, raw: Any) -> str:
        if raw is None:
            return ""
        if not isinstance(raw, str):
            hint = (_(' (write it in quotes: "{value}")').format(value=raw)
                    if isinstance(raw, (int, float)) else "")
            self.error(rec.file, rec.where(name), name,
                       _("must be text, not {kind}{hint}").format(kind=_kind(raw), hint=hint))
            return ""
        text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
        if not self._clean(rec, name, text):
            return ""
        if name in ONE_LINE and "\n" in text:
            self.error(rec.file, rec.where(name), name,
                       _("must be one line, but it has a line break; join the lines"))
            return ""
        limit = {"id": self.limits.max_id_chars, "title": self.limits.max_title_chars,
                 "body": self.limits.max_body_chars,
                 "spoken": self.limits.max_spoken_chars}.get(name, self.limits.max_field_chars)
        if len(text) > limit:
            self.error(rec.file, rec.where(name), name,
                       _("is {n:,} characters long; at most {limit:,} are allowed. Shorten it "
                         "(or split the entry in two)").format(n=len(text), limit=limit))
            return ""
        if name == "id" and re.search(r"\s", text):
            self.error(rec.file, rec.where(name), name,
                       _("'{id}' contains a space; use letters, digits and '-' only, "
                         "e.g. library-hours").format(id=text))
            return ""
        if name == "id" and not ID_PATTERN.fullmatch(text):
            self.error(rec.file, rec.where(name), name,
                       _("{id!r} is not a usable id; use letters, digits, '-' and '_' "
                         "only (a-z, A-Z, 0-9), starting with a letter or digit, e.g. "
                         "library-hours").format(id=text[:40]))
            return ""
        return text

    def _clean(self, rec: _Record, name: str, text: str) -> bool:
        """False (with an error) when the text holds binary junk or damaged characters."""
        bad = _JUNK.search(text)
        if bad is None:
            return True
        ch = bad.group()
        if ch == "\ufffd":
            what = _("contains the character '\ufffd', which marks text damaged by a wrong "
                     "encoding; retype the damaged part (character {at})")
        elif unicodedata.category(ch) == "Cs":
            what = _("contains a broken character ({code}); retype it (character {at})")
        else:
            what = _("contains a control character ({code}), which is not text (often copied "
                     "in from another program); delete it (character {at})")
        self.error(rec.file, rec.where(name), name,
                   what.format(code=f"U+{ord(ch):04X}", at=bad.start() + 1))
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
                       _("must be a list of words or text like 'a|b|c', not {kind}")
                       .format(kind=_kind(raw)))
            return ()
        words: list[str] = []
        for item in items:
            if not isinstance(item, str):
                self.error(rec.file, rec.where("keywords"), "keywords",
                           _("must hold only words (text), but one is {kind}: {value!r}")
                           .format(kind=_kind(item), value=item))
                return ()
            word = item.strip()
            if not word:
                continue
            if not self._clean(rec, "keywords", word):
                return ()
            if "\n" in word or KEYWORD_SEPARATOR in word:
                self.error(rec.file, rec.where("keywords"), "keywords",
                           _("the keyword {word!r} contains a line break or '|'; write each "
                             "keyword separately").format(word=word[:30]))
                return ()
            if len(word) > self.limits.max_field_chars:
                self.error(rec.file, rec.where("keywords"), "keywords",
                           _("one keyword is {n:,} characters long; at most {limit:,} are "
                             "allowed").format(n=len(word), limit=self.limits.max_field_chars))
                return ()
            words.append(word)
        if len(words) > self.limits.max_keywords:
            self.error(rec.file, rec.where("keywords"), "keywords",
                       _("has {n} keywords; at most {limit} are allowed. Keep the words people "
                         "really say").format(n=len(words), limit=self.limits.max_keywords))
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
                           _("is not a number: {value!r}; write decimal degrees, e.g. 35.4433")
                           .format(value=raw.strip()[:30]))
                return None
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
        else:
            self.error(rec.file, rec.where(name), name,
                       _("must be a number (decimal degrees), not {kind}").format(kind=_kind(raw)))
            return None
        bound = 90.0 if name == "lat" else 180.0
        if not math.isfinite(value) or abs(value) > bound:
            what = _("latitude") if name == "lat" else _("longitude")
            self.error(rec.file, rec.where(name), name,
                       _("{value} is not a possible {what} (it must be between -{bound} and "
                         "{bound}); are lat and lon swapped?").format(
                           value=value, what=what, bound=f"{bound:g}"))
            return None
        return value

    def _date(self, rec: _Record, name: str, text: str) -> str:
        """Accept 2026-11-27 (and Excel's 2026/11/27); return the ISO form."""
        slash = _SLASH_DATE.match(unicodedata.normalize("NFKC", text))
        try:
            if slash:
                return date(*(int(g) for g in slash.groups())).isoformat()
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            if name == "checked":  # a day, not a moment: the page's 更新日
                raise ValueError(text)
            return datetime.fromisoformat(text).isoformat()
        except ValueError:
            self.error(rec.file, rec.where(name), name,
                       _("is not a date: {value!r}; write year-month-day, e.g. 2026-11-27")
                       .format(value=text[:30]))
            return ""

    def _status(self, rec: _Record, text: str) -> str:
        value = _STATUS_ALIASES.get(text, unicodedata.normalize("NFKC", text).strip().lower())
        if value in STATUSES:
            return value
        self.error(rec.file, rec.where("status"), "status",
                   _("is {value!r}; write 'verified' (each fact checked against the "
                     "city's page) or 'unverified' (no page found)").format(value=text[:30]))
        return ""

    def _offices(self, rec: _Record, values: dict[str, Any]) -> None:
        """Fill {office}, {office_name}, {office_phone}, {office_place} in body and spoken
        from the offices table, and the phone when the entry gives none."""
        used = {m.group(1) for name in ("body", "spoken")
                for m in _OFFICE_PLACEHOLDER.finditer(values[name])}
        self.office_used |= bool(used or values["office"])
        unknown = sorted(used - set(_OFFICE_FIELDS))
        if unknown:
            self.error(rec.file, rec.where("body"), "body",
                       _("has {{{name}}}, which is not known; use {known}").format(
                           name=unknown[0], known=", ".join("{" + k + "}" for k in _OFFICE_FIELDS)))
            return
        if not values["office"]:
            if used:
                self.error(rec.file, rec.where("body"), "office",
                           _("is missing, but the text uses {{{name}}}; name the "
                             "office (its id in the offices table)").format(name=sorted(used)[0]))
            return
        office = self.offices.get(values["office"]) if self.offices is not None else None
        if office is None:
            # Text already filled in (an export, a bundle from another office) still loads;
            # placeholders that cannot be filled stop it.
            known = ", ".join(sorted(self.offices or {})[:8])
            report = self.error if used else self.warn
            report(rec.file, rec.where("office"), "office",
                   _("'{office}' is not in the offices table "
                     "({table}); add it there or use a known id").format(
                         office=values["office"], table=self.offices_label)
                   + (_(", e.g. {known}").format(known=known) if known else ""))
            return
        switchboard = (self.offices or {}).get(SWITCHBOARD)
        for name in ("body", "spoken"):
            values[name] = _OFFICE_PLACEHOLDER.sub(
                lambda m: office.placeholder(m.group(1), switchboard), values[name])
        phone = office.phone or (switchboard.phone if switchboard else "")
        if not values["phone"] and phone:
            values["phone"] = phone

    def _check_place(self, rec: _Record, values: dict[str, Any]) -> None:
        lat, lon = values["lat"], values["lon"]
        given = {n for n in ("lat", "lon") if rec.values.get(n) not in (None, "")}
        if len(given) == 1:
            (has,) = given
            other = "lon" if has == "lat" else "lat"
            self.error(rec.file, rec.where(has), other,
                       _("is missing while '{given}' is given; give both lat and lon, or neither")
                       .format(given=has))
        elif lat is not None and lon is not None and not (
                _JAPAN_LAT[0] <= lat <= _JAPAN_LAT[1] and _JAPAN_LON[0] <= lon <= _JAPAN_LON[1]):
            self.warn(rec.file, rec.where("lat"), "lat",
                      _("the place ({lat}, {lon}) is outside Japan; check the numbers "
                        "(lat ≈ 35.4, lon ≈ 139.3 in Atsugi)").format(lat=lat, lon=lon))

    def _check_site_guide(self, rec: _Record, values: dict[str, Any]) -> None:
        """A building-guide entry is found by the word a visitor says for the thing
        (「トイレはどこ」), so it must list those words; an entry of another category that
        only mentions トイレ in passing never answers a where-question."""
        if values["category"] != SITE_GUIDE_CATEGORY:
            return
        if not values["keywords"]:
            self.error(rec.file, rec.where("keywords"), "keywords",
                       _("a {category} entry needs the words visitors say for what it "
                         "is about, e.g. トイレ|お手洗い; without them 「トイレはどこ」 cannot find it").format(
                             category=SITE_GUIDE_CATEGORY))
        elif any(len(k) > 12 for k in values["keywords"]):
            self.warn(rec.file, rec.where("keywords"), "keywords",
                      _("has a keyword longer than 12 characters; list the thing's names "
                        "(トイレ, 多目的トイレ), not whole questions"))

    def _check_sentences(self, rec: _Record, spoken: str) -> None:
        limit = self.limits.max_spoken_sentence_chars
        sentences = [s.strip() for s in _SENTENCE_END.split(spoken) if s and s.strip()]
        for n, sentence in enumerate(sentences, 1):
            if len(sentence) > limit:
                self.warn(rec.file, rec.where("spoken"), "spoken",
                          _("sentence {n} is {length} characters long (more than {limit}): "
                            "「{start}…」. Short sentences are easier to follow by ear "
                            "(やさしい日本語): split it at 、 or after a fact").format(
                              n=n, length=len(sentence), limit=limit, start=sentence[:20]))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return _("true/false ({value})").format(value=str(value).lower())
    return {int: _("a number"), float: _("a number"), list: _("a list"), dict: _("an object"),
            str: _("text")}.get(type(value), type(value).__name__)


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
                      _("is saved as UTF-16 (Excel 'Unicode text'); save it as "
                        "'CSV UTF-8 (comma delimited)' and import that"))
        return None
    if b"\x00" in data:
        what = (_("is an Excel workbook or zip file") if data.startswith(b"PK\x03\x04")
                else _("is a binary file, not text"))
        checker.error(label, None, None,
                      what + _("; save the content as CSV (UTF-8), JSON Lines or Markdown"))
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
            bad[no] = _("has bytes that are not {encoding} text (at byte {at}: {sample}); the "
                        "file is read as {encoding}, so save the whole file in one encoding, "
                        "best 'CSV UTF-8 (comma delimited)' in Excel").format(
                encoding=name, at=exc.start + 1, sample=sample)
    return _Text(data.decode(encoding, errors="replace"), encoding, bad)


def _read(path: Path, label: str, checker: _Checker) -> _Text | None:
    try:
        size = path.stat().st_size
        if size > checker.limits.max_file_bytes:
            checker.error(label, None, None,
                          _("is {size:,} bytes; files over {limit:,} bytes are refused. Split it "
                            "into several files").format(size=size,
                                                         limit=checker.limits.max_file_bytes))
            return None
        data = path.read_bytes()
    except OSError as exc:
        checker.error(label, None, None,
                      _("cannot be read ({reason}); check that it exists and that you may read "
                        "it").format(reason=exc.strerror or exc))
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
            checker.error(label, no, str(dup), _("appears twice in this line; keep one"))
            continue
        except json.JSONDecodeError as exc:
            checker.error(label, no, None,
                          _("is not valid JSON ({reason} at character {at}); each line must be "
                            'one entry like {{"id": "…", "title": "…", "body": "…"}}').format(
                              reason=exc.msg, at=exc.colno))
            continue
        if not isinstance(data, dict):
            hint = (_(" — this looks like one JSON array; write one {…} entry per line instead")
                    if isinstance(data, list) and no == 1 else "")
            checker.error(label, no, None,
                          _('must be one entry in braces {{"id": …}}, not {kind}{hint}').format(
                              kind=_kind(data), hint=hint))
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
                         _("is not a known field and is ignored; known fields: {fields}")
                         .format(fields=", ".join(FIELDS)))
        elif name in out:
            checker.error(label, where, name,
                          _("is given twice (also as {key!r}); keep one").format(key=key))
        else:
            out[name] = value
            if lines is not None and key in lines:
                lines[name] = lines[key]
    return out


def _read_csv(label: str, text: _Text, checker: _Checker) -> list[_Record]:
    # csv refuses cells over 128 KiB as a "field larger than field limit" error, which reads
    # like a quoting problem; let any cell the file size allows through, so an oversized
    # cell is reported by its row and field with the field's own limit.
    csv.field_size_limit(max(csv.field_size_limit(), checker.limits.max_file_bytes + 1))
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
                              _("(line {line} of the file) {problem}").format(
                                  line=damaged[0], problem=text.bad_lines[damaged[0]]))
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
                              _("has {cells} cells but the header has {columns}; a comma inside "
                                "a cell needs the whole cell in double quotes").format(
                                  cells=len(cells), columns=len(columns)))
                continue
            values = {name: csv_cell_value(cell) for name, cell in zip(columns, cells) if name}
            records.append(_Record(label, row_no, values))
    except csv.Error as exc:
        checker.error(label, row_no + 1, None,
                      _("cannot be read as CSV ({reason}); check that every opening double "
                        "quote has a closing one").format(reason=exc))
    if columns is None and not any(p.file == label for p in checker.problems):
        checker.error(label, None, None, _("is empty; the first row must name the columns "
                                           "(id,title,body,…) and each further row is one entry"))
    return records


def _csv_header(label: str, cells: list[str], checker: _Checker) -> list[str | None] | None:
    """Column → field for the header row; None (with errors) when it is not a usable header."""
    if len(cells) == 1 and "\t" in cells[0]:
        checker.error(label, 1, None, _("the file is separated by tabs, not commas; save it "
                                        "as CSV (comma delimited)"))
        return None
    columns: list[str | None] = []
    for n, cell in enumerate(cells, 1):
        name = field_name(cell) if cell.strip() else None
        if cell.strip() and name is None:
            checker.warn(label, 1, cell.strip(),
                         _("(column {n}) is not a known column and is ignored; known "
                           "columns: {fields}").format(n=n, fields=", ".join(FIELDS)))
        if name is not None and name in columns:
            checker.error(label, 1, name,
                          _("(column {n}) appears twice in the header; keep one").format(n=n))
            return None
        columns.append(name)
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        checker.error(label, 1, None,
                      _("the header row has no {missing} column; the first row must name the "
                        "columns, e.g. {fields}").format(
                          missing=", ".join(repr(m) for m in missing), fields=",".join(FIELDS)))
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
                          _("the front matter starts with '---' here but has no closing '---' "
                            "line; add one after the last 'name: value' line"))
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
                          _("is given in the front matter and as text below it; keep one"))
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
                          _("is not a 'name: value' line ({line!r}); write one field per line, "
                            "e.g. 'title: 図書館の開館時間'").format(line=line.strip()[:30]))
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
                          _("has indented lines after it; for text over several lines write "
                            "'{key}: |' and indent the lines below").format(key=key))
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
                problems.append(ContentProblem(
                    str(p), None, None, _("skipped: a README is notes for people, not an entry"),
                    warning=True))
            found = [p for p in found if p not in readme]
            if not found:
                problems.append(ContentProblem(
                    label, None, None,
                    _("is a folder with no content files; {formats}").format(
                        formats=_(_HELP_FORMATS))))
            out += [(p, CONTENT_SUFFIXES[p.suffix.lower()]) for p in found]
        elif not path.exists():
            problems.append(ContentProblem(label, None, None,
                                           _("does not exist; check the file name and folder")))
        elif path.suffix.lower() in CONTENT_SUFFIXES:
            out.append((path, CONTENT_SUFFIXES[path.suffix.lower()]))
        else:
            hint = (_(" (Excel workbooks cannot be read: save as 'CSV UTF-8')")
                    if path.suffix.lower() in (".xls", ".xlsx", ".ods") else "")
            problems.append(ContentProblem(
                label, None, None, _("is not a content file{hint}; {formats}").format(
                    hint=hint, formats=_(_HELP_FORMATS))))
    return out


def validate_content(paths: Iterable[str | Path] | str | Path,
                     settings: ContentSettings | Settings | None = None,
                     ) -> tuple[list[Entry], list[ContentProblem]]:
    """Read and check every file; return the good entries and ALL problems (errors and
    warnings). Bad content never raises: the caller decides whether errors block."""
    checker = _Checker(_limits(settings))
    files = content_files(paths, checker.problems)
    table = offices_path(settings)
    checker.offices_label = str(table)
    table_problems: list[ContentProblem] = []
    checker.offices = read_offices(table, table_problems)
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
            checker.error(label, None, None, _("has no entries; add at least one"))
        with Progress(_("checking rows of {file}").format(file=path.name), len(records),
                      _("rows")) as bar:
            for record in records:
                entry = checker.entry(record)
                if entry is not None:
                    entries.append(entry)
                bar.update()
    if not files and not checker.problems:
        checker.error(_("(no files)"), None, None,
                      _("no content files were given; {formats}").format(formats=_(_HELP_FORMATS)))
    if checker.office_used:  # a broken table matters only to entries that name an office
        checker.problems += table_problems
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


def csv_cell(text: str) -> str:
    """A cell Excel shows as text, never runs as a formula: one that starts like a formula
    (or like an already neutralised one) gets a leading apostrophe."""
    if text.startswith(FORMULA_START) or (text.startswith("'") and
                                          text[1:2] != "" and
                                          text[1:].startswith((*FORMULA_START, "'"))):
        return "'" + text
    return text


def csv_cell_value(cell: str) -> str:
    """The inverse of csv_cell, so an exported file imports back unchanged; any other
    leading apostrophe is kept as written."""
    if cell.startswith("'") and cell[1:2] != "" and cell[1:].startswith((*FORMULA_START, "'")):
        return cell[1:]
    return cell


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
                value = repr(value)  # a number, never a formula
                row.append(value)
                continue
            row.append(csv_cell(value))
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
        raise KioskError(_("cannot write {file}: {reason}; check the folder exists and you "
                           "may write there").format(file=target, reason=exc.strerror or exc)
                         ) from None
    return target

