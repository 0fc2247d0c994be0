"""What speech-in hands downstream — endpointer events and transcripts — and the
protocols of its stages, so the dialogue takes them without importing Silero, whisper or
vosk (an AudioClip is numpy samples and a rate).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kiosk.speech.audio import AudioClip


@dataclass(frozen=True)
class SpeechStarted:
    at_seconds: float  # stream time when speech began (pre-roll not counted)


@dataclass(frozen=True)
class SpeechEnded:
    clip: AudioClip
    at_seconds: float  # stream time when the end was decided
    reason: str  # "silence" | "max_length" | "flush"
    pause: int = 0  # the SpeechPaused it ended in (0 = none, or speech went on after it)


@dataclass(frozen=True)
class NoSpeech:
    waited_seconds: float


@dataclass(frozen=True)
class SpeechPaused:
    """A short pause inside a question (reported when the endpointer's `pauses` is on)."""

    clip: AudioClip  # the utterance so far, its pre-roll and this pause's silence included
    at_seconds: float
    pause: int  # counts up within a stream; end_after() names it


@dataclass(frozen=True)
class SpeechResumed:
    at_seconds: float
    pause: int  # the pause that turned out not to be the end


EndpointEvent = SpeechStarted | SpeechEnded | NoSpeech | SpeechPaused | SpeechResumed


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


@runtime_checkable
class Recogniser(Protocol):
    """Speech to text: whisper or vosk (kiosk.speech.recogniser.open_recogniser)."""

    name: str

    def transcribe(self, clip: AudioClip, *,
                   wanted: Callable[[], bool] | None = None) -> Transcript: ...


class DecodeNotWanted(Exception):
    """Raised by a recogniser that checked `wanted()` part-way through a decode and found its
    result no longer needed (the visitor spoke again after the pause it was for)."""


class SpeechEndpointer(Protocol):
    """When a question starts and ends in a live stream (kiosk.speech.endpointing.Endpointer).
    It owns its voice detector, including keeping it awake through long quiet spells."""

    @property
    def speaking(self) -> bool: ...

    def feed(self, clip: AudioClip) -> list[EndpointEvent]: ...

    def flush(self) -> list[EndpointEvent]: ...

    def reset(self) -> None: ...


@runtime_checkable
class PausingEndpointer(Protocol):
    """An endpointer that reports pauses inside a question and lets the listener decide how
    much silence ends the turn (kiosk.speech.endpointing.Endpointer; kiosk/dialogue/turns.py)."""

    pauses: bool

    def end_after(self, seconds: float, pause: int) -> None: ...


class AudioSource(Protocol):
    """A microphone: 16 kHz chunks until closed; DeviceLost when the device goes away."""

    def __iter__(self) -> Iterator[AudioClip]: ...

    def close(self) -> None: ...


class AudioSink(Protocol):
    """A speaker: plays a clip, stopping early when stop_event is set; False if stopped."""

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool | None: ...


class AudioFrontEnd(Protocol):
    """Cleans the microphone's audio before the endpointer and the recogniser hear it
    (kiosk.speech.frontend.FrontEnd): echo of the kiosk's own voice, noise, level."""

    @property
    def active(self) -> bool: ...

    @property
    def cancels_echo(self) -> bool: ...

    #: the echo canceller has learned the room: speech heard over the kiosk's voice is a visitor
    echo_ready: bool
    #: in the chunk just processed, a visitor spoke over the kiosk's playing voice (barge-in)
    talk_over: bool
    noise_dbfs: float  # the room's noise floor, tracked

    def echo_reference(self, speaker: AudioSink) -> AudioSink: ...

    def process(self, chunk: AudioClip) -> AudioClip: ...
