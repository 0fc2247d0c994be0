"""The content record every stage downstream of content reads: one answerable entry.

Plain data, no parsing and no engine, so the index, the answer stage and the voice can
take entries without importing the staff file formats. The freshness helpers (stale, as_of,
review_list) judge an entry by its `checked` date against [content] review_months.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from kiosk.i18n import _


@dataclass(frozen=True)
class Entry:
    """One answerable piece of city information."""

    id: str
    title: str  # the question or name it answers
    body: str  # the full answer text
    spoken: str = ""  # short answer written to be read aloud; "" = derive from body
    category: str = ""
    keywords: tuple[str, ...] = ()  # extra search words / synonyms
    source: str = ""  # attribution, shown and spoken with the answer
    updated: str = ""  # ISO date of the last change
    address: str = ""
    phone: str = ""
    hours: str = ""
    office: str = ""  # id of the office that handles it (offices table); "" = none named
    source_url: str = ""  # the page the facts come from
    checked: str = ""  # ISO date the facts were checked against that page (its 更新日)
    status: str = ""  # "verified" | "unverified" | "" (not reviewed)
    lat: float | None = None
    lon: float | None = None


# ---------------------------------------------------------------- freshness (review_months)


def _checked_date(entry: Entry) -> date | None:
    try:
        return date.fromisoformat(entry.checked) if entry.checked else None
    except ValueError:
        return None


def _months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31,
            30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(day.day, last))


def stale(entry: Entry, months: int, today: date | None = None) -> bool:
    """Whether the entry was checked more than `months` ago ([content] review_months).
    An entry never checked is not called stale here: review_list puts it first anyway."""
    checked = _checked_date(entry)
    return checked is not None and checked < _months_before(today or date.today(), months)


def checked_date_text(entry: Entry) -> str:
    """「2022年9月1日」: the `checked` date as people read it (screen, staff desk, CLI)."""
    checked = _checked_date(entry)
    return f"{checked.year}年{checked.month}月{checked.day}日" if checked else ""


#: What a stale answer ends with, spoken and shown: the month its facts were checked.
AS_OF_SENTENCE = "この情報は{month}時点のものです。"


def as_of(entry: Entry) -> str:
    """「2024年10月」: the month the facts were checked, for 「この情報は…時点のものです。」."""
    checked = _checked_date(entry)
    return f"{checked.year}年{checked.month}月" if checked else ""


@dataclass(frozen=True)
class ReviewItem:
    """One line of the review list: the entry and why it needs looking at."""

    entry: Entry
    stale: bool
    unverified: bool
    unchecked: bool

    @property
    def needs_review(self) -> bool:
        return self.stale or self.unverified or self.unchecked

    @property
    def reasons(self) -> str:
        parts = [text for flag, text in ((self.unchecked, _("no checked date")),
                                         (self.stale, _("stale")),
                                         (self.unverified, _("unverified"))) if flag]
        return _(", ").join(parts)


def review_list(entries: Iterable[Entry], months: int,
                today: date | None = None) -> list[ReviewItem]:
    """Entries in the order staff should re-check them: stale or unverified first, then
    those with no `checked` date, then the rest; oldest `checked` date first in each group."""
    items = [ReviewItem(e, stale(e, months, today), e.status == "unverified", not e.checked)
             for e in entries]

    def order(i: ReviewItem) -> tuple[int, str, str]:
        group = 0 if i.stale or i.unverified else 1 if i.unchecked else 2
        return group, i.entry.checked, i.entry.id

    return sorted(items, key=order)


#: The category of a site's building guide (kiosk/data/site_guide.jsonl): where things are in
#: the building the kiosk stands in (トイレ, 窓口, エレベーター, 駐車場, 出口, 職員). Its entries
#: answer "where is … here" questions first (kiosk/answer/composer.py).
SITE_GUIDE_CATEGORY = "館内案内"
