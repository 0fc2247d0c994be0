"""Speakable-text stage: what the visitor should *hear*, which is not what the screen shows.

A screen can show a table, a URL or "046-223-1511"; a voice cannot. This stage picks the
text to read (the entry's `spoken` field, else a short summary of the body), then rewrites
what Open JTalk gets wrong: phone numbers digit by digit with pauses, times, dates and eras,
money, postal codes, ranges, symbols, Latin words, and place names from a staff-editable
reading dictionary. Long sentences are split at a comma so the voice never drags.

CONTRACT:
    Speakable(settings: VoiceSettings, readings: ReadingDictionary | None = None,
              review_months=…, today=…)
    Speakable.for_entry(entry: Entry) -> str     — text to read for one answer entry; an entry
                                                   checked over [content] review_months ago
                                                   ends 「この情報は〇〇年〇月時点のものです。」
    Speakable.for_answer(answer: Answer) -> str  — confident / ask back / nothing found
    Speakable.normalise(text: str) -> str        — one speakable segment per line
    ReadingDictionary.load(*paths) / .apply(text)
    split_sentences(text: str) -> list[str]      — sentence (and line) boundaries
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from kiosk import DATA_DIR, KioskError
from kiosk.answer.contract import Answer, AnswerKind
from kiosk.config import ContentSettings, Settings, VoiceSettings
from kiosk.content.contract import AS_OF_SENTENCE, Entry, as_of, stale
from kiosk.i18n import _

#: The bundled reading dictionary; staff files named in [voice] readings_file go on top.
BUNDLED_READINGS = DATA_DIR / "readings.tsv"
#: The city's place names with Japan Post's readings (tools/make_place_readings.py); read
#: first, so the hand-written table and the staff file can still correct any of them.
BUNDLED_PLACE_READINGS = DATA_DIR / "place_readings.tsv"
#: A place name is only read as such where it stands as a name: not inside a longer kanji
#: word (林 in 森林, 中町 in 田中町), except after 市/県/立 (厚木市中町, 県立厚木高校).
_PLACE_BEFORE = r"(?:(?<=[市県立])|(?<![一-龥々〆ヵヶ]))"
#: A one-kanji place (林) is only a place before a non-kanji or a facility word (林中学校).
_ONE_KANJI_PLACE_AFTER = (r"(?=[^一-龥々〆ヵヶ]|$|地区|公民館|小学校|中学校|児童館|老人|駅"
                          r"|自治会)")
#: Three-digit service numbers, read digit by digit (189 = イチハチキュー, the child-abuse
#: line 「いちはやく」; 188 消費者ホットライン; 171 災害用伝言ダイヤル), unless a counter
#: follows (189円, 110人). 110番 and 119番 have their common names in readings.tsv.
_SERVICE_NUMBER = re.compile(
    r"(?<![\d,.#＃\-])(110|118|119|171|177|188|189)(?![\d,.])"
    r"(?!\s*(?:円|人|件|年|日|時|分|秒|階|番地|号|歳|%|％|か所|カ所|ヵ所|キロ|メートル|m|km|kg|g"
    r"|回|枚|個|台|本|冊|世帯|戸|票|席|点|位|ページ))")

# Digits as said one by one (telephone style: ニー, ゴー, キュー are clearer than ニ, ゴ, ク).
_DIGIT_KANA = dict(zip("0123456789", ("ゼロ", "イチ", "ニー", "サン", "ヨン", "ゴー", "ロク",
                                      "ナナ", "ハチ", "キュー")))
# Latin capitals spelled out, for abbreviations Open JTalk would otherwise skip (ＱＲ → silent).
_LETTER_KANA = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (
    "エー", "ビー", "シー", "ディー", "イー", "エフ", "ジー", "エイチ", "アイ", "ジェー",
    "ケー", "エル", "エム", "エヌ", "オー", "ピー", "キュー", "アール", "エス", "ティー",
    "ユー", "ブイ", "ダブリュー", "エックス", "ワイ", "ゼット")))
_ERAS = {"R": "令和", "H": "平成", "S": "昭和"}
_WEEKDAYS = "月火水木金土日"
_SENTENCE_END = "。！？"


class ReadingsError(KioskError):
    """A reading dictionary line that cannot be used; names the file and line."""


def split_sentences(text: str) -> list[str]:
    """Split at line breaks and after 。！？ (keeping the mark); empty pieces are dropped."""
    out: list[str] = []
    for line in text.splitlines():
        for piece in re.findall(rf"[^{_SENTENCE_END}]+[{_SENTENCE_END}]*|[{_SENTENCE_END}]+", line):
            piece = piece.strip()
            if piece and not all(c in _SENTENCE_END for c in piece):
                out.append(piece)
            elif piece and out:
                out[-1] += piece
    return out


def digits_kana(digits: str) -> str:
    """046 → ゼロヨンロク: each digit on its own, as phone and postal numbers are said."""
    return "".join(_DIGIT_KANA[d] for d in digits if d in _DIGIT_KANA)


def _digit_groups(groups: Iterable[str]) -> str:
    """Groups joined by a full-width comma: Open JTalk pauses there just as at 、, but long
    sentences are only split at 、, so a phone number is never cut in two."""
    return "，".join(digits_kana(g) for g in groups if g)


@dataclass
class ReadingDictionary:
    """Written form → reading, longest match first. Staff edit it as TSV because place names
    are where a synthetic voice embarrasses a city most, and fixes must not need a developer."""

    entries: dict[str, str] = field(default_factory=dict)
    #: Place names (read only where they stand as names; see _PLACE_BEFORE).
    places: dict[str, str] = field(default_factory=dict)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _lookup: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def load(cls, *paths: str | Path, places: str | Path | None = None) -> ReadingDictionary:
        """Read TSV files in order; a later file's entry replaces an earlier one. `places`
        is a place-name table (kiosk/data/place_readings.tsv), below all of them."""
        entries: dict[str, str] = {}
        for path in paths:
            entries.update(_read_tsv(Path(path)))
        place_entries = _read_tsv(Path(places)) if places is not None else {}
        return cls(entries, {k: v for k, v in place_entries.items() if k not in entries})

    @classmethod
    def for_settings(cls, settings: Settings | VoiceSettings | None = None,
                     base: Settings | None = None) -> ReadingDictionary:
        """The bundled dictionary plus the staff file named in [voice] readings_file."""
        full = settings if isinstance(settings, Settings) else base
        voice = settings.voice if isinstance(settings, Settings) else (settings or VoiceSettings())
        paths: list[Path] = [BUNDLED_READINGS]
        if voice.readings_file:
            extra = full.path(voice.readings_file) if full else Path(voice.readings_file)
            if not extra.is_file():
                raise ReadingsError(
                    _("reading dictionary {file} (set in [voice] readings_file) does not exist; "
                      "create it (TSV: written form<TAB>reading) or set readings_file = \"\"")
                    .format(file=extra))
            paths.append(extra)
        return cls.load(*paths, places=BUNDLED_PLACE_READINGS)

    def _compile(self) -> re.Pattern[str] | None:
        if self._pattern is None and (self.entries or self.places):
            everything = {**self.places, **self.entries}
            self._lookup = {k.casefold(): v for k, v in everything.items()}
            keys = sorted(everything, key=len, reverse=True)
            parts = []
            for k in keys:
                p = re.escape(k)
                if k in self.places and k not in self.entries:
                    p = _PLACE_BEFORE + p + (_ONE_KANJI_PLACE_AFTER if len(k) == 1 else "")
                # Latin keys match whole words only, so "LINE" does not fire inside "ONLINE".
                if re.match(r"[A-Za-z0-9]", k):
                    p = r"(?<![A-Za-z0-9])" + p
                if re.search(r"[A-Za-z0-9.]$", k):
                    p += r"(?![A-Za-z])"
                parts.append(p)
            self._pattern = re.compile("|".join(parts), re.IGNORECASE)
        return self._pattern

    def pattern(self) -> re.Pattern[str] | None:
        """The compiled written forms, longest first, with the place-name guards: the screen
        uses it to show the same readings as furigana."""
        return self._compile()

    def reading_of(self, written: str) -> str:
        """The reading of a written form the pattern matched."""
        self._compile()
        return self._lookup.get(written.casefold(), "")

    def apply(self, text: str) -> str:
        pattern = self._compile()
        if pattern is None:
            return text
        return pattern.sub(lambda m: self._lookup[m.group(0).casefold()], text)


def _read_tsv(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ReadingsError(_("reading dictionary {file} does not exist").format(file=path)) \
            from None
    except UnicodeDecodeError:
        raise ReadingsError(
            _("reading dictionary {file} is not UTF-8 text; save it as UTF-8 (not Shift_JIS)")
            .format(file=path)) from None
    entries: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        written = unicodedata.normalize("NFKC", cols[0].strip())
        reading = cols[1].strip() if len(cols) > 1 else ""
        if not written or not reading:
            raise ReadingsError(
                _("{file}:{line}: expected 'written form<TAB>reading', got {text!r}; separate "
                  "the two with a tab character").format(file=path, line=number, text=raw))
        entries[written] = reading
    return entries


class Speakable:
    """Turns answers into text written for the ear; kept separate from the voice so the
    readings can be tested as kana without synthesizing audio."""

    def __init__(self, settings: Settings | VoiceSettings | None = None,
                 readings: ReadingDictionary | None = None, *,
                 review_months: int | None = None,
                 today: Callable[[], date] = date.today):
        """Give the whole Settings so a staff readings_file resolves against the config's
        folder (and [content] review_months applies); a VoiceSettings alone resolves it
        against the current folder. `today` is the clock freshness is judged by."""
        self.settings = settings.voice if isinstance(settings, Settings) else (
            settings or VoiceSettings())
        if review_months is None:
            review_months = (settings.content if isinstance(settings, Settings)
                             else ContentSettings()).review_months
        self.review_months = review_months
        self.today = today
        self.readings = readings if readings is not None else ReadingDictionary.for_settings(
            settings)
        self._rules: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = _RULES

    # --- what to say ----------------------------------------------------------------------

    def for_entry(self, entry: Entry) -> str:
        """The entry's own `spoken` text, else a short summary of its body; plus its source."""
        text = entry.spoken.strip() or self.summary(entry.body) or entry.title
        if entry.source and entry.status != "unverified":  # unverified: its text says so
            source = entry.source.strip().removeprefix("出典:").removeprefix("出典：").strip()
            text = f"{text.rstrip()}\n出典は、{source}です。"
        if stale(entry, self.review_months, self.today()):
            text = f"{text.rstrip()}\n{AS_OF_SENTENCE.format(month=as_of(entry))}"
        return self.normalise(text)

    def for_answer(self, answer: Answer) -> str:
        """What the kiosk says for each kind of answer: read it, ask back, or admit it."""
        if answer.kind is AnswerKind.CONFIDENT and answer.best is not None:
            return self.for_entry(answer.best.entry)
        if answer.kind is AnswerKind.UNSURE and answer.candidates:
            text = answer.ask_back
            others = [answer.topic(1)] if len(answer.choices) > 1 else []
            if others:
                text += f"それとも、{others[0]}についてですか？"
            return self.normalise(text)
        offer = "、".join(answer.suggestions[:4])
        text = "すみません。お答えが見つかりませんでした。"
        if offer:
            text += f"\n{offer}などについて、聞いてみてください。"
        return self.normalise(text)

    def summary(self, body: str) -> str:
        """First sentences of the body, without URLs, tables or list markup."""
        kept: list[str] = []
        for line in body.splitlines():
            line = line.strip()
            if line.count("|") >= 2 or re.fullmatch(r"[-=:|\s]+", line or "-"):
                continue  # a table row or a rule line: nothing a listener can follow
            line = re.sub(r"^#+\s*|^[-*+・●○■□◆◇]\s*|^\d+[.)]\s+", "", line)
            line = _strip_links(line)
            if line:
                kept.append(line if line[-1] in _SENTENCE_END + "、" else line + "。")
        sentences = split_sentences("".join(kept))
        out: list[str] = []
        total = 0
        for s in sentences[: self.settings.summary_max_sentences]:
            if out and total + len(s) > self.settings.summary_max_chars:
                break
            out.append(s)
            total += len(s)
        return "".join(out)

    # --- how to say it --------------------------------------------------------------------

    def normalise(self, text: str) -> str:
        """Rewrite for Open JTalk; the result has one segment per line, none over
        sentence_max_chars unless it has no comma to split at."""
        text = unicodedata.normalize("NFKC", text)
        text = _strip_links(text)
        text = self.readings.apply(text)
        for pattern, repl in self._rules:
            text = pattern.sub(repl, text)
        segments: list[str] = []
        for sentence in split_sentences(text):
            segments.extend(_split_long(sentence, self.settings.sentence_max_chars))
        return "\n".join(segments)


_LINK = r"(?:https?://|www\.)[^\s、。「」()（）]+"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"


def _strip_links(text: str) -> str:
    """Addresses cannot be followed by ear: "see <URL>" becomes "see the website"."""
    text = re.sub(rf"(?:URL|ＵＲＬ|ホームページ)\s*[:：]\s*(?={_LINK})", "", text, flags=re.I)
    text = re.sub(rf"{_LINK}\s*(?=[をでにからはの])", "ホームページ", text)
    text = re.sub(_LINK, "", text)
    text = re.sub(rf"(?:E-?mail|Eメール|メール|mail)\s*[:：]\s*{_EMAIL}", "", text, flags=re.I)
    text = re.sub(_EMAIL, "", text)
    return re.sub(r"[(（]\s*[)）]", "", text)


def _split_long(sentence: str, limit: int) -> list[str]:
    """Split at the comma nearest the middle until every piece fits (or has no comma)."""
    if len(sentence) <= limit:
        return [sentence]
    commas = [i for i, c in enumerate(sentence[:-1]) if c == "、"]
    if not commas:
        return [sentence]
    mid = len(sentence) / 2
    cut = min(commas, key=lambda i: abs(i + 1 - mid)) + 1
    return _split_long(sentence[:cut], limit) + _split_long(sentence[cut:], limit)


# --- the rewrite rules, in order ------------------------------------------------------------

def _phone(m: re.Match[str]) -> str:
    return _digit_groups(g for g in m.groups())


def _bare_phone(m: re.Match[str]) -> str:
    d = m.group(0)
    groups = (d[:4], d[4:7], d[7:]) if d.startswith(("0120", "0800")) else (d[:3], d[3:6], d[6:])
    return _digit_groups(groups)


def _time(m: re.Match[str]) -> str:
    h, mi = int(m.group(1)), int(m.group(2))
    if h > 30 or mi > 59:
        return m.group(0)
    return f"{h}時" if mi == 0 else f"{h}時{mi}分"


def _date(m: re.Match[str]) -> str:
    y, mo, d = (int(x) for x in m.group(1, 2, 3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return f"{y}年{mo}月{d}日"


def _era_date(m: re.Match[str]) -> str:
    era, y, mo, d = m.group(1).upper(), int(m.group(2)), int(m.group(3)), int(m.group(4))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return f"{_ERAS[era]}{y}年{mo}月{d}日"


def _month_day(m: re.Match[str]) -> str:
    mo, d = int(m.group(1)), int(m.group(2))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m.group(0)
    return f"{mo}月{d}日"


def _weekday_parens(m: re.Match[str]) -> str:
    days = [_day_word(c) for c in re.findall(rf"[{_WEEKDAYS}祝]", m.group(1))]
    return "日、" + "、".join(days) if days else m.group(0)


def _day_word(c: str) -> str:
    return "祝日" if c == "祝" else f"{c}曜日"


def _spell(m: re.Match[str]) -> str:
    return "".join(_LETTER_KANA[c] for c in m.group(0))


_WD = rf"[{_WEEKDAYS}]"
_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # NFKC turned the full-width commas of already-read digit groups into ","; restore them.
    (re.compile(r"(?<=[ァ-ヴー]),(?=[ァ-ヴー])"), "，"),
    # Spaces between Japanese words are pauses on screen; make them pauses in speech.
    (re.compile(r"(?<=[^\x00-\x7f])[ \t\u3000]+(?=\S)|(?<=\S)[ \t\u3000]+(?=[^\x00-\x7f])"),
     "、"),
    # Postal codes: 〒243-8511 → 郵便番号、ニーヨンサン、ハチゴーイチイチ
    (re.compile(r"〒\s*(\d{3})-?(\d{4})(?!\d)"),
     lambda m: "郵便番号、" + _digit_groups(m.groups()) + "、"),
    # Dates before phone numbers and times: 2025-04-01, 2025/4/1, R7.4.1
    (re.compile(r"(?<![\d.])([RHS])\s?(\d{1,2})\.(\d{1,2})\.(\d{1,2})(?![\d.])", re.I), _era_date),
    (re.compile(r"(?<![A-Za-z])([RHS])(\d{1,2})(?=年)"), lambda m: _ERAS[m.group(1)] + m.group(2)),
    (re.compile(r"(?<![\d/.-])(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?![\d/.-])"), _date),
    # Phone numbers: 046-223-1511, (046)223-1511, 0462231511, 内線123, #7119
    (re.compile(r"(?<![\d-])\(?(0\d{1,4})\)?[-(]?\s?(\d{1,4})\)?-(\d{3,4})(?![\d-])"), _phone),
    (re.compile(r"(?<![\d,])0\d{9,10}(?![\d,])"), _bare_phone),
    (re.compile(r"内線\s*(\d+)"), lambda m: "内線、" + digits_kana(m.group(1))),
    (re.compile(r"#\s?(\d{3,5})"), lambda m: "シャープ、" + digits_kana(m.group(1))),
    (_SERVICE_NUMBER, lambda m: digits_kana(m.group(1))),
    (re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])"), _month_day),
    # Weekdays: 4月1日(火) → 4月1日、火曜日; 土・日・祝 → 土曜、日曜、祝日; 月〜金 → 月曜から金曜
    (re.compile(rf"日\s*\(((?:{_WD}|祝)(?:曜日?)?(?:[・,、]\s*(?:{_WD}|祝)(?:曜日?)?)*)\)"),
     _weekday_parens),
    (re.compile(rf"(?<![\d一-龥])({_WD})(?:曜日?)?\s*[〜~-]\s*({_WD})(?:曜日?)?(?![一-龥])"),
     r"\1曜日から\2曜日"),
    (re.compile(rf"(?<![一-龥])({_WD})(?=・)"), r"\1曜日"),
    (re.compile(rf"(?<=・)({_WD})(?![一-龥])"), r"\1曜日"),
    (re.compile(r"(?<=・)祝(?![一-龥])"), "祝日"),
    # Times: 8:30 → 8時30分 (Open JTalk says ハチジサンジュップン), 10:00 → 10時
    (re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])"), _time),
    # Money and plain numbers: ¥1,500 → 1500円; thousands separators go
    (re.compile(r"[¥￥]\s*(\d[\d,]*)"), r"\1円"),
    (re.compile(r"(?<=\d),(?=\d{3}(?!\d))"), ""),
    (re.compile(r","), "、"),
    # Floors and areas: 2F → 2階, B1F → 地下1階, 30m2 → 30平方メートル
    (re.compile(r"(?<![A-Za-z])B(\d{1,2})F(?![A-Za-z])"), r"地下\1階"),
    (re.compile(r"(?<=\d)F(?![A-Za-z])"), "階"),
    (re.compile(r"(?<=\d)\s?m2(?![A-Za-z0-9])"), "平方メートル"),
    # Ranges: 〜 (any tilde or a dash between numbers/times) → から
    (re.compile(r"\s*[〜~]\s*"), "から"),
    (re.compile(r"(?<=[時分日円曜])\s*-\s*(?=\d)"), "から"),
    # Symbols read as pauses or words, and marks that are only decoration
    (re.compile(r"[※＊*★☆●○◎■□◆◇▲△▼▽♪♫]"), ""),
    (re.compile(r"\s*[→⇒|/]\s*"), "、"),
    (re.compile(r"\s*&\s*"), "アンド"),
    (re.compile(r"[(（]"), "、"),
    (re.compile(r"[)）]"), "、"),
    (re.compile(r"!"), "！"),
    (re.compile(r"\?"), "？"),
    (re.compile(r":(?!\d)"), "、"),
    (re.compile(r"・"), "、"),
    # Block numbers of addresses: 中町3-17-17 → 中町3の17の17
    (re.compile(r"(?<=\d)-(?=\d)"), "の"),
    # Abbreviations Open JTalk would skip: QR → キューアール
    (re.compile(r"(?<![A-Za-z])[A-Z]{2,3}(?![A-Za-z])"), _spell),
    # Tidy the pauses the rules above may have doubled.
    (re.compile(r"、{2,}"), "、"),
    (re.compile(r"、(?=[。！？\n]|$)"), ""),
    (re.compile(r"(?:(?<=^)|(?<=\n))、"), ""),
]
