"""Speech recognition benchmark: per engine, on spoken kiosk questions.

    python3 bench/asr_bench.py            # all conditions (~5-10 min on 2 cores)
    python3 bench/asr_bench.py --quick    # clean, normal pace only
    python3 bench/asr_bench.py --room     # the simulated lobby (bench/room_sim.py), front end off/on
    python3 bench/asr_bench.py --room --questions 20 --frontends off,webrtc,webrtc+ns,deepfilternet,rnnoise
    python3 bench/asr_bench.py --room --frontends "no-wpe wpe:taps=12 online"   # dereverberation
    python3 bench/asr_bench.py --room --conditions room --pre-roll 0.8           # the endpointer

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
  wrong     questions answered outright with a wrong entry (read out at once: the worst case)
--room: the questions in visitors' voices (pitch/pace-shifted Open JTalk) in the simulated lobby
(reverberation RT60 0.3-0.9 s at 0.5-1 m; fan/HVAC and babble at 20/10/5 dB SNR; the kiosk's
own voice as echo), each through the kiosk's endpointer, with the audio front end
(kiosk.speech.frontend) off and on in the same run; one summary line per condition, and the last line
(`room: fan20 reached … wrong …, babble10 …`) is the default front end's, condition by condition.
Front ends `wpe` / `wpe:taps=N,delay=N,iterations=N` dereverberate each question before the
recogniser ([frontend] dereverberation), `online[:taps=N,alpha=9999]` runs nara-wpe's OnlineWPE
on the stream before the endpointer instead (measured only); both print the CPU they took.
Each condition also counts the utterances that start after the question's first sound.
The vosk engine is measured too when its Japanese model is installed (`kiosk models install`).
"""

from __future__ import annotations

import argparse
import json
import os
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

sys.path.insert(0, str(ROOT / "bench"))
import reached as reached_entry  # noqa: E402

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
    return reached_entry.reaches(answer, expected), answer.kind.value, \
        reached_entry.offered(answer)


FRONTENDS = {  # name → [frontend] settings (None = the microphone's audio untouched)
    "off": None,
    "aec": {"noise_suppression": False, "auto_gain_control": False},
    "webrtc": {"noise_suppression": False, "auto_gain_control": True},
    "aec+ns": {"noise_suppression": True, "noise_suppression_level": 1,
               "auto_gain_control": False},
    "deepfilternet": {"noise_suppression": False, "auto_gain_control": False,
                      "neural_suppressor": "deepfilternet"},
    "rnnoise": {"noise_suppression": False, "auto_gain_control": False,
                "neural_suppressor": "rnnoise"},
    "on": {},  # the kiosk's defaults
    "no-wpe": {"dereverberation": "none"},  # the defaults without dereverberation
    "wpe": {"dereverberation": "wpe"},  # the defaults, WPE on each question (wpe:taps=… too)
}


def wpe_variant(name: str) -> dict | None:
    """「wpe:taps=12,delay=2,iterations=3」 → the default front end with WPE so set."""
    base, _, params = name.partition(":")
    if base != "wpe" or not params and name != "wpe":
        return None
    return {"dereverberation": "wpe", **{
        f"wpe_{k}": int(v) for k, v in (p.split("=") for p in params.split(",") if p)}}


class OnlineDereverberation:
    """nara-wpe's OnlineWPE frame by frame on the front end's output stream, before the
    endpointer (the online variant measured against offline WPE per question; not in the
    kiosk): 512-point STFT, 128 shift, square-root Hann analysis and synthesis windows."""

    SIZE, SHIFT = 512, 128

    def __init__(self, taps: int = 10, delay: int = 3, alpha: float = 0.999):
        from nara_wpe.wpe import OnlineWPE

        bins = self.SIZE // 2 + 1
        self.wpe = OnlineWPE(taps, delay, alpha, power_estimate=np.full(bins, 1e-6),
                             channel=1, frequency_bins=bins)
        self.window = np.sqrt(np.hanning(self.SIZE + 1)[:-1])
        self.history = np.zeros(self.SIZE - self.SHIFT)
        self.overlap = np.zeros(self.SIZE)
        self.pending = np.zeros(0)
        self.cpu = 0.0

    def process(self, chunk: AudioClip) -> AudioClip:
        started = time.process_time()
        x = np.concatenate([self.pending, chunk.samples.astype(np.float64)])
        out = []
        while len(x) >= self.SHIFT:
            frame = np.concatenate([self.history, x[: self.SHIFT]])
            self.history, x = frame[self.SHIFT :], x[self.SHIFT :]
            clean = self.wpe.step_frame(np.fft.rfft(frame * self.window)[:, None])[:, 0]
            self.overlap += np.fft.irfft(clean, self.SIZE) * self.window / 1.5
            out.append(self.overlap[: self.SHIFT].copy())
            self.overlap = np.concatenate([self.overlap[self.SHIFT :], np.zeros(self.SHIFT)])
        self.pending = x
        self.cpu += time.process_time() - started
        samples = np.concatenate(out) if out else np.zeros(0)
        return AudioClip(samples.astype(np.float32), SPEECH_RATE)


def endpoint_scene(mic: np.ndarray, endpointer: Endpointer, frontend, pre_roll: float = 0.5,
                   online: OnlineDereverberation | None = None,
                   ) -> tuple[AudioClip, float, float]:
    """The microphone stream in 20 ms chunks through the front end and the endpointer, as
    the kiosk runs them; returns the utterance, the front end's processing time and the
    stream time the utterance's audio starts at (its pre-roll included; nan: none)."""
    from kiosk.speech.endpointing import SpeechEnded, SpeechStarted

    endpointer.reset()
    busy = 0.0
    start = float("nan")
    for i in range(0, len(mic), 320):
        chunk = AudioClip(mic[i : i + 320], SPEECH_RATE)
        if frontend is not None:
            t = time.perf_counter()
            chunk = frontend.process(chunk)
            busy += time.perf_counter() - t
        if online is not None:
            chunk = online.process(chunk)
        for event in endpointer.feed(chunk):
            if isinstance(event, SpeechStarted):
                start = max(0.0, event.at_seconds - pre_roll)
            if isinstance(event, SpeechEnded):
                return event.clip, busy, start
    ended = [e for e in endpointer.flush() if isinstance(e, SpeechEnded)]
    return (ended[0].clip if ended else AudioClip(np.zeros(0, np.float32), SPEECH_RATE)), \
        busy, start


def room_bench(args, questions, settings, engine, composer, index) -> None:
    """Per lobby condition and front end: CER, answered outright / reached / wrong, RTF."""
    import dataclasses

    import room_sim as rs

    from kiosk.config import FrontEndSettings
    from kiosk.speech.frontend import FrontEnd

    names = [n.strip() for n in args.frontends.split() if n.strip()] \
        if ":" in args.frontends else [n.strip() for n in args.frontends.split(",") if n.strip()]
    for name in names:
        if name not in FRONTENDS and wpe_variant(name) is not None:
            FRONTENDS[name] = wpe_variant(name)
        if name.startswith("online"):  # the default front end, then OnlineWPE on its output
            FRONTENDS[name] = {}
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    if args.questions:  # spread over all topics
        step = max(1, len(questions) // args.questions)
        questions = questions[args.question_offset % step :: step][: args.questions]
    t0 = time.perf_counter()
    dry = [rs.visitor_voice(text, n) for n, (_, _, text) in enumerate(questions)]
    print(f"{len(questions)} questions in visitors' voices, synthesized in "
          f"{time.perf_counter() - t0:.0f} s; conditions: {', '.join(conditions)}\n")
    header = (f"{'condition':<14} {'front end':<14} {'CER':>6} {'RTF':>5} {'FE cpu':>6} "
              f"{'answered':>9} {'reached':>8} {'wrong':>6} {'heard nothing':>13}")
    print(header)
    print("-" * len(header))
    if args.pre_roll is not None:
        settings = dataclasses.replace(settings, endpointing=dataclasses.replace(
            settings.endpointing, pre_roll_seconds=args.pre_roll))
    endpointer = Endpointer(settings)
    summary = {}
    try:
        saved = open(args.save_heard, "w", encoding="utf-8") if args.save_heard else None
    except OSError as exc:
        print(f"--save-heard {args.save_heard}: cannot write it ({exc.strerror}); give a "
              "file in a folder that exists", file=sys.stderr)
        raise SystemExit(2) from None
    for cname in conditions:
        cond = rs.CONDITIONS[cname]
        scenes = [rs.make_scene(x, cond, seed=n) for n, x in enumerate(dry)]
        heard_before: dict[int, tuple[np.ndarray, object]] = {}  # same audio → same decode
        for name in names:
            cers, rtfs, records = [], [], []
            speech = 0.0
            cut = 0  # utterances that start after the question's first sound
            outright = reached = wrong = nothing = 0
            busy = audio = dereverb = 0.0
            for n, ((label, expected, text), scene) in enumerate(zip(questions, scenes)):
                frontend = None
                if FRONTENDS[name] is not None:
                    frontend = FrontEnd(dataclasses.replace(FrontEndSettings(), **FRONTENDS[name]))
                    if cond.echo:  # a kiosk that has talked before: the canceller has learned
                        frontend.process_recording(AudioClip(scene.warmup_mic, SPEECH_RATE),
                                                   AudioClip(scene.warmup_far, SPEECH_RATE))
                        frontend.far_end(AudioClip(scene.far_end, SPEECH_RATE))
                online = None
                if name.startswith("online"):  # online:taps=10,alpha=999 (→ 0.999)
                    params = dict(p.split("=") for p in name.partition(":")[2].split(",") if p)
                    online = OnlineDereverberation(
                        int(params.get("taps", 10)), int(params.get("delay", 3)),
                        float("0." + params.get("alpha", "999")))
                utterance, fe_time, start = endpoint_scene(
                    scene.mic, endpointer, frontend, settings.endpointing.pre_roll_seconds,
                    online)
                if online is not None:
                    dereverb += online.cpu
                    speech += len(scene.mic) / SPEECH_RATE
                busy += fe_time
                cut += start > scene.speech_start + 0.02  # its first sound is not in the clip
                if frontend is not None and frontend.dereverberates:
                    started = time.process_time()
                    utterance = frontend.dereverberate(utterance)
                    dereverb += time.process_time() - started
                    speech += utterance.duration
                audio += len(scene.mic) / SPEECH_RATE
                before = heard_before.get(n)
                if before is not None and np.array_equal(before[0], utterance.samples):
                    t = before[1]  # the front end handed the same samples on: same transcript
                else:
                    t = engine.transcribe(utterance) if utterance.samples.size else None
                    heard_before[n] = (utterance.samples, t)
                heard = t.text if t else ""
                if saved is not None:  # the answer stage replayed later: bench/answer_replay.py
                    saved.write(json.dumps({
                        "condition": cname, "frontend": name, "question": text,
                        "expected": expected, "texts": [t.text, *t.alternatives] if t else [],
                        "confidence": t.confidence if t else 0.0,
                        "noise_dbfs": frontend.noise_dbfs if frontend else None},
                        ensure_ascii=False) + "\n")
                cers.append(min(1.0, character_error_rate(text, heard)))
                if t:
                    rtfs.append(t.elapsed_seconds / max(0.1, utterance.duration))
                if not heard:
                    nothing += 1
                    continue
                answer = ask(index, composer, (t.text, *t.alternatives),
                             confidence=t.confidence,
                             noise_dbfs=frontend.noise_dbfs if frontend else None)
                kind = answer.kind.value
                offered = reached_entry.offered(answer)
                ok = reached_entry.reaches(answer, expected)
                reached += ok
                outright += ok and kind == "confident"
                bad = kind == "confident" and not ok
                wrong += bad
                records.append((t.confidence, kind, ok, bad))
                if args.show_misses and not ok:
                    print(f"   miss: {text} → {heard} ({t.confidence:.2f}) → {kind} {offered}")
            total = len(questions)
            summary[(cname, name)] = (reached / total, wrong / total)
            print(f"{cname:<14} {name:<14} {statistics.mean(cers):6.3f} "
                  f"{statistics.mean(rtfs) if rtfs else 0:5.2f} {busy / max(audio, 1e-9):6.1%} "
                  f"{outright / total:8.0%} {reached / total:8.0%} {wrong / total:6.0%} "
                  f"{nothing / total:12.0%}", flush=True)
            if cut:
                print(f"      {cut} of {total} utterances start after the question's first "
                      f"sound (pre-roll {settings.endpointing.pre_roll_seconds:g} s)")
            if speech:
                print(f"      dereverberation: {dereverb / speech * 1000:.1f} ms CPU per second "
                      f"of audio it processed ({dereverb / speech * 4000:.0f} ms per 4 s)")
            if args.show_confidence and records:
                for bar in (0.2, 0.3, 0.4, 0.5):
                    w = sum(1 for c, k, ok, bad in records if bad and c >= bar)
                    o = sum(1 for c, k, ok, bad in records if ok and k == "confident" and c >= bar)
                    print(f"      confidence bar {bar:.1f}: answered {o / total:.0%}, "
                          f"wrong {w / total:.0%}")
        print(f"  {rs.short_condition(cname)}: " + "; ".join(
            f"front end {n} reached {summary[(cname, n)][0]:.0%} wrong {summary[(cname, n)][1]:.0%}"
            for n in names), flush=True)
    if saved is not None:
        saved.close()
    print(f"\n{len(questions)} questions; load average {os.getloadavg()[0]:.1f}; total "
          f"{time.perf_counter() - t0:.0f} s")
    final = "on" if "on" in names else names[-1]
    parts = [f"{rs.short_condition(c)} reached {r:.0%} wrong {w:.0%}"
             for (c, n), (r, w) in summary.items() if n == final]
    print(f"room: {', '.join(parts)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="clean audio at normal pace only")
    ap.add_argument("--show-misses", action="store_true",
                    help="print each question that did not reach its entry")
    ap.add_argument("--room", action="store_true",
                    help="the simulated lobby (bench/room_sim.py), audio front end off and on")
    ap.add_argument("--frontends", default="off,on",
                    help=f"with --room: front ends to compare ({', '.join(FRONTENDS)}, or "
                         "wpe:taps=N,delay=N,iterations=N; separated by spaces then)")
    ap.add_argument("--conditions",
                    default="room,fan 20dB,fan 10dB,babble 10dB,babble 5dB,echo+fan 20dB",
                    help="with --room: lobby conditions (bench/room_sim.py CONDITIONS)")
    ap.add_argument("--questions", type=int, default=0, help="with --room: only the first N")
    ap.add_argument("--question-offset", type=int, default=0,
                    help="with --questions: start the spread this many questions in (another "
                         "subset than the one the thresholds were chosen on)")
    ap.add_argument("--greedy-above", type=float, default=None,
                    help="[asr] whisper_greedy_above to compare (0 = beam search only; "
                         "default: the shipped value)")
    ap.add_argument("--window", type=float, default=None,
                    help="[asr] whisper_window_seconds to compare (default: the shipped value)")
    ap.add_argument("--pre-roll", type=float, default=None,
                    help="with --room: [endpointing] pre_roll_seconds to compare (default: the "
                         "shipped value)")
    ap.add_argument("--beam", type=int, default=None,
                    help="[asr] whisper_beam_size to compare (default: the shipped value)")
    ap.add_argument("--save-heard", metavar="FILE",
                    help="with --room: write each question's transcripts, confidence and noise "
                         "floor as JSON lines, to replay the answer stage on them "
                         "(bench/answer_replay.py) without decoding again")
    ap.add_argument("--show-confidence", action="store_true",
                    help="with --room: answered/wrong if answers below a confidence were asked back")
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
    if args.greedy_above is not None:
        engines[0].greedy_above = args.greedy_above
    if args.window is not None:
        engines[0].window_seconds = args.window
    if args.beam is not None:
        engines[0].beam_size = args.beam
    print(f"whisper: beam {engines[0].beam_size}, greedy first, kept at confidence >= "
          f"{engines[0].greedy_above:g} (0 = beam only), window {engines[0].window_seconds:g} s")
    home = Settings(base_dir=ROOT)
    if vosk_status(home).state == "ready":
        from kiosk.speech.vosk import VoskRecogniser

        engines.append(VoskRecogniser.from_settings(home, vocabulary=vocabulary))
    else:
        print("vosk: Japanese model not installed (`kiosk models install`); whisper only\n")

    if args.room:
        room_bench(args, questions, settings, engines[0], composer, index)
        index.close()
        shutil.rmtree(work, ignore_errors=True)
        return 0
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
