"""Scale benchmark: how import, open, search and memory grow with the amount of content.

    python3 bench/scale_bench.py [--sizes 1000,5000,10000,20000] [--queries 100] [--data DIR]
                                 [--keep DIR | --reuse DIR]

For each size it generates that many realistic entries (project-made, fixed seed): the
localgovFAQ city FAQs (evaluation data, read by bench/ only) repeated for Atsugi's districts,
each copy with the district in its title, keywords and body and a category, so no two
entries are the same text and every one is embedded. Then, each in its own process:

* import — the entries written as a staff JSONL file and imported with the same path as
  `kiosk content import` (validate, build, check, publish): wall time and peak RSS;
* serve — the speech-free search stack loaded (Sudachi, e5, Mozc), the live version opened
  (timed alone), `--queries` localgovFAQ dev questions searched (p50/p95 wall time, the CPU
  time per question, what the questions read from disk, and hit@1 counting
  any district copy of the right FAQ), steady RSS after them, peak RSS, and the extra memory
  of opening the same version a second time while the first is open (a publish while
  serving).

An import of 10,000 entries takes minutes: `--keep DIR` keeps each size's folder as
DIR/<size>, and `--reuse DIR` serves those folders again without importing (the import
figures are then not measured).

Each size ends with one line:

    scale 10000: import 150.2 s, open 1.3 s, search p50 21 ms p95 38 ms, rss 690 MB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=SyntaxWarning)
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from process_memory import rss_mb  # noqa: E402

#: ../shared/eval/localgovfaq beside the repository (or beside the folder of worktrees).
DEFAULT_DATA = next((p / "shared" / "eval" / "localgovfaq" for p in REPO.parents
                     if (p / "shared" / "eval" / "localgovfaq").is_dir()),
                    REPO.parent / "shared" / "eval" / "localgovfaq")
SEED = 18
#: Atsugi's fifteen districts (地区), one per copy of the FAQ set.
DISTRICTS = ("厚木北", "厚木南", "依知北", "依知南", "睦合北", "睦合南", "睦合西", "荻野",
             "小鮎", "南毛利", "南毛利南", "玉川", "相川", "緑ケ丘", "森の里")
CATEGORIES = ("くらし", "子育て", "福祉", "健康", "税", "ごみ", "防災", "施設", "手続き",
              "交通", "教育", "仕事")
TITLE_FORMS = ("{d}地区：{t}", "{t}（{d}地区）", "{d}地区に住んでいます。{t}")


def generated_entries(data: Path, size: int) -> list[dict]:
    """`size` entries as staff JSONL records: the FAQs first as they are, then copies for
    each district in turn (fixed seed, so every run builds the same content)."""
    from bench.search_bench import load_faq

    faqs, _, _ = load_faq(data)
    rng = random.Random(SEED)
    records = []
    for n in range(size):
        faq = faqs[n % len(faqs)]
        copy = n // len(faqs)
        category = CATEGORIES[int(faq.id) % len(CATEGORIES)]
        if copy == 0:
            records.append({"id": f"faq-{faq.id}", "title": faq.title, "body": faq.body,
                            "category": category})
            continue
        district = DISTRICTS[(copy - 1) % len(DISTRICTS)]
        form = rng.choice(TITLE_FORMS)
        body = (f"{district}地区の方への案内です。{faq.body}"
                f"{district}地区の方は、{district}公民館でも相談できます。")
        records.append({"id": f"faq-{faq.id}-{copy}", "title": form.format(d=district, t=faq.title),
                        "body": body, "category": category, "keywords": [f"{district}地区"]})
    return records


def disk_reads() -> tuple[int, int]:
    """(bytes this process has had read from disk, page faults that waited for the disk)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["read_bytes"]), resource.getrusage(resource.RUSAGE_SELF).ru_majflt


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0.0


def settings_for(root: Path):
    from kiosk.config import Settings

    return Settings(base_dir=root)  # logs and state stay in the size's temporary folder


def worker_import(args) -> dict:
    from kiosk.content.publishing import ContentPublisher

    root = Path(args.root)
    source = root / "content.jsonl"
    start = time.perf_counter()
    result = ContentPublisher(settings_for(root), index_dir=root / "index").import_files(
        [source], who="bench")
    seconds = time.perf_counter() - start
    folder = result.version.path
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"import_s": seconds, "import_peak_mb": rss_mb()[1], "disk_mb": size / 1e6,
            "entries": result.version.entries}


def worker_serve(args) -> dict:
    from bench.search_bench import load_faq
    from kiosk.search.analysis import _tokenizer
    from kiosk.search.kana_kanji import get_converter
    from kiosk.search.semantic import get_encoder
    from kiosk.search.versions import IndexVersions, open_version

    root = Path(args.root)
    settings = settings_for(root)
    _tokenizer()  # the process-wide models, loaded once by any kiosk: not the open's cost
    get_encoder(settings.search)
    get_converter(settings.search)
    loaded_mb = rss_mb()[0]
    folder = IndexVersions(root / "index").current_path()
    start = time.perf_counter()
    index = open_version(folder, settings)
    open_s = time.perf_counter() - start
    opened_mb = rss_mb()[0]
    _, queries, relevant = load_faq(Path(args.data))
    rng = random.Random(SEED)
    asked = rng.sample(sorted(queries, key=int), min(args.queries, len(queries)))
    index.search("ウォームアップ")
    latencies, cpu, hit1, judged = [], [], 0, 0
    read_before, faults_before = disk_reads()
    for qid in asked:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        hits = index.search(queries[qid], limit=10)
        latencies.append((time.perf_counter() - begin) * 1000)
        cpu.append((time.process_time() - begin_cpu) * 1000)  # what a busy box cannot hide
        gold = relevant.get(qid)
        if gold:
            judged += 1
            top = hits[0].entry.id.split("-")[1] if hits else ""
            hit1 += top in gold
    read_bytes, faults = (now - before for now, before in zip(disk_reads(),
                                                               (read_before, faults_before)))
    repeat = []
    for qid in asked[:20]:  # the same questions again (a kiosk hears the same ones often)
        begin = time.perf_counter()
        index.search(queries[qid], limit=10)
        repeat.append((time.perf_counter() - begin) * 1000)
    steady_mb = rss_mb()[0]
    second = open_version(folder, settings)  # a publish while serving: both open at once
    second.search(queries[asked[0]])
    both_mb = rss_mb()[0]
    second.close()
    index.close()
    return {"open_s": open_s, "p50_ms": pct(latencies, 0.5), "p95_ms": pct(latencies, 0.95),
            "mean_ms": statistics.fmean(latencies), "cpu_p50_ms": pct(cpu, 0.5),
            "cpu_p95_ms": pct(cpu, 0.95), "repeat_p50_ms": pct(repeat, 0.5),
            "hit1": hit1 / max(1, judged), "read_mb": read_bytes / 1e6, "faults": faults,
            "models_mb": loaded_mb, "opened_mb": opened_mb,
            "steady_mb": steady_mb, "second_open_mb": both_mb - steady_mb,
            "peak_mb": rss_mb()[1]}


def run_worker(kind: str, root: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--root", str(root), "--data",
           str(args.data), "--queries", str(args.queries)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"scale_bench: the {kind} step failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,5000,10000,20000",
                    help="comma-separated entry counts (default 1000,5000,10000,20000)")
    ap.add_argument("--queries", type=int, default=100, help="questions searched per size")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--keep", type=Path, help="keep each size's folder as DIR/<size>")
    ap.add_argument("--reuse", type=Path,
                    help="serve the folders an earlier --keep left in DIR/<size>; no import")
    ap.add_argument("--worker", choices=("import", "serve"), help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        result = (worker_import if args.worker == "import" else worker_serve)(args)
        print(json.dumps(result))
        return 0
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        print(f"scale_bench: --sizes {args.sizes!r}: give entry counts like 1000,10000",
              file=sys.stderr)
        return 2
    if not (args.data / "corpus.json").is_file():
        print(f"scale_bench: the localgovFAQ data is not at {args.data}; pass --data DIR",
              file=sys.stderr)
        return 2
    for size in sizes:
        if args.reuse:
            kept = args.reuse / str(size)
            if not (kept / "index").is_dir():
                print(f"scale_bench: no kept index for {size} entries in {kept}; run with "
                      f"--keep {args.reuse} first", file=sys.stderr)
                return 2
            report(size, None, run_worker("serve", kept, args), args)
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f"scale-{size}-"))
        try:
            with (tmp / "content.jsonl").open("w", encoding="utf-8") as out:
                for record in generated_entries(args.data, size):
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            built = run_worker("import", tmp, args)
            report(size, built, run_worker("serve", tmp, args), args)
            if args.keep:
                shutil.copytree(tmp, args.keep / str(size), symlinks=True, dirs_exist_ok=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(size: int, built: dict | None, served: dict, args) -> None:
    """The figures of one size, ending with the issue's summary line (no import figures
    when a kept folder was served again)."""
    if built is not None:
        print(f"{size} entries: import {built['import_s']:.1f} s (peak rss "
              f"{built['import_peak_mb']:.0f} MB), index on disk {built['disk_mb']:.1f} MB")
    else:
        print(f"{size} entries: the kept index served again (no import)")
    print(f"  models loaded {served['models_mb']:.0f} MB, after open "
          f"{served['opened_mb']:.0f} MB, after {args.queries} questions "
          f"{served['steady_mb']:.0f} MB, peak {served['peak_mb']:.0f} MB; a second "
          f"open of the version adds {served['second_open_mb']:.0f} MB")
    print(f"  search mean {served['mean_ms']:.0f} ms, CPU time p50 "
          f"{served['cpu_p50_ms']:.0f} ms p95 {served['cpu_p95_ms']:.0f} ms (the wall "
          "time on a shared box waits for the cores), read from disk during the questions "
          f"{served['read_mb']:.1f} MB ({served['faults']} page faults waited for it), "
          f"repeated questions p50 {served['repeat_p50_ms']:.1f} ms, hit@1 "
          f"{served['hit1']:.3f} (any district copy of the right FAQ)")
    imported = f"{built['import_s']:.1f} s" if built is not None else "reused"
    print(f"scale {size}: import {imported}, open {served['open_s']:.1f} s, search p50 "
          f"{served['p50_ms']:.0f} ms p95 {served['p95_ms']:.0f} ms, rss "
          f"{served['steady_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
