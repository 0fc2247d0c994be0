"""What search hands the answer stage — ranked candidates, each an entry with its scores —
and the protocol of a searcher, so the answer stage, the voice and the dialogue take hits
without importing whoosh, numpy, e5 or Mozc.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kiosk.content.contract import Entry


@dataclass(frozen=True)
class Hit:
    """One ranked candidate for a query."""

    entry: Entry
    score: float  # ranking score (BM25F + coverage blend), only comparable within one query;
    #               hits come sorted by it
    confidence: float  # 0..1, comparable across queries; the answer stage thresholds this


class Searcher(Protocol):
    """The published index a running kiosk asks (kiosk.search.versions.LiveIndex)."""

    def search(self, query: str, limit: int | None = None) -> list[Hit]: ...

    def sounds_like(self, texts: Sequence[str], limit: int) -> list[Hit]:
        """Entries whose title or keyword sounds like a stretch of what was heard (a garbled
        transcript's ask-back choices; kiosk.search.sound_alike), closest first."""
        ...

    def entries(self) -> list[Entry]: ...

    def categories(self) -> list[str]: ...

    def entries_in(self, category: str) -> list[Entry]: ...
