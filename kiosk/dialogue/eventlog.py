"""Structured logs for operators, and the opt-in query log for staff.

Two separate files on purpose:
- the event log (JSON lines, rotated daily) says what the kiosk did — state changes, answer
  kinds, entry ids, device loss, errors — and never what a visitor said, so it can be kept
  and shared for support without consent questions;
- the query log exists only when an operator switches on `[logging] query_log`. It keeps the
  recognised text of each question (never audio) with the outcome, one file per day, and
  files older than `query_log_days` are deleted, so `kiosk report unanswered` can tell staff
  which content to write next.

CONTRACT:
    setup_logging(settings) -> Path | None   — route the `kiosk` loggers to JSON lines
    EventLog().event(name, **fields)          — one structured event (no personal data)
    QueryRecord(time, text, kind, entry_id, category)
    QueryLog(settings).record(text, kind, entry_id="", category="")  — no-op when disabled
    QueryLog.prune() / QueryLog.keep_retention(stop)  — retention, whatever the switch
    QueryLog.read() -> list[QueryRecord]      — within the retention limit, oldest first
    QueryLog.unanswered(limit=None) -> list[tuple[str, int]]  — most frequent first
    QueryLog.categories_by_week() -> list[tuple[str, list[tuple[str, int]]]]
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiosk import KioskError
from kiosk.config import Settings
from kiosk.i18n import _

EVENT_LOGGER = "kiosk.events"
#: How often a running kiosk deletes expired query-log days (well within a day).
RETENTION_CHECK_SECONDS = 3600.0
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
#: LogRecord attributes that are not extra fields of an event.
_RECORD_KEYS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def log_dir(settings: Settings) -> Path:
    configured = settings.logging.log_dir
    return settings.path(configured) if configured else settings.state_dir / "logs"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
            .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_KEYS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(settings: Settings) -> Path | None:
    """Write the kiosk's logs as JSON lines under the log folder, rotated at midnight and
    kept `keep_days` days. Returns the log file, or None when the folder is not writable
    (the kiosk must still serve visitors; the problem is reported on stderr)."""
    level = _LEVELS.get(settings.logging.level.lower())
    if level is None:
        raise KioskError(_("[logging] level = {level!r} is not a log level; use one of "
                           "{levels}").format(level=settings.logging.level,
                                              levels=", ".join(_LEVELS)))
    folder = log_dir(settings)
    root = logging.getLogger("kiosk")
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_kiosk_jsonl", False):
            root.removeHandler(handler)
            handler.close()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.TimedRotatingFileHandler(
            folder / "kiosk.jsonl", when="midnight", backupCount=max(1, settings.logging.keep_days),
            encoding="utf-8", utc=True)
    except OSError as exc:
        logging.getLogger(__name__).error(
            _("cannot write logs in %s (%s); check [logging] log_dir and its permissions"),
            folder, exc.strerror or exc)
        return None
    handler.setFormatter(JsonLinesFormatter())
    handler._kiosk_jsonl = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # Conversation events go to the JSON file only: on stderr (the journal) they would be
    # bare words without their fields, and a busy kiosk would drown real warnings.
    events = logging.getLogger(EVENT_LOGGER)
    for old_handler in list(events.handlers):
        if getattr(old_handler, "_kiosk_jsonl", False):
            events.removeHandler(old_handler)
    events.addHandler(handler)
    events.propagate = False
    return folder / "kiosk.jsonl"


class EventLog:
    """Structured events of the conversation. Callers pass only non-personal fields
    (state names, answer kinds, entry ids, timings); text a visitor said goes to QueryLog."""

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger(EVENT_LOGGER)

    def event(self, name: str, level: int = logging.INFO, **fields: Any) -> None:
        self.logger.log(level, name, extra={"event": name, **fields})


@dataclass(frozen=True)
class QueryRecord:
    """One question as the query log keeps it: the recognised text and what came of it."""

    time: str  # ISO 8601, UTC
    text: str
    kind: str  # "confident", "unsure" or "none" (kiosk.answer.contract.AnswerKind values)
    entry_id: str = ""
    category: str = ""


_SPACE_PUNCT = re.compile(r"[\s、。，．,.！!？?「」『』（）()・…ー〜~]+$|^[\s、。，．,.！!？?]+|\s+")


def normalise_question(text: str) -> str:
    """The form questions are counted by: NFKC, no spaces, no trailing punctuation."""
    return _SPACE_PUNCT.sub("", unicodedata.normalize("NFKC", text)).strip()


class QueryLog:
    """The opt-in log of recognised questions, one JSON-lines file per UTC day."""

    def __init__(self, settings: Settings):
        self.enabled = settings.logging.query_log
        self.days = max(1, settings.logging.query_log_days)
        self.folder = log_dir(settings) / "queries"
        self._lock = threading.Lock()
        self._pruned_on: dt.date | None = None

    def _file(self, day: dt.date) -> Path:
        return self.folder / f"queries-{day.isoformat()}.jsonl"

    def _day_of(self, path: Path) -> dt.date | None:
        try:
            return dt.date.fromisoformat(path.stem.removeprefix("queries-"))
        except ValueError:
            return None

    def record(self, text: str, kind: str, entry_id: str = "", category: str = "",
               now: dt.datetime | None = None) -> None:
        """Keep one question (only when the operator opted in). Never raises: a full disk
        must not stop the kiosk answering; the failure goes to the event log instead."""
        text = text.strip()
        if not self.enabled or not text:
            return
        now = now or _now()
        line = json.dumps(asdict(QueryRecord(now.isoformat(timespec="seconds"), text, kind,
                                             entry_id, category)), ensure_ascii=False)
        with self._lock:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with open(self._file(now.date()), "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
                if self._pruned_on != now.date():
                    self._prune(now.date())
                    self._pruned_on = now.date()
            except OSError as exc:
                logging.getLogger(__name__).error(
                    _("cannot write the query log in %s: %s"), self.folder, exc.strerror or exc)

    def _prune(self, today: dt.date) -> None:
        """Delete days beyond the retention limit (the limit is a promise to visitors)."""
        oldest = today - dt.timedelta(days=self.days - 1)
        for path in self.folder.glob("queries-*.jsonl"):
            day = self._day_of(path)
            if day is not None and day < oldest:
                path.unlink(missing_ok=True)

    def prune(self, today: dt.date | None = None) -> None:
        """Delete expired days now, whether the log is switched on or not (files kept
        while it was on must still go when their time is up)."""
        with self._lock:
            try:
                if self.folder.is_dir():
                    self._prune(today or _now().date())
            except OSError as exc:
                logging.getLogger(__name__).error(
                    _("cannot delete expired query logs in %s: %s"), self.folder,
                    exc.strerror or exc)

    def keep_retention(self, stop: threading.Event,
                       every_seconds: float = RETENTION_CHECK_SECONDS) -> None:
        """Prune at once, then every `every_seconds` until `stop` is set: the retention
        limit holds from start-up and across midnight, not only when a question comes."""
        while True:
            self.prune()
            if stop.wait(every_seconds):
                return

    def read(self, today: dt.date | None = None) -> list[QueryRecord]:
        """Every kept question within the retention limit, oldest first. Damaged lines (a
        power cut mid-write) are skipped, not fatal."""
        if not self.folder.is_dir():
            return []
        oldest = (today or _now().date()) - dt.timedelta(days=self.days - 1)
        out: list[QueryRecord] = []
        for path in sorted(self.folder.glob("queries-*.jsonl")):
            day = self._day_of(path)
            if day is None or day < oldest:
                continue
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    data = json.loads(line)
                    out.append(QueryRecord(**{k: str(data.get(k, "")) for k in
                                              ("time", "text", "kind", "entry_id", "category")}))
                except (ValueError, TypeError):
                    continue
        return out

    def unanswered(self, limit: int | None = None,
                   today: dt.date | None = None) -> list[tuple[str, int]]:
        """Questions that found nothing, most frequent first (ties: most recent first)."""
        counts: Counter[str] = Counter()
        last: dict[str, str] = {}
        forms: dict[str, Counter[str]] = {}  # how each question was written, most common shown
        for r in self.read(today):
            if r.kind != "none":
                continue
            key = normalise_question(r.text)
            if not key:
                continue
            counts[key] += 1
            last[key] = r.time
            forms.setdefault(key, Counter())[r.text] += 1
        ranked = sorted(counts, key=lambda k: (-counts[k], _desc(last[k])))
        return [(forms[k].most_common(1)[0][0], counts[k]) for k in ranked[:limit]]

    def categories_by_week(self, today: dt.date | None = None
                           ) -> list[tuple[str, list[tuple[str, int]]]]:
        """Per ISO week (newest first, labelled by its Monday): categories of the answers
        given, most asked first — what visitors come for."""
        weeks: dict[str, Counter[str]] = {}
        for r in self.read(today):
            if not r.category:
                continue
            try:
                day = dt.datetime.fromisoformat(r.time).date()
            except ValueError:
                continue
            monday = (day - dt.timedelta(days=day.weekday())).isoformat()
            weeks.setdefault(monday, Counter())[r.category] += 1
        return [(w, weeks[w].most_common()) for w in sorted(weeks, reverse=True)]


def _desc(text: str) -> tuple[int, ...]:
    """Sort key that orders ISO timestamps newest first."""
    return tuple(-ord(c) for c in text)
