"""Barge-in with the loudspeaker on: does the kiosk's own voice start a "question", and is a
visitor speaking over it heard in time?

    python3 bench/echo_bench.py              # 200 answers, 100 of them interrupted
    python3 bench/echo_bench.py --answers 20 # a quick look

The kiosk's voice (kiosk.voice) reads the city's spoken answers one after another through a
simulated loudspeaker into the microphone (bench/room_sim.py: band-limited, slightly
saturated loudspeaker 0.3 m away, 20-60 ms playback delay, one room (RT60 0.3–0.9 s) per run,
light HVAC noise at 30 dB below the echo). The microphone stream goes, in 20 ms chunks, through one
kiosk.speech.frontend.FrontEnd (fed the played audio as its echo reference, exactly as the
kiosk's speaker stage does) into the kiosk's Endpointer; SpeechStarted while the kiosk speaks
is what stops the voice (barge-in) — as in the kiosk's runner, only once the front end reports
`echo_ready` (its canceller has learned the room). Every second answer a visitor (another voice, 0.5-1 m away,
as loud at the microphone as the echo, -6 dB) starts a question 1–3 s into the answer.

Prints, front end on and off: false barge-ins (SpeechStarted with nobody but the kiosk
speaking), visitors detected, detected within 0.5 s, median detection delay, and the front
end's CPU share of one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import room_sim as rs  # noqa: E402

from kiosk.config import FrontEndSettings  # noqa: E402
from kiosk.speech.audio import SPEECH_RATE, AudioClip  # noqa: E402
from kiosk.speech.endpointing import Endpointer  # noqa: E402
from kiosk.speech.frontend import FrontEnd  # noqa: E402

CHUNK = 320
QUESTIONS = ["すみません、住民票はどこでとれますか", "ちょっと待ってください", "ごみの出し方を知りたいんですが",
             "図書館は何時までですか", "もう一回お願いします", "いえ、違います、パスポートです"]


def trial_audio(n: int, answer: np.ndarray, rng: np.random.Generator, interrupt: bool,
                room: tuple[float, int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(microphone, played reference, visitor onset in seconds or None) for one answer."""
    pad = np.zeros(int(0.5 * SPEECH_RATE), np.float32)
    far = np.concatenate([answer, pad])
    rt60, delay, speaker_path = room
    echo = np.concatenate([np.zeros(delay, np.float32), rs.loudspeaker(far)])[: len(far)]
    echo = rs.reverberate(echo, speaker_path)
    echo *= 0.25 / (np.sqrt(np.mean(echo[np.abs(echo) > 0.01] ** 2)) + 1e-9)
    mic = echo + rs.hvac_noise(len(echo), rng) * 0.25 * 10 ** (-30 / 20)
    onset = None
    if interrupt:
        visitor = rs.visitor_voice(QUESTIONS[n % len(QUESTIONS)], n)
        visitor = rs.reverberate(visitor, rs.room_impulse_response(rt60, rng.uniform(0.5, 1.0), rng))
        visitor *= 0.25 * 10 ** (-6 / 20) / (np.sqrt(np.mean(visitor[np.abs(visitor) > 0.01] ** 2)) + 1e-9)
        onset = float(rng.uniform(1.0, min(3.0, max(1.0, len(answer) / SPEECH_RATE - 1.0))))
        at = int(onset * SPEECH_RATE)
        first = np.flatnonzero(np.abs(visitor) > 0.02)
        onset += (first[0] if first.size else 0) / SPEECH_RATE
        end = min(len(mic), at + len(visitor))
        mic[at:end] += visitor[: end - at]
    return np.clip(mic, -1, 1).astype(np.float32), far.astype(np.float32), onset


def run(answers: list[np.ndarray], settings: FrontEndSettings | None, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    frontend = FrontEnd(settings) if settings is not None else None
    endpointer = Endpointer()
    false_starts = detected = within = interrupted = 0
    delays: list[float] = []
    busy = audio = 0.0
    rt60 = float(rng.uniform(0.3, 0.9))  # one kiosk, one place in one room
    room = (rt60, int(rng.uniform(0.02, 0.06) * SPEECH_RATE),
            rs.room_impulse_response(rt60, 0.3, rng))
    false_at: list[int] = []
    for n, answer in enumerate(answers):
        mic, far, onset = trial_audio(n, answer, rng, interrupt=n % 2 == 1, room=room)
        interrupted += onset is not None
        endpointer.reset()
        if frontend is not None:
            frontend.far_end(AudioClip(far, SPEECH_RATE))
        heard_at = None
        fed = 0
        for at in range(0, len(mic), CHUNK):
            chunk = AudioClip(mic[at : at + CHUNK], SPEECH_RATE)
            if frontend is not None:
                t = time.perf_counter()
                chunk = frontend.process(chunk)
                busy += time.perf_counter() - t
            fed += len(chunk.samples)
            if any(type(e).__name__ == "SpeechStarted" for e in endpointer.feed(chunk)):
                if frontend is not None and not frontend.echo_ready:
                    endpointer.reset()  # as the kiosk's runner: not trusted before the
                    continue            # canceller has learned the room
                heard_at = fed / SPEECH_RATE
                break  # barge-in: the kiosk stops speaking here
        audio += len(mic) / SPEECH_RATE
        if frontend is not None:
            frontend.far_end_stopped()
        if heard_at is not None and (onset is None or heard_at < onset):
            false_starts += 1
            false_at.append(n)
        elif heard_at is not None:
            detected += 1
            delays.append(heard_at - onset)
            within += heard_at - onset <= 0.5
    return {"false": false_starts, "trials": len(answers), "interrupted": interrupted,
            "detected": detected, "within": within,
            "delay": statistics.median(delays) if delays else float("nan"),
            "cpu": busy / max(audio, 1e-9), "false_at": false_at}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", type=int, default=200)
    args = ap.parse_args()
    texts = rs.kiosk_answers()
    t0 = time.perf_counter()
    spoken = {t: rs.kiosk_voice(t) for t in texts[: args.answers]}
    answers = [spoken[texts[n % len(spoken)]] for n in range(args.answers)]
    print(f"{len(answers)} answers ({sum(len(a) for a in answers) / SPEECH_RATE / 60:.0f} min of "
          f"the kiosk's voice), synthesized in {time.perf_counter() - t0:.0f} s\n")
    header = f"{'front end':<34} {'false barge-ins':>15} {'detected':>9} {'≤0.5 s':>7} {'delay':>6} {'CPU':>5}"
    print(header)
    print("-" * len(header))
    summary = {}
    for name, settings in [("off", None), ("on (defaults)", FrontEndSettings()),
                           ("on, no noise suppression", FrontEndSettings(noise_suppression=False))]:
        r = run(answers, settings, seed=rs.SEED)
        summary[name] = r
        i = max(1, r["interrupted"])
        print(f"{name:<34} {r['false']:>6} / {r['trials']:<7} {r['detected'] / i:8.0%} "
              f"{r['within'] / i:6.0%} {r['delay']:5.2f}s {r['cpu']:5.1%}", flush=True)
        if 0 < r["false"] <= 20:
            print(f"   false barge-ins in answers {r['false_at']}")
    on = summary["on (defaults)"]
    print(f"\nSUMMARY echo: {on['false']} false barge-ins in {on['trials']} answers; visitor "
          f"detected within 0.5 s in {on['within'] / max(1, on['interrupted']):.0%} of "
          f"{on['interrupted']} interruptions; front end {on['cpu']:.1%} of one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
