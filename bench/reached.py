"""What counts as reaching a question's entry, for every benchmark that asks the answer
stage: answered outright, or offered among the choices when the kiosk asks back.

A "near here" question (「近くの避難所はどこですか」) is answered by the places stage with the
nearest designated shelters, not with the entry listing all of them: that answer is the
right one for a question whose expected entry is the list (kiosk.search.places).
"""

from __future__ import annotations

from kiosk.answer.contract import Answer, AnswerKind

#: The places stage's kind of site → the entries its "nearest first" answer stands for.
NEARBY_STANDS_FOR = {"指定避難所": frozenset({"shelters-designated-list"})}


def offered(answer: Answer) -> list[str]:
    """The entry ids the kiosk offers: its choices when it asks back, else what it reads."""
    hits = answer.choices if answer.kind is AnswerKind.UNSURE else answer.candidates[:1]
    return [h.entry.id for h in hits]


def reaches(answer: Answer, expected: str) -> bool:
    """The expected entry is read out or offered (a nearby answer of its kind counts)."""
    if answer.kind is AnswerKind.NONE:
        return False
    nearby = answer.nearby
    if nearby is not None and expected in NEARBY_STANDS_FOR.get(nearby.kind, ()):
        return True
    return expected in offered(answer)
