"""Audio stage: frames in from the microphone and out to the speaker via sounddevice.
Everything stays in memory; nothing is written to disk unless an operator enables recording.

CONTRACT:
    AudioClip(samples: np.ndarray float32 mono in [-1, 1], rate: int)
    Microphone — yields AudioClip chunks at 16 kHz from the configured device
    Speaker.play(clip, stop_event) — blocking playback that stops within ~50 ms of stop_event
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples at a known rate; the unit every stage passes audio in."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.rate)
