"""The content record every stage downstream of content reads: one answerable entry.

Plain data, no parsing and no engine, so the index, the answer stage and the voice can
take entries without importing the staff file formats.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One answerable piece of city information."""

    id: str
    title: str  # the question or name it answers
    body: str  # the full answer text
    spoken: str = ""  # short answer written to be read aloud; "" = derive from body
    category: str = ""
    keywords: tuple[str, ...] = ()  # extra search words / synonyms
    source: str = ""  # attribution, shown and spoken with the answer
    updated: str = ""  # ISO date of the last change
    address: str = ""
    phone: str = ""
    hours: str = ""
    lat: float | None = None
    lon: float | None = None
