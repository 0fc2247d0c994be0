#!/usr/bin/env python3
"""Turn Atsugi city's open shelter data (GeoJSON from 国土地理院, copied into
kiosk/data/atsugi/) into kiosk content entries (JSON Lines), so the default index answers
「近くの避難所は」「洪水のときの避難場所」「〇〇中学校は避難所ですか」.

Why a converter and a committed output: the kiosk must answer without network or build
steps on first run, and staff must be able to read what is bundled. Re-run this whenever the
GeoJSON files are refreshed:

    python3 tools/convert_atsugi.py            # writes kiosk/data/atsugi_shelters.jsonl

A site that is both a designated shelter (指定避難所) and an emergency evacuation site
(指定緊急避難場所) becomes one entry: the two files share the first 11 characters of 共通ID.
Every entry carries the attribution the data's README requires.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT / "kiosk" / "data" / "atsugi"
DEFAULT_OUT = ROOT / "kiosk" / "data" / "atsugi_shelters.jsonl"
SHELTERS_FILE = "designated_shelters_142123.json"
SITES_FILE = "emergency_evacuation_sites_142123.json"

#: Exactly as kiosk/data/atsugi/README.md requires.
ATTRIBUTION = "出典：国土地理院 指定緊急避難場所データ"
DATA_DATE = "2025-10-27"
CATEGORY = "防災"
CITY_PREFIX = "神奈川県厚木市"
CITY_PHONE = "046-223-1511"

#: Hazard flag in the data → (plain name for display and speech, id slug, extra search words).
HAZARDS: "OrderedDict[str, tuple[str, str, tuple[str, ...]]]" = OrderedDict([
    ("洪水", ("洪水", "flood", ("大雨", "台風", "浸水", "水害", "川の氾濫"))),
    ("崖崩れ、土石流及び地滑り", ("がけ崩れなどの土砂災害", "landslide",
                          ("土砂災害", "がけ崩れ", "崖崩れ", "土砂崩れ",
                           "土石流", "地滑り", "地すべり"))),
    ("高潮", ("高潮", "storm-surge", ())),
    ("地震", ("地震", "earthquake", ("揺れ", "震災"))),
    ("津波", ("津波", "tsunami", ())),
    ("大規模な火事", ("大きな火事", "fire", ("火事", "火災", "大火事"))),
    ("内水氾濫", ("内水氾濫", "inland-flood", ("内水", "浸水", "道路の冠水"))),
    ("火山現象", ("火山", "volcano", ("噴火", "火山灰"))),
])

#: What kind of place a name is, for search words a visitor may say instead of the full name.
KINDS = (
    ("中学校", ("中学校", "中学")),
    ("小学校", ("小学校", "小学")),
    ("高校", ("高校", "高等学校")),
    ("大学", ("大学",)),
    ("児童館", ("児童館",)),
    ("老人憩の家", ("老人憩の家", "憩いの家")),
    ("公民館", ("公民館",)),
    ("公園", ("公園",)),
)


class ConvertError(Exception):
    """Input that cannot be converted; the message names the file and the problem."""


def _load(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConvertError(f"{path}: file not found; copy it from the city's open data") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path}: not valid UTF-8 GeoJSON ({exc})") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise ConvertError(f"{path}: no 'features' list; expected a GeoJSON FeatureCollection")
    for n, feature in enumerate(features, 1):
        props = feature.get("properties") or {}
        for key in ("共通ID", "施設・場所名", "住所"):
            if not props.get(key):
                raise ConvertError(f"{path}: feature {n} has no '{key}'")
    return features


def _site_key(props: dict) -> str:
    """The parts of 共通ID that name the place: E + area code + place group (11 characters)
    and the facility number (last digit); the two digits between say shelter (11) or
    evacuation site (20), so a shelter …0004111 and a site …0004201 are the same place."""
    common_id = str(props["共通ID"])
    return common_id[:11] + common_id[13:]


def _short_address(address: str) -> str:
    return address[len(CITY_PREFIX):] if address.startswith(CITY_PREFIX) else address


def _town(address: str) -> str:
    """The town (町名) of an address, e.g. 愛甲西 from 神奈川県厚木市愛甲西1-17-1."""
    return re.split(r"[0-9０-９]", _short_address(address), maxsplit=1)[0].strip()


def _kind_words(name: str) -> list[str]:
    for suffix, words in KINDS:
        if suffix in name:
            base = name.split(suffix)[0]
            out = list(words)
            if base and base != name:
                out.append(base)
            return out
    return []


def _hazards(props: dict) -> list[str]:
    return [flag for flag in HAZARDS if str(props.get(flag) or "") == "1"]


def _coords(feature: dict) -> tuple[float | None, float | None]:
    coords = (feature.get("geometry") or {}).get("coordinates") or []
    if len(coords) >= 2:
        return round(float(coords[1]), 6), round(float(coords[0]), 6)
    return None, None


def _site_entry(key: str, shelter: dict | None, site: dict | None) -> dict:
    feature = shelter or site
    assert feature is not None
    props = feature["properties"]
    name = props["施設・場所名"]
    address = props["住所"]
    short = _short_address(address)
    hazards = _hazards(site["properties"]) if site else []
    hazard_names = [HAZARDS[h][0] for h in hazards]
    lat, lon = _coords(feature)

    if shelter and site:
        roles = "指定避難所・指定緊急避難場所"
        first = (f"{name}は、厚木市の指定避難所です。"
                 f"災害のときに急いで逃げる指定緊急避難場所でもあります。")
        spoken_first = f"{name}は、指定避難所です。"
    elif shelter:
        roles = "指定避難所"
        first = f"{name}は、厚木市の指定避難所です。"
        spoken_first = f"{name}は、指定避難所です。"
    else:
        roles = "指定緊急避難場所"
        first = (f"{name}は、厚木市の指定緊急避難場所です。"
                 f"災害のときに、命を守るために急いで逃げる場所です。"
                 f"ここは、しばらくくらす指定避難所ではありません。")
        spoken_first = f"{name}は、指定緊急避難場所です。"

    parts = [first, f"住所は、{short}です。"]
    if hazard_names:
        parts.append(f"避難場所として使える災害は、{'、'.join(hazard_names)}です。")
        missing = [HAZARDS[h][0] for h in ("洪水",) if h not in hazards]
        if missing:
            parts.append(f"{'、'.join(missing)}のときの避難場所には、指定されていません。")
    parts.append("避難所が開いているかどうかは、災害のときに市が知らせます。"
                 f"くわしくは市役所（代表 {CITY_PHONE}）へお問い合わせください。")
    parts.append(f"（{ATTRIBUTION}、{DATA_DATE}時点）")

    spoken = spoken_first + f"住所は、厚木市{short}です。"
    if hazard_names:
        spoken += f"{'、'.join(hazard_names)}のときに使えます。"

    keywords = ["避難所", "避難場所", "避難", "防災"]
    keywords += ["指定避難所"] if shelter else []
    keywords += ["指定緊急避難場所", "緊急避難場所"] if site else []
    town = _town(address)
    if town:
        keywords.append(town)
    keywords += _kind_words(name)
    if site and shelter and site["properties"]["施設・場所名"] != name:
        keywords.append(site["properties"]["施設・場所名"])
    # Only the hazard names: their many synonyms stay on the per-hazard overview entries, so
    # 「台風のときの避難場所」 finds the list rather than one of a hundred equal sites.
    keywords += hazard_names

    return {
        "id": f"shelter-{key}",
        "title": f"{name}（{roles}）",
        "body": "".join(parts),
        "spoken": spoken,
        "category": CATEGORY,
        "keywords": list(dict.fromkeys(keywords)),
        "source": ATTRIBUTION,
        "updated": DATA_DATE,
        "address": address,
        "phone": CITY_PHONE,
        "lat": lat,
        "lon": lon,
    }


def _listing(items: list[tuple[str, str]]) -> str:
    """Names grouped by town, one line per town, so a long list stays readable on screen."""
    by_town: "OrderedDict[str, list[str]]" = OrderedDict()
    for name, address in sorted(items, key=lambda item: (_town(item[1]), item[0])):
        by_town.setdefault(_town(address) or "その他", []).append(name)
    return "\n".join(f"・{town}：{'、'.join(names)}" for town, names in by_town.items())


def _overview_entries(shelters: list[dict], sites: list[dict]) -> list[dict]:
    tail = (f"\nくわしくは市役所（代表 {CITY_PHONE}）へお問い合わせください。"
            f"\n（{ATTRIBUTION}、{DATA_DATE}時点）")
    out = []
    shelter_items = [(f["properties"]["施設・場所名"], f["properties"]["住所"]) for f in shelters]
    out.append({
        "id": "shelters-designated-list",
        "title": "近くの避難所はどこですか（指定避難所の一覧）",
        "body": (f"厚木市の指定避難所は{len(shelters)}か所です。多くは小学校と中学校です。"
                 "家に住めなくなったとき、しばらくくらす場所です。"
                 "近くの学校の名前を言うと、住所と使える災害を案内します。\n"
                 + _listing(shelter_items) + tail),
        "spoken": (f"厚木市の指定避難所は{len(shelters)}か所で、多くは小学校と中学校です。"
                   "近くの学校の名前を言うと、くわしく案内します。"),
        "category": CATEGORY,
        "keywords": ["避難所", "近くの避難所", "一覧", "指定避難所",
                     "避難所の場所", "避難所はどこ", "学校", "小学校", "中学校"],
        "source": ATTRIBUTION,
        "updated": DATA_DATE,
        "phone": CITY_PHONE,
    })
    for flag, (plain, slug, words) in HAZARDS.items():
        valid = [f for f in sites if str(f["properties"].get(flag) or "") == "1"]
        if not valid:
            continue  # no site is designated for this hazard in Atsugi (e.g. 津波, 高潮)
        items = [(f["properties"]["施設・場所名"], f["properties"]["住所"]) for f in valid]
        out.append({
            "id": f"evacuation-{slug}",
            "title": f"{plain}のときの避難場所の一覧",
            "body": (f"{plain}のときに使える厚木市の指定緊急避難場所は{len(valid)}か所です。"
                     "災害のときに、命を守るために急いで逃げる場所です。"
                     "場所の名前を言うと、住所を案内します。\n" + _listing(items) + tail),
            "spoken": (f"{plain}のときに使える避難場所は、市内に{len(valid)}か所あります。"
                       "近くの学校や公民館の名前を言うと、くわしく案内します。"),
            "category": CATEGORY,
            "keywords": list(dict.fromkeys(
                [plain, *words, "避難場所", "避難所", "一覧", "逃げる", "指定緊急避難場所", f"{plain}のとき"])),
            "source": ATTRIBUTION,
            "updated": DATA_DATE,
            "phone": CITY_PHONE,
        })
    return out


def convert(src: Path) -> list[dict]:
    """All entries for the shelter data in folder `src`, in a stable order."""
    shelters = _load(src / SHELTERS_FILE)
    sites = _load(src / SITES_FILE)
    shelter_by_key = {_site_key(f["properties"]): f for f in shelters}
    site_by_key = {_site_key(f["properties"]): f for f in sites}
    if len(shelter_by_key) != len(shelters) or len(site_by_key) != len(sites):
        raise ConvertError(f"{src}: two features share one 共通ID place code; check the data")
    keys = list(dict.fromkeys([*shelter_by_key, *site_by_key]))
    entries = _overview_entries(shelters, sites)
    entries += [_site_entry(k, shelter_by_key.get(k), site_by_key.get(k)) for k in sorted(keys)]
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC,
                        help=f"folder with the two GeoJSON files (default: {DEFAULT_SRC})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"JSON Lines file to write (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        entries = convert(args.src)
    except ConvertError as exc:
        print(f"convert_atsugi: {exc}", file=sys.stderr)
        return 2
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(entries)} entries to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
