"""Speech end → first answer audio, with the text already recognised (goal: ≤ 300 ms median).

    python3 bench/latency.py [--trials 60]

For each of the 20 spoken fixture questions in turn, the real kiosk loop is put in LISTENING,
then the end of the question is reported (SpeechEnd, as the endpointer does) with a
recogniser that already knows the text. Timed from there: search → answer → speakable
text → voice → the speaker. Printed: median and p95 of
  - first audio: the answer's audio starts (its 0.3 s lead-in silence, [voice]
    pause_before_seconds, during which the first sentence is synthesized), and
  - first voice: the first spoken sound, on a speaker playing in real time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from kiosk_rig import SpeechTimer, make_kiosk, questions, wait_state

from kiosk.config import Settings
from kiosk.dialogue.conversation import Command, Key, Press, SpeechEnd, State
from kiosk.speech.contract import Transcript
from kiosk.voice.synthesis import Voice


class KnownText:
    """A recogniser that already has the transcript (this benchmark leaves ASR out)."""

    name = "known-text"

    def __init__(self) -> None:
        self.text = ""

    def transcribe(self, clip, **kwargs) -> Transcript:
        return Transcript(self.text)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    args = parser.parse_args()
    recogniser = KnownText()
    kiosk, mic, speaker, settings = make_kiosk(recogniser=recogniser, voice=Voice(Settings()),
                                               mic_pace=1.0, speaker_pace=1.0)
    timer = SpeechTimer(speaker)
    kiosk.speaker = timer
    qs = questions()
    first_audio: list[float] = []
    first_voice: list[float] = []
    with kiosk:
        for i in range(args.trials + 3):  # 3 warm-up turns are not counted
            name, _entry, text, clip = qs[i % len(qs)]
            recogniser.text = text
            kiosk.post(Press())
            wait_state(kiosk, State.PROMPTING)
            kiosk.post(Press())  # straight to listening (skips the spoken prompt)
            wait_state(kiosk, State.LISTENING)
            timer.first_play.clear()
            timer.first_voice.clear()
            timer.arm()
            start = time.perf_counter()
            kiosk.post(SpeechEnd(clip))
            if not wait_state(kiosk, State.ANSWERING, State.CLARIFYING, State.SUGGESTING):
                raise SystemExit(f"no answer for {name}")
            end = time.monotonic() + 10
            while not timer.first_voice and time.monotonic() < end:
                time.sleep(0.001)
            kiosk.post(Key(Command.END))
            wait_state(kiosk, State.IDLE)
            kiosk.settle()
            time.sleep(0.05)
            if i >= 3 and timer.first_play and timer.first_voice:
                first_audio.append(timer.first_play[0] - start)
                first_voice.append(timer.first_voice[0] - start)
    print(f"speech end → first answer audio (text already recognised), {len(first_audio)} turns")
    print(f"  first audio (lead-in starts): median {statistics.median(first_audio) * 1000:.0f} ms, "
          f"p95 {percentile(first_audio, 0.95) * 1000:.0f} ms")
    print(f"  first voice (after the {settings.voice.pause_before_seconds:g} s lead-in): median "
          f"{statistics.median(first_voice) * 1000:.0f} ms, "
          f"p95 {percentile(first_voice, 0.95) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
