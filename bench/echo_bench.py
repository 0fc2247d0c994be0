"""Barge-in with the loudspeaker on: does the kiosk's own voice start a "question", and is a
visitor speaking over it heard in time?

    python3 bench/echo_bench.py                      # 200 answers, 100 of them interrupted
    python3 bench/echo_bench.py --answers 40 --quick # a quick look, the defaults only
    python3 bench/echo_bench.py --visitor-db -10     # a quieter visitor

The kiosk's voice (kiosk.voice) reads the city's spoken answers one after another through a
simulated loudspeaker into the microphone (bench/room_sim.py: band-limited, slightly
saturated loudspeaker 0.3 m away, 20-60 ms playback delay, one room (RT60 0.3–0.9 s) per
run, light HVAC noise 30 dB below the echo). The microphone stream goes, in 20 ms chunks,
through one kiosk.speech.frontend.FrontEnd (fed the played audio as its echo reference, as
the kiosk's speaker stage does). As in the kiosk's runner, what stops the voice (barge-in)
is the front end's talk-over detector (`FrontEnd.talk_over`, armed once `echo_ready`: AEC3's
output against the microphone, and the front end's own linear echo model's residual);
without a front end, and in the rows marked "Silero", the Endpointer's SpeechStarted (the
previous design, for comparison). Every second answer a visitor (another voice, 0.5-1 m
away, 6 dB below the echo at the microphone) starts a question 1–3 s into the answer; once
the voice is stopped the microphone goes on hearing the room (the echo's tail, the visitor).

Prints per row: false barge-ins (the voice stopped with nobody but the kiosk speaking),
visitors detected, detected within 0.5 s of their first syllable, median delay, and the
front end's CPU share of one core (the CPU time its thread spent in FrontEnd.process per
second of audio, so other jobs on the machine barely change it; the load average is printed
too), then the issue's summary line for the defaults.
"""

from __future__ import annotations

import argparse
import os
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
from kiosk.speech.contract import SpeechStarted  # noqa: E402
from kiosk.speech.endpointing import Endpointer  # noqa: E402
from kiosk.speech.frontend import FrontEnd  # noqa: E402

CHUNK = 320
QUESTIONS = ["すみません、住民票はどこでとれますか", "ちょっと待ってください", "ごみの出し方を知りたいんですが",
             "図書館は何時までですか", "もう一回お願いします", "いえ、違います、パスポートです"]


class Trial:
    """One answer in the room: the microphone is the echo of what was played plus the room
    (noise, the visitor). The echo is recomputed when barge-in cuts the answer short, so the
    microphone goes on hearing the room (the reverberant tail, the visitor) after it."""

    def __init__(self, n: int, answer: np.ndarray, rng: np.random.Generator, interrupt: bool,
                 room: tuple[float, int, np.ndarray], visitor_db: float = -6.0):
        pad = np.zeros(int(0.5 * SPEECH_RATE), np.float32)
        self.far = np.concatenate([answer, pad]).astype(np.float32)
        rt60, self.delay, self.speaker_path = room
        echo = self.echo_of(self.far, scale=1.0)
        self.scale = 0.25 / (np.sqrt(np.mean(echo[np.abs(echo) > 0.01] ** 2)) + 1e-9)
        self.echo = echo * self.scale
        self.room = rs.hvac_noise(len(echo), rng) * 0.25 * 10 ** (-30 / 20)
        self.onset: float | None = None
        if interrupt:
            visitor = rs.visitor_voice(QUESTIONS[n % len(QUESTIONS)], n)
            visitor = rs.reverberate(visitor, rs.room_impulse_response(rt60, rng.uniform(0.5, 1.0), rng))
            visitor *= 0.25 * 10 ** (visitor_db / 20) / (np.sqrt(np.mean(visitor[np.abs(visitor) > 0.01] ** 2)) + 1e-9)
            onset = float(rng.uniform(1.0, min(3.0, max(1.0, len(answer) / SPEECH_RATE - 1.0))))
            at = int(onset * SPEECH_RATE)
            first = np.flatnonzero(np.abs(visitor) > 0.02)
            self.onset = onset + (first[0] if first.size else 0) / SPEECH_RATE
            end = min(len(self.room), at + len(visitor))
            self.room[at:end] += visitor[: end - at]

    def echo_of(self, far: np.ndarray, scale: float) -> np.ndarray:
        echo = np.concatenate([np.zeros(self.delay, np.float32), rs.loudspeaker(far)])[: len(far)]
        return rs.reverberate(echo, self.speaker_path) * scale

    @property
    def mic(self) -> np.ndarray:
        return np.clip(self.echo + self.room, -1, 1).astype(np.float32)

    def cut_at(self, sample: int) -> np.ndarray:
        """The microphone from `sample` on, the kiosk having stopped speaking there."""
        far = self.far.copy()
        far[sample:] = 0.0
        echo = self.echo_of(far, self.scale)
        return np.clip(echo + self.room, -1, 1).astype(np.float32)[sample:]


def run(answers: list[np.ndarray], settings: FrontEndSettings | None, seed: int, *,
        silero_decides: bool = False, visitor_db: float = -6.0) -> dict:
    """One kiosk reading every answer. As the kiosk's runner: with echo cancellation, what
    stops the voice is the front end's talk-over detector (`FrontEnd.talk_over`); the
    endpointer's SpeechStarted while the kiosk plays is ignored. silero_decides = the
    previous design (the endpointer's SpeechStarted on the front end's output, once
    `echo_ready`), for comparison. Without a front end the endpointer decides."""
    rng = np.random.default_rng(seed)
    frontend = FrontEnd(settings) if settings is not None else None
    endpointer = Endpointer() if frontend is None or silero_decides else None
    false_starts = detected = within = interrupted = 0
    delays: list[float] = []
    busy = audio = 0.0
    rt60 = float(rng.uniform(0.3, 0.9))  # one kiosk, one place in one room
    room = (rt60, int(rng.uniform(0.02, 0.06) * SPEECH_RATE),
            rs.room_impulse_response(rt60, 0.3, rng))
    false_at: list[int] = []
    for n, answer in enumerate(answers):
        trial = Trial(n, answer, rng, interrupt=n % 2 == 1, room=room, visitor_db=visitor_db)
        mic, far, onset = trial.mic, trial.far, trial.onset
        interrupted += onset is not None
        if endpointer is not None:
            endpointer.reset()
        if frontend is not None:
            frontend.far_end(AudioClip(far, SPEECH_RATE))
        heard_at = None
        at = 0
        while at < len(mic):
            chunk = AudioClip(mic[at : at + CHUNK], SPEECH_RATE)
            at += len(chunk.samples)
            if frontend is not None:
                t = time.thread_time()  # CPU this thread spent: the load does not count
                chunk = frontend.process(chunk)
                busy += time.thread_time() - t
            if heard_at is not None:
                continue  # the room after barge-in: the canceller keeps listening
            if frontend is not None and not silero_decides:
                started = frontend.talk_over
            else:
                assert endpointer is not None
                started = any(isinstance(e, SpeechStarted) for e in endpointer.feed(chunk))
                if started and frontend is not None and not frontend.echo_ready:
                    endpointer.reset()  # not trusted before the canceller learned the room
                    started = False
            if started:  # barge-in: the kiosk stops speaking here
                heard_at = at / SPEECH_RATE
                if frontend is not None:
                    frontend.far_end_stopped()
                mic = np.concatenate([mic[:at], trial.cut_at(at)])
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
            "cpu": busy / max(audio, 1e-9), "false_at": false_at,
            "late": sorted(round(float(d), 2) for d in delays if d > 0.5)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="the default front end only")
    ap.add_argument("--visitor-db", type=float, default=-6.0,
                    help="the visitor's level at the microphone against the echo's (dB)")
    args = ap.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores); visitor {args.visitor_db:+.0f} dB against the echo")
    texts = rs.kiosk_answers()
    t0 = time.perf_counter()
    spoken = {t: rs.kiosk_voice(t) for t in texts[: args.answers]}
    answers = [spoken[texts[n % len(spoken)]] for n in range(args.answers)]
    print(f"{len(answers)} answers ({sum(len(a) for a in answers) / SPEECH_RATE / 60:.0f} min of "
          f"the kiosk's voice), synthesized in {time.perf_counter() - t0:.0f} s\n")
    header = (f"{'front end / what stops the voice':<50} {'false barge-ins':>15} {'detected':>9} "
              f"{'≤0.5 s':>7} {'median':>7} {'CPU':>5}")
    print(header)
    print("-" * len(header))
    rows: list[tuple[str, FrontEndSettings | None, bool]] = [
        ("on (defaults): talk-over detector", FrontEndSettings(), False)]
    if not args.quick:
        rows = [("off: Silero on the microphone", None, False),
                ("on: Silero on the output (previous design)", FrontEndSettings(), True),
                ("on, no noise suppression: Silero on output", FrontEndSettings(noise_suppression=False), True),
                *rows,
                ("on, no noise suppression: talk-over detector", FrontEndSettings(noise_suppression=False), False),
                ("talk-over detector on AEC3 alone (no echo model)",
                 FrontEndSettings(talk_over_echo_model_seconds=0.0), False)]
    summary = {}
    for name, settings, silero in rows:
        r = run(answers, settings, seed=rs.SEED, silero_decides=silero, visitor_db=args.visitor_db)
        summary[name] = r
        i = max(1, r["interrupted"])
        print(f"{name:<50} {r['false']:>6} / {r['trials']:<7} {r['detected'] / i:8.0%} "
              f"{r['within'] / i:6.0%} {r['delay']:6.2f}s {r['cpu']:5.1%}", flush=True)
        if 0 < r["false"] <= 20:
            print(f"   false barge-ins in answers {r['false_at']}")
        if 0 < len(r["late"]) <= 30:
            print(f"   detected later than 0.5 s: {r['late']} s")
    on = summary["on (defaults): talk-over detector"]
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\necho: false barge-ins {on['false']}/{on['trials']}, visitors detected "
          f"{on['detected']}/{on['interrupted']} (within 0.5 s {on['within']}/{on['interrupted']}), "
          f"median {on['delay']:.2f} s, front end {on['cpu'] * 100:.0f} % of a core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
