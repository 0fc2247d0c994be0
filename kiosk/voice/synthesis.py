"""Voice stage: speakable text → audio, through pyttsx3 with the project's Open JTalk driver.

The voice is loaded once (kiosk.voice.openjtalk.load_synth, the same engine the pyttsx3
driver speaks with) and kept across answers. Text arrives already made speakable
(kiosk.voice.speakable: one segment per line); it is synthesized sentence by sentence and the first
sentence plays while the rest is synthesized, so the visitor hears sound quickly.
pyttsx3's own say() cannot hand audio to the kiosk's speaker part by part, hence this class.

CONTRACT:
    Voice.synthesize(text, *, slow=False) -> Iterator[AudioClip]   — sentence by sentence
    Voice.speak(text, speaker, stop_event, *, slow=False)           — first sound fast
    Voice.prepare(text, rate=, volume=)  — synthesize a likely answer's first sentence ahead
Also: Voice(settings), Voice.render(text) -> AudioClip (whole answer, for --out),
Voice.save(text, path). Its `rate` and `volume` are set per utterance by the conversation,
which keeps the visitor's pace and loudness steps.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from kiosk.config import ConfigError, Settings, VoiceSettings, check_section
from kiosk.speech.audio import AudioClip
from kiosk.speech.contract import AudioSink as Player
from kiosk.voice.openjtalk import (
    OpenJTalkSynth,
    VoiceError,
    load_synth,
    peak_for,
    plan_chunks,
    resolve_voice,
    silence,
    write_wav_complete,
)


class Voice:
    """The kiosk's voice. One instance lives as long as the kiosk, so the voice stays loaded."""

    def __init__(self, settings: Settings | VoiceSettings | None = None, *,
                 models_dir: Path | None = None):
        if isinstance(settings, Settings):
            models_dir = models_dir or settings.models_dir
            settings = settings.voice
        self.settings: VoiceSettings = settings or VoiceSettings()
        _check(self.settings)
        self.voice_file = resolve_voice(self.settings.voice, models_dir)
        self.synth: OpenJTalkSynth = load_synth(self.voice_file)
        self.rate = float(self.settings.rate)
        self.volume = float(self.settings.volume)
        self.pitch = float(self.settings.pitch)
        self._synth_lock = threading.Lock()  # a stopped answer and a prepared one may overlap
        self._prepared: tuple[tuple[str, float, float, float], np.ndarray] | None = None

    @property
    def sample_rate(self) -> int:
        return self.synth.sample_rate

    def reset(self) -> None:
        """Back to the configured pace and loudness."""
        self.rate, self.volume = float(self.settings.rate), float(self.settings.volume)

    def rate_for(self, slow: bool) -> float:
        """"Slow" means the slow pace, or the current one if the visitor chose slower still."""
        return min(self.rate, self.settings.slow_rate) if slow else self.rate

    # --- audio ---------------------------------------------------------------------------

    def synthesize(self, text: str, *, slow: bool = False) -> Iterator[AudioClip]:
        """One clip per sentence (the first may be a clause), each ending with the pause that
        follows it; the last ends with pause_after. Lazily, so the caller can play the first
        while the next is made."""
        rate, sr = self.rate_for(slow), self.sample_rate
        peak = peak_for(self.volume, self.settings.peak_dbfs)
        chunks = plan_chunks(text, self.settings)
        for i, chunk in enumerate(chunks):
            samples = self._chunk_audio(chunk.text, rate, peak) if i == 0 else \
                self._synthesize(chunk.text, rate, peak)
            last = i == len(chunks) - 1
            pause = self.settings.pause_after_seconds if last else chunk.pause_after
            yield AudioClip(np.concatenate([samples, silence(pause, sr)]), sr)

    def _synthesize(self, text: str, rate: float, peak: float) -> np.ndarray:
        with self._synth_lock:
            return self.synth.synthesize(text, rate=rate, pitch=self.pitch, peak=peak)

    def _chunk_audio(self, text: str, rate: float, peak: float) -> np.ndarray:
        """A first sentence prepare() made (or is making) is used once; anything else is
        made now."""
        key = (text, rate, peak, self.pitch)
        with self._synth_lock:  # a prepare() under way is waited for, not done twice
            prepared, self._prepared = self._prepared, None
            if prepared is not None and prepared[0] == key:
                return prepared[1]
            return self.synth.synthesize(text, rate=rate, pitch=self.pitch, peak=peak)

    def prepare(self, text: str, *, rate: float | None = None,
                volume: float | None = None) -> None:
        """Synthesize the first sentence of an answer that may be spoken soon (the kiosk
        guesses the answer while the visitor's last pause is still running). If the next
        speak() begins with that sentence at that pace and volume, it plays at once; if not,
        the guess is simply forgotten."""
        rate = float(self.rate if rate is None else rate)
        peak = peak_for(self.volume if volume is None else volume, self.settings.peak_dbfs)
        chunks = plan_chunks(text, self.settings)
        if not chunks:
            return
        first = chunks[0].text
        with self._synth_lock:  # a speak() that starts meanwhile waits and uses this
            samples = self.synth.synthesize(first, rate=rate, pitch=self.pitch, peak=peak)
            self._prepared = ((first, rate, peak, self.pitch), samples)

    def lead_in(self) -> AudioClip:
        """The short silence before an answer."""
        return AudioClip(silence(self.settings.pause_before_seconds, self.sample_rate),
                         self.sample_rate)

    def render(self, text: str, *, slow: bool = False) -> AudioClip:
        """The whole answer as one clip, pauses included (for files and HTTP)."""
        clips = [self.lead_in(), *self.synthesize(text, slow=slow)]
        return AudioClip(np.concatenate([c.samples for c in clips]), self.sample_rate)

    def save(self, text: str, path: str | Path, *, slow: bool = False) -> Path:
        """Write the answer as a 16-bit mono WAV; complete when this returns."""
        return write_wav_complete(path, self.render(text, slow=slow))

    def speak(self, text: str, speaker: Player, stop_event: threading.Event | None = None, *,
              slow: bool = False) -> bool:
        """Say text: the short lead-in silence (what the sound device needs to start without
        clipping the first word) is played in front of the first sentence; each later
        sentence is synthesized while the one before plays. Returns False when
        stop_event (barge-in) cut it short."""
        stop_event = stop_event or threading.Event()
        produced: queue.Queue[AudioClip | BaseException | None] = queue.Queue()
        abandoned = threading.Event()  # playback ended early: stop synthesizing

        def produce() -> None:
            try:
                for clip in self.synthesize(text, slow=slow):
                    produced.put(clip)
                    if stop_event.is_set() or abandoned.is_set():
                        break
            except BaseException as exc:  # handed to the playing thread, which re-raises
                produced.put(exc)
            produced.put(None)

        worker = threading.Thread(target=produce, name="voice-synthesis", daemon=True)
        worker.start()
        completed = False
        try:
            completed, lead_in = not stop_event.is_set(), self.lead_in()
            while completed:
                item = produced.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                if lead_in is not None:  # one clip, so the device's start never clips a word
                    item = AudioClip(np.concatenate([lead_in.samples, item.samples]), item.rate)
                    lead_in = None
                completed = _played(speaker, item, stop_event)
        finally:
            abandoned.set()
        return completed

    def play_clips(self, clips: Sequence[AudioClip], speaker: Player,
                   stop_event: threading.Event | None = None) -> bool:
        stop_event = stop_event or threading.Event()
        clips = list(clips)
        if clips:  # the lead-in in front of the first clip, as speak() plays it
            clips[0] = AudioClip(np.concatenate([self.lead_in().samples, clips[0].samples]),
                                 clips[0].rate)
        return all(_played(speaker, c, stop_event) for c in clips)

    def first_audio_seconds(self, text: str, *, slow: bool = False) -> tuple[float, float]:
        """(seconds until the first clip is ready, seconds for all clips): the benchmark's
        measure of how quickly a visitor hears the answer begin."""
        start = time.perf_counter()
        first = 0.0
        for i, _clip in enumerate(self.synthesize(text, slow=slow)):
            if i == 0:
                first = time.perf_counter() - start
        return first, time.perf_counter() - start


def _played(speaker: Player, clip: AudioClip, stop_event: threading.Event) -> bool:
    if stop_event.is_set():
        return False
    result = speaker.play(clip, stop_event)
    return (result is not False) and not stop_event.is_set()


def _check(vs: VoiceSettings) -> None:
    """Refuse settings that would make the voice unusable, naming the key to fix (a config
    file is checked when it loads; this catches settings made in code)."""
    try:
        check_section("voice", vs)
    except ConfigError as exc:
        raise VoiceError(str(exc)) from None
