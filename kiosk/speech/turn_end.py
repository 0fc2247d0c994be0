"""End of turn: has the visitor finished the question, judged from the words heard so far and
the sound of their ending? Silence alone cannot tell: an elderly visitor pauses 1-1.5 s after
「市役所は…」 or 「えーと…」, while 「…開いていますか」 is plainly finished after 0.4 s. So the
endpointer waits as long as the partial transcript says it should (LiveKit's turn detector and
Google's end-of-query detection do the same with learned models; this one is a small table of
Japanese sentence endings over Sudachi's parts of speech, so every decision can be explained).

    complete    a sentence-final form: 〜ですか, 〜ますか, 〜たい(です), 〜ください, 〜の？,
                〜ました, a noun phrase with a question mark            → short silence
    continuing  a form that needs more: 〜て, 〜が, 〜けど, 〜と, 〜を, 〜は, a filler
                (えーと, あのー), あの〜 / それで〜 / ちょっと〜, a verb stem, or nothing
                recognisable yet                                          → long silence
    unsure      anything else (a bare noun phrase 「住民票」, 〜のですが)     → the middle

The audio cue: energy falling at the end of the last word (a declarative close) shortens an
unsure wait (to no less than the old fixed 1.25 s by default); it never overrides the words.

CONTRACT:
    TurnVerdict (COMPLETE / CONTINUING / UNSURE)
    judge_text(text) -> tuple[TurnVerdict, str]            — verdict and its reason, in words
    falling_end(samples, rate) -> bool                       — the audio cue
    TurnEndModel(settings).decide(text, samples, rate) -> TurnDecision(verdict, reason, wait)
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiosk import sudachi


class TurnVerdict(enum.Enum):
    COMPLETE = "complete"
    CONTINUING = "continuing"
    UNSURE = "unsure"


@dataclass(frozen=True)
class TurnDecision:
    verdict: TurnVerdict
    reason: str  # why, in a few words (logged and shown by the benchmark)
    wait_seconds: float  # silence after the last word before the turn ends


#: Particles after which a Japanese question goes on (case, binding, adverbial, conjunctive).
_GOING_ON_PARTICLES = ("格助詞", "係助詞", "副助詞", "接続助詞")
#: Sentence-final particles that close a question or request.
_CLOSING_PARTICLES = ("か", "の", "ね", "よ", "かな", "かしら", "な")
#: Of those, the ones that assert rather than ask: after a bare noun or a particle
#: (「住民票よ」, 「出し方ね」) they are more often a fragment misheard in a pause.
_ASSERTING_PARTICLES = ("ね", "よ", "な")
#: A polite trailing request (〜したいのですが / 〜んですけど): usually finished, not always.
_POLITE_TRAIL = ("ですが", "ですけど", "ですけれど", "ますが", "ますけど", "ますけれど")
_QUESTION_MARKS = ("?", "？")
#: Auxiliaries a finished question or request ends with (〜です, 〜ます, 〜た, 〜たい, 〜ない);
#: a rarer one (〜まい) at a pause is more likely a misheard fragment.
_CLOSING_AUXILIARIES = ("です", "ます", "た", "たい", "だ", "ない", "ぬ", "らしい")

def _tokenize(text: str) -> list[Any]:
    """Sudachi morphemes (mode C), from the dictionary the whole process shares with the
    search stage (kiosk.sudachi): a second copy would hold about 80 MB more."""
    from sudachipy import tokenizer

    return list(sudachi.tokenizer().tokenize(text, tokenizer.Tokenizer.SplitMode.C))


def judge_text(text: str) -> tuple[TurnVerdict, str]:
    """The verdict the words alone give, with the ending that decided it."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    asked = text.endswith(_QUESTION_MARKS)
    words = [m for m in _tokenize(text) if m.part_of_speech()[0] not in ("補助記号", "空白")]
    if not words:
        return TurnVerdict.CONTINUING, "nothing recognisable said yet"
    last = words[-1]
    pos, sub, form = last.part_of_speech()[0], last.part_of_speech()[1], last.part_of_speech()[5]
    surface = last.surface()
    bare = text.rstrip("。.!！?？、, ")
    if pos == "感動詞" and sub == "フィラー" or pos == "フィラー":
        return TurnVerdict.CONTINUING, f"ends with the filler 「{surface}」"
    trail = next((t for t in _POLITE_TRAIL if bare.endswith(t)), "")
    if trail:
        return TurnVerdict.UNSURE, f"a polite trailing request 「〜{trail}」"
    if pos == "助詞":
        if sub == "終助詞" and surface not in _CLOSING_PARTICLES:
            return TurnVerdict.UNSURE, f"a sentence-final particle 「{surface}」 questions do not end with"
        before = words[-2].part_of_speech()[:2] if len(words) > 1 else ("", "")
        if (sub == "終助詞" and surface in _ASSERTING_PARTICLES
                and (before[0] == "名詞" or before[1] in ("格助詞", "係助詞"))):
            return TurnVerdict.UNSURE, f"「{surface}」 straight after 「{words[-2].surface()}」"
        if sub == "終助詞" or (surface in _CLOSING_PARTICLES and sub == "準体助詞" and asked):
            return TurnVerdict.COMPLETE, f"sentence-final particle 「{surface}」"
        if sub in _GOING_ON_PARTICLES:
            return TurnVerdict.CONTINUING, f"ends with the particle 「{surface}」 ({sub})"
        return TurnVerdict.UNSURE, f"particle 「{surface}」 ({sub})"
    if pos == "助動詞" and last.dictionary_form() not in _CLOSING_AUXILIARIES:
        return TurnVerdict.UNSURE, f"an unusual ending 「{surface}」 for a question"
    if pos in ("助動詞", "動詞", "形容詞"):
        if form.startswith(("終止形", "命令形")):
            return TurnVerdict.COMPLETE, f"sentence-final form 「{surface}」 ({form})"
        if form.startswith(("連用形", "未然形", "仮定形")):
            return TurnVerdict.CONTINUING, f"a form that goes on 「{surface}」 ({form})"
        return (TurnVerdict.COMPLETE if asked else TurnVerdict.UNSURE), f"「{surface}」 ({form})"
    if pos in ("名詞", "代名詞", "接尾辞", "形状詞"):
        if asked:
            return TurnVerdict.COMPLETE, f"a noun phrase asked as a question 「{surface}？」"
        return TurnVerdict.UNSURE, f"ends with the noun phrase 「{surface}」"
    if pos in ("接頭辞", "連体詞", "接続詞", "副詞"):  # お〜, あの〜, それで〜, ちょっと〜
        return TurnVerdict.CONTINUING, f"「{surface}」 ({pos}) needs words after it"
    return TurnVerdict.UNSURE, f"ends with 「{surface}」 ({pos})"


def falling_end(samples: np.ndarray, rate: int, *, tail_seconds: float = 0.25,
                drop_db: float = 6.0) -> bool:
    """True when the last spoken stretch is markedly quieter than the speech before it: the
    energy fall of a declarative close. `samples` end at the last word (no trailing silence
    beyond ~0.3 s; the silence is cut by level)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.size < rate // 2:
        return False
    frame = max(1, rate // 100)  # 10 ms
    n = x.size // frame
    energy = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame)), axis=1)) + 1e-9
    voiced = np.flatnonzero(energy > max(1e-3, float(energy.max()) * 0.05))
    if voiced.size < 20:
        return False
    energy = energy[: voiced[-1] + 1]
    tail = max(3, int(tail_seconds * 100))
    if energy.size < 3 * tail:
        return False
    before = float(np.median(energy[voiced[0]: -tail]))
    end = float(np.mean(energy[-tail:]))
    return 20 * np.log10(before / end) >= drop_db


class TurnEndModel:
    """How long a silence must last before the turn is over, given what was said so far."""

    def __init__(self, settings: Any = None):
        from kiosk.config import EndpointingSettings

        s = getattr(settings, "endpointing", settings) or EndpointingSettings()
        self.waits = {TurnVerdict.COMPLETE: s.complete_silence_seconds,
                      TurnVerdict.CONTINUING: s.continuing_silence_seconds,
                      TurnVerdict.UNSURE: s.unsure_silence_seconds}
        self.falling_unsure = s.falling_unsure_silence_seconds

    def decide(self, text: str, samples: np.ndarray | None = None,
               rate: int = 16000) -> TurnDecision:
        verdict, reason = judge_text(text)
        wait = self.waits[verdict]
        if verdict is TurnVerdict.UNSURE and samples is not None and falling_end(samples, rate):
            wait = min(wait, self.falling_unsure)
            reason += "; the voice falls at the end"
        return TurnDecision(verdict, reason, wait)
