"""Endpointing with the real Silero VAD on real synthesized speech, silence and noise,
fed in small chunks as a live microphone would deliver them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.config import EndpointingSettings
from kiosk.speech.audio import SPEECH_RATE, AudioClip, load_wav
from kiosk.speech.contract import NoSpeech, SpeechEnded, SpeechStarted
from kiosk.speech.endpointing import Endpointer

ROOT = Path(__file__).resolve().parents[1]
QUESTION = ROOT / "tests" / "fixtures" / "speech" / "q07.wav"  # 粗大ごみを出したいです


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SPEECH_RATE), dtype=np.float32)


def _noise(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SPEECH_RATE)) * rms) \
        .astype(np.float32)


def _feed(ep: Endpointer, signal: np.ndarray, chunk: int = 320) -> list[tuple[float, object]]:
    events = []
    for i in range(0, len(signal), chunk):
        for e in ep.feed(AudioClip(signal[i : i + chunk], SPEECH_RATE)):
            events.append(((i + chunk) / SPEECH_RATE, e))
    return events


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return load_wav(QUESTION, rate=SPEECH_RATE).samples


def test_question_between_silences_gives_start_then_end(speech):
    signal = np.concatenate([_silence(1.5), speech, _silence(3.0)])
    events = _feed(Endpointer(), signal)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStarted", "SpeechEnded"], kinds
    (_, started), (ended_at, ended) = events
    assert 1.5 <= started.at_seconds < 2.2
    speech_end = 1.5 + np.flatnonzero(np.abs(speech) > 0.02)[-1] / SPEECH_RATE
    # relaxed endpointing: ~1.25 s of silence after the last word, not much more
    assert 1.0 < ended_at - speech_end < 2.0
    assert ended.reason == "silence"
    assert abs(ended.clip.duration - len(speech) / SPEECH_RATE) < 0.8


def test_brisk_setting_ends_sooner(speech):
    signal = np.concatenate([_silence(1.0), speech, _silence(3.0)])
    relaxed = [t for t, e in _feed(Endpointer(), signal) if isinstance(e, SpeechEnded)][0]
    brisk = [t for t, e in _feed(Endpointer(EndpointingSettings(trailing_silence_seconds=0.7)),
                                 signal) if isinstance(e, SpeechEnded)][0]
    assert 0.4 < relaxed - brisk < 0.7


def test_the_clip_keeps_the_first_syllable(speech, whisper_recogniser):
    signal = np.concatenate([_silence(1.0), speech, _silence(2.0)])
    ended = [e for _, e in _feed(Endpointer(), signal) if isinstance(e, SpeechEnded)][0]
    whisper_recogniser.set_vocabulary(["粗大ごみ"])
    text = whisper_recogniser.transcribe(ended.clip).text
    assert "ごみ" in text or "ゴミ" in text


def test_silence_times_out_with_no_speech():
    settings = EndpointingSettings(no_speech_timeout_seconds=3.0)
    events = _feed(Endpointer(settings), _silence(7.0))
    assert [type(e) for _, e in events] == [NoSpeech, NoSpeech]
    assert events[0][1].waited_seconds == pytest.approx(3.0, abs=0.05)


def test_lobby_noise_does_not_start_a_question():
    events = _feed(Endpointer(EndpointingSettings(no_speech_timeout_seconds=20)),
                   _noise(6.0, 0.05))
    assert not any(isinstance(e, SpeechStarted) for _, e in events)


def test_question_in_noise_at_10db_is_still_found(speech):
    signal = np.concatenate([_silence(1.0), speech, _silence(2.5)])
    rms_speech = np.sqrt(np.mean(speech[np.abs(speech) > 0.01] ** 2))
    noisy = signal + _noise(len(signal) / SPEECH_RATE, rms_speech / np.sqrt(10), seed=3)
    events = _feed(Endpointer(), noisy.astype(np.float32))
    assert any(isinstance(e, SpeechStarted) for _, e in events)
    assert any(isinstance(e, SpeechEnded) for _, e in events)


def test_a_short_click_is_not_speech():
    click = np.zeros(int(0.1 * SPEECH_RATE), dtype=np.float32)
    click[::40] = 0.9
    events = _feed(Endpointer(), np.concatenate([_silence(1), click, _silence(2)]))
    assert not any(isinstance(e, SpeechStarted) for _, e in events)


def test_endless_speech_is_capped(speech):
    settings = EndpointingSettings(max_speech_seconds=4.0, trailing_silence_seconds=1.25)
    long = np.concatenate([_silence(0.5)] + [speech[int(0.25 * SPEECH_RATE):
                                                    -int(0.25 * SPEECH_RATE)]] * 4)
    ended = [e for _, e in _feed(Endpointer(settings), long) if isinstance(e, SpeechEnded)]
    assert ended and ended[0].reason == "max_length"
    assert ended[0].clip.duration <= 4.0 + 0.6  # cap plus pre-roll


def test_end_of_file_flushes_a_question_in_progress(speech):
    ep = Endpointer()
    events = list(ep.listen([AudioClip(np.concatenate([_silence(0.5), speech[:-4000]]),
                                       SPEECH_RATE)]))
    assert isinstance(events[-1], SpeechEnded) and events[-1].reason == "flush"


def test_chunk_size_and_rate_do_not_matter(speech):
    signal = np.concatenate([_silence(1.0), speech, _silence(2.0)])
    a = [type(e) for _, e in _feed(Endpointer(), signal, chunk=160)]
    b = [type(e) for _, e in _feed(Endpointer(), signal, chunk=4000)]
    clip48 = AudioClip(signal, SPEECH_RATE).at_rate(48000)
    ep = Endpointer()
    c = [type(e) for e in ep.feed(clip48)]
    assert a == b == c == [SpeechStarted, SpeechEnded]


def test_pauses_are_reported_and_the_turn_ends_when_told(speech):
    """With pause reports on, a pause inside the question gives SpeechPaused (with the
    utterance so far), speech after it SpeechResumed, and the silence that ends the turn is
    what end_after() set for the current pause — a stale pause's setting is ignored."""
    signal = np.concatenate([_silence(1.0), speech, speech, _silence(3.0)])
    loud = np.flatnonzero(np.abs(speech) > 0.02)
    gap = (len(speech) - loud[-1] + loud[0]) / SPEECH_RATE  # the fixture's own silences
    wait = gap + 0.6
    ep = Endpointer(pauses=True)
    told: dict[int, float] = {}
    events = []
    for i in range(0, len(signal), 320):
        for e in ep.feed(AudioClip(signal[i: i + 320], SPEECH_RATE)):
            events.append(((i + 320) / SPEECH_RATE, e))
            if type(e).__name__ == "SpeechPaused":
                ep.end_after(5.0, e.pause - 1)  # stale: no effect
                told[e.pause] = (i + 320) / SPEECH_RATE
                ep.end_after(wait, e.pause)  # longer than the gap: the turn goes on
    kinds = [type(e).__name__ for _, e in events]
    assert kinds[0] == "SpeechStarted" and kinds[-1] == "SpeechEnded", kinds
    assert kinds.count("SpeechEnded") == 1, f"the {gap:.1f} s gap did not end the turn"
    assert "SpeechResumed" in kinds
    paused = [e for _, e in events if type(e).__name__ == "SpeechPaused"]
    assert paused[0].clip.duration >= (loud[-1] - loud[0]) / SPEECH_RATE  # all words so far
    ended_at, ended = events[-1]
    assert ended.pause == paused[-1].pause
    # the end comes `wait` after that pause began (it was reported 0.15 s in)
    assert wait - 0.4 < ended_at - told[ended.pause] < wait


def test_a_short_end_after_ends_the_turn_early(speech):
    signal = np.concatenate([_silence(1.0), speech, _silence(3.0)])
    ep = Endpointer(pauses=True)
    ends = []
    for i in range(0, len(signal), 320):
        for e in ep.feed(AudioClip(signal[i: i + 320], SPEECH_RATE)):
            if type(e).__name__ == "SpeechPaused":
                ep.end_after(0.4, e.pause)
            if isinstance(e, SpeechEnded):
                ends.append((i + 320) / SPEECH_RATE)
    speech_end = 1.0 + np.flatnonzero(np.abs(speech) > 0.02)[-1] / SPEECH_RATE
    assert len(ends) == 1 and ends[0] - speech_end < 0.8  # not the 1.25 s default


def test_a_late_verdict_ends_the_turn_with_the_next_block(speech):
    """The complete wait overlaps the pause's decode: the silence counts from its start, so
    when the words arrive after the wait has already passed, the turn ends with the next
    20 ms block instead of waiting the 0.4 s again."""
    signal = np.concatenate([_silence(1.0), speech, _silence(3.0)])
    ep = Endpointer(pauses=True)
    pause, told_at, ended_at = 0, None, None
    for i in range(0, len(signal), 320):
        now = (i + 320) / SPEECH_RATE
        for e in ep.feed(AudioClip(signal[i: i + 320], SPEECH_RATE)):
            if type(e).__name__ == "SpeechPaused":
                pause, paused_at = e.pause, now
            if isinstance(e, SpeechEnded):
                ended_at = now
        if pause and told_at is None and now - paused_at >= 0.6:  # the decode took 0.6 s
            ep.end_after(0.4, pause)
            told_at = now
        if ended_at is not None:
            break
    assert told_at is not None and ended_at is not None
    assert ended_at - told_at < 0.05  # the next 32 ms frame, at most two 20 ms blocks on


def test_endpointing_settings_are_checked():
    from kiosk import KioskError

    with pytest.raises(KioskError, match="continuing_silence_seconds"):
        Endpointer(EndpointingSettings(continuing_silence_seconds=0.2), vad=lambda f: 0.0)
