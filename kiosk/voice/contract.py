"""What the voice stage offers the dialogue: text written for the ear, and a voice that
says it. Protocols only, so the runner takes them without loading Open JTalk."""

from __future__ import annotations

import threading
from typing import Protocol

from kiosk.answer.contract import Answer
from kiosk.content.contract import Entry
from kiosk.speech.contract import AudioSink


class SpeakableText(Protocol):
    """kiosk.voice.speakable.Speakable: readings, numbers and pauses made for the ear."""

    def for_entry(self, entry: Entry) -> str: ...

    def for_answer(self, answer: Answer) -> str: ...

    def normalise(self, text: str) -> str: ...


class SpeakingVoice(Protocol):
    """kiosk.voice.synthesis.Voice: says speakable text on a player at its own pace and
    loudness, which the visitor's rate and volume steps set."""

    rate: float
    volume: float

    def speak(self, text: str, speaker: AudioSink,
              stop_event: threading.Event | None = None) -> bool: ...
