"""What speech-in hands downstream: endpointer events and transcripts.

Plain data (an AudioClip is numpy samples and a rate), so the dialogue takes them without
importing Silero, whisper or vosk.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.speech.audio import AudioClip


@dataclass(frozen=True)
class SpeechStarted:
    at_seconds: float  # stream time when speech began (pre-roll not counted)


@dataclass(frozen=True)
class SpeechEnded:
    clip: AudioClip
    at_seconds: float  # stream time when the end was decided
    reason: str  # "silence" | "max_length" | "flush"


@dataclass(frozen=True)
class NoSpeech:
    waited_seconds: float


EndpointEvent = SpeechStarted | SpeechEnded | NoSpeech


@dataclass(frozen=True)
class Transcript:
    text: str  # best hypothesis, spaces between Japanese words removed
    alternatives: tuple[str, ...] = ()
    confidence: float = 0.0  # 0..1
    audio_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    engine: str = ""
    words: tuple[tuple[str, float], ...] = ()  # (word, confidence) where the engine gives them

    @property
    def heard_nothing(self) -> bool:
        """True when there was no speech (or only a known hallucination) to search for."""
        return not self.text.strip()
