"""The whisper decode at a question's last pause, stage by stage, in CPU and wall time: the
part of a turn a visitor waits for (docs/turn_taking.md).

    python3 bench/decode_budget.py                       # shipped settings, 20 fixtures + 20
    python3 bench/decode_budget.py --variants "beam=5;beam=4;beam=3;prompt=60"
    python3 bench/decode_budget.py --variants "threads=2;threads=1" --rounds 3

Each question (tests/fixtures/speech/*.wav, then bench/asr_questions.tsv spoken with the
project's voice) runs through the kiosk's endpointer with pauses on, and the clip of its last
SpeechPaused is what is decoded — the clip the turn decodes at the visitor's last pause. Per
stage: Silero VAD cut, log-mel features, encoder, the hinted decoder pass (beam search with the
content's words as previous text), the unhinted second opinion when it runs, and the whole
transcribe() call (with [asr] whisper_second_opinion_alongside, the shipped setting, the
unhinted pass runs on a second decoder during the hinted one there; the parts are timed one
after the other). CPU is the process's (all of CTranslate2's threads), so on a shared
machine it is the figure to compare; wall is printed beside it with the load average.

Variants (`key=value,key=value`, separated by `;`) run in turn within every round, so the A
and B of a comparison share the machine's state: beam=N, prompt=N (most content words as
hints, 0 = none), prompt_tokens=N (the hint list cut at N tokens), threads=N,
compute=int8|int8_float32|int16|float32, window=S,
second=X ([asr] whisper_second_opinion_below). The first variant is the reference: the table
counts the questions whose first transcript differs from it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_speech_fixtures import FIXTURES, QUESTIONS, read_questions, speak  # noqa: E402

import kiosk.speech.whisper as whisper_module  # noqa: E402
from kiosk.config import Settings  # noqa: E402
from kiosk.content.entries import load_content  # noqa: E402
from kiosk.speech.audio import SPEECH_RATE, AudioClip, load_wav  # noqa: E402
from kiosk.speech.contract import SpeechEnded, SpeechPaused  # noqa: E402
from kiosk.speech.endpointing import Endpointer  # noqa: E402
from kiosk.speech.models import ensure_whisper_model  # noqa: E402
from kiosk.speech.recogniser import vocabulary_from  # noqa: E402
from kiosk.speech.whisper import WhisperRecogniser  # noqa: E402


def last_pause_clip(clip: AudioClip, endpointer: Endpointer) -> AudioClip:
    """The utterance as the turn has it at the question's last pause."""
    endpointer.reset()
    signal = np.concatenate([clip.at_rate(SPEECH_RATE).samples.astype(np.float32),
                             np.zeros(2 * SPEECH_RATE, np.float32)])
    last: AudioClip | None = None
    for i in range(0, len(signal), 320):
        for ev in endpointer.feed(AudioClip(signal[i:i + 320], SPEECH_RATE)):
            if isinstance(ev, SpeechPaused):
                last = ev.clip
            elif isinstance(ev, SpeechEnded):
                return last or ev.clip
    return last or clip


def parse_variant(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if part.strip())


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def stages(eng: WhisperRecogniser, clip: AudioClip) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds of each part of one decode, run as transcribe() runs them."""
    audio = clip.at_rate(SPEECH_RATE).samples.astype(np.float32)
    out: dict[str, tuple[float, float]] = {}
    speech, w, c = timed(eng._speech_only, audio)
    out["vad"] = (w, c)
    feats, w, c = timed(eng._features, speech)
    out["features"] = (w, c)
    encoded, w, c = timed(eng.model.encode, feats)
    out["encoder"] = (w, c)
    seconds = len(speech) / SPEECH_RATE
    (raw, conf), w, c = timed(eng._window, encoded, prompt=True, speech_seconds=seconds)
    out["decoder"] = (w, c)
    if raw and eng._prompt and conf < eng.second_opinion_below:
        _, w, c = timed(eng._window, encoded, prompt=False, speech_seconds=seconds)
        out["second"] = (w, c)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=40, help="how many (fixtures first)")
    ap.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    ap.add_argument("--variants", default="", help="see the docstring; '' = shipped only")
    ap.add_argument("--show", action="store_true", help="print differing transcripts")
    args = ap.parse_args()

    settings = Settings(base_dir=ROOT)
    entries = load_content(sorted((ROOT / "kiosk" / "data").glob("*.jsonl")))
    vocabulary = vocabulary_from(entries)
    rows = read_questions(QUESTIONS) + read_questions(ROOT / "bench" / "asr_questions.tsv")
    rows = rows[: args.questions]
    endpointer = Endpointer(settings, pauses=True)
    clips = []
    for name, _expected, text in rows:
        wav = FIXTURES / name
        clip = load_wav(wav) if wav.suffix == ".wav" and wav.exists() else speak(text)
        clips.append((name, text, last_pause_clip(clip, endpointer)))
    print(f"{len(clips)} questions, last-pause clips {statistics.median(c.duration for *_, c in clips):.2f} s "
          f"median; load average {os.getloadavg()[0]:.2f}", flush=True)

    variants = [parse_variant(v) for v in args.variants.split(";")] if args.variants else [{}]
    engines: dict[tuple[str, int], WhisperRecogniser] = {}
    base = WhisperRecogniser.from_settings(settings, vocabulary=vocabulary)
    engines[(settings.asr.whisper_compute_type, settings.asr.whisper_threads)] = base

    def engine_for(v: dict[str, str]) -> WhisperRecogniser:
        key = (v.get("compute", settings.asr.whisper_compute_type),
               int(v.get("threads", settings.asr.whisper_threads)))
        if key not in engines:
            engines[key] = WhisperRecogniser(
                str(ensure_whisper_model(settings)), compute_type=key[0], threads=key[1],
                vocabulary=vocabulary, hallucinations=settings.asr.hallucinations,
                max_alternatives=settings.asr.max_alternatives)
        eng = engines[key]
        eng.beam_size = int(v.get("beam", settings.asr.whisper_beam_size))
        eng.window_seconds = float(v.get("window", settings.asr.whisper_window_seconds))
        eng.second_opinion_below = float(v.get("second", settings.asr.whisper_second_opinion_below))
        eng.max_vocabulary_words = int(v.get("prompt", settings.asr.max_vocabulary_words))
        whisper_module._PROMPT_TOKENS = int(v.get("prompt_tokens", 200))
        eng.set_vocabulary(vocabulary)
        return eng

    names = [",".join(f"{k}={x}" for k, x in v.items()) or "shipped" for v in variants]
    per: dict[str, dict[str, list[tuple[float, float]]]] = {n: {} for n in names}
    texts: dict[str, dict[str, str]] = {n: {} for n in names}
    for _warm in range(1):
        for v in variants:
            engine_for(v).transcribe(clips[0][2])
    for _r in range(args.rounds):
        for v, n in zip(variants, names):
            eng = engine_for(v)
            for name, _text, clip in clips:
                for k, wc in stages(eng, clip).items():
                    per[n].setdefault(k, []).append(wc)
                t, w, c = timed(eng.transcribe, clip)
                per[n].setdefault("transcribe", []).append((w, c))
                texts[n][name] = t.text
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("median CPU / wall ms per decode (second = the unhinted pass, when it runs: count)")
    keys = ["vad", "features", "encoder", "decoder", "second", "transcribe"]
    print(f"{'variant':34} " + " ".join(f"{k:>14}" for k in keys) + "  differs")
    ref = texts[names[0]]
    for n in names:
        cells = []
        for k in keys:
            vals = per[n].get(k, [])
            if not vals:
                cells.append(f"{'—':>14}")
                continue
            cpu = statistics.median(c for _, c in vals) * 1000
            wall = statistics.median(w for w, _ in vals) * 1000
            cell = f"{cpu:.0f}/{wall:.0f}" + (f" ({len(vals) // args.rounds})" if k == "second" else "")
            cells.append(f"{cell:>14}")
        differs = [q for q in ref if texts[n][q] != ref[q]]
        print(f"{n:34} " + " ".join(cells) + f"  {len(differs)}/{len(ref)}")
        tr = per[n]["transcribe"]
        print(f"{'':34} transcribe p95 CPU {np.percentile([c for _, c in tr], 95) * 1000:.0f} ms, "
              f"wall {np.percentile([w for w, _ in tr], 95) * 1000:.0f} ms; total CPU "
              f"{sum(c for _, c in tr) / args.rounds:.2f} s per pass")
        if args.show:
            for q in differs:
                print(f"      {q}: {ref[q]} → {texts[n][q]}")
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
