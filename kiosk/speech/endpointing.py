"""Endpointing: when did the visitor start and stop speaking? Silero VAD (the ONNX model
faster-whisper ships, run frame by frame with its state carried) labels each 32 ms frame;
a small state machine turns labels into events:

    SpeechStarted  — 0.3 s of continuous speech (a cough or a door does not start a question)
    SpeechEnded    — trailing silence (1.25 s by default: elderly speakers pause mid-sentence)
                     or the 15 s cap; carries the utterance clip, with a short pre-roll
    NoSpeech       — nothing said within the no-speech timeout ("please speak or touch")

With `pauses=True` (the kiosk's runner, which judges the end of the turn from the words,
kiosk/speech/turn_end.py) it also reports

    SpeechPaused   — [endpointing] pause_seconds of silence inside a question: carries the
                     utterance so far, so it can be recognised while the visitor is quiet
    SpeechResumed  — speech came back after a SpeechPaused (that pause's work is stale)

and the silence that ends the turn is whatever `end_after(seconds, pause)` last set for the
current pause (trailing_silence_seconds until then).

Feed 16 kHz chunks of any size with Endpointer.feed(); audio never leaves memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from kiosk import KioskError
from kiosk.i18n import _
from kiosk.speech.audio import SPEECH_RATE, AudioClip
from kiosk.speech.contract import (
    EndpointEvent,
    NoSpeech,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)

FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous frame Silero v5+ expects in front of each frame
_HYSTERESIS = 0.15  # once speaking, speech continues until p < threshold - this
_MAX_START_GAP = 6  # frames (~0.2 s) of dip allowed inside a run before speech has started
#: After this many seconds of quiet audio the VAD's state is restarted, so it stays sensitive
#: to short replies.
_VAD_REFRESH_SECONDS = 1.0
#: Blocks at or above this RMS level might be the start of a reply: never refresh then, so no
#: syllable is lost (in a noisy lobby the VAD stays awake by itself).
_QUIET_RMS = 0.005
_RECENT_FRAMES = 16  # ≈ 0.5 s of room sound to prime a restarted VAD with




class SileroVad:
    """Streaming Silero VAD: speech probability per 512-sample frame."""

    def __init__(self) -> None:
        try:
            from faster_whisper.vad import get_vad_model
        except ImportError:
            raise KioskError(_("voice detection needs faster-whisper (it ships the Silero VAD "
                               "model): run `pip install faster-whisper`")) from None
        self.session = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        x = np.concatenate([self._context, frame.astype(np.float32)])[None, :]
        out, self._h, self._c = self.session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = frame[-_CONTEXT:].astype(np.float32)
        return float(out[0])


class Endpointer:
    """Turns a stream of 16 kHz chunks into SpeechStarted / SpeechEnded / NoSpeech events."""

    def __init__(self, settings: Any = None, *, vad: SileroVad | None = None,
                 pauses: bool = False):
        from kiosk.config import EndpointingSettings

        s = getattr(settings, "endpointing", settings) or EndpointingSettings()
        check_endpointing(s)
        self.threshold = s.threshold
        frame_s = FRAME / SPEECH_RATE
        self.pauses = pauses
        self._pause_frames = max(1, round(s.pause_seconds / frame_s))
        self._pause_id = 0
        self._pause_lock = threading.Lock()
        self._start_frames = max(1, round(s.speech_start_seconds / frame_s))
        self._end_frames = max(1, round(s.trailing_silence_seconds / frame_s))
        self._max_frames = max(1, round(s.max_speech_seconds / frame_s))
        self._timeout_frames = max(1, round(s.no_speech_timeout_seconds / frame_s))
        self._preroll_frames = max(0, round(s.pre_roll_seconds / frame_s))
        self.vad = vad if vad is not None else SileroVad()
        self.reset()

    def reset(self) -> None:
        """Start listening afresh (after an answer was spoken, for example)."""
        self.vad.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_seen = 0
        self._waiting_since = 0
        self._speaking = False
        self._run: list[np.ndarray] = []  # candidate speech before it counts as started
        self._run_voiced = 0  # speech frames in that run
        self._run_gap = 0  # trailing non-speech frames in that run
        self._preroll: deque[np.ndarray] = deque(maxlen=self._preroll_frames)
        self._utterance: list[np.ndarray] = []
        self._silence = 0
        self._quiet_frames = 0
        self._recent: deque[np.ndarray] = deque(maxlen=_RECENT_FRAMES)
        self._paused = 0  # id of the pause in progress (0 = none)
        self._needed = self._end_frames  # silence that ends the turn in this pause

    @property
    def speaking(self) -> bool:
        return self._speaking

    def end_after(self, seconds: float, pause: int) -> None:
        """The silence that ends the turn, if speech is still paused at `pause` (a later
        pause, or speech resumed, makes this a no-op). Thread-safe: the recogniser's thread
        calls it while the microphone's thread feeds."""
        with self._pause_lock:
            if pause and pause == self._paused:
                self._needed = max(1, round(seconds * SPEECH_RATE / FRAME))

    def feed(self, clip: AudioClip) -> list[EndpointEvent]:
        if clip.rate != SPEECH_RATE:
            clip = clip.at_rate(SPEECH_RATE)
        self._pending = np.concatenate([self._pending, clip.samples.astype(np.float32)])
        events: list[EndpointEvent] = []
        while len(self._pending) >= FRAME:
            frame, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            event = self._step(frame)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[EndpointEvent]:
        """End of input (a file): a question still in progress ends here."""
        if self._speaking and self._utterance:
            return [self._end("flush")]
        return []

    def listen(self, chunks: Iterable[AudioClip]) -> Iterator[EndpointEvent]:
        for chunk in chunks:
            yield from self.feed(chunk)
        yield from self.flush()

    def _seconds(self, frames: int) -> float:
        return frames * FRAME / SPEECH_RATE

    def _keep_fresh(self, frame: np.ndarray) -> None:
        """Silero's carried state grows deaf after seconds of silence (a short 「はい」 is
        missed after ~5 s), so while all is quiet its state is restarted now and then, and
        primed with the last half second of room sound (a cold state is slow to rise at a
        word's onset). Only the VAD's state: the pre-roll and the "no speech" clock stay."""
        loud = float(np.sqrt(np.mean(np.square(frame)))) >= _QUIET_RMS
        self._quiet_frames = 0 if loud or self._speaking else self._quiet_frames + 1
        if self._quiet_frames * FRAME >= _VAD_REFRESH_SECONDS * SPEECH_RATE:
            self.vad.reset()
            for recent in self._recent:
                self.vad(recent)
            self._quiet_frames = 0
        self._recent.append(frame)

    def _step(self, frame: np.ndarray) -> EndpointEvent | None:
        self._frames_seen += 1
        self._keep_fresh(frame)
        p = self.vad(frame)
        if self._speaking:
            self._utterance.append(frame)
            self._silence = 0 if p >= self.threshold - _HYSTERESIS else self._silence + 1
            if self.pauses:
                with self._pause_lock:
                    if self._silence == 0 and self._paused:
                        resumed, self._paused, self._needed = self._paused, 0, self._end_frames
                        return SpeechResumed(self._seconds(self._frames_seen), resumed)
                    if self._silence == self._pause_frames and not self._paused:
                        self._pause_id += 1
                        self._paused = self._pause_id
                        clip = AudioClip(np.concatenate(self._utterance).astype(np.float32),
                                         SPEECH_RATE)
                        return SpeechPaused(clip, self._seconds(self._frames_seen), self._paused)
                    needed = self._needed
            else:
                needed = self._end_frames
            if self._silence >= needed:
                return self._end("silence")
            if len(self._utterance) >= self._max_frames:
                return self._end("max_length")
            return None
        # A candidate run starts on a clear speech frame and survives short dips (the gaps
        # between syllables), so a question's first word stays in the utterance.
        voiced = p >= self.threshold or (self._run and p >= self.threshold - _HYSTERESIS)
        if voiced or (self._run and self._run_gap < _MAX_START_GAP):
            self._run.append(frame)
            self._run_voiced += voiced
            self._run_gap = 0 if voiced else self._run_gap + 1
            if self._run_voiced >= self._start_frames:
                self._speaking = True
                self._utterance = [*self._preroll, *self._run]
                started = self._frames_seen - len(self._run)
                self._run, self._silence = [], self._run_gap
                self._run_voiced = self._run_gap = 0
                self._preroll.clear()
                return SpeechStarted(self._seconds(started))
            return None
        for f in self._run:  # a too-short burst: back into the pre-roll, not speech
            self._preroll.append(f)
        self._run = []
        self._run_voiced = self._run_gap = 0
        self._preroll.append(frame)
        if self._frames_seen - self._waiting_since >= self._timeout_frames:
            waited = self._seconds(self._frames_seen - self._waiting_since)
            self._waiting_since = self._frames_seen
            return NoSpeech(waited)
        return None

    def _end(self, reason: str) -> SpeechEnded:
        # keep a little of the trailing silence (recognisers like a clean ending), not all 1.25 s
        keep_tail = max(0, self._silence - round(0.3 * SPEECH_RATE / FRAME))
        frames = self._utterance[: len(self._utterance) - keep_tail] if keep_tail else self._utterance
        clip = AudioClip(np.concatenate(frames).astype(np.float32), SPEECH_RATE)
        with self._pause_lock:
            pause, self._paused, self._needed = self._paused, 0, self._end_frames
        self._speaking = False
        self._utterance, self._silence = [], 0
        self._waiting_since = self._frames_seen
        self.vad.reset()
        return SpeechEnded(clip, self._seconds(self._frames_seen), reason, pause)


def check_endpointing(s: Any) -> None:
    """Refuse [endpointing] values the endpointer cannot work with, naming the key."""
    problems = []
    for name in ("speech_start_seconds", "trailing_silence_seconds", "max_speech_seconds",
                 "no_speech_timeout_seconds", "pause_seconds", "complete_silence_seconds",
                 "continuing_silence_seconds", "unsure_silence_seconds",
                 "falling_unsure_silence_seconds"):
        if not getattr(s, name) > 0:
            problems.append(_("[endpointing] {key} = {value} must be above 0").format(
                key=name, value=getattr(s, name)))
    if not 0.0 < s.threshold < 1.0:
        problems.append(_("[endpointing] threshold = {value} must be between 0 and 1").format(
            value=s.threshold))
    if not problems and not (s.pause_seconds < s.complete_silence_seconds
                             <= s.unsure_silence_seconds <= s.continuing_silence_seconds):
        problems.append(_("[endpointing] needs pause_seconds < complete_silence_seconds <= "
                          "unsure_silence_seconds <= continuing_silence_seconds"))
    if problems:
        raise KioskError(_("{problems}; fix the config file (see kiosk/defaults.toml)").format(
            problems="; ".join(problems)))
