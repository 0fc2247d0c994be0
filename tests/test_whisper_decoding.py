"""How whisper decodes a question: a greedy pass first, kept only when whisper is sure of it,
else the beam search as before; and the decoder never runs past what the speech can hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk.config import settings_from_dict
from kiosk.speech.audio import load_wav

SPEECH = Path(__file__).parent / "fixtures" / "speech"


class CountedModel:
    """The CTranslate2 model with each generate() call's beam width and length noted."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.calls: list[tuple[int, int]] = []

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((kwargs["beam_size"], kwargs["max_length"]))
        return self.inner.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def whisper(whisper_recogniser):
    whisper_recogniser.set_vocabulary([])
    inner, greedy = whisper_recogniser.model.model, whisper_recogniser.greedy_above
    counted = CountedModel(inner)
    whisper_recogniser.model.model = counted
    yield whisper_recogniser, counted
    whisper_recogniser.model.model = inner
    whisper_recogniser.greedy_above = greedy


def test_a_sure_greedy_decode_is_the_transcript_with_no_beam_search(whisper):
    engine, model = whisper
    clip = load_wav(SPEECH / "q09.wav")  # 図書館は何時まで開いていますか
    engine.greedy_above = 0.0
    beam = engine.transcribe(clip)
    assert [b for b, _ in model.calls] == [engine.beam_size]
    model.calls.clear()
    engine.greedy_above = 0.5
    greedy = engine.transcribe(clip)
    assert [b for b, _ in model.calls] == [1], "one greedy pass, no beam search after it"
    assert greedy.confidence >= 0.5
    assert greedy.text == beam.text
    assert greedy.alternatives == ()


def test_an_unsure_greedy_decode_is_replaced_by_the_beam_search(whisper):
    engine, model = whisper
    clip = load_wav(SPEECH / "q09.wav")
    engine.greedy_above = 0.0
    beam = engine.transcribe(clip)
    model.calls.clear()
    engine.greedy_above = 1.0  # never sure enough
    again = engine.transcribe(clip)
    assert [b for b, _ in model.calls][:2] == [1, engine.beam_size]
    assert (again.text, again.alternatives, again.confidence) == \
        (beam.text, beam.alternatives, beam.confidence)


def test_the_decoder_stops_at_what_the_speech_can_hold(whisper):
    """A repetition loop would run to whisper's 448 tokens (seconds of decoding) before it
    is dropped; a 3 s question gets a few dozen tokens beyond its prompt."""
    engine, model = whisper
    engine.transcribe(load_wav(SPEECH / "q09.wav"))
    (_, max_length), *_ = model.calls
    assert max_length <= 4 + engine.max_new_tokens(3.5) < 100
    assert engine.max_new_tokens(0.2) >= 32
    assert engine.max_new_tokens(30.0) >= 448


def test_greedy_first_is_set_in_asr_off_by_default_and_checked(tmp_path):
    from kiosk import KioskError

    assert settings_from_dict({}, base_dir=tmp_path).asr.whisper_greedy_above == 0.0
    with pytest.raises(KioskError, match="whisper_greedy_above"):
        settings_from_dict({"asr": {"whisper_greedy_above": 1.5}}, base_dir=tmp_path)


def test_a_decode_no_longer_wanted_stops_after_the_encoder(whisper):
    """A pause's decode asks `wanted()` once the audio is encoded: when the visitor has
    spoken on, no decoder pass runs; when it is still wanted, the words are the same as
    without the question."""
    from kiosk.speech.contract import DecodeNotWanted

    engine, counted = whisper
    clip = load_wav(SPEECH / "q09.wav")
    plain = engine.transcribe(clip)
    counted.calls.clear()
    with pytest.raises(DecodeNotWanted):
        engine.transcribe(clip, wanted=lambda: False)
    assert counted.calls == []
    asked: list[bool] = []
    still = engine.transcribe(clip, wanted=lambda: asked.append(True) or True)
    assert asked and still.text == plain.text and still.alternatives == plain.alternatives


def test_the_second_opinion_alongside_gives_the_same_transcript(whisper_recogniser,
                                                                 speech_settings):
    """[asr] whisper_second_opinion_alongside decodes the unhinted second opinion on a second
    decoder while the hinted pass runs: the same words and alternatives as one after the
    other, for an unsure question and a sure one."""
    from dataclasses import replace

    from kiosk.speech.whisper import WhisperRecogniser

    shipped = whisper_recogniser.second_opinion_alongside
    asr = replace(speech_settings.asr, whisper_second_opinion_alongside=not shipped)
    other = WhisperRecogniser.from_settings(replace(speech_settings, asr=asr))
    alongside, one_by_one = (whisper_recogniser, other) if shipped else (other, whisper_recogniser)
    assert alongside.second_opinion_alongside and not one_by_one.second_opinion_alongside
    hints = ["市役所", "住民票", "図書館", "粗大ごみ", "ペットボトル", "マイナンバーカード"]
    for engine in (alongside, one_by_one):
        engine.set_vocabulary(hints)
        engine.second_opinion_below = 1.0  # every question gets its second opinion
    try:
        for name in ("q07.wav", "q09.wav"):
            clip = load_wav(SPEECH / name)
            a, b = alongside.transcribe(clip), one_by_one.transcribe(clip)
            assert (a.text, a.alternatives) == (b.text, b.alternatives)
        alongside.second_opinion_below = 0.0001  # sure: the second opinion is left unread
        assert alongside.transcribe(load_wav(SPEECH / "q09.wav")).text
        assert alongside.transcribe(load_wav(SPEECH / "q07.wav")).text  # after one unread
    finally:
        whisper_recogniser.set_vocabulary([])
        whisper_recogniser.second_opinion_below = speech_settings.asr.whisper_second_opinion_below
