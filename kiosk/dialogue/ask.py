"""One ask path — transcripts in, hits, a decision out — for the kiosk's conversation,
`kiosk ask` and the staff desk's preview, so all three answer a question alike.

The searching lives here, not in the answer stage: the composer decides on the hits it is
given, and says whether the recogniser's other transcripts are worth searching at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from kiosk.answer.composer import AnswerComposer
from kiosk.answer.contract import Answer
from kiosk.config import SiteSettings
from kiosk.search.contract import Searcher
from kiosk.search.places import NearbyRequest, PlaceFinder


def ask(searcher: Searcher, composer: AnswerComposer, texts: Sequence[str],
        limit: int | None = None, *, confidence: float = 1.0,
        noise_dbfs: float | None = None) -> Answer:
    """Answer a question heard as `texts` (the recogniser's transcripts in its order; a
    typed question is one text). The composer's categories follow the searcher's, so an
    import that added categories is offered at once. A "near X" question (「荻野の近くの
    避難所」) goes to the places stage first: its records, not the word search, decide. `confidence`
    (the recogniser's) and `noise_dbfs` (the audio front end's noise floor) decide whether
    an answer may be read out at once (AnswerComposer.compose_heard)."""
    composer.categories = tuple(dict.fromkeys(c for c in searcher.categories() if c))
    unique = [t for t in dict.fromkeys(t.strip() for t in texts) if t]
    if not unique:
        return composer.compose_heard(())
    places = places_for(searcher, composer.site)
    request = places.find(unique[0])
    if request is not None:
        alike = all(_same_places(places.find(text), request) for text in unique[1:])
        return composer.compose_nearby(request, heard_alike=alike, confidence=confidence,
                                       noise_dbfs=noise_dbfs)
    heard = [(unique[0], searcher.search(unique[0], limit))]
    if composer.wants_alternatives(heard[0][1], noise_dbfs=noise_dbfs, confidence=confidence):
        heard += [(text, searcher.search(text, limit)) for text in unique[1:]]
    alikes = searcher.sounds_like(unique, composer.settings.max_choices) \
        if composer.wants_sound_alikes(noise_dbfs=noise_dbfs, confidence=confidence) else []
    return composer.compose_heard(heard, confidence=confidence, noise_dbfs=noise_dbfs,
                                  sound_alikes=alikes)


def _same_places(other: NearbyRequest | None, request: NearbyRequest) -> bool:
    """Another transcript asks for the same kind of site near the same place."""
    return other is not None and (other.origin, other.kind, other.hazard) == \
        (request.origin, request.kind, request.hazard)


def places_for(searcher: Searcher, site: SiteSettings) -> PlaceFinder:
    """The places stage for the searcher's content, built once per index version (a
    publish that changes the shelters is seen at the next question)."""
    key = (id(searcher), getattr(searcher, "version", None), getattr(searcher, "directory", None))
    return PlaceFinder.cached(searcher.entries, site, key)
