"""Content stage: what the kiosk knows. City staff write entries as JSON Lines, CSV or
Markdown; this module turns them into validated `Entry` records or a list of problems, each
naming file, line/row and field, so a bad file never reaches the index."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk import KioskError


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


@dataclass(frozen=True)
class ContentProblem:
    """One thing wrong in a content file, located precisely enough for staff to fix it."""

    file: str
    line: int | None  # line (JSONL, Markdown) or row (CSV, header = row 1); None = whole file
    field: str | None
    message: str
    warning: bool = False  # warnings are reported but do not block an import

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"'{self.field}' " if self.field else ""
        kind = "warning: " if self.warning else ""
        return f"{where}: {kind}{what}{self.message}"


class ContentError(KioskError):
    """Content that cannot be imported; carries every problem found, not just the first."""

    def __init__(self, problems: list[ContentProblem]):
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        lines = "\n".join(f"  {p}" for p in errors[:50])
        more = f"\n  … and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(
            f"{len(errors)} problem(s) in the content; nothing was changed:\n{lines}{more}"
        )
