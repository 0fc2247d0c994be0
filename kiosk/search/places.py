"""Places stage: 「荻野の近くの避難所は」「この近くの避難場所」 answered from positions, not words.

A word search gives the whole 48-shelter list for 「荻野の近くの避難所」, and ranks sites by
how often their text says 荻野. In a disaster the question is "where do I go from here", and
the shipped GSI data has every site's position and the hazards it is valid for. This stage
finds the place a question names (a town, a district, a station, a facility, or この近く =
the kiosk's own [site]), what kind of place is asked for (指定避難所: a place to stay;
指定緊急避難場所: where to flee, per hazard; 公民館, 小学校 …) and the hazard, and hands the
answer stage plain records: every suitable site, nearest first, with its distance.

Positions: sites from content entries that carry lat/lon; named places from the gazetteer
(kiosk/data/gazetteer.tsv, tools/make_gazetteer.py). Names also match by their reading, so a
place heard in kana (ぬるみず, なかちょう) meets its kanji (kiosk/data/place_readings.tsv).

CONTRACT:
    Place, NearbySite, NearbyRequest      — the records the answer stage composes from
    PlaceFinder(entries, site: SiteSettings, gazetteer=None)
    PlaceFinder.find(question: str) -> NearbyRequest | None   — None: not a "near X" question
    PlaceFinder.cached(entries, site, key)                     — one finder per index version
    PlaceNames.bundled().write_kanji(text) -> str              — kana place names → kanji
    distance_m(a, b) -> float                                   — straight line, metres
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kiosk import DATA_DIR
from kiosk.config import SiteSettings
from kiosk.content.contract import Entry
from kiosk.search.analysis import unfold_kana

GAZETTEER = DATA_DIR / "gazetteer.tsv"
PLACE_READINGS = DATA_DIR / "place_readings.tsv"

SHELTER = "指定避難所"  # a place to stay when home is lost
EVACUATION = "指定緊急避難場所"  # where to flee from a given hazard

#: Hazard names as the content says them (tools/convert_atsugi.py) → words a visitor uses.
HAZARD_WORDS: dict[str, tuple[str, ...]] = {
    "洪水": ("洪水", "大雨", "台風", "浸水", "水害", "氾濫", "こうずい", "おおあめ", "たいふう"),
    "がけ崩れなどの土砂災害": ("土砂", "がけ崩れ", "崖崩れ", "土石流", "地滑り", "地すべり",
                        "山崩れ", "どしゃ", "がけくずれ"),
    "地震": ("地震", "揺れ", "震災", "じしん"),
    "大きな火事": ("火事", "火災", "かじ", "かさい"),
    "内水氾濫": ("内水",),
    "津波": ("津波", "つなみ"),
    "高潮": ("高潮",),
    "火山": ("火山", "噴火"),
}
#: Words that ask for a place to stay (指定避難所) or a place to flee to (指定緊急避難場所).
_SHELTER_WORDS = ("避難所", "ひなんじょ", "避難する所", "避難する場所")
_EVACUATION_WORDS = ("避難場所", "ひなんばしょ", "緊急避難", "逃げる", "逃げ", "にげる", "にげ")
#: Kinds of facility that have positions in the content (their names end so).
_FACILITY_KINDS = ("公民館", "図書館", "児童館", "小学校", "中学校", "高校", "公園", "老人憩の家")
#: Words that make "near" explicit; without a place named they mean the kiosk's own site.
_NEAR = re.compile(r"近く|近い|ちかく|ちかい|最寄|もより|そば|周辺|付近|まわり|周り")
_HERE = re.compile(r"この近く|ここ|この辺|このへん|この建物|この周り|このまわり|こちら|この付近")
#: 「〇〇の近く」: something named before "near" (the kiosk's own place is この近く).
_NAMED_NEAR = re.compile(r"([^\s、。]+?)の(?:近く|近い|ちかく|そば|周辺|付近|まわり|周り|最寄)")
_KANJI = re.compile(r"[一-龥々〆ヵヶ]")
_AFTER_ONE_KANJI = ("地区", "公民館", "小学校", "中学校", "児童館", "駅")
_ROLES = re.compile(r"[（(]([^（）()]*)[）)]\s*$")
_CITY_PREFIX = re.compile(r"^(?:神奈川県)?(?:厚木市)?")


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres (the haversine formula; plenty at city scale)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + \
        math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371000.0 * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True)
class Place:
    """A named place with a position: where the visitor means to measure from."""

    name: str
    kind: str  # "town", "district", "station", "facility", "site" or "here"
    lat: float
    lon: float
    reading: str = ""  # katakana
    source: str = ""

    @property
    def position(self) -> tuple[float, float]:
        return (self.lat, self.lon)


@dataclass(frozen=True)
class NearbySite:
    """One candidate destination, with how far it is from the place asked about."""

    entry_id: str
    name: str
    town: str
    address: str
    roles: tuple[str, ...]  # SHELTER and/or EVACUATION
    hazards: tuple[str, ...]  # hazards it is an evacuation site for (content's names)
    distance_m: float
    source: str = ""


@dataclass(frozen=True)
class NearbyRequest:
    """A question asking for the nearest places of a kind, with every suitable one."""

    question: str
    origin: Place
    kind: str  # SHELTER, EVACUATION or a facility kind such as "公民館"
    hazard: str  # "" or one of HAZARD_WORDS' keys
    sites: tuple[NearbySite, ...]  # every suitable site, nearest first


@dataclass(frozen=True)
class _Site:
    entry: Entry
    name: str
    town: str
    roles: tuple[str, ...]
    hazards: tuple[str, ...]


def _site_of(entry: Entry) -> _Site | None:
    if entry.lat is None or entry.lon is None:
        return None
    match = _ROLES.search(entry.title)
    name = entry.title[:match.start()].strip() if match else entry.title.strip()
    roles_text = match.group(1) if match else ""
    keywords = set(entry.keywords)
    roles = tuple(r for r in (SHELTER, EVACUATION) if r in roles_text or r in keywords)
    hazards = tuple(h for h in HAZARD_WORDS if h in keywords)
    address = _CITY_PREFIX.sub("", entry.address.strip())
    town = re.split(r"[0-9０-９]", address, maxsplit=1)[0].strip()
    return _Site(entry, name, town, roles, hazards)


@dataclass(frozen=True)
class _Name:
    """A way a place can be said: its written name or its reading in hiragana."""

    text: str
    place: Place
    by_reading: bool


def load_gazetteer(path: Path = GAZETTEER, *, unplaced: bool = False) -> list[Place]:
    """The places of kiosk/data/gazetteer.tsv that have a position; with `unplaced`, also
    those without one (lat/lon NaN), so a question naming them is not taken for "here"."""
    places: list[Place] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("kind\t"):
            continue
        cols = line.split("\t")
        if len(cols) < 7:
            continue
        if not (cols[4] and cols[5]):
            if unplaced:
                places.append(Place(cols[1], cols[0], math.nan, math.nan, cols[2], cols[6]))
            continue
        places.append(Place(cols[1], cols[0], float(cols[4]), float(cols[5]), cols[2], cols[6]))
    return places


class PlaceFinder:
    """Finds "near X" questions and the suitable sites nearest to X."""

    _cache_lock = threading.Lock()
    _cache: dict[object, PlaceFinder] = {}

    def __init__(self, entries: Iterable[Entry], site: SiteSettings,
                 gazetteer: Sequence[Place] | None = None):
        self.site = site
        self.here = Place(site.name, "here", site.lat, site.lon, source="[site] の設定")
        self.sites = [s for s in (_site_of(e) for e in entries) if s is not None]
        places = list(gazetteer if gazetteer is not None else load_gazetteer(unplaced=True))
        names: list[_Name] = []
        for p in places:
            names.append(_Name(p.name, p, False))
            if p.kind == "district":  # 荻野地区 is also said 荻野
                names.append(_Name(p.name.removesuffix("地区"), p, False))
            if p.kind == "station":  # 本厚木駅 is also said 本厚木
                names.append(_Name(p.name.removesuffix("駅"), p, False))
            city_stem = site.city.removesuffix("市")
            if p.kind == "facility" and p.name.startswith(site.city):  # 厚木市役所 = 市役所
                names.append(_Name(p.name.removeprefix(city_stem), p, False))
            if p.reading and len(p.reading) >= 3:
                names.append(_Name(unfold_kana(p.reading), p, True))
                if p.kind == "district":
                    names.append(_Name(unfold_kana(p.reading).removesuffix("ちく"), p, True))
                if p.kind == "station":
                    names.append(_Name(unfold_kana(p.reading).removesuffix("えき"), p, True))
        for s in self.sites:  # a site can be where the visitor stands: 荻野小学校の近く
            names.append(_Name(s.name, Place(s.name, "site", s.entry.lat, s.entry.lon,
                                             source=s.entry.source), False))
        # A longer name beats any shorter one; of one name, a town beats the district named
        # after it (愛甲, 森の里: the town is the more precise place).
        rank = {"site": 0, "station": 1, "facility": 2, "town": 3, "district": 4}
        seen: dict[str, _Name] = {}
        for n in sorted(names, key=lambda n: (-len(n.text), rank.get(n.place.kind, 5))):
            seen.setdefault(n.text, n)
        self._names = sorted(seen.values(), key=lambda n: -len(n.text))

    @classmethod
    def cached(cls, entries_of, site: SiteSettings, key: object) -> PlaceFinder:
        """One finder per index version (`key`), built on first use from `entries_of()`."""
        with cls._cache_lock:
            finder = cls._cache.get((key, site))
            if finder is None:
                finder = cls(entries_of(), site)
                cls._cache.clear()
                cls._cache[(key, site)] = finder
            return finder

    # --- reading the question -------------------------------------------------------------

    def _kind(self, text: str) -> str:
        for kind in _FACILITY_KINDS:
            if kind in text:
                return kind
        if any(w in text for w in _EVACUATION_WORDS):
            return EVACUATION
        if any(w in text for w in _SHELTER_WORDS):
            return SHELTER
        return ""

    @staticmethod
    def _hazard(text: str) -> str:
        for hazard, words in HAZARD_WORDS.items():
            if any(w in text for w in words):
                return hazard
        return ""

    def _origin(self, text: str, kind: str) -> Place | None:
        """The place named in the question, or the kiosk's site for この近く; None when the
        question names no place and does not say "near", or names a place the kiosk does
        not know (「森林公園の近く」: the word search answers that, not "here")."""
        text = re.sub(rf"(?:{re.escape(self.site.prefecture)})?{re.escape(self.site.city)}"
                      r"(?!役所)", "", text)  # 厚木市中町 → 中町
        for n in self._names:
            at = text.find(n.text)
            if at < 0:
                continue
            end = at + len(n.text)
            before = text[at - 1] if at else ""
            if not n.by_reading and before and _KANJI.match(before) and before not in "市県":
                continue  # inside a longer word: 林 in 森林, 東町 in 坂東町
            if not n.by_reading and len(n.text) == 1 and end < len(text) and \
                    _KANJI.match(text[end]) and not text.startswith(_AFTER_ONE_KANJI, end):
                continue  # 林道 is no place; 林地区, 林の近く are
            if n.by_reading and end < len(text) and "ぁ" <= text[end] <= "ゖ" and \
                    not text.startswith(("の", "に", "で", "ち", "え", "から", "まで"), end):
                continue  # kana inside a longer kana word, not the place
            if n.place.kind == "site" and (kind in n.text or not _NEAR.search(text)):
                return None  # 「荻野小学校は避難所ですか」: a question about that site
            if math.isnan(n.place.lat):
                return None  # a place the kiosk knows no position of: the word search answers
            return n.place
        if _HERE.search(text):
            return self.here
        named = _NAMED_NEAR.search(text)
        if named and not _HERE.search(named.group(1)):
            return None
        if _NEAR.search(text):
            return self.here
        return None

    def find(self, question: str) -> NearbyRequest | None:
        text = unicodedata.normalize("NFKC", question).strip()
        kind = self._kind(text)
        if not kind:
            return None
        origin = self._origin(text, kind)
        if origin is None:
            return None
        hazard = self._hazard(text)
        suitable = [s for s in self.sites if self._suits(s, kind, hazard)]
        ranked = sorted(
            (NearbySite(s.entry.id, s.name, s.town, s.entry.address, s.roles, s.hazards,
                        distance_m(origin.position, (s.entry.lat, s.entry.lon)), s.entry.source)
             for s in suitable if s.name != origin.name),
            key=lambda n: n.distance_m)
        return NearbyRequest(question, origin, kind, hazard, tuple(ranked))

    @staticmethod
    def _suits(site: _Site, kind: str, hazard: str) -> bool:
        if kind in (SHELTER, EVACUATION):
            if hazard:  # fleeing from a named hazard: only sites designated for it
                return EVACUATION in site.roles and hazard in site.hazards
            return kind in site.roles
        return site.name.endswith(kind) or kind in site.name


class PlaceNames:
    """Place names by their reading, so a question heard in kana meets the kanji the content
    is written in (ぬるみずのひなんじょ → 温水のひなんじょ) before anything else reads it."""

    #: Readings this short are common words too (おの, はせ, とだ); only longer ones are swapped.
    MIN_KANA = 4

    def __init__(self, readings: dict[str, str]):
        by_kana: dict[str, list[str]] = {}
        for written, reading in readings.items():
            kana = unfold_kana(reading)
            if len(kana) >= self.MIN_KANA and kana != written:
                by_kana.setdefault(kana, []).append(written)
        self._kanji = {k: v[0] for k, v in by_kana.items() if len(v) == 1}
        keys = sorted(self._kanji, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, keys))) if keys else None

    @classmethod
    @lru_cache(maxsize=1)
    def bundled(cls) -> PlaceNames:
        readings: dict[str, str] = {}
        if PLACE_READINGS.is_file():
            for line in PLACE_READINGS.read_text(encoding="utf-8").splitlines():
                cols = line.split("\t")
                if not line.startswith("#") and len(cols) >= 2:
                    readings[cols[0]] = cols[1]
        return cls(readings)

    def split(self, text: str) -> list[tuple[str, bool]]:
        """`text` in pieces, each (piece, is a place name written in kanji): every place
        name heard in kana becomes its kanji; a reading inside a longer run of kana (not
        after a particle) is left alone."""
        if self._pattern is None:
            return [(text, False)] if text else []
        folded = unfold_kana(text)
        out: list[tuple[str, bool]] = []
        pos = 0
        for m in self._pattern.finditer(folded):
            before = folded[m.start() - 1] if m.start() else ""
            if before and "ぁ" <= before <= "ゖ" and before not in "のにでとはへもや":
                continue
            if m.start() > pos:
                out.append((text[pos:m.start()], False))
            out.append((self._kanji[m.group(0)], True))
            pos = m.end()
        if pos < len(text):
            out.append((text[pos:], False))
        return out

    def write_kanji(self, text: str) -> str:
        """`text` with every place name heard in kana written as its kanji."""
        return "".join(piece for piece, _ in self.split(text))


def walk_minutes(distance: float, metres_per_minute: float) -> int:
    """Walking time, rounded the way people say it: to 5 minutes, at least 5."""
    minutes = distance / max(1.0, metres_per_minute)
    return max(5, int(round(minutes / 5.0)) * 5)


__all__ = ["EVACUATION", "HAZARD_WORDS", "NearbyRequest", "NearbySite", "Place", "PlaceFinder",
           "PlaceNames", "SHELTER", "distance_m", "load_gazetteer", "walk_minutes"]
