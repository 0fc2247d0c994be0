"""Recogniser stage: speech → text. Two engines behind one interface (vosk when its
Japanese model is installed, faster-whisper on the bundled whisper-base otherwise).

CONTRACT:
    Transcript(text, alternatives, confidence, audio_seconds, elapsed_seconds, engine)
    Recogniser (Protocol): name: str; transcribe(clip: AudioClip) -> Transcript
    open_recogniser(settings) -> Recogniser   — picks the engine per asr.engine
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Transcript:
    text: str  # best hypothesis, spaces between Japanese words removed
    alternatives: tuple[str, ...] = ()
    confidence: float = 0.0  # 0..1
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    engine: str = ""
