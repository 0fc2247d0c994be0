"""Progress of the steps that can take more than a couple of seconds (a content import's
rows, analysis and vectors, the first index build, a bundle pull, the whisper model's
assembly), so staff never sit in front of a silent command.

A stage reports through `Progress` and never decides how it is shown; whoever runs it picks
the reporter: the CLI a `TerminalReporter` (a tqdm bar on a terminal, plain periodic lines
when stderr is not a terminal: CI, journald), the staff desk one that keeps the latest step
for its publish page. A reporter set with `reporting_to` applies to the current thread (a
staff desk request) and falls back to the process-wide one (`set_default_reporter`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from kiosk.i18n import _


@dataclass(frozen=True)
class ProgressUpdate:
    """Where one step is: `done` of `total` (None = not known in advance) `unit`s."""

    step: str
    done: int
    total: int | None
    unit: str
    elapsed: float
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far (None until something is done)."""
        if not self.total or not self.done or self.finished:
            return None
        return self.elapsed * (self.total - self.done) / self.done

    def line(self) -> str:
        """One plain line for logs and non-terminal output."""
        if self.total is None:
            count = f"{self.done:,} {self.unit}".rstrip() if self.done else ""
        else:
            count = f"{self.done:,}/{self.total:,} {self.unit}".rstrip()
        text = f"{self.step}: {count}" if count else self.step
        if self.fraction is not None:
            text += f" ({self.fraction:.0%})"
        text += _(", {elapsed} elapsed").format(elapsed=clock(self.elapsed))
        if self.finished:
            return text + _(", done")
        if self.eta_seconds is not None:
            text += _(", about {left} left").format(left=clock(self.eta_seconds))
        return text

    def as_json(self) -> dict[str, Any]:
        return {"step": self.step, "done": self.done, "total": self.total, "unit": self.unit,
                "elapsed": round(self.elapsed, 1), "finished": self.finished,
                "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
                "line": self.line()}


def clock(seconds: float) -> str:
    """1:05, 12:00, 1:02:03."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


Reporter = Callable[[ProgressUpdate], None]


def _silent(update: ProgressUpdate) -> None:
    pass


_default: Reporter = _silent
_local = threading.local()


def set_default_reporter(reporter: Reporter | None) -> None:
    """The process-wide reporter (None = report nothing)."""
    global _default
    _default = reporter or _silent


def default_reporter() -> Reporter:
    return _default


def current_reporter() -> Reporter:
    return getattr(_local, "reporter", None) or _default


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[None]:
    """Send the progress of this thread's steps to `reporter` while the block runs."""
    before = getattr(_local, "reporter", None)
    _local.reporter = reporter
    try:
        yield
    finally:
        _local.reporter = before


class Progress:
    """One long step. Use as a context manager; `update(n)` as work gets done."""

    def __init__(self, step: str, total: int | None = None, unit: str = ""):
        self.step, self.total, self.unit = step, total, unit
        self.done = 0
        self._start = time.monotonic()
        self._reporter = current_reporter()
        self._closed = False
        self._report()

    def _report(self, finished: bool = False) -> None:
        self._reporter(ProgressUpdate(self.step, self.done, self.total, self.unit,
                                      time.monotonic() - self._start, finished))

    def update(self, n: int = 1) -> None:
        self.done += n
        self._report()

    def close(self) -> None:
        """The step is over (also when it failed: the reporter stops showing it)."""
        if not self._closed:
            self._closed = True
            self._report(finished=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TerminalReporter:
    """A tqdm bar per step on a terminal; otherwise a plain line when a step starts, at
    every further tenth of it (or every `interval` seconds when its size is unknown or
    it is slow), and when it ends."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 10.0,
                 tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = self.stream.isatty() if tty is None else tty
        self._bars: dict[str, Any] = {}
        self._last: dict[str, tuple[float, int]] = {}  # step → (time, tenth) last written
        self._lock = threading.Lock()

    def __call__(self, update: ProgressUpdate) -> None:
        with self._lock:
            if self.tty:
                self._bar(update)
            else:
                self._line(update)

    def _bar(self, update: ProgressUpdate) -> None:
        from tqdm import tqdm

        bar = self._bars.get(update.step)
        if bar is None:
            bar = tqdm(total=update.total, desc=update.step, unit=f" {update.unit}",
                       file=self.stream, leave=True, dynamic_ncols=True,
                       unit_scale=update.unit == "B")
            self._bars[update.step] = bar
        bar.update(update.done - bar.n)
        if update.finished:
            bar.close()
            del self._bars[update.step]

    def _line(self, update: ProgressUpdate) -> None:
        now = time.monotonic()
        tenth = int(update.fraction * 10) if update.fraction is not None else -1
        last = self._last.get(update.step)
        due = (last is None or update.finished or (tenth > last[1] and tenth < 10)
               or now - last[0] >= self.interval)
        if not due:
            return
        if update.finished:
            self._last.pop(update.step, None)
        else:
            self._last[update.step] = (now, tenth)
        self.stream.write(update.line() + "\n")
        self.stream.flush()


class LatestProgress:
    """Keeps each thread's latest update, for a page that polls (the staff desk's publish
    page)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[str, ProgressUpdate] = {}

    def __call__(self, update: ProgressUpdate) -> None:
        with self._lock:
            self._steps[update.step] = update

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [u.as_json() for u in self._steps.values()]

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()
