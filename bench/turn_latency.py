"""Turn-taking as a visitor feels it: from the end of a spoken question to the first sample of
the answer, and how often a slow speaker's pause is taken for the end of the question.

    python3 bench/turn_latency.py                 # 40 questions at normal pace + 40 paused
    python3 bench/turn_latency.py --quick         # 6 + 6, while developing

The full run takes about 12-15 minutes on an idle 2-core machine (making the 80 spoken
questions ~1 min, then 80 turns of 4-15 s streamed in real time, each with its answer's
first sentence); its last line is the issue's summary, for the normal-pace questions (the
3-6 s questions the latency targets are set for; the paused set's figures are in the table)
and the cut-offs of the paused set:

    turn latency: median 0.74 s, p95 1.10 s, cut-offs 0/40, right 36/40

Every question is streamed in real time by the simulated microphone (the hardware edge only)
into the real kiosk: endpointer, end-of-turn model, whisper recogniser (given the content's
words as hints, as `kiosk run` does), search, answer composer, speakable text and voice, to a
speaker that plays in real time and notes when each clip starts.

  normal   72 questions (bench/asr_questions.tsv + tests/fixtures/speech/questions.tsv), the
           project's voice at normal pace (3-6 s each)
  paused   the same questions at the slow pace with pauses of 0.8-1.5 s after particles and
           after a leading filler (tools/make_speech_fixtures.paused_script, one seed each), as
           elderly visitors speak

Measured per turn: speech end (the last sample above the noise, as the microphone delivers
it) → first answer sample (the first non-silent sample the speech thread plays). A turn is
cut off when the kiosk ends it (leaves LISTENING) before the visitor's last word. "right" =
the expected entry is answered outright or is the one the kiosk asks back about.
The budget per stage (medians): endpointing (speech end → turn ended), recognition still to
do after the turn ended, search still to do after that, and the voice (→ first sample); and,
apart, the median time of one whisper decode (most of the endpointing time: the turn's last
pause is recognised before the words can end it). The load average is printed with the
figures: on a shared machine every stage is slower.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from kiosk_rig import REPO, make_kiosk, wait_for, wait_state

sys.path.insert(0, str(REPO / "tools"))

from make_speech_fixtures import QUESTIONS, paused_script, read_questions, speak, speak_paused  # noqa: E402

from kiosk.config import Settings  # noqa: E402
from kiosk.dialogue.conversation import Press, State  # noqa: E402
from kiosk.speech.audio import SPEECH_RATE, AudioClip  # noqa: E402
from kiosk.speech.recogniser import open_recogniser, vocabulary_from  # noqa: E402
from kiosk.speech.simulated import SimulatedMicrophone  # noqa: E402
from kiosk.voice.synthesis import Voice  # noqa: E402

SPOKEN_LEVEL = 0.02  # a sample above this is speech (the fixtures' silence is exact zeros)


class TimedMicrophone(SimulatedMicrophone):
    """The simulated microphone, noting when the last spoken sample of a question went out."""

    def __init__(self, pace: float = 1.0):
        super().__init__(pace=pace)
        self._emitted = 0  # queued samples streamed so far
        self._queued = 0
        self._mark: int | None = None
        self.speech_end_at: float | None = None
        self._block_end_sample: int | None = None

    def say_marked(self, clip: AudioClip) -> None:
        """Queue the question and note where its last loud sample lies in the stream. The
        queue and the count change under one lock, so a block streamed meanwhile cannot
        move the mark (it did, under load: a turn then never saw its speech end)."""
        samples = clip.at_rate(SPEECH_RATE).samples.astype(np.float32)
        loud = np.flatnonzero(np.abs(samples) > SPOKEN_LEVEL)
        with self._lock:
            self._mark = self._queued + int(loud[-1] + 1 if loud.size else len(samples))
            self._queued += len(samples)
            self._pending.append(samples)
            self.idle.clear()
            self.speech_end_at = None

    def _next_block(self) -> np.ndarray:
        out = super()._next_block()
        with self._lock:
            start = self._emitted
            self._emitted = self._queued - sum(len(p) for p in self._pending)
            if self._mark is not None and start < self._mark <= self._emitted:
                # the block reaches the kiosk when chunks() yields it, right after this; the
                # mark lies (block end - mark) samples before that moment
                self._block_end_sample = self._mark - start
        return out

    def chunks(self):
        for chunk in super().chunks():
            if self._block_end_sample is not None:
                late = (len(chunk.samples) - self._block_end_sample) / SPEECH_RATE / self.pace
                self.speech_end_at = time.perf_counter() - late
                self._block_end_sample = None
                self._mark = None
            yield chunk


class FirstSample:
    """Wraps the speaker: when the speech thread first plays a non-silent sample."""

    def __init__(self, speaker: Any):
        self.speaker = speaker
        self.at: float | None = None
        self.armed = False

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool:
        if self.armed and threading.current_thread().name == "kiosk-speech":
            loud = np.flatnonzero(np.abs(clip.samples) > 1e-4)
            if loud.size:
                self.at = time.perf_counter() + loud[0] / clip.rate / self.speaker.pace
                self.armed = False
        return self.speaker.play(clip, stop_event)


class Timed:
    """Wraps a stage object: (start, end) of every call of the named method."""

    def __init__(self, inner: Any, method: str):
        self._inner, self._method = inner, method
        self.calls: list[tuple[float, float]] = []
        self.cpu: list[float] = []  # the process's CPU-seconds during each call

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return attr(*args, **kwargs)
            finally:
                self.calls.append((start, time.perf_counter()))
                self.cpu.append(time.process_time() - cpu)

        return timed


def timed_call(fn: Any, calls: list[tuple[float, float]]) -> Any:
    """fn, noting (wall, CPU) seconds of every call in `calls`."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            calls.append((time.perf_counter() - start, time.process_time() - cpu))

    return timed


@dataclass
class Turn:
    kind: str
    name: str
    expected: str
    seconds: float
    speech_end: float = 0.0
    turn_end: float | None = None
    first_sample: float | None = None
    cut_off: bool = False
    right: bool = False
    outright: bool = False
    heard: str = ""
    left_for: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    measured: bool = True
    decoded_after: float | None = None  # speech end → the last decode before the turn ended

    @property
    def latency(self) -> float | None:
        if self.first_sample is None or self.cut_off or not self.measured:
            return None
        return self.first_sample - self.speech_end


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def pool() -> list[tuple[str, str, str]]:
    rows = read_questions(QUESTIONS) + read_questions(REPO / "bench" / "asr_questions.tsv")
    return [(n, e, t) for n, e, t in rows]


def run_turn(kiosk: Any, mic: TimedMicrophone, first: FirstSample, rec: Timed, search: Timed,
             turn: Turn, clip: AudioClip) -> None:
    kiosk.settle()
    if kiosk.state is State.IDLE:
        kiosk.post(Press())
        wait_state(kiosk, State.PROMPTING)
    if kiosk.state is not State.LISTENING:
        kiosk.post(Press())  # straight to listening (skips or barges into what is spoken)
    if not wait_state(kiosk, State.LISTENING, timeout=20):
        raise SystemExit(f"the kiosk did not listen before {turn.name}")
    kiosk.settle()
    time.sleep(0.3)  # room sound before the visitor speaks
    left: list[float] = []

    def note(view: Any) -> None:
        if view.state != State.LISTENING.value and not left:
            left.append(time.perf_counter())
            turn.left_for = view.state

    kiosk._subscribers.append(note)
    rec.calls.clear()
    rec.cpu.clear()
    search.calls.clear()
    first.at, first.armed = None, True
    mic.say_marked(clip)
    if not wait_for(lambda: mic.idle.is_set() and mic.speech_end_at is not None, timeout=60):
        print(f"  (the end of {turn.name} was not seen streamed: turn not measured)", flush=True)
        turn.measured = False
    turn.speech_end = mic.speech_end_at or time.perf_counter()
    wait_for(lambda: first.at is not None, timeout=90)
    kiosk.settle()
    kiosk._subscribers.remove(note)
    first.armed = False
    turn.turn_end = left[0] if left else None
    turn.first_sample = first.at
    turn.cut_off = turn.measured and turn.turn_end is not None and turn.turn_end < turn.speech_end
    s = kiosk.machine.session
    if s is not None and s.answer is not None and s.offer < len(s.answer.candidates):
        offered = s.answer.candidates[s.offer].entry.id
        turn.right = offered == turn.expected and kiosk.state in (State.ANSWERING,
                                                                 State.CLARIFYING, State.WAITING)
        turn.outright = turn.right and kiosk.state in (State.ANSWERING, State.WAITING)
        turn.heard = s.heard
    if turn.latency is not None and turn.turn_end is not None:
        end = turn.turn_end
        rec_end = max([e for _, e in rec.calls if e <= turn.first_sample] or [end])
        after_rec = max(end, rec_end)
        search_end = max([e for _, e in search.calls if e <= turn.first_sample] or [after_rec])
        after_search = max(after_rec, search_end)
        decoded = [e for _, e in rec.calls if e <= end]
        if decoded:  # the endpointing time split: until the last decode before the end, then
            turn.decoded_after = max(decoded) - turn.speech_end  # judging, guessing, waiting
        turn.stages = {"endpointing": end - turn.speech_end,
                       "recognition": after_rec - end,
                       "search": after_search - after_rec,
                       "voice": turn.first_sample - after_search}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal", type=int, default=40, help="questions at normal pace")
    parser.add_argument("--paused", type=int, default=40, help="questions with pauses")
    parser.add_argument("--quick", action="store_true", help="6 + 6 questions")
    parser.add_argument("--verbose", action="count", default=0,
                        help="one line per turn (-vv: and what each pause was judged)")
    parser.add_argument("--window", type=float, default=None,
                        help="[asr] whisper_window_seconds to compare (default: the shipped one)")
    parser.add_argument("--greedy-above", type=float, default=None,
                        help="[asr] whisper_greedy_above to compare (0 = beam search only)")
    parser.add_argument("--second-opinion-alongside", choices=("true", "false"), default=None,
                        help="[asr] whisper_second_opinion_alongside to compare (default: "
                             "the shipped one)")
    parser.add_argument("--pause-seconds", type=float, default=None,
                        help="[endpointing] pause_seconds to compare")
    parser.add_argument("--partial-seconds", type=float, default=0.0,
                        help="[loop] partial_seconds: the periodic partial decode while "
                             "speaking (default 0 = only the pauses' decodes; kiosk default 2)")
    args = parser.parse_args()
    if args.quick:
        args.normal = args.paused = 6
    started = time.monotonic()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    questions = pool()
    print("making the spoken questions with the kiosk's voice …", flush=True)
    jobs: list[tuple[Turn, AudioClip]] = []
    for i in range(args.normal):
        name, expected, text = questions[i % len(questions)]
        clip = speak(text)
        jobs.append((Turn("normal", name, expected, clip.duration), clip))
    for i in range(args.paused):
        name, expected, text = questions[(i * 7 + 3) % len(questions)]
        script = paused_script(text, seed=i, filler=i % 3 == 0)
        clip = speak_paused(script)
        jobs.append((Turn("paused", script, expected, clip.duration), clip))

    voice = Voice(Settings())
    asr: dict[str, float | bool] = {} if args.window is None else {"whisper_window_seconds": args.window}
    if args.greedy_above is not None:
        asr["whisper_greedy_above"] = args.greedy_above
    if args.second_opinion_alongside is not None:
        asr["whisper_second_opinion_alongside"] = args.second_opinion_alongside == "true"
    endpointing = {} if args.pause_seconds is None else {"pause_seconds": args.pause_seconds}
    kiosk, _mic, speaker, settings = make_kiosk(recogniser=None, voice=voice, mic_pace=1.0,
                                                speaker_pace=1.0, asr=asr,
                                                endpointing=endpointing,
                                                loop={"partial_seconds": args.partial_seconds})
    mic = TimedMicrophone()
    kiosk.microphone = mic
    engine = open_recogniser(settings, vocabulary=vocabulary_from(kiosk.searcher.entries()))
    rec = Timed(engine, "transcribe")
    kiosk.recogniser = rec
    search = Timed(kiosk.searcher, "search")
    kiosk.searcher = search
    first = FirstSample(speaker)
    kiosk.speaker = first
    # the work at a pause besides the decode: judging the words, the speculative search,
    # the first sentence's synthesis (wall and CPU seconds of each call)
    pause_work: dict[str, list[tuple[float, float]]] = {"judge": [], "search": [], "sentence": []}
    turns_ = kiosk.turns
    decide = timed_call(turns_.model.decide, pause_work["judge"])
    judged: list[str] = []  # this turn's pause transcripts and their verdicts (--verbose)

    def noted_decide(text: str, *args: Any) -> Any:
        decision = decide(text, *args)
        judged.append(f"「{text}」 {decision.verdict.value} {decision.wait_seconds:g}")
        return decision

    turns_.model.decide = noted_decide
    turns_._compose = timed_call(turns_._compose, pause_work["search"])
    if turns_._prepare is not None:
        turns_._prepare = timed_call(turns_._prepare, pause_work["sentence"])
    turns: list[Turn] = []
    decodes: list[float] = []
    decode_cpu: list[float] = []
    cpu_started = time.process_time()
    with kiosk:
        warm = speak("図書館は何時まで開いていますか")
        run_turn(kiosk, mic, first, rec, search, Turn("warm-up", "warm-up", "", 0), warm)
        for turn, clip in jobs:
            judged.clear()
            run_turn(kiosk, mic, first, rec, search, turn, clip)
            turns.append(turn)
            decodes.extend(e - s for s, e in rec.calls)
            decode_cpu.extend(rec.cpu)
            if args.verbose:
                lat = f"{turn.latency:.2f} s" if turn.latency is not None else "—"
                early = (f"decoded {turn.decoded_after:+.2f} s, " if turn.decoded_after
                         is not None else "") + \
                    f"{turn.turn_end - turn.speech_end:+.2f} s → {turn.left_for} " \
                    if turn.turn_end is not None else ""
                took = ", ".join(f"{e - s:.2f}" for s, e in rec.calls)
                print(f"  {turn.kind:6} {lat:>7} {early}{'CUT ' if turn.cut_off else ''}"
                      f"{'right' if turn.right else 'wrong'} {turn.name} → {turn.heard} "
                      f"(decodes {took} s)", flush=True)
                if turn.cut_off or args.verbose > 1:
                    print(f"      judged at its pauses: {'; '.join(judged)}", flush=True)
    mic.close()

    def summary(kind: str | None) -> tuple[list[float], int, int, int, int]:
        chosen = [t for t in turns if kind is None or t.kind == kind]
        lat = [t.latency for t in chosen if t.latency is not None]
        return (lat, sum(t.cut_off for t in chosen), sum(t.right for t in chosen),
                sum(t.outright for t in chosen), len(chosen))

    ep = settings.endpointing
    print(f"turn latency, {len(turns)} questions streamed in real time (words judge the end: "
          f"{ep.judge_from_words}, pause {ep.pause_seconds:g} s, complete "
          f"{ep.complete_silence_seconds:g} s, whisper window {settings.asr.whisper_window_seconds:g} s, "
          f"beam {settings.asr.whisper_beam_size}, greedy kept above "
          f"{settings.asr.whisper_greedy_above:g}, second opinion alongside "
          f"{settings.asr.whisper_second_opinion_alongside}, lead-in {settings.voice.pause_before_seconds:g} s)")
    print("set      turns  median   p95    max  cut-offs  right  answered")
    for kind in ("normal", "paused"):
        lat, cut, right, outright, n = summary(kind)
        if not n:
            continue
        med = f"{statistics.median(lat):.2f}" if lat else "—"
        p95 = f"{percentile(lat, 0.95):.2f}" if lat else "—"
        mx = f"{max(lat):.2f}" if lat else "—"
        print(f"{kind:8} {n:5}  {med:>5} s {p95:>5} s {mx:>5} s  {cut:3}/{n:<3}  "
              f"{right:3}/{n:<3} {outright:3}/{n}")
    budget = [t.stages for t in turns if t.stages]
    if budget:
        print("budget per stage (median s): " + ", ".join(
            f"{k} {statistics.median(b[k] for b in budget):.2f}" for k in budget[0]))
    split = [(t.decoded_after, t.stages["endpointing"]) for t in turns
             if t.stages and t.decoded_after is not None]
    if split:
        print(f"endpointing split (median s): last decode done "
              f"{statistics.median(d for d, _ in split):.2f} after speech end, then "
              f"{statistics.median(e - d for d, e in split):.2f} to the turn's end (judge, "
              f"search, first sentence, the rest of the wait)")
    if decodes:
        print(f"one whisper decode: median {statistics.median(decodes):.2f} s, "
              f"p95 {percentile(decodes, 0.95):.2f} s ({len(decodes)} decodes); the process's "
              f"CPU time meanwhile: median {statistics.median(decode_cpu):.2f} s, "
              f"p95 {percentile(decode_cpu, 0.95):.2f} s")
    if any(pause_work.values()):
        print("work at a pause besides the decode (median wall / CPU s): " + ", ".join(
            f"{k} {statistics.median(w for w, _ in v):.3f} / {statistics.median(c for _, c in v):.3f}"
            f" ({len(v)})" for k, v in pause_work.items() if v))
    lat_all = summary(None)[0]
    if lat_all:
        print(f"all {len(turns)} turns: median {statistics.median(lat_all):.2f} s, "
              f"p95 {percentile(lat_all, 0.95):.2f} s")
    print(f"load average at end: {os.getloadavg()[0]:.2f}; "
          f"run time {time.monotonic() - started:.0f} s; the kiosk's turns took "
          f"{time.process_time() - cpu_started:.0f} CPU-seconds")
    # the summary: latency and right entries of the normal-pace (3-6 s) questions,
    # cut-offs of the paused ones
    lat, _, right, _, n = summary("normal")
    _, cut, _, _, paused_n = summary("paused")
    med = statistics.median(lat) if lat else float("nan")
    p95 = percentile(lat, 0.95) if lat else float("nan")
    print(f"turn latency: median {med:.2f} s, p95 {p95:.2f} s, cut-offs {cut}/{paused_n}, "
          f"right {right}/{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
