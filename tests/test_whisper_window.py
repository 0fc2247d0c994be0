"""Whisper's encoder window for short questions: a fixed step (10 s by default) padded with
real silence, so the encoder does a third of the full window's work and the same audio gets
the same words whatever the question's length within the step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.config import settings_from_dict
from kiosk.speech.audio import SPEECH_RATE, load_wav

SPEECH = Path(__file__).parent / "fixtures" / "speech"


@pytest.fixture
def whisper(whisper_recogniser):
    whisper_recogniser.set_vocabulary([])
    yield whisper_recogniser
    whisper_recogniser.window_seconds = 10.0


def test_short_questions_share_one_window_and_longer_ones_grow_by_steps(whisper):
    whisper.window_seconds = 10.0
    frames = [whisper.encoder_frames(int(s * SPEECH_RATE)) for s in (0.5, 3.0, 6.0, 9.4)]
    assert frames == [1000] * 4
    assert whisper.encoder_frames(int(9.8 * SPEECH_RATE)) == 2000  # + 0.5 s of silence
    assert whisper.encoder_frames(int(25.0 * SPEECH_RATE)) == 3000
    assert whisper.encoder_frames(int(40.0 * SPEECH_RATE)) == 3000  # never above 30 s
    whisper.window_seconds = 30.0
    assert whisper.encoder_frames(int(3.0 * SPEECH_RATE)) == 3000


def test_the_window_after_the_question_is_silence_not_a_hum(whisper):
    """The hinted decode hears the question padded with real silence (zero samples), not
    with zero features, which are a steady level 30-40 dB above whisper's silence floor."""
    audio = load_wav(SPEECH / "q07.wav").at_rate(SPEECH_RATE).samples.astype(np.float32)
    features = whisper._features(audio)
    assert features.shape == (80, whisper.encoder_frames(len(audio))) == (80, 1000)
    after = features[:, len(audio) // 160 + 2:]
    assert np.allclose(after, features.min())  # the floor: the loudest frame - 80 dB
    assert features.min() < -0.5
    padded_features = whisper._features(audio, silence=False)  # the no-hints retry's window
    assert padded_features.shape == features.shape
    assert np.allclose(padded_features[:, len(audio) // 160 + 2:], 0.0)


def test_the_window_is_set_in_asr_and_checked(tmp_path):
    from kiosk import KioskError

    assert settings_from_dict({}, base_dir=tmp_path).asr.whisper_window_seconds == 10.0
    with pytest.raises(KioskError, match="whisper_window_seconds"):
        settings_from_dict({"asr": {"whisper_window_seconds": 0.2}}, base_dir=tmp_path)


def test_a_question_is_heard_alike_in_the_short_and_the_full_window(whisper):
    clip = load_wav(SPEECH / "q09.wav")  # 図書館は何時まで開いていますか
    short = whisper.transcribe(clip).text
    whisper.window_seconds = 30.0
    full = whisper.transcribe(clip).text
    assert "図書館" in short and "図書館" in full


def _whole_window_features(whisper, audio: np.ndarray) -> np.ndarray:
    """The features as they were taken before: the STFT over the whole padded window."""
    frames = whisper.encoder_frames(len(audio))
    padded = np.pad(audio[: frames * 160], (0, max(0, frames * 160 - len(audio))))
    return whisper.model.feature_extractor(padded)[..., :frames]


@pytest.mark.parametrize("name,seconds", [("q07.wav", None), ("q09.wav", None),
                                          ("q01.wav", 0.05), ("q01.wav", 9.45)])
def test_features_taken_over_the_speech_only_are_the_whole_windows(whisper, name, seconds):
    """The STFT runs over the speech and a little silence, the rest of the window is filled
    with the silence floor: the same features as the STFT over the whole padded window (a
    quarter of its work for a 2.5 s question in the 10 s window)."""
    audio = load_wav(SPEECH / name).at_rate(SPEECH_RATE).samples.astype(np.float32)
    if seconds is not None:  # a very short clip, and one that just fits the window
        audio = np.resize(audio, int(seconds * SPEECH_RATE))
    quick, whole = whisper._features(audio), _whole_window_features(whisper, audio)
    assert quick.shape == whole.shape
    assert np.allclose(quick, whole, atol=1e-5)


def test_a_question_is_heard_alike_with_the_speech_only_features(whisper):
    clip = load_wav(SPEECH / "q03.wav")
    audio = clip.at_rate(SPEECH_RATE).samples.astype(np.float32)
    speech = whisper._speech_only(audio)
    quick = whisper._window(whisper.model.encode(whisper._features(speech)))
    whole = whisper._window(whisper.model.encode(_whole_window_features(whisper, speech)))
    assert quick[0] == whole[0] and quick[0]
