"""Make the spoken-question fixtures the recogniser tests use (tests/fixtures/speech/*.wav).

    python3 tools/make_speech_fixtures.py            # rewrite every WAV listed in questions.tsv

Each question in tests/fixtures/speech/questions.tsv is spoken with the project's own voice
(kiosk.voice.synthesis.Voice: Open JTalk through the kiosk's driver; if that module cannot be loaded,
pyopenjtalk.tts directly — the same engine and default voice) and stored as 16 kHz mono
16-bit WAV, about 50-100 KB each. The benchmark (bench/asr_bench.py) uses `speak()` too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.speech.audio import SPEECH_RATE, AudioClip, write_wav  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
QUESTIONS = FIXTURES / "questions.tsv"


def read_questions(path: Path = QUESTIONS) -> list[tuple[str, str, str]]:
    """(file or label, expected entry id, question text) rows, comments skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, expected, text = line.split("\t")
            rows.append((name, expected, text))
    return rows


_voice = None


def speak(text: str, *, slow: bool = False) -> AudioClip:
    """The question as the project's voice says it, at 16 kHz, with 0.3 s of silence around
    it (as an endpointer would cut it)."""
    global _voice
    try:
        from kiosk.voice.synthesis import Voice

        if _voice is None:
            _voice = Voice()
        clips = list(_voice.synthesize(text, slow=slow))
        clip = AudioClip(np.concatenate([c.samples for c in clips]).astype(np.float32),
                         clips[0].rate)
    except ImportError:  # the voice stage is not there: same engine, called directly
        import pyopenjtalk

        x, rate = pyopenjtalk.tts(text, speed=0.8 if slow else 1.0)
        clip = AudioClip((x / 32768.0).astype(np.float32), int(rate))
    samples = clip.at_rate(SPEECH_RATE).samples
    pad = np.zeros(int(0.3 * SPEECH_RATE), dtype=np.float32)
    return AudioClip(np.concatenate([pad, samples, pad]), SPEECH_RATE)


def main() -> int:
    for name, _expected, text in read_questions():
        clip = speak(text)
        write_wav(FIXTURES / name, clip)
        print(f"{name}  {clip.duration:4.1f} s  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
