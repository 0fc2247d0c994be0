"""What an index version needs to answer, worked out once by the import and stored in the
version folder, so opening a version does no Japanese analysis and holds little memory.

Before this, every open re-read every entry out of whoosh's stored fields and ran Sudachi
over all the content (the sound vocabulary, the title words), and the dialogue asked for the
category list — another full decode — on every question: seconds and hundreds of MB at
10,000 entries, paid again by every publish while the kiosk was serving. Now the import
writes, beside whoosh's files:

    entries.jsonl           one entry record per line, in import order (the exports, the
                            screen's category lists and every hit are read from it)
    entries.offsets.npy     where each line starts: entry `row` is decoded alone
    prepared.json           format, the ids in row order, the categories (most entries
                            first) and the rows in each, each title's words, and the
                            distinct content words of all entries with their readings (the
                            sound vocabulary's input)

The sound vocabulary and title words are stored before the [search] stop-word list is
applied, so a changed setting needs no re-import; only a different analysis would, and that
is what PREPARED_FORMAT says. A version built by an earlier release (no prepared.json) still
opens: the same tables are then worked out in memory (slow, logged, once per open) until
the content is imported again. A version from a newer release is refused with a message.

CONTRACT:
    PreparedVersion.build(entries) -> PreparedVersion   — the analysis (import time only)
    PreparedBuilder().add(entry) … .finish()            — the same, entry by entry
    PreparedVersion.write(folder) / .read(folder) -> PreparedVersion | None  (None: old format)
    .ids, .categories, .sounds, .title_terms(row), .row_of(entry_id)
    .entry(row) -> Entry, .entries() -> list[Entry], .rows_in(category) -> rows
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk import KioskError
from kiosk.content.contract import Entry
from kiosk.i18n import _
from kiosk.search.analysis import analyse, lemma_terms

#: Bumped whenever what is stored (or the analysis behind it) changes meaning.
PREPARED_FORMAT = 1
PREPARED_FILE = "prepared.json"
ENTRIES_FILE = "entries.jsonl"
OFFSETS_FILE = "entries.offsets.npy"

#: One distinct content word of the content: (folded reading, forms, written in hiragana),
#: kept in the order first met (it decides which written form a sound stands for).
Sound = tuple[str, tuple[str, ...], bool]


class PreparedFormatError(KioskError):
    """A version folder whose prepared tables this release cannot read."""


def entry_to_json(entry: Entry) -> str:
    return json.dumps(dataclasses.asdict(entry), ensure_ascii=False)


_ENTRY_FIELDS = frozenset(f.name for f in dataclasses.fields(Entry))


def entry_from_json(text: str | bytes) -> Entry:
    data = json.loads(text)
    data["keywords"] = tuple(data.get("keywords") or ())
    return Entry(**{k: v for k, v in data.items() if k in _ENTRY_FIELDS})


def searchable_text(entry: Entry) -> str:
    """The text the sound vocabulary is made of (what the reading field indexes). Analysed
    as one text, not line by line: Sudachi reads a word differently with the line before
    it (尼寺 after the keywords is アマデラ, alone ニジ), and the index must stay the one an
    earlier release built."""
    return f"{entry.title}\n{' '.join(entry.keywords)}\n{entry.body}"


def title_words(title: str) -> tuple[str, ...]:
    """A title's index terms, each once (stop words are removed at open, from the settings)."""
    return tuple(dict.fromkeys(lemma_terms(title)))


def _stored_sound(values: Sequence) -> Sound:
    """A content word as read back from JSON (lists → the tuple the vocabulary keys on)."""
    reading, forms, hiragana = values
    return str(reading), tuple(forms), bool(hiragana)


class PreparedBuilder:
    """Collects the tables entry by entry, so the index writer can call `add` right after
    it analysed the same entry (the analysis is then still in kiosk.search.analysis's cache,
    and the content is analysed once per import, not twice)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.titles: list[tuple[str, ...]] = []
        self.records: list[bytes] = []  # UTF-8 JSON lines, as the entries file holds them
        self.category_rows: dict[str, list[int]] = {}
        self.sounds: dict[Sound, None] = {}

    def add(self, entry: Entry) -> None:
        self.ids.append(entry.id)
        self.titles.append(title_words(entry.title))
        self.records.append(entry_to_json(entry).encode("utf-8"))
        self.category_rows.setdefault(entry.category, []).append(len(self.ids) - 1)
        for m in analyse(searchable_text(entry)):
            if m.content:
                self.sounds.setdefault((m.reading, m.forms, m.hiragana), None)

    def finish(self) -> PreparedVersion:
        rows = self.category_rows  # categories, most entries first; "" is no category
        return PreparedVersion(self.ids, sorted((c for c in rows if c), key=lambda c: -len(rows[c])),
                               self.titles, list(self.sounds), _Records(lines=self.records),
                               self.category_rows)


class PreparedVersion:
    """The stored tables of one version (see the module docstring); an entry record is
    decoded from the stored entries file when asked for, never all of them at once."""

    def __init__(self, ids: Sequence[str], categories: Sequence[str],
                 titles: Sequence[tuple[str, ...]], sounds: Sequence[Sound],
                 records: _Records, category_rows: dict[str, list[int]] | None = None):
        self.ids = tuple(ids)
        self._category_rows = category_rows  # None: worked out on first use
        self.categories = tuple(categories)
        self._titles = titles
        self.sounds = sounds
        self._records = records
        self._rows = {entry_id: row for row, entry_id in enumerate(self.ids)}

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> PreparedVersion:
        """Analyse the content once (import time): the only place Sudachi reads all of it."""
        builder = PreparedBuilder()
        for e in entries:
            builder.add(e)
        return builder.finish()

    def write(self, folder: Path) -> None:
        lines = [self._records.line(row) for row in range(len(self.ids))]
        offsets = np.zeros(len(lines) + 1, dtype=np.int64)
        with (folder / ENTRIES_FILE).open("wb") as out:
            for row, line in enumerate(lines):
                out.write(line + b"\n")
                offsets[row + 1] = offsets[row] + len(line) + 1
        np.save(folder / OFFSETS_FILE, offsets, allow_pickle=False)
        tables = {"format": PREPARED_FORMAT, "ids": list(self.ids),
                  "categories": list(self.categories), "titles": [list(t) for t in self._titles],
                  "sounds": [[r, list(f), h] for r, f, h in self.sounds],
                  "category_rows": self._rows_by_category()}
        (folder / PREPARED_FILE).write_text(json.dumps(tables, ensure_ascii=False),
                                            encoding="utf-8")

    # ------------------------------------------------------------------ reading

    @classmethod
    def read(cls, folder: Path) -> PreparedVersion | None:
        """The stored tables; None for a version built before they existed."""
        file = folder / PREPARED_FILE
        if not file.is_file():
            return None
        try:
            tables = json.loads(file.read_text(encoding="utf-8"))
            stored = int(tables.get("format", 0))
        except (OSError, ValueError, AttributeError) as exc:
            raise PreparedFormatError(_(
                "the index version in {folder} is damaged ({file}: {reason}); run "
                "`kiosk content rollback`, or import the content again").format(
                    folder=folder, file=PREPARED_FILE, reason=exc)) from None
        if stored != PREPARED_FORMAT:
            raise PreparedFormatError(_(
                "the index version in {folder} was built by another release of the kiosk "
                "(prepared format {stored}, this release reads {readable}); import "
                "the content again with `kiosk content import FILE...` (or the staff desk), "
                "or run `kiosk content rollback` to an older version").format(
                    folder=folder, stored=stored, readable=PREPARED_FORMAT))
        try:
            records = _Records.stored(folder / ENTRIES_FILE, folder / OFFSETS_FILE)
            ids = tables["ids"]
            if len(records) != len(ids):
                raise ValueError(_("{records} entry records for {ids} ids").format(
                    records=len(records), ids=len(ids)))
            # a version of this format from before category rows were stored: worked out
            # (decoding every entry once) the first time a category is listed
            category_rows = tables.get("category_rows")
            return cls(ids, tables["categories"], [tuple(t) for t in tables["titles"]],
                       [_stored_sound(s) for s in tables["sounds"]], records,
                       ({str(c): [int(r) for r in rows] for c, rows in category_rows.items()}
                        if isinstance(category_rows, dict) else None))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PreparedFormatError(_(
                "the index version in {folder} is damaged ({reason}); run `kiosk content "
                "rollback`, or import the content again").format(folder=folder, reason=exc)) from None

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self, entry_id: str) -> int | None:
        return self._rows.get(entry_id)

    def title_terms(self, row: int) -> tuple[str, ...]:
        return self._titles[row]

    def entry(self, row: int) -> Entry:
        return entry_from_json(self._records.line(row))

    def entries(self) -> list[Entry]:
        return [self.entry(row) for row in range(len(self.ids))]

    def rows_in(self, category: str) -> list[int]:
        """Rows of the entries in `category`, in import order."""
        return list(self._rows_by_category().get(category, ()))

    def _rows_by_category(self) -> dict[str, list[int]]:
        if self._category_rows is None:
            rows: dict[str, list[int]] = {}
            for row in range(len(self.ids)):
                rows.setdefault(self.entry(row).category, []).append(row)
            self._category_rows = rows
        return self._category_rows

    def close(self) -> None:
        self._records.close()


@dataclass
class _Records:
    """Entry records as JSON lines: a list while building; once stored, the file's bytes
    read into memory at open, each line decoded only when a hit needs it. Not memory-mapped:
    a question reads a few records anywhere in the file, and mapped pages the kernel had
    reclaimed came back from disk one page fault each (seconds for one question on a box
    short of page cache); the bytes are the file's size, about 1.4 KB an entry."""

    lines: list[bytes] | None = None
    data: bytes | None = None
    offsets: np.ndarray | None = None

    @classmethod
    def stored(cls, file: Path, offsets_file: Path) -> _Records:
        offsets = np.load(offsets_file, allow_pickle=False)
        data = file.read_bytes()
        if offsets.ndim != 1 or len(offsets) == 0 or int(offsets[-1]) != len(data):
            raise ValueError(_("{offsets} does not match {file}").format(
                offsets=offsets_file.name, file=file.name))
        return cls(data=data, offsets=offsets)

    def __len__(self) -> int:
        return len(self.lines) if self.lines is not None else len(self.offsets) - 1

    def line(self, row: int) -> bytes:
        if self.lines is not None:
            return self.lines[row]
        start, end = int(self.offsets[row]), int(self.offsets[row + 1]) - 1
        return self.data[start:end]

    def close(self) -> None:
        self.data = None  # a closed version's records go with it (a publish while serving)
