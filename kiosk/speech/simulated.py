"""Simulated sound devices: the hardware edge only, for tests, the soak and latency benchmarks
and demos on a machine without a sound card. Everything behind them is real: the endpointer
hears real audio frames, the voice really synthesizes what the speaker "plays".

CONTRACT:
    SimulatedMicrophone(pace=1.0)   — iterable of 16 kHz AudioClip blocks: queued clips
                                      (say(clip)), low noise in between; unplug()/replug()
    RecordingSpeaker(pace=1.0)      — play(clip, stop_event) in (scaled) real time, keeping a
                                      Played record per clip: when it started, stopped, ended
    EchoingRoom(pace=1.0)           — .microphone and .speaker in one room: what the speaker
                                      plays reaches the microphone as echo (delayed, coloured
                                      by a small loudspeaker and the room), mixed with what
                                      the visitor says (microphone.say)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiosk.speech.audio import SPEECH_RATE, AudioClip, DeviceLost, resample


class SimulatedMicrophone:
    """Streams queued clips, then quiet room noise, in blocks like a real microphone.
    `pace` > 1 streams faster than real time (the endpointer counts samples, not seconds)."""

    def __init__(self, pace: float = 1.0, block_ms: int = 20, noise: float = 0.0005,
                 seed: int = 7):
        self.pace = float(pace)
        self.block = SPEECH_RATE * block_ms // 1000
        self.noise = float(noise)
        self._rng = np.random.default_rng(seed)
        self._pending: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._unplugged = threading.Event()
        self.idle = threading.Event()  # set while nothing queued is left to stream
        self.idle.set()
        self._flowing = threading.Event()  # cleared by hold(): the stream stops, like a stalled clock
        self._flowing.set()

    def say(self, clip: AudioClip, silence_after: float = 0.0) -> None:
        """Queue speech (any rate), optionally followed by silence, to stream next."""
        samples = clip.at_rate(SPEECH_RATE).samples.astype(np.float32)
        if silence_after > 0:
            samples = np.concatenate([samples, np.zeros(int(silence_after * SPEECH_RATE),
                                                        dtype=np.float32)])
        with self._lock:
            self._pending.append(samples)
            self.idle.clear()

    def hold(self) -> None:
        """Stop delivering blocks until release(). No silence is streamed meanwhile (the
        endpointer counts samples, not seconds), so a test can wait for a slow recogniser
        mid-sentence without the wait turning into a pause in the visitor's speech."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def unplug(self) -> None:
        self._unplugged.set()

    def replug(self) -> None:
        self._unplugged.clear()

    def close(self) -> None:
        self._closed.set()

    def _next_block(self) -> np.ndarray:
        quiet = (self._rng.standard_normal(self.block) * self.noise).astype(np.float32)
        with self._lock:
            out = np.zeros(0, dtype=np.float32)
            while len(out) < self.block and self._pending:
                head = self._pending[0]
                take = self.block - len(out)
                out = np.concatenate([out, head[:take]])
                if len(head) <= take:
                    self._pending.popleft()
                else:
                    self._pending[0] = head[take:]
            if not self._pending:
                self.idle.set()
        if len(out) < self.block:
            out = np.concatenate([out, np.zeros(self.block - len(out), dtype=np.float32)])
        return out + quiet

    def __iter__(self) -> Iterator[AudioClip]:
        return self.chunks()

    def chunks(self) -> Iterator[AudioClip]:
        period = self.block / SPEECH_RATE / self.pace
        next_at = time.monotonic()
        while not self._closed.is_set():
            if self._unplugged.is_set():
                raise DeviceLost("the simulated microphone was unplugged")
            if not self._flowing.is_set():
                self._flowing.wait(0.05)
                next_at = time.monotonic()
                continue
            yield AudioClip(self._next_block(), SPEECH_RATE)
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()


@dataclass
class Played:
    clip: AudioClip
    started: float
    ended: float | None = None
    stopped: float | None = None  # set when stop_event cut it short
    device: str = ""


class RecordingSpeaker:
    """Keeps what was played and when, taking the clip's (paced) duration to play it and
    stopping within 5 ms of stop_event — like kiosk.speech.audio.Speaker, without a sound card."""

    def __init__(self, pace: float = 1.0, name: str = "speaker", keep: int = 1000):
        self.pace = float(pace)
        self.name = name
        self.keep = keep
        self.played: deque[Played] = deque(maxlen=keep)
        self.lost = False
        self.count = 0
        self._lock = threading.Lock()

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool:
        if self.lost:
            raise DeviceLost(f"the simulated {self.name} is unplugged")
        record = Played(clip, time.monotonic(), device=self.name)
        with self._lock:
            self.played.append(record)
            self.count += 1
        end = record.started + clip.duration / self.pace
        while True:
            now = time.monotonic()
            if stop_event is not None and stop_event.is_set():
                record.stopped = now
                return False
            if now >= end:
                record.ended = now
                return True
            time.sleep(min(0.005, end - now))

    def playing_at(self, moment: float) -> Played | None:
        """The clip that was playing at `moment`, if any."""
        with self._lock:
            for p in reversed(self.played):
                finish = p.stopped or p.ended
                if p.started <= moment and (finish is None or finish >= moment):
                    return p
        return None


class _EchoMicrophone(SimulatedMicrophone):
    """A SimulatedMicrophone that also hears the room's loudspeaker."""

    def __init__(self, room: EchoingRoom, **kwargs: Any):
        super().__init__(**kwargs)
        self.room = room

    def _next_block(self) -> np.ndarray:
        return super()._next_block() + self.room._echo(self.block)


class _EchoSpeaker(RecordingSpeaker):
    """A RecordingSpeaker whose sound goes into the room's microphone as it plays. A real
    loudspeaker and microphone run on one sample clock, so a clip lasts as long as the
    microphone takes to hear it (not wall time: a busy test machine would tear them apart)."""

    def __init__(self, room: EchoingRoom, **kwargs: Any):
        super().__init__(**kwargs)
        self.room = room
        self.monitor: Any = None  # like kiosk.speech.audio.Speaker: told as sound starts

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool:
        if self.lost:
            raise DeviceLost(f"the simulated {self.name} is unplugged")
        if stop_event is not None and stop_event.is_set():
            return False
        record = Played(clip, time.monotonic(), device=self.name)
        with self._lock:
            self.played.append(record)
            self.count += 1
        end = self.room._sound(clip, self.monitor)
        try:
            while True:
                if stop_event is not None and stop_event.is_set():
                    record.stopped = time.monotonic()
                    return False
                if self.room._heard >= end:
                    record.ended = time.monotonic()
                    return True
                time.sleep(0.005)
        finally:
            self.room._silence()


class EchoingRoom:
    """The kiosk's loudspeaker and microphone in one hard-walled room. The microphone hears
    each played clip `delay_seconds` later, band-limited like a small loudspeaker, through a
    fixed synthetic room response (RT60 `rt60`), at `echo_gain`; a clip cut short stops
    sounding (its reverberant tail rings on briefly). Sample-aligned with the microphone's
    blocks, so it works at any pace; speaker and microphone run at the same pace."""

    def __init__(self, pace: float = 1.0, *, delay_seconds: float = 0.03, echo_gain: float = 0.5,
                 rt60: float = 0.4, seed: int = 7, noise: float = 0.0005):
        self._lock = threading.Lock()
        self._pending = np.zeros(0, dtype=np.float32)
        self._heard = 0  # samples the microphone has taken so far
        self.delay = int(delay_seconds * SPEECH_RATE)
        self.gain = float(echo_gain)
        rng = np.random.default_rng(seed)
        n = int(rt60 * SPEECH_RATE)
        t = np.arange(n) / SPEECH_RATE
        response = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.08
        response[0] = 1.0
        self.response = (response / np.sqrt(np.sum(response**2))).astype(np.float32)
        self.microphone = _EchoMicrophone(self, pace=pace, noise=noise, seed=seed)
        self.speaker = _EchoSpeaker(self, pace=pace)

    def _colour(self, samples: np.ndarray) -> np.ndarray:
        """A small loudspeaker (no deep bass: a first difference; soft peaks) in the room."""
        x = np.concatenate([[0.0], np.diff(samples)]) * 0.7 + samples * 0.3
        x = np.tanh(2.0 * x) / 2.0
        from scipy.signal import fftconvolve  # fast: playback must start without delay

        return fftconvolve(x, self.response).astype(np.float32) * self.gain

    def _sound(self, clip: AudioClip, monitor: Any = None) -> int:
        """Start playing; returns the microphone sample count at which the clip has played."""
        samples = resample(clip.samples, clip.rate, SPEECH_RATE)
        heard = self._colour(samples)[: len(samples)]
        with self._lock:  # it sounds from now (+ the delay), over what still rings
            if monitor is not None:
                monitor(AudioClip(samples, SPEECH_RATE))
            end = self.delay + len(heard)
            if len(self._pending) < end:
                self._pending = np.concatenate(
                    [self._pending, np.zeros(end - len(self._pending), np.float32)])
            self._pending[self.delay : end] += heard
            return self._heard + len(samples)

    def _silence(self) -> None:
        with self._lock:  # what was not played does not echo; the room rings briefly
            ring = min(len(self._pending), self.delay + len(self.response))
            self._pending = self._pending[:ring] * np.linspace(1, 0, ring, dtype=np.float32)

    def _echo(self, n: int) -> np.ndarray:
        with self._lock:
            out = np.zeros(n, dtype=np.float32)
            take = min(n, len(self._pending))
            out[:take] = self._pending[:take]
            self._pending = self._pending[take:]
            self._heard += n
        return out
