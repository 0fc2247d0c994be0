"""Keep the long-running kiosk's heap from holding memory it no longer uses (glibc malloc).

Measured by bench/memory_bench.py (docs/operations.md "Memory and content size"):

* At most two malloc arenas (`limit_malloc`, at `kiosk run` start, before its threads
  exist). Each thread that allocates gets an arena of its own (up to 8 per core) and keeps
  its free pages: whisper decoding in a second thread held about 40 MB more.
* The heap trimmed each time the kiosk is idle again (`HeapTrimmer`). glibc raises its mmap
  threshold after the first big block is freed, so a turn's big temporaries — whisper's
  30-second feature windows, answer audio — are carved from the heap and stay resident
  after use; malloc_trim hands those free pages back (about 60 MB after recognition, some
  30 ms, off the loop's thread). A fixed mmap threshold saved the same but made each
  recognition cost about a fifth more CPU time.

The environment wins: a box that sets MALLOC_ARENA_MAX itself keeps its value. A libc
without mallopt/malloc_trim (musl) is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import queue
import threading
from typing import Any

log = logging.getLogger(__name__)

ARENA_MAX = 2
_M_ARENA_MAX = -8  # glibc malloc.h


@functools.cache
def _libc() -> Any:
    """The C library, loaded once (the trimmer asks for it on every idle turn)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc(environ: dict[str, str] | None = None) -> list[str]:
    """Cap the malloc arenas unless the environment sets it; returns what was applied."""
    env = os.environ if environ is None else environ
    mallopt = getattr(_libc(), "mallopt", None)
    if "MALLOC_ARENA_MAX" in env or mallopt is None:
        return []
    if mallopt(_M_ARENA_MAX, ARENA_MAX) != 1:
        return []
    log.debug("malloc arenas limited to %d", ARENA_MAX)
    return [f"MALLOC_ARENA_MAX={ARENA_MAX}"]


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system; True if some were."""
    trim = getattr(_libc(), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


class HeapTrimmer:
    """Trims the heap each time the kiosk's view turns idle (subscribe `on_view`), in a
    thread of its own so the loop never waits for it."""

    def __init__(self) -> None:
        self.asked = 0  # trims asked for; several asked at once are done as one
        self.trims = 0
        self._idle = False
        self._wake: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: trim, False: stop
        self._thread = threading.Thread(target=self._run, name="kiosk-heap-trim", daemon=True)
        self._thread.start()

    def on_view(self, view: Any) -> None:
        """Trim when the kiosk turns idle (not on every idle view: a refreshed idle screen
        has freed nothing)."""
        idle = view.state == "idle"
        if idle and not self._idle:
            self.trim_soon()
        self._idle = idle

    def trim_soon(self) -> None:
        """Trim once now, off the caller's thread (after a model has loaded, say)."""
        self.asked += 1
        self._wake.put(True)

    def _run(self) -> None:
        going = self._wake.get()
        while going:
            while going and not self._wake.empty():  # several idle views at once: one trim
                going = self._wake.get()
            trim_heap()
            self.trims += 1
            if going:
                going = self._wake.get()

    def close(self) -> None:
        """Stop after the trims already asked for."""
        self._wake.put(False)
        self._thread.join(timeout=5)
