"""Memory cuts that have a behaviour: one Sudachi dictionary per process, shared by the search
analysis, the end-of-turn model and Open JTalk's reading fixes (each extra copy held about
80 MB, docs/operations.md "Memory and content size")."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import sudachipy.dictionary

from kiosk import sudachi


@pytest.fixture
def fresh_sudachi(monkeypatch):
    """No dictionary loaded yet anywhere, and every Dictionary created counted."""
    pyopenjtalk_utils = pytest.importorskip("pyopenjtalk.utils")
    made = []
    real = sudachipy.dictionary.Dictionary

    def counting(*args, **kwargs):
        made.append(args or kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(sudachipy.dictionary, "Dictionary", counting)
    monkeypatch.setattr(sudachi, "_dictionary", None)
    monkeypatch.setattr(sudachi, "_local", threading.local())
    monkeypatch.setattr(pyopenjtalk_utils, "_SUDACHI_DICTIONARY", None)
    monkeypatch.setattr(pyopenjtalk_utils, "_SUDACHI_TOKENIZER_LOCAL", threading.local())
    return made


def test_search_turn_end_and_voice_share_one_dictionary(fresh_sudachi):
    from kiosk.search import analysis
    from kiosk.speech.turn_end import TurnVerdict, judge_text
    from kiosk.voice.openjtalk import count_morae

    assert analysis.analyse("図書館は何時まで開いていますか")
    assert judge_text("市役所は何時からですか")[0] is TurnVerdict.COMPLETE
    assert count_morae("市役所の窓口で手続きをしてください") > 10  # Open JTalk + its Sudachi fixes
    assert len(fresh_sudachi) == 1


def test_each_thread_gets_its_own_tokenizer_over_the_one_dictionary(fresh_sudachi):
    here = sudachi.tokenizer()
    assert sudachi.tokenizer() is here
    other: list = []
    worker = threading.Thread(target=lambda: other.append(sudachi.tokenizer()))
    worker.start()
    worker.join()
    assert other[0] is not here  # Sudachi's tokenizers are not for sharing between threads
    assert len(fresh_sudachi) == 1
    words = [m.surface() for m in other[0].tokenize("粗大ごみを出したい")]
    assert words == [m.surface() for m in here.tokenize("粗大ごみを出したい")]


def test_kiosk_run_limits_malloc_arenas_unless_the_environment_already_does():
    from kiosk.memory import ARENA_MAX, limit_malloc

    assert limit_malloc({}) == [f"MALLOC_ARENA_MAX={ARENA_MAX}"]
    assert limit_malloc({"MALLOC_ARENA_MAX": "4"}) == []


def test_the_heap_is_trimmed_each_time_the_kiosk_is_idle_again():
    from kiosk.dialogue.conversation import State
    from kiosk.memory import HeapTrimmer

    trimmer = HeapTrimmer()
    try:
        for state in (State.IDLE, State.LISTENING, State.ANSWERING, State.IDLE, State.IDLE):
            trimmer.on_view(SimpleNamespace(state=state.value))
    finally:
        trimmer.close()  # joins the thread: the wake-up before it has been handled
    assert trimmer.asked == 2  # at the first idle view and on turning idle again, once
    assert trimmer.trims >= 1  # close() waited for them (two asked at once are one trim)
