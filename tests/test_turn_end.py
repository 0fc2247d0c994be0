"""The end-of-turn model (kiosk/speech/turn_end.py): which partial transcripts end a turn
after a short silence, and which wait for more."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.config import EndpointingSettings
from kiosk.speech.turn_end import TurnEndModel, TurnVerdict, falling_end, judge_text

COMPLETE, CONTINUING, UNSURE = TurnVerdict.COMPLETE, TurnVerdict.CONTINUING, TurnVerdict.UNSURE


@pytest.mark.parametrize("text, verdict", [
    # sentence-final forms: the question is over
    ("市役所は何時まで開いていますか", COMPLETE),
    ("市役所は何時まで開いていますか?", COMPLETE),
    ("コンビニで住民票は取れますか。", COMPLETE),
    ("地震が起きたらどうすればいいですか", COMPLETE),
    ("粗大ごみを出したいです", COMPLETE),
    ("保育園に入りたい", COMPLETE),
    ("税金の払い方を教えてください", COMPLETE),
    ("マイナンバーカードをなくしてしまいました", COMPLETE),
    ("図書館は開いてるの？", COMPLETE),
    ("近くの避難所はどこ？", COMPLETE),
    ("ゴミの出し方？", COMPLETE),
    # forms that go on: an elderly visitor is only pausing
    ("市役所は", CONTINUING),
    ("マイナンバーカードを", CONTINUING),
    ("図書館の", CONTINUING),
    ("地震が", CONTINUING),
    ("荻野運動公園について教えて", CONTINUING),
    ("住所が変わったけど", CONTINUING),
    ("子どもが生まれたので", CONTINUING),
    ("市役所と", CONTINUING),
    ("えーと", CONTINUING),
    ("あのー", CONTINUING),
    ("えーと、", CONTINUING),
    ("あの", CONTINUING),  # 連体詞 「あの〜」, or the filler: either way more follows
    ("それで", CONTINUING),
    ("", CONTINUING),  # nothing recognisable yet
    # in between: a bare noun phrase, a polite trailing request
    ("住民票", UNSURE),
    ("ゴミの出し方", UNSURE),
    ("印鑑登録をしたいのですが", UNSURE),
    ("引っ越しをするんですけど", UNSURE),
    # a sentence-final particle no kiosk question ends with, or one straight after a bare noun
    # or a particle: more often a misheard fragment in a pause (「印鑑証明でしょわ」 was heard
    # in a 1 s pause of 「印鑑証明書は…どこで…とれますか」 and cut the visitor off)
    ("印鑑証明でしょわ", UNSURE),
    ("印鑑証明書はわ", UNSURE),
    ("住民票よ", UNSURE),
    ("ゴミの出し方ね", UNSURE),
    # the particles questions and requests do end with still close the turn
    ("開いてるかしら", COMPLETE),
    ("図書館はあるかな", COMPLETE),
    ("教えてね", COMPLETE),
    ("月曜日は休みですよね", COMPLETE),
])
def test_decision_table(text, verdict):
    got, reason = judge_text(text)
    assert got is verdict, (text, got, reason)
    assert reason  # every decision can be explained


def test_waits_follow_the_verdict_and_the_settings():
    settings = EndpointingSettings(complete_silence_seconds=0.3, continuing_silence_seconds=2.0,
                                   unsure_silence_seconds=1.0)
    model = TurnEndModel(settings)
    assert model.decide("図書館は何時まで開いていますか").wait_seconds == 0.3
    assert model.decide("図書館は").wait_seconds == 2.0
    assert model.decide("住民票").wait_seconds == 1.0
    defaults = TurnEndModel()
    assert defaults.decide("図書館は何時まで開いていますか").wait_seconds <= 0.4
    assert defaults.decide("えーと").wait_seconds >= 1.5


def _tone(seconds: float, level: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 180 * t) * level).astype(np.float32)


def test_the_audio_cue_falling_energy_shortens_only_an_unsure_wait():
    level = np.concatenate([_tone(1.0, 0.3), _tone(0.3, 0.05), np.zeros(4800, np.float32)])
    flat = np.concatenate([_tone(1.3, 0.3), np.zeros(4800, np.float32)])
    assert falling_end(level, 16000) and not falling_end(flat, 16000)
    model = TurnEndModel()
    unsure_falling = model.decide("住民票", level, 16000)
    unsure_flat = model.decide("住民票", flat, 16000)
    assert unsure_falling.wait_seconds < unsure_flat.wait_seconds
    assert "falls" in unsure_falling.reason
    # the words always win: a particle waits long however the voice ends
    assert model.decide("市役所は", level, 16000).verdict is CONTINUING
    assert model.decide("市役所は", level, 16000).wait_seconds >= 1.5
