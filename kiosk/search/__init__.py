"""Search: a question's text in, ranked entries out.

    query (normalise, synonyms, kana → kanji) → analysis (Sudachi forms and readings)
    → index (whoosh BM25F, plus meaning from e5 vectors) → list[Hit]

CONTRACT:
    LiveIndex (versions.py): the published index a running kiosk searches; reopens itself
        when staff publish. .search(query, limit) -> list[Hit], .entries(), .categories(),
        .entries_in(category)
    SearchIndex (index.py): one opened index version; build_index(entries, folder)
    Hit (index.py): entry, score, confidence — what the answer stage decides on
"""

import sys

from kiosk.search import analysis

# Index versions written before the stage folders pickled their analyzers as
# `kiosk.analysis.<Class>`: keep that name importable so they still open.
sys.modules.setdefault("kiosk.analysis", analysis)
