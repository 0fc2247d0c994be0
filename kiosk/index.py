"""Index stage: the whoosh full-text index over content entries (BM25F over title, body,
keywords and a katakana reading field). Japanese analysis lives in kiosk.analysis; index
versions and atomic swaps live in kiosk.index_versions.

CONTRACT (other stages rely on these names):
    Hit                                   — one ranked candidate
    build_index(entries, directory, settings) -> None
                                          — write a complete whoosh index into an empty folder
    SearchIndex.open(directory, settings) -> SearchIndex
    SearchIndex.search(query: str, limit: int | None = None) -> list[Hit]
    SearchIndex.entries() -> list[Entry]  — everything indexed (for vocabularies, exports)
    SearchIndex.categories() -> list[str]
    SearchIndex.close()
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.content import Entry


@dataclass(frozen=True)
class Hit:
    """One ranked candidate for a query."""

    entry: Entry
    score: float  # raw BM25F score, comparable only within one query
    confidence: float  # 0..1, comparable across queries; the answer stage thresholds this
