"""Speech recognition benchmark: per engine, on spoken kiosk questions.

    python3 bench/asr_bench.py            # all conditions (~5-10 min on 2 cores)
    python3 bench/asr_bench.py --quick    # clean, normal pace only

Questions: bench/asr_questions.tsv (52) + tests/fixtures/speech/questions.tsv (20), spoken by
the project's voice (tools/make_speech_fixtures.speak) at normal and slow pace, clean and with
white noise at 20 dB and 10 dB SNR (noise continues through the 3 s after the question). Prints, per engine and condition:
  CER       character error rate (normalised text, mean over questions)
  RTF       recognition time / audio length
  latency   speech end → final text: endpointing delay (Silero VAD, trailing silence) +
            recognition time, median
  answer    questions whose expected entry is answered outright / reached (outright or
            offered when the kiosk asks back), through the real index and answer stages as
            the kiosk runs them (the recogniser's n-best transcripts, kiosk.dialogue.ask);
            1-best = reached when only the first transcript is searched
The vosk engine is measured too when its Japanese model is installed (`kiosk models install`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_speech_fixtures import QUESTIONS as FIXTURE_QUESTIONS  # noqa: E402
from make_speech_fixtures import read_questions, speak  # noqa: E402

from kiosk.config import Settings  # noqa: E402
from kiosk.dialogue.ask import ask  # noqa: E402
from kiosk.speech.audio import SPEECH_RATE, AudioClip  # noqa: E402
from kiosk.speech.contract import SpeechEnded  # noqa: E402
from kiosk.speech.endpointing import Endpointer  # noqa: E402
from kiosk.speech.recogniser import character_error_rate, vocabulary_from  # noqa: E402


def add_noise(clip: AudioClip, snr_db: float, seed: int, extra_seconds: float = 3.0) -> AudioClip:
    """White noise at the given SNR (speech power over noise power), also over the silence
    after the question, as lobby noise would be."""
    x = np.concatenate([clip.samples, np.zeros(int(extra_seconds * clip.rate), np.float32)])
    speech = clip.samples[np.abs(clip.samples) > 0.01]
    power = float(np.mean(speech**2)) if speech.size else 1e-6
    noise = np.random.default_rng(seed).standard_normal(len(x)) * np.sqrt(power / 10 ** (snr_db / 10))
    return AudioClip(np.clip(x + noise, -1, 1).astype(np.float32), clip.rate)


def endpoint(clip: AudioClip, endpointer: Endpointer, clean: AudioClip) -> tuple[AudioClip, float]:
    """Run the live endpointer over the question followed by 3 s of (noisy) silence; returns
    the utterance and the delay from the last spoken sample (found in the clean clip) to the
    end decision."""
    tail = np.zeros(int(3.0 * SPEECH_RATE) - (len(clip.samples) - len(clean.samples)),
                    dtype=np.float32)
    signal = np.concatenate([clip.samples, tail])
    speech_end = np.flatnonzero(np.abs(clean.samples) > 0.02)
    last = (speech_end[-1] if speech_end.size else len(clip.samples)) / SPEECH_RATE
    endpointer.reset()
    step = 320
    for i in range(0, len(signal), step):
        for event in endpointer.feed(AudioClip(signal[i : i + step], SPEECH_RATE)):
            if isinstance(event, SpeechEnded):
                return event.clip, (i + step) / SPEECH_RATE - last
    return clip, float("nan")


def reaches(composer, index, texts: tuple[str, ...], expected: str,
            ) -> tuple[bool, str, list[str]]:
    """Do these transcripts (first, then the alternatives) lead to the expected entry:
    answered outright, or offered among the choices when the kiosk asks back?"""
    answer = ask(index, composer, texts)
    kind = answer.kind.value
    offered = [h.entry.id for h in (answer.choices if kind == "unsure" else answer.candidates[:1])]
    return kind != "none" and expected in offered, kind, offered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="clean audio at normal pace only")
    ap.add_argument("--show-misses", action="store_true",
                    help="print each question that did not reach its entry")
    args = ap.parse_args()

    from kiosk.answer.composer import AnswerComposer
    from kiosk.content.entries import load_content
    from kiosk.search.index import SearchIndex, build_index
    from kiosk.speech.models import vosk_status

    questions = read_questions(ROOT / "bench" / "asr_questions.tsv") + \
        read_questions(FIXTURE_QUESTIONS)
    work = Path(tempfile.mkdtemp(prefix="asr-bench-"))
    settings = Settings(base_dir=ROOT)  # models/ of the checkout: whisper assembled once
    entries = load_content(sorted((ROOT / "kiosk" / "data").glob("*.jsonl")))
    build_index(entries, work / "ix", settings)
    index = SearchIndex.open(work / "ix", settings)
    composer = AnswerComposer(settings.answer, index.categories())
    vocabulary = vocabulary_from(entries)

    engines = []
    from kiosk.speech.whisper import WhisperRecogniser

    engines.append(WhisperRecogniser.from_settings(settings, vocabulary=vocabulary))
    home = Settings(base_dir=ROOT)
    if vosk_status(home).state == "ready":
        from kiosk.speech.vosk import VoskRecogniser

        engines.append(VoskRecogniser.from_settings(home, vocabulary=vocabulary))
    else:
        print("vosk: Japanese model not installed (`kiosk models install`); whisper only\n")

    paces = [False] if args.quick else [False, True]
    noises = [None] if args.quick else [None, 20.0, 10.0]
    t0 = time.perf_counter()
    clips = {(label, slow): speak(text, slow=slow)
             for label, _, text in questions for slow in paces}
    print(f"{len(questions)} questions × {len(paces)} pace(s) × {len(noises)} noise level(s); "
          f"synthesized in {time.perf_counter() - t0:.0f} s\n")
    endpointer = Endpointer(settings)

    header = (f"{'engine':<8} {'pace':<6} {'noise':<6} {'CER':>6} {'RTF':>5} "
              f"{'endpoint':>8} {'recog':>6} {'answered':>9} {'reached':>8} {'1-best':>7}")
    print(header)
    print("-" * len(header))
    for engine in engines:
        for slow in paces:
            for snr in noises:
                cers, rtfs, ep_delays, rec_times = [], [], [], []
                outright = reached = first_reached = 0
                for n, (label, expected, text) in enumerate(questions):
                    clean = clips[(label, slow)]
                    clip = clean if snr is None else add_noise(clean, snr, seed=n)
                    utterance, ep_delay = endpoint(clip, endpointer, clean)
                    t = engine.transcribe(utterance)
                    cers.append(min(1.0, character_error_rate(text, t.text)))
                    rtfs.append(t.elapsed_seconds / max(0.1, utterance.duration))
                    ep_delays.append(ep_delay)
                    rec_times.append(t.elapsed_seconds)
                    if not t.text:
                        continue
                    ok, kind, offered = reaches(composer, index, (t.text, *t.alternatives),
                                                expected)
                    reached += ok
                    outright += ok and kind == "confident"
                    if not ok and args.show_misses:
                        print(f"   miss: {text} → {t.text} → {kind} {offered}")
                    first_reached += reaches(composer, index, (t.text,), expected)[0]
                total = len(questions)
                print(f"{engine.name:<8} {'slow' if slow else 'normal':<6} "
                      f"{'clean' if snr is None else f'{snr:.0f}dB':<6} "
                      f"{statistics.mean(cers):6.3f} {statistics.mean(rtfs):5.2f} "
                      f"{statistics.median(ep_delays):7.2f}s {statistics.median(rec_times):5.2f}s "
                      f"{outright / total:8.0%} {reached / total:8.0%} {first_reached / total:7.0%}",
                      flush=True)
    index.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nendpoint = median delay from the last spoken sample to the end decision "
          f"([endpointing] trailing_silence_seconds = "
          f"{settings.endpointing.trailing_silence_seconds}); recog = median recognition time;"
          f" latency speech end → text = endpoint + recog. Total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
