"""One ask path — transcripts in, hits, a decision out — for the kiosk's conversation,
`kiosk ask` and the staff desk's preview, so all three answer a question alike.

The searching lives here, not in the answer stage: the composer decides on the hits it is
given, and says whether the recogniser's other transcripts are worth searching at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from kiosk.answer.composer import AnswerComposer
from kiosk.answer.contract import Answer
from kiosk.search.contract import Searcher


def ask(searcher: Searcher, composer: AnswerComposer, texts: Sequence[str],
        limit: int | None = None) -> Answer:
    """Answer a question heard as `texts` (the recogniser's transcripts in its order; a
    typed question is one text). The composer's categories follow the searcher's, so an
    import that added categories is offered at once."""
    composer.categories = tuple(dict.fromkeys(c for c in searcher.categories() if c))
    unique = [t for t in dict.fromkeys(t.strip() for t in texts) if t]
    if not unique:
        return composer.compose_heard(())
    heard = [(unique[0], searcher.search(unique[0], limit))]
    if composer.wants_alternatives(heard[0][1]):
        heard += [(text, searcher.search(text, limit)) for text in unique[1:]]
    return composer.compose_heard(heard)
