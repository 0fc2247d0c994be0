"""Simulated sound devices: the hardware edge only, for tests, the soak and latency benchmarks
and demos on a machine without a sound card. Everything behind them is real: the endpointer
hears real audio frames, the voice really synthesizes what the speaker "plays".

CONTRACT:
    SimulatedMicrophone(pace=1.0)   — iterable of 16 kHz AudioClip blocks: queued clips
                                      (say(clip)), low noise in between; unplug()/replug()
    RecordingSpeaker(pace=1.0)      — play(clip, stop_event) in (scaled) real time, keeping a
                                      Played record per clip: when it started, stopped, ended
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kiosk.speech.audio import SPEECH_RATE, AudioClip, DeviceLost


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
