"""Make the spoken-question fixtures the recogniser tests use (tests/fixtures/speech/*.wav).

    python3 tools/make_speech_fixtures.py            # rewrite every WAV listed in questions.tsv
    python3 tools/make_speech_fixtures.py --paused   # rewrite tests/fixtures/speech/paused/*.wav

Each question in tests/fixtures/speech/questions.tsv is spoken with the project's own voice
(kiosk.voice.synthesis.Voice: Open JTalk through the kiosk's driver; if that module cannot be loaded,
pyopenjtalk.tts directly — the same engine and default voice) and stored as 16 kHz mono
16-bit WAV, about 50-100 KB each. The benchmark (bench/asr_bench.py) uses `speak()` too.

Paused questions (tests/fixtures/speech/paused/paused.tsv; bench/turn_latency.py makes 40 more
in memory with `paused_script` + `speak_paused`) are spoken as elderly visitors often speak:
at the slow pace, phrase by phrase, with pauses of 0.8-1.5 s after a particle or a filler
(「えーと、[1.3]市役所は[1.4]何時まで開いていますか」: the bracketed seconds are the pauses).
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.speech.audio import SPEECH_RATE, AudioClip, write_wav  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
QUESTIONS = FIXTURES / "questions.tsv"
PAUSED = FIXTURES / "paused" / "paused.tsv"
_PAUSE = re.compile(r"\[(\d+(?:\.\d+)?)\]")
FILLERS = ("えーと、", "あのー、", "えー、")


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


def paused_script(text: str, seed: int, *, pauses: int = 2, filler: bool = False,
                  shortest: float = 0.8, longest: float = 1.5) -> str:
    """The question with pauses after particles (and after a leading filler), as
    「市役所は[1.3]何時まで[0.9]開いていますか」. Sudachi finds the particles; the pause lengths
    are drawn from `seed`, so the same seed gives the same script."""
    from sudachipy import dictionary, tokenizer

    rng = random.Random(seed)
    d = dictionary.Dictionary(dict="core")
    tok = d.tokenizer() if hasattr(d, "tokenizer") else d.create()
    morphemes = list(tok.tokenize(text, tokenizer.Tokenizer.SplitMode.C))
    ends, pos = [], 0
    for i, m in enumerate(morphemes[:-2]):  # never inside the sentence-final words
        pos += len(m.surface())
        part = m.part_of_speech()
        nxt = morphemes[i + 1]
        joined = nxt.part_of_speech()[0] == "助詞" or nxt.part_of_speech()[1] == "非自立可能" \
            or nxt.surface().startswith("つい")  # 〜ている, 〜てください, 〜について stay whole
        if part[0] == "助詞" and part[1] in ("格助詞", "係助詞", "副助詞", "接続助詞") \
                and not joined and 2 <= pos <= len(text) - 3:
            ends.append(pos)
    cuts = sorted(rng.sample(ends, min(pauses, len(ends))))
    out, last = "", 0
    for cut in cuts:
        out += f"{text[last:cut]}[{rng.uniform(shortest, longest):.2f}]"
        last = cut
    out += text[last:]
    if filler or not cuts:
        out = f"{rng.choice(FILLERS)}[{rng.uniform(shortest, longest):.2f}]{out}"
    return out


def speak_paused(script: str, *, slow: bool = True) -> AudioClip:
    """A paused script spoken phrase by phrase (slow pace by default), the pauses as silence,
    0.3 s of silence around it all."""
    pieces = _PAUSE.split(script)  # text, pause, text, pause, ..., text
    parts: list[np.ndarray] = []
    for i, piece in enumerate(pieces):
        if i % 2:
            parts.append(np.zeros(int(float(piece) * SPEECH_RATE), dtype=np.float32))
        elif piece:  # the phrase alone, its own leading and trailing silence cut off
            samples = speak(piece, slow=slow).samples
            loud = np.flatnonzero(np.abs(samples) > 0.005)
            if loud.size:
                edge = int(0.02 * SPEECH_RATE)
                samples = samples[max(0, loud[0] - edge): loud[-1] + edge]
            parts.append(samples)
    pad = np.zeros(int(0.3 * SPEECH_RATE), dtype=np.float32)
    return AudioClip(np.concatenate([pad, *parts, pad]), SPEECH_RATE)


def main() -> int:
    if "--paused" in sys.argv[1:]:
        for name, _expected, script in read_questions(PAUSED):
            clip = speak_paused(script)
            write_wav(PAUSED.parent / name, clip)
            print(f"{name}  {clip.duration:4.1f} s  {script}")
        return 0
    for name, _expected, text in read_questions():
        clip = speak(text)
        write_wav(FIXTURES / name, clip)
        print(f"{name}  {clip.duration:4.1f} s  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
