"""The conversation as a table: from each state, an event at a time → the actions and the
next state. The machine is pure (no threads, no devices), so every row is exact; each
state is reached by the events a visitor would cause, never by setting it by hand."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from kiosk.answer.contract import Answer, AnswerKind
from kiosk.config import Settings
from kiosk.content.contract import Entry
from kiosk.dialogue.conversation import (
    Answered,
    Browse,
    Browsed,
    CategoryPicked,
    Command,
    Conversation,
    DeviceChanged,
    EndUtterance,
    Heard,
    Key,
    Listen,
    NoSpeechHeard,
    Partial,
    Press,
    Recognise,
    Say,
    Search,
    SpeechEnd,
    SpeechFinished,
    SpeechStart,
    State,
    Stop,
    Tick,
    Tone,
    Typed,
)
from kiosk.search.contract import Hit
from kiosk.speech.audio import AudioClip

LIBRARY = Entry("library-hours", "図書館は何時まで開いていますか", "中央図書館の開館時間です。",
                spoken="中央図書館の開館時間です。", category="図書館")
GARBAGE = Entry("garbage-bulky", "粗大ごみを出したい", "粗大ごみは申し込みが必要です。",
                category="ごみ・リサイクル")
CLIP = AudioClip(np.zeros(16000, dtype=np.float32), 16000)
SURE = Answer(AnswerKind.CONFIDENT, "図書館は何時まで", (Hit(LIBRARY, 9.0, 0.95),))
UNSURE = Answer(AnswerKind.UNSURE, "ごみ", (Hit(GARBAGE, 3.0, 0.5), Hit(LIBRARY, 2.9, 0.49)),
                ("ごみ・リサイクル",), 2)
NOTHING = Answer(AnswerKind.NONE, "火星", (), ("防災", "ごみ・リサイクル"))

Step = Callable[[Conversation], object]


def finished(m: Conversation) -> SpeechFinished:
    """The voice finished what the machine is saying now."""
    return SpeechFinished(m.speaking, True)


#: The events that lead from IDLE to each state, as a visitor (and the stages) cause them.
PATHS: dict[State | str, list[Step]] = {
    State.IDLE: [],
    State.PROMPTING: [lambda m: Press()],
    State.LISTENING: [lambda m: Press(), finished],
    State.THINKING: [lambda m: Press(), finished, lambda m: SpeechEnd(CLIP)],  # recognising
    "searching": [lambda m: Press(), finished, lambda m: SpeechEnd(CLIP),
                  lambda m: Heard("図書館は何時まで")],
    State.ANSWERING: [lambda m: Press(), finished, lambda m: SpeechEnd(CLIP),
                      lambda m: Heard("図書館は何時まで"), lambda m: Answered(SURE, m.session.asked)],
    State.WAITING: [lambda m: Press(), finished, lambda m: SpeechEnd(CLIP),
                    lambda m: Heard("図書館は何時まで"), lambda m: Answered(SURE, m.session.asked), finished],
    State.CLARIFYING: [lambda m: Press(), finished, lambda m: SpeechEnd(CLIP),
                       lambda m: Heard("ごみ"), lambda m: Answered(UNSURE, m.session.asked)],
    State.SUGGESTING: [lambda m: Press(), finished, lambda m: SpeechEnd(CLIP),
                       lambda m: Heard("火星"), lambda m: Answered(NOTHING, m.session.asked)],
}


def reach(state: State | str) -> tuple[Conversation, float]:
    m = Conversation(Settings())
    now = 0.0
    for step in PATHS[state]:
        now += 1.0
        m.handle(step(m), now)
    assert m.state is (State.THINKING if state == "searching" else state)
    return m, now


def answered(answer: Answer) -> Step:
    """The search stage's reply to the search in flight."""
    return lambda m: Answered(answer, m.session.asked)


#: (from state, event, seconds later, expected next state, action kinds that must be among
#: the actions, action kinds that must not)
ROWS = [
    (State.IDLE, Press(), 1, State.PROMPTING, {Say, Listen}, {Search}),
    (State.IDLE, Key(Command.REPEAT), 1, State.PROMPTING, {Say}, set()),  # any key wakes it
    (State.IDLE, Key(Command.END), 1, State.IDLE, set(), {Say}),
    (State.IDLE, Typed("図書館は何時まで"), 1, State.THINKING, {Search}, {Say}),
    (State.IDLE, CategoryPicked("図書館"), 1, State.THINKING, {Browse}, set()),
    (State.IDLE, SpeechStart(), 1, State.IDLE, set(), {Say, Listen}),  # nobody pressed: deaf
    (State.IDLE, Tick(), 999, State.IDLE, set(), {Say}),
    (State.PROMPTING, SpeechStart(), 1, State.LISTENING, {Stop}, set()),  # speaks over the prompt
    (State.PROMPTING, Key(Command.END), 1, State.IDLE, {Say}, set()),  # goodbye
    (State.LISTENING, Partial("図書館"), 1, State.LISTENING, set(), {Say}),
    (State.LISTENING, Press(), 1, State.LISTENING, {EndUtterance}, {Say}),  # the button ends a turn
    (State.LISTENING, SpeechEnd(CLIP), 1, State.THINKING, {Tone, Recognise}, {Say}),
    (State.LISTENING, NoSpeechHeard(), 1, State.PROMPTING, {Say}, set()),  # asked again
    (State.THINKING, Heard("図書館は何時まで"), 1, State.THINKING, {Search}, {Say}),
    (State.THINKING, Heard(""), 1, State.PROMPTING, {Say}, {Search}),  # nothing heard: ask again
    (State.THINKING, Heard("終わり"), 1, State.IDLE, {Say}, {Search}),  # a command, not a question
    (State.THINKING, Answered(SURE), 1, State.THINKING, set(), {Say}),  # nothing was asked yet
    ("searching", answered(SURE), 1, State.ANSWERING, {Say}, set()),
    ("searching", answered(UNSURE), 1, State.CLARIFYING, {Say}, set()),
    ("searching", answered(NOTHING), 1, State.SUGGESTING, {Say}, set()),
    ("searching", lambda m: Answered(SURE, m.session.asked - 1), 1, State.THINKING, set(), {Say}),
    (State.ANSWERING, Key(Command.PAUSE), 1, State.ANSWERING, {Stop}, {Say}),
    (State.ANSWERING, SpeechStart(), 1, State.LISTENING, {Stop}, set()),  # barge-in by speech
    (State.ANSWERING, Press(), 1, State.LISTENING, {Stop, Tone, Listen}, set()),
    (State.ANSWERING, answered(SURE), 1, State.ANSWERING, set(), {Say}),  # a stale result
    (State.WAITING, Key(Command.REPEAT), 1, State.WAITING, {Say}, set()),
    (State.WAITING, Key(Command.SLOWER), 1, State.WAITING, {Say}, set()),
    (State.WAITING, Key(Command.END), 1, State.IDLE, {Say}, set()),
    (State.WAITING, Typed("粗大ごみ"), 1, State.THINKING, {Search}, set()),
    (State.WAITING, Tick(), 10, State.WAITING, set(), {Say}),
    (State.WAITING, Tick(), 41, State.WARNING, {Say}, set()),  # 「まだお使いですか？」
    (State.CLARIFYING, Key(Command.YES), 1, State.ANSWERING, {Say}, set()),
    (State.CLARIFYING, Key(Command.NO), 1, State.CLARIFYING, {Say}, set()),  # the next candidate
    (State.CLARIFYING, Heard("はい"), 1, State.CLARIFYING, set(), {Search}),  # no turn was taken
    (State.SUGGESTING, CategoryPicked("防災"), 1, State.THINKING, {Browse}, set()),
    (State.SUGGESTING, lambda m: Browsed("図書館", (LIBRARY,), m.session.asked), 1,
     State.SUGGESTING, {Say}, set()),
    (State.SUGGESTING, Key(Command.END), 1, State.IDLE, {Say}, set()),
]


@pytest.mark.parametrize("start,event,later,state,must,must_not", ROWS,
                         ids=[f"{getattr(r[0], 'value', r[0])}-{i}" for i, r in enumerate(ROWS)])
def test_conversation_table(start, event, later, state, must, must_not):
    m, now = reach(start)
    actions = m.handle(event(m) if callable(event) else event, now + later)
    kinds = {type(a) for a in actions}
    assert m.state is state, (actions, m.state)
    assert must <= kinds, actions
    assert not (must_not & kinds), actions


def test_warning_then_silence_ends_the_session_and_forgets_the_visitor():
    m, now = reach(State.WAITING)
    m.handle(Tick(), now + 41)
    assert m.state is State.WARNING
    m.handle(finished(m), now + 43)
    acts = m.handle(Tick(), now + 43 + m.loop.timeout_warning_seconds)
    assert m.state is State.IDLE and m.session is None
    assert any(isinstance(a, Say) and "時間" in a.text for a in acts)


def test_one_press_in_the_warning_keeps_the_session_where_it_was():
    m, now = reach(State.WAITING)
    m.handle(Tick(), now + 41)
    m.handle(Press(), now + 42)
    assert m.state is State.WAITING and m.session is not None


def test_the_microphone_lost_while_listening_sends_the_visitor_to_the_screen():
    m, now = reach(State.LISTENING)
    acts = m.handle(DeviceChanged("microphone", False, "unplugged"), now + 1)
    assert m.state is State.WAITING
    said = [a.text for a in acts if isinstance(a, Say)]
    assert said == [m.prompts.mic_lost]
    assert m.view().notice == m.prompts.mic_lost
    m.handle(DeviceChanged("microphone", True), now + 2)
    assert m.view().notice == "" and m.mic_ok


def test_a_lost_speaker_is_shown_in_words_from_the_wording_table():
    m, now = reach(State.IDLE)
    m.handle(DeviceChanged("speaker", False, "PortAudio error"), now + 1)
    assert m.view().notice == m.prompts.speaker_lost and not m.speaker_ok


def test_nothing_fits_is_said_honestly_with_categories_to_try():
    m, now = reach("searching")
    acts = m.handle(Answered(NOTHING, m.session.asked), now + 1)
    said = [a.text for a in acts if isinstance(a, Say)]
    assert m.state is State.SUGGESTING
    assert said and "見つかりませんでした" in said[0] and "防災" in said[0]
    assert m.view().categories == ("防災", "ごみ・リサイクル")
    assert m.view().answer is None


def test_the_timeout_warning_gives_at_least_20_seconds():
    assert Settings().loop.timeout_warning_seconds >= 20


def test_the_recognisers_other_transcripts_go_to_the_search():
    m, now = reach(State.THINKING)
    acts = m.handle(Heard("レッドボトルを捨てたい", ("ペットボトルを捨てたい", " ")), now + 1)
    search = next(a for a in acts if isinstance(a, Search))
    assert search == Search("レッドボトルを捨てたい", ("ペットボトルを捨てたい",), m.session.asked)


def test_a_late_result_of_an_earlier_question_is_not_taken_for_the_new_one():
    """Search runs off the event thread: a visitor who types a second question before the
    first one's answer arrives gets the second one's answer, never the first's."""
    m, now = reach(State.IDLE)
    first = next(a for a in m.handle(Typed("ピアノの調律をしたい"), now + 1) if isinstance(a, Search))
    second = next(a for a in m.handle(Typed("図書館は何時まで"), now + 2) if isinstance(a, Search))
    assert m.handle(Answered(NOTHING, first.asked), now + 3) == []
    assert m.state is State.THINKING
    m.handle(Answered(SURE, second.asked), now + 4)
    assert m.state is State.ANSWERING and m.view().answer["title"] == LIBRARY.title
