"""Answer stage: decides, from ranked hits, whether the kiosk answers, asks back, or says
honestly that it does not know — it never reads out a wrong answer with confidence.

CONTRACT:
    AnswerKind, Answer, AnswerComposer(settings: AnswerSettings, categories: Sequence[str])
    AnswerComposer.compose(query: str, hits: Sequence[Hit]) -> Answer
    AnswerComposer.compose_heard(heard: Sequence[tuple[str, Sequence[Hit]]]) -> Answer
        — the recogniser's transcripts in its order, each with its hits; one the content
          fits better than the first is used, and then always asked back
    AnswerComposer.wants_alternatives(first_hits) -> bool — whether the other transcripts
        are worth searching at all (kiosk.dialogue.ask does the searching)

The decision itself is a plain record (kiosk.answer.contract: Answer, AnswerKind).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kiosk.answer.contract import Answer, AnswerKind
from kiosk.config import AnswerSettings
from kiosk.search.contract import Hit


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

    def wants_alternatives(self, first_hits: Sequence[Hit]) -> bool:
        """The first transcript keeps the benefit of the doubt: the others are searched only
        when no entry covers it fully, and never where [answer] alternative_margin is 1."""
        return _top_confidence(first_hits) < 1.0 and self.settings.alternative_margin < 1.0

    def compose_heard(self, heard: Sequence[tuple[str, Sequence[Hit]]]) -> Answer:
        """Answer what was heard: the recogniser's first transcript, unless one of its other
        transcripts (n-best, in its order) fits an entry clearly better.

        A recogniser's first choice among near-homophones is often a word the city content
        never uses (「レッドボトル」 for ペットボトル); its runner-up is the one the content
        covers. Another transcript wins only with a confidence higher by [answer]
        alternative_margin, and an answer from another transcript is asked back
        (「ペットボトルの出し方についてですか？」), never read out at once — the recogniser
        itself preferred something else, and a garbled runner-up can fit a wrong entry well
        (measured: bench/asr_bench.py)."""
        if not heard:
            return Answer(AnswerKind.NONE, "", (), self._suggestions(()))
        chosen, hits = heard[0]
        first = best = _top_confidence(hits)
        if self.wants_alternatives(hits):
            for text, other in heard[1:]:
                conf = _top_confidence(other)
                if conf >= first + self.settings.alternative_margin and conf > best:
                    chosen, hits, best = text, other, conf
        answer = self.compose(chosen, hits)
        if chosen != heard[0][0] and answer.kind is AnswerKind.CONFIDENT:
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
