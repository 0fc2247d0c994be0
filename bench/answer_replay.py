"""The answer stage replayed on saved transcripts: reached / answered outright / wrong per
lobby condition, in seconds instead of minutes, so answer-stage settings can be tuned on
what the recogniser really heard.

    python3 bench/asr_bench.py --room --questions 24 --frontends on --save-heard heard.jsonl
    python3 bench/answer_replay.py heard.jsonl [more.jsonl …] [--show-misses]

Each line holds a question's transcripts (first, then the alternatives), the recogniser's
confidence and the front end's noise floor, as bench/asr_bench.py wrote them; they go
through the real index and answer stages (kiosk.dialogue.ask) on the bundled content with
the shipped settings. The last line (`replay: room reached … wrong …, fan20 …`) is
condition by condition; a saved file's figures match the run that wrote it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import reached as reached_entry  # noqa: E402
from room_sim import short_condition  # noqa: E402

from kiosk.answer.composer import AnswerComposer  # noqa: E402
from kiosk.config import Settings  # noqa: E402
from kiosk.content.entries import load_content  # noqa: E402
from kiosk.dialogue.ask import ask  # noqa: E402
from kiosk.search.index import SearchIndex, build_index  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path, help="JSON lines from asr_bench --save-heard")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a setting to try instead of the shipped one (repeatable), e.g. "
                         "answer.sound_alike_weight=0")
    ap.add_argument("--show-misses", action="store_true",
                    help="print each question that did not reach its entry")
    args = ap.parse_args()
    rows = []
    for file in args.files:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            print(f"{file}: cannot read it ({exc.strerror}); give a file asr_bench "
                  "--save-heard wrote", file=sys.stderr)
            return 2
        for number, line in enumerate(lines, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                print(f"{file}:{number}: not a JSON line ({exc.msg}); write the file again "
                      "with asr_bench --save-heard", file=sys.stderr)
                return 2

    settings = Settings(base_dir=ROOT)
    for assignment in args.set:
        name, _, value = assignment.partition("=")
        section, _, key = name.partition(".")
        part = getattr(settings, section, None)
        if part is None or not hasattr(part, key) or not value:
            print(f"--set {assignment}: give SECTION.KEY=VALUE with a setting of "
                  "kiosk/defaults.toml", file=sys.stderr)
            return 2
        kind = type(getattr(part, key))
        typed = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        settings = dataclasses.replace(settings, **{section: dataclasses.replace(
            part, **{key: typed})})
    work = Path(tempfile.mkdtemp(prefix="answer-replay-"))
    try:
        entries = load_content(sorted((ROOT / "kiosk" / "data").glob("*.jsonl")))
        build_index(entries, work / "ix", settings)
        index = SearchIndex.open(work / "ix", settings)
        composer = AnswerComposer(settings.answer, index.categories())
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for row in rows:
            c = counts[(row["condition"], row["frontend"])]
            c[0] += 1
            texts = row["texts"]
            if not texts or not texts[0]:
                if args.show_misses:
                    print(f"   miss: {row['question']} → (nothing heard)")
                continue
            answer = ask(index, composer, texts, confidence=row["confidence"],
                         noise_dbfs=row["noise_dbfs"])
            kind = answer.kind.value
            offered = reached_entry.offered(answer)
            ok = reached_entry.reaches(answer, row["expected"])
            c[1] += ok and kind == "confident"
            c[2] += ok
            c[3] += kind == "confident" and not ok
            if args.show_misses and not ok:
                print(f"   miss [{short_condition(row['condition'])}] {row['question']} → "
                      f"{texts[0]} ({row['confidence']:.2f}) → {kind} {offered} "
                      f"(expected {row['expected']})")
        index.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'condition':<14} {'front end':<10} {'questions':>9} {'answered':>9} "
          f"{'reached':>8} {'wrong':>6}")
    for (cname, frontend), (total, outright, reached, wrong) in counts.items():
        print(f"{cname:<14} {frontend:<10} {total:>9} {outright / total:9.0%} "
              f"{reached / total:8.0%} {wrong / total:6.0%}")
    several = len({frontend for _, frontend in counts}) > 1  # then each part names its own
    parts = [f"{short_condition(c)}{f' ({f})' if several else ''} reached {r / t:.0%} "
             f"wrong {w / t:.0%}" for (c, f), (t, _, r, w) in counts.items()]
    print(f"replay: {', '.join(parts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
