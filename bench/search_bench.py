"""Search quality benchmark on the real localgovFAQ data (Amagasaki city FAQ, evaluation only).

    python3 bench/search_bench.py [--set key=value ...] [--no-synonyms] [--data DIR]

Indexes every FAQ (title = question, body = answer) through the same path `kiosk content
import` uses, runs the 375 dev queries typed, converted to all-hiragana, and with their
kanji nouns spelt in hiragana (two ways a speech recogniser returns words it is unsure of),
and prints hit@1, hit@10, MRR, query latency p50/p95, index
build time and how confidence separates right answers, wrong answers and off-topic questions.
`--set` overrides [search] settings (e.g. --set reading_weight=0, --set semantic=false for
words only) for ablations; see
docs/search.md for the recorded table. Tune on these dev queries only: the odd-numbered
queries are held out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=SyntaxWarning)
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kiosk import KioskError  # noqa: E402
from kiosk.config import SearchSettings, Settings  # noqa: E402
from kiosk.content.contract import Entry  # noqa: E402
from kiosk.search.index import SearchIndex, build_index  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "eval" / "localgovfaq"

#: Questions no city FAQ answers: the kiosk should say so (low confidence), not guess.
OFF_TOPIC = [
    "今日の天気はどうですか", "ピカチュウはどこにいますか", "おすすめのラーメン屋を教えて",
    "プロ野球の試合結果が知りたい", "東京タワーの高さは", "株価はいくらですか",
    "美味しいカレーの作り方", "宇宙人はいますか", "サッカーのワールドカップはいつですか",
    "ギターの弦の張り替え方", "好きな映画を教えて", "恐竜はなぜ絶滅したの",
    "ハワイ旅行のおすすめ", "スマホゲームの攻略法", "アイドルのコンサートのチケット",
    "ねこの名前を考えて", "じゃんけんしよう", "きょうのうんせいは",
    "富士山の高さを教えてください", "パソコンが壊れたので直してほしい",
]


def load_faq(folder: Path) -> tuple[list[Entry], dict[str, str], dict[str, set[str]]]:
    if not (folder / "corpus.json").is_file():
        raise KioskError(
            f"the localgovFAQ benchmark data is not at {folder}; it is expected in "
            "../shared/eval/localgovfaq next to the repository (corpus.json, "
            "queries_dev.json, qrels_dev.json), or pass --data DIR")
    corpus = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
    queries = json.loads((folder / "queries_dev.json").read_text(encoding="utf-8"))
    qrels = json.loads((folder / "qrels_dev.json").read_text(encoding="utf-8"))
    entries = []
    for doc_id, text in corpus.items():
        q, _, a = text.partition("\nAnswer:")
        entries.append(Entry(id=doc_id, title=q.removeprefix("Question:").strip(),
                             body=a.strip()))
    relevant = {qid: {d for d, grade in rel.items() if grade == 2} for qid, rel in qrels.items()}
    return entries, queries, relevant


def to_hiragana(text: str) -> str:
    """What a recogniser that gives up on kanji returns: the whole question in hiragana."""
    import pykakasi

    kks = to_hiragana.__dict__.setdefault("kks", pykakasi.kakasi())
    return "".join(item["hira"] for item in kks.convert(text))


def nouns_to_kana(text: str) -> str:
    """What a recogniser unsure of the content words returns: every noun written with kanji
    spelt in hiragana (「住民票はどこでとれますか」 → 「じゅうみんひょうはどこでとれますか」),
    the rest as typed."""
    import re

    from sudachipy import tokenizer

    from kiosk.search.analysis import (  # the kiosk's own Sudachi, loaded once
        _tokenizer,
        unfold_kana,
    )

    out = []
    for m in _tokenizer().tokenize(text, tokenizer.Tokenizer.SplitMode.C):
        surface = m.surface()
        if m.part_of_speech()[0] == "名詞" and re.search(r"[一-鿿々]", surface):
            out.append(unfold_kana(m.reading_form()))
        else:
            out.append(surface)
    return "".join(out)


def build(entries: list[Entry], root: Path, settings: Settings) -> tuple[SearchIndex, float]:
    """Publish through the same path `kiosk content import` uses (new index version, checked,
    swapped live) and open it the way the kiosk does; time the publish."""
    start = time.perf_counter()
    try:
        from kiosk.content.publishing import ContentPublisher
        from kiosk.search.versions import open_version
    except ImportError:  # publishing not available: index directly
        build_index(entries, root / "direct", settings)
        return SearchIndex.open(root / "direct", settings), time.perf_counter() - start
    result = ContentPublisher(settings, index_dir=root).publish_entries(entries, note="bench")
    seconds = time.perf_counter() - start
    return open_version(result.version.path, settings), seconds


def evaluate(ix: SearchIndex, queries: dict[str, str], relevant: dict[str, set[str]]):
    hit1 = hit10 = rr = 0.0
    latencies: list[float] = []
    right: list[float] = []
    wrong: list[float] = []
    counted = 0
    for qid, text in queries.items():
        gold = relevant.get(qid, set())
        start = time.perf_counter()
        hits = ix.search(text, limit=10)
        latencies.append(time.perf_counter() - start)
        if not gold:
            continue  # only "related" docs judged: cannot count a hit
        counted += 1
        ids = [h.entry.id for h in hits]
        rank = next((i for i, d in enumerate(ids) if d in gold), None)
        if rank is not None:
            hit10 += 1
            rr += 1 / (rank + 1)
            hit1 += rank == 0
        if hits:
            (right if rank == 0 else wrong).append(hits[0].confidence)
    return {"hit@1": hit1 / counted, "hit@10": hit10 / counted, "MRR": rr / counted,
            "n": counted, "latencies": latencies, "right": right, "wrong": wrong}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0.0


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    fields = {f.name: f for f in dataclasses.fields(SearchSettings)}
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in fields:
            raise KioskError(f"--set {pair}: unknown search setting; known: {', '.join(fields)}")
        default = getattr(SearchSettings(), key)
        if isinstance(default, bool):  # bool("false") is True
            if value.lower() not in ("true", "false", "1", "0"):
                raise KioskError(f"--set {pair}: {key} is true or false")
            out[key] = value.lower() in ("true", "1")
        else:
            out[key] = (tuple(v for v in value.split(",") if v) if isinstance(default, tuple)
                        else type(default)(value))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [search] setting (repeatable)")
    ap.add_argument("--no-synonyms", action="store_true", help="search without the table")
    ap.add_argument("--quick", action="store_true", help="typed queries only")
    args = ap.parse_args(argv)
    try:
        if not args.quick:
            try:
                import pykakasi  # noqa: F401
            except ImportError:
                raise KioskError("the all-hiragana run needs pykakasi: python3 -m pip install "
                                 "-e '.[bench]' (or run with --quick for typed queries only)"
                                 ) from None
        entries, queries, relevant = load_faq(args.data)
        search = dataclasses.replace(SearchSettings(), **parse_overrides(args.set))
    except KioskError as exc:
        print(f"search_bench: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(base_dir=Path(tmp), search=search)  # logs/state stay in tmp
        if args.no_synonyms:
            empty = Path(tmp) / "empty.tsv"
            empty.write_text("# no synonyms\n", encoding="utf-8")
            settings = dataclasses.replace(
                settings, content=dataclasses.replace(settings.content,
                                                      synonyms_file=str(empty)))
        try:
            ix, build_s = build(entries, Path(tmp) / "index", settings)
        except KioskError as exc:
            print(f"search_bench: {exc}", file=sys.stderr)
            return 2
        ix.search("ウォームアップ")  # load Sudachi before timing
        runs = {"typed": queries}
        if not args.quick:
            runs["hiragana"] = {qid: to_hiragana(t) for qid, t in queries.items()}
            runs["kana nouns"] = {qid: nouns_to_kana(t) for qid, t in queries.items()}
        print(f"localgovFAQ dev: {len(entries)} FAQs, {len(queries)} queries; "
              f"index build {build_s:.1f} s" + (f"; overrides {args.set}" if args.set else "")
              + ("; no synonyms" if args.no_synonyms else ""))
        print(f"{'queries':<10} {'hit@1':>6} {'hit@10':>7} {'MRR':>6} {'p50 ms':>7} {'p95 ms':>7}")
        all_right: list[float] = []
        all_wrong: list[float] = []
        for name, qs in runs.items():
            r = evaluate(ix, qs, relevant)
            lat = [x * 1000 for x in r["latencies"]]
            print(f"{name:<10} {r['hit@1']:>6.3f} {r['hit@10']:>7.3f} {r['MRR']:>6.3f} "
                  f"{pct(lat, 0.5):>7.1f} {pct(lat, 0.95):>7.1f}")
            all_right += r["right"]
            all_wrong += r["wrong"]
        off = [hs[0].confidence if hs else 0.0 for hs in (ix.search(q) for q in OFF_TOPIC)]
        ix.close()
    print("\nconfidence of the top hit (median): right "
          f"{statistics.median(all_right):.2f}, wrong {statistics.median(all_wrong):.2f}, "
          f"off-topic {statistics.median(off):.2f}")
    print(f"{'threshold':>9} {'right kept':>10} {'wrong kept':>10} {'off-topic kept':>14}")
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        kept = [sum(c >= t for c in xs) / max(1, len(xs)) for xs in (all_right, all_wrong, off)]
        print(f"{t:>9.1f} {kept[0]:>10.2f} {kept[1]:>10.2f} {kept[2]:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
