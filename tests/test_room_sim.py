"""The benchmark's simulated lobby (bench/room_sim.py) builds its scenes: a broken voice
source silently took every babble condition out of bench/asr_bench.py --room."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_babble_voice_is_read_whole():
    """espeak-ng's piped WAV announces an unknown length; the voice must still come through
    as the full utterance (a few seconds), not an error."""
    import room_sim

    samples = room_sim.espeak_voice("こんにちは、市役所です", 1)
    assert 0.8 * room_sim.RATE < len(samples) < 10 * room_sim.RATE
    assert float(abs(samples).max()) > 0.05
