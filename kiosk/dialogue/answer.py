"""Answer stage: decides, from ranked hits, whether the kiosk answers, asks back, or says
honestly that it does not know — it never reads out a wrong answer with confidence.

CONTRACT:
    AnswerKind, Answer, AnswerComposer(settings: AnswerSettings, categories: Sequence[str])
    AnswerComposer.compose(query: str, hits: Sequence[Hit]) -> Answer
    AnswerComposer.compose_heard(texts: Sequence[str], search: Callable[[str], Sequence[Hit]],
                                 *, confidence: float = 1.0, noise_dbfs: float | None = None)
        -> Answer   — the recogniser's transcripts in its order; one the content fits
                      better than the first is used, and then always asked back; a
                      transcript the recogniser was unsure of (or heard in a loud room)
                      is asked back too

Also used by the screen, the conversation loop and `kiosk ask`:
    Answer.ask_back      — 「〇〇についてですか？」 for an UNSURE answer
    Answer.choices       — the candidates worth offering when asking back
    topic_of(title)      — the short name of what an entry's title is about
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from kiosk.config import AnswerSettings
from kiosk.search.index import Hit


class AnswerKind(enum.Enum):
    CONFIDENT = "confident"  # read the best entry out
    UNSURE = "unsure"  # ask back 「〇〇についてですか？」
    NONE = "none"  # say nothing fits, offer categories


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    query: str
    candidates: tuple[Hit, ...] = ()
    suggestions: tuple[str, ...] = ()  # categories offered when nothing fits
    choices_count: int = 1  # how many candidates are close enough to offer (UNSURE)

    @property
    def best(self) -> Hit | None:
        return self.candidates[0] if self.candidates else None

    @property
    def choices(self) -> tuple[Hit, ...]:
        """The candidates offered when asking back (the best one first)."""
        if self.kind is AnswerKind.NONE:
            return ()
        return self.candidates[: max(1, self.choices_count)]

    @property
    def ask_back(self) -> str:
        """The question the kiosk asks when unsure; "" when it answers or declines."""
        if self.kind is not AnswerKind.UNSURE or self.best is None:
            return ""
        return f"{topic_of(self.best.entry.title)}についてですか？"


#: Question tails cut from a title to leave its topic: 「住民票の写しがほしい」→「住民票の写し」.
#: は/を/が/について are tried first; に only when nothing else fits (「保育所に入りたい」),
#: because に and で also occur inside topics (「災害にそなえて」).
_ENDINGS = r"(?:たい|ですか|ますか|ほしい|いい|ください|ない|なくした)$"
_QUESTIONS = (
    re.compile(r"^(?P<topic>.+?)(?:について|は|を|が)[^、。（）]*?" + _ENDINGS),
    re.compile(r"^(?P<topic>.+?)に[^、。（）]*?" + _ENDINGS),
)
#: Titles that are statements, not names: 「厚木市に引っ越してきました（転入届）」.
_STATEMENT = re.compile(r"(?:ました|ます|です|たら)$")
_TRAILING_PAREN = re.compile(r"^(?P<head>.+?)[（(](?P<note>[^（）()]+)[）)]$")


def topic_of(title: str) -> str:
    """What an entry's title is about, short enough for 「〇〇についてですか？」.

    Titles are written as the question a citizen asks; a bare name (a school, a shelter)
    is already a topic, a statement with a bracketed name (「赤ちゃんが生まれました（出生届）」)
    gives that name, and a question is cut before its predicate.
    """
    title = title.strip()
    paren = _TRAILING_PAREN.match(title)
    head, note = (paren["head"], paren["note"]) if paren else (title, "")
    if note and _STATEMENT.search(head):
        return note
    for pattern in _QUESTIONS:
        question = pattern.match(head)
        if question and len(question["topic"]) >= 2:
            return question["topic"]
    for tail in ("の一覧", "は"):  # 「洪水のときの避難場所の一覧」→「洪水のときの避難場所」
        if head.endswith(tail) and len(head) > len(tail) + 1:
            return head.removesuffix(tail)
    return head


def _top_confidence(hits: Sequence[Hit]) -> float:
    """The confidence of the candidate that would be read out."""
    return max(hits, key=lambda h: h.score).confidence if hits else 0.0


class AnswerComposer:
    """Turns ranked hits into an honest decision.

    Thresholds use `Hit.confidence` (0..1, comparable across queries); closeness of the top
    two uses the raw scores, which are comparable within one query.
    """

    def __init__(self, settings: AnswerSettings, categories: Sequence[str]):
        self.settings = settings
        self.categories = tuple(dict.fromkeys(c for c in categories if c))

    def compose(self, query: str, hits: Sequence[Hit]) -> Answer:
        ranked = self._rank(hits)
        best = ranked[0] if ranked else None
        if best is None or best.confidence < self.settings.min_score or best.score <= 0:
            return Answer(AnswerKind.NONE, query, ranked, self._suggestions(ranked))
        rivals = [h for h in ranked[1:] if self._rivals(best, h)]
        if rivals or best.confidence < self.settings.sure_score:
            count = min(1 + len(rivals), max(1, self.settings.max_choices))
            return Answer(AnswerKind.UNSURE, query, ranked, self._suggestions(ranked), count)
        return Answer(AnswerKind.CONFIDENT, query, ranked)

    def compose_heard(self, texts: Sequence[str], search: Callable[[str], Sequence[Hit]],
                      *, confidence: float = 1.0, noise_dbfs: float | None = None) -> Answer:
        """Answer what was heard: the recogniser's first transcript, unless one of its other
        transcripts (n-best, in its order) fits an entry clearly better.

        A recogniser's first choice among near-homophones is often a word the city content
        never uses (「レッドボトル」 for ペットボトル); its runner-up is the one the content
        covers. The first transcript keeps the benefit of the doubt: another wins only with
        a confidence higher by [answer] alternative_margin, the others are only searched
        when the first is not fully covered, and an answer from another transcript is asked
        back (「ペットボトルの出し方についてですか？」), never read out at once — the
        recogniser itself preferred something else, and a garbled runner-up can fit a wrong
        entry well (measured: bench/asr_bench.py).

        `confidence` is the recogniser's (0..1) and `noise_dbfs` the room's noise floor at
        the microphone (the audio front end's estimate): below [answer] min_heard_confidence
        — or [answer] min_heard_confidence_noisy once the room is louder than
        [answer] noisy_room_dbfs — the answer is asked back instead of read out, because a
        wrong entry read out at once is worse than a question back."""
        texts = [t for t in dict.fromkeys(t.strip() for t in texts) if t]
        if not texts:
            return Answer(AnswerKind.NONE, "", (), self._suggestions(()))
        chosen, hits = texts[0], search(texts[0])
        first = _top_confidence(hits)
        if first < 1.0 and self.settings.alternative_margin < 1.0:
            best = first
            for text in texts[1:]:
                other = search(text)
                conf = _top_confidence(other)
                if conf >= first + self.settings.alternative_margin and conf > best:
                    chosen, hits, best = text, other, conf
        answer = self.compose(chosen, hits)
        bar = self.settings.min_heard_confidence
        if noise_dbfs is not None and noise_dbfs > self.settings.noisy_room_dbfs:
            bar = max(bar, self.settings.min_heard_confidence_noisy)
        if (chosen != texts[0] or confidence < bar) and answer.kind is AnswerKind.CONFIDENT:
            answer = replace(answer, kind=AnswerKind.UNSURE,
                             suggestions=self._suggestions(answer.candidates))
        return answer

    def _rank(self, hits: Sequence[Hit]) -> tuple[Hit, ...]:
        """Best first, in the search stage's order: its score already mixes BM25 with how much
        of the question an entry covers, so weighting by confidence again here would count
        coverage twice and lift generic entries over the specific one."""
        return tuple(sorted(hits, key=lambda h: h.score, reverse=True))

    def _rivals(self, best: Hit, other: Hit) -> bool:
        """Whether `other` is about as good an answer as `best`, so the kiosk must ask."""
        ratio = self.settings.ambiguity_ratio
        return other.score >= best.score * ratio and other.confidence >= best.confidence * ratio

    def _suggestions(self, ranked: Sequence[Hit]) -> tuple[str, ...]:
        """Categories to offer: those of the weak candidates first (they hint at what was
        meant), then the rest in the index's order."""
        hinted = [h.entry.category for h in ranked if h.entry.category]
        ordered = list(dict.fromkeys([*hinted, *self.categories]))
        return tuple(ordered[: max(0, self.settings.max_suggestions)])
