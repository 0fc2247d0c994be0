"""Soak: many simulated visitor sessions through the real kiosk loop; memory must stay flat.

    python3 bench/soak.py [--sessions 10000] [--asr replay|whisper] [--voice real|replay]

Each session: the big button, the spoken prompt, a real spoken question (the 20 WAV
fixtures in turn) streamed by a simulated microphone through the real endpointer, recognition,
search, the answer composer, speakable text and voice to a simulated speaker (played 50× faster
than real time), then 終わり. Printed: sessions, outcomes (right answer / asked back / nothing
found / wrong), errors and stuck sessions, resident memory and threads at start (after 20
warm-up sessions) and at the end, and sessions per second.

--asr replay recognises each fixture once with whisper and replays the transcript (a whisper
decode per session would make 10,000 sessions take about four hours on two cores); --voice
replay likewise synthesizes each distinct utterance once. Use --asr whisper --voice real with
fewer sessions to soak every stage.
"""

from __future__ import annotations

import argparse
import threading
import time

from kiosk_rig import ReplayRecogniser, ReplayVoice, make_kiosk, questions, wait_state
from process_memory import rss_mb

from kiosk.config import Settings
from kiosk.dialogue.conversation import Command, Key, Press, State
from kiosk.speech.recogniser import open_recogniser, vocabulary_from
from kiosk.voice.synthesis import Voice

WARM_UP = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--asr", choices=("replay", "whisper"), default="replay")
    parser.add_argument("--voice", choices=("real", "replay"), default="real")
    parser.add_argument("--every", type=int, default=1000, help="print progress this often")
    args = parser.parse_args()

    voice = Voice(Settings())
    kiosk, mic, speaker, settings = make_kiosk(
        recogniser=None, voice=ReplayVoice(voice) if args.voice == "replay" else voice,
        mic_pace=40.0, speaker_pace=50.0)
    # the content's words as hints, as `kiosk run` gives them
    engine = open_recogniser(settings, vocabulary=vocabulary_from(kiosk.searcher.entries()))
    kiosk.recogniser = ReplayRecogniser(engine) if args.asr == "replay" else engine
    qs = questions()
    outcomes = {"right": 0, "asked back": 0, "nothing found": 0, "wrong": 0}
    stuck = 0
    start_rss = start_threads = 0.0
    started = time.perf_counter()
    with kiosk:
        for n in range(args.sessions + WARM_UP):
            if n == WARM_UP:
                start_rss, start_threads = rss_mb()[0], threading.active_count()
                started = time.perf_counter()
            name, expected, _text, clip = qs[n % len(qs)]
            if isinstance(kiosk.recogniser, ReplayRecogniser):
                kiosk.recogniser.current = name
            kiosk.post(Press())
            ok = wait_state(kiosk, State.LISTENING, timeout=30)
            if ok:
                mic.say(clip, silence_after=1.6)
                ok = wait_state(kiosk, State.ANSWERING, State.CLARIFYING, State.SUGGESTING,
                                State.WAITING, timeout=120)
            if ok and n >= WARM_UP:
                session = kiosk.machine.session
                answer = session.answer if session else None
                if answer is None or answer.best is None or answer.kind.value == "none":
                    outcomes["nothing found"] += 1
                elif answer.kind.value == "unsure":
                    outcomes["asked back"] += 1
                elif answer.best.entry.id == expected:
                    outcomes["right"] += 1
                else:
                    outcomes["wrong"] += 1
            elif not ok:
                stuck += 1
            time.sleep(0.02)  # the visitor hears the start of the answer
            kiosk.post(Key(Command.END))
            wait_state(kiosk, State.IDLE, timeout=30)
            mic.idle.wait(10)
            if n >= WARM_UP and (n - WARM_UP + 1) % args.every == 0:
                print(f"  {n - WARM_UP + 1} sessions, RSS {rss_mb()[0]:.1f} MiB, "
                      f"threads {threading.active_count()}, errors {kiosk.errors}", flush=True)
    seconds = time.perf_counter() - started
    print(f"soak: {args.sessions} sessions (asr {args.asr}, voice {args.voice}) in {seconds:.0f} s "
          f"({args.sessions / seconds:.1f} sessions/s)")
    print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    print(f"  errors {kiosk.errors} (last: {kiosk.last_error or 'none'}), stuck sessions {stuck}")
    print(f"  memory: RSS {start_rss:.1f} MiB at start, {rss_mb()[0]:.1f} MiB at end; "
          f"threads {start_threads:.0f} at start, {threading.active_count()} at end")
    return 0 if kiosk.errors == 0 and stuck == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
