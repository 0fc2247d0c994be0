"""A kiosk that keeps answering while content changes under it: searches its own LiveIndex
in a thread (as `kiosk run` does) for as long as a `with` block runs, then checks that every
search was answered. Shared by the staff desk and bundle tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from kiosk.config import Settings
from kiosk.search.versions import LiveIndex


@contextlib.contextmanager
def keep_searching(settings: Settings, question: str) -> Iterator[list[int]]:
    """Yields [answered so far]; on exit asserts no search failed or came back empty."""
    failures: list[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def visitors() -> None:
        with LiveIndex(settings.index_dir, settings) as live:
            while not stop.is_set():
                try:
                    assert live.search(question), f"no answer for {question!r}"
                    answered[0] += 1
                except BaseException as exc:  # noqa: BLE001 - every failure counts
                    failures.append(exc)

    thread = threading.Thread(target=visitors)
    thread.start()
    try:
        yield answered
    finally:
        stop.set()
        thread.join()
    assert failures == [] and answered[0] > 0, failures[:3]
