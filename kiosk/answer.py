"""Answer stage: decides, from ranked hits, whether the kiosk answers, asks back, or says
honestly that it does not know — it never reads out a wrong answer with confidence.

CONTRACT:
    AnswerKind, Answer, AnswerComposer(settings: AnswerSettings, categories: Sequence[str])
    AnswerComposer.compose(query: str, hits: Sequence[Hit]) -> Answer
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kiosk.index import Hit


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

    @property
    def best(self) -> Hit | None:
        return self.candidates[0] if self.candidates else None
