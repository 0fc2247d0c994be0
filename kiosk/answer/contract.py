"""The answer stage's decision as plain data, read by the dialogue, the voice and `kiosk ask`.

    Answer.ask_back      — 「〇〇についてですか？」 for an UNSURE answer
    Answer.choices       — the candidates worth offering when asking back
    topic_of(title)      — the short name of what an entry's title is about
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiosk.search.contract import Hit

if TYPE_CHECKING:
    from kiosk.search.places import NearbyRequest


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
    nearby: NearbyRequest | None = None  # the places stage's records, for a "near X" answer

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
        return f"{self.topic(0)}についてですか？"

    def topic(self, index: int) -> str:
        """What candidate `index` is about, worded so it differs from the other choices:
        「市役所についてですか？」 separates nothing when every choice is about 市役所, so
        then the title's own note names the difference (「市役所の駐車場」「市役所の行き方」)."""
        title = self.candidates[index].entry.title
        topic = topic_of(title)
        others = [h for h in (*self.choices, *self.candidates[:index + 2])
                  if h is not self.candidates[index]]
        if all(topic_of(h.entry.title) != topic for h in others):
            return topic
        return distinct_topic(title)


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


def distinct_topic(title: str) -> str:
    """A longer topic for a title whose short one is shared: its bracketed note joined to
    the short topic (「市役所に車で行けますか（駐車場）」→「市役所の駐車場」), else the
    whole title in quotes."""
    paren = _TRAILING_PAREN.match(title.strip())
    if paren:
        topic, note = topic_of(paren["head"]), paren["note"]
        return note if topic in note else f"{topic}の{note}"
    return f"「{title.strip()}」"
