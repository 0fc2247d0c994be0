"""Turn-taking in the real loop (kiosk/dialogue/turns.py): the end of a turn judged from the
words at each pause, speculative answers, the button. Real endpointer, whisper, index and
voice; the microphone is the simulated one, held at each pause until the kiosk has judged it,
so what the kiosk decides never depends on how fast this machine decodes (no timing races)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_loop import Rig, make_settings, models_dir, recogniser, shared_home, voice  # noqa: F401

from kiosk.dialogue.conversation import Press, State
from kiosk.search.versions import LiveIndex
from kiosk.speech.audio import load_wav
from kiosk.speech.contract import Transcript
from kiosk.speech.recogniser import vocabulary_from
from kiosk.speech.simulated import SimulatedMicrophone

PAUSED = Path(__file__).parent / "fixtures" / "speech" / "paused"
SPEECH = Path(__file__).parent / "fixtures" / "speech"


class HeldMicrophone(SimulatedMicrophone):
    """Streams like the simulated microphone, but stops while `open` is clear."""

    def __init__(self, pace: float):
        super().__init__(pace=pace)
        self.open = threading.Event()
        self.open.set()

    def chunks(self):
        for chunk in super().chunks():
            if not self.open.wait(timeout=120):
                raise AssertionError("the microphone was held for two minutes")
            yield chunk


class TurnRig(Rig):
    """The loop rig with a held microphone and a record of the endpointer's events and
    of every decode."""

    def __init__(self, settings, searcher, engine, the_voice, *, hold_after_judging=False):
        super().__init__(settings, searcher, engine, the_voice)
        self.mic = HeldMicrophone(pace=6.0)
        self.kiosk.microphone = self.mic
        self.endpoints: list[object] = []
        self.decodes = 0
        self.judged = threading.Event()
        self.hold_after_judging = hold_after_judging
        turns = self.kiosk.turns
        assert turns is not None, "turn-taking is on by default"
        feed, paused, heard = self.kiosk.endpointer.feed, turns.paused, turns.heard_in_pause
        failed, wants = turns.failed_in_pause, turns.wants_decode
        transcribe = engine.transcribe

        def on_feed(clip):
            events = feed(clip)
            self.endpoints.extend(events)
            return events

        def on_paused(pause):
            self.mic.open.clear()  # hold the stream until this pause is judged
            paused(pause)

        def on_heard(pause, clip, transcript):
            try:
                heard(pause, clip, transcript)
            finally:
                self.judged.set()
                if not self.hold_after_judging:
                    self.mic.open.set()

        def on_failed(pause):
            self.mic.open.set()
            return failed(pause)

        def on_wants(pause):
            wanted = wants(pause)
            if not wanted:
                self.mic.open.set()
            return wanted

        def counted(clip, **kwargs):
            self.decodes += 1
            return transcribe(clip, **kwargs)

        self.decisions: list[object] = []
        decide = turns.model.decide

        def on_decide(text, *args):
            d = decide(text, *args)
            self.decisions.append((text, d))
            return d

        turns.model.decide = on_decide
        def on_flush():
            events = flush()
            self.endpoints.extend(events)
            return events

        flush = self.kiosk.endpointer.flush
        self.kiosk.endpointer.feed, self.kiosk.endpointer.flush = on_feed, on_flush
        turns.paused, turns.heard_in_pause = on_paused, on_heard
        turns.failed_in_pause, turns.wants_decode = on_failed, on_wants
        self.kiosk.recogniser = type("Counted", (), {"name": "counted",
                                                     "transcribe": staticmethod(counted)})()

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.endpoints]


@pytest.fixture
def turn_rig(request, shared_home, models_dir, recogniser, voice):  # noqa: F811
    settings = make_settings(shared_home, models_dir)
    searcher = LiveIndex(settings.index_dir, settings)
    # the content's words as hints, as `kiosk run` gives them (市役所, not しやくしょ)
    recogniser.set_vocabulary(vocabulary_from(searcher.entries()))
    request.addfinalizer(lambda: recogniser.set_vocabulary([]))
    r = TurnRig(settings, searcher, recogniser, voice,
                hold_after_judging=getattr(request, "param", False))
    r.kiosk.start()
    yield r
    r.mic.open.set()
    r.kiosk.stop()
    searcher.close()


def _answered_entry(rig) -> str:
    s = rig.kiosk.machine.session
    return s.answer.candidates[s.offer].entry.id if s and s.answer and s.answer.candidates else ""


def test_a_paused_question_is_not_cut_off(turn_rig):
    """「あのー、[1.45 s]市役所は[1.45 s]何時まで開いていますか」 at the slow pace: pauses longer
    than the old fixed 1.25 s trailing silence, after a filler and after a particle. The
    turn ends only after the last phrase, and the whole question is what the kiosk hears."""
    rig = turn_rig
    question = load_wav(PAUSED / "p01.wav")
    rig.ask(question)
    rig.wait(lambda: rig.kiosk.state in (State.ANSWERING, State.WAITING, State.CLARIFYING,
                                         State.SUGGESTING), 120, "a reply")
    kinds = rig.kinds()
    assert kinds.count("SpeechEnded") == 1, rig.decisions
    assert "SpeechResumed" in kinds
    ended = next(e for e in rig.endpoints if type(e).__name__ == "SpeechEnded")
    assert ended.clip.duration > question.duration - 1.0  # every phrase is in the turn
    assert rig.states.count("thinking") == 1, rig.states
    # the last phrase is in what was heard (which entry it finds is the recogniser's and the
    # search's business: whisper may hear the slow 「市役所」 as something else)
    assert "何時" in rig.kiosk.view().heard or "開いて" in rig.kiosk.view().heard


def test_a_complete_question_ends_early_and_is_decoded_once(turn_rig):
    """「図書館は何時まで開いていますか」: the words end the sentence, so ~0.4 s of silence
    ends the turn (not 1.25 s), and the transcript made in that pause is the final one."""
    rig = turn_rig
    rig.ask(load_wav(SPEECH / "q09.wav"))
    rig.wait_state(State.WAITING, timeout=120)
    ended = [e for e in rig.endpoints if type(e).__name__ == "SpeechEnded"]
    paused = [e for e in rig.endpoints if type(e).__name__ == "SpeechPaused"]
    assert len(ended) == 1 and ended[0].reason == "silence"
    assert ended[0].pause == paused[-1].pause
    settings = rig.settings.endpointing
    silence = ended[0].at_seconds - paused[-1].at_seconds + settings.pause_seconds
    assert silence < settings.trailing_silence_seconds - 0.5, silence
    assert abs(silence - settings.complete_silence_seconds) < 0.1, silence
    assert rig.decodes == len(paused), "no second decode at the end of the turn"
    assert "図書館" in rig.kiosk.view().answer["title"]


def test_a_speculative_answer_is_dropped_when_speech_resumes(turn_rig):
    """「住民票の写しがほしいです[0.3 s]コンビニでとれますか」: at the short pause the first
    sentence sounds complete, so its answer is searched and prepared — then the visitor goes
    on. That answer is never spoken; the whole question is answered."""
    rig = turn_rig
    said = len(rig.voice.said)
    rig.ask(load_wav(PAUSED / "p02.wav"))
    rig.wait(lambda: rig.kiosk.state in (State.ANSWERING, State.WAITING, State.CLARIFYING), 120,
             "the answer")
    rig.kiosk.settle()
    assert rig.kiosk.turns.dropped >= 1, rig.kinds()
    assert rig.kinds().count("SpeechEnded") == 1
    heard = rig.kiosk.view().heard
    assert "コンビニ" in heard, heard
    spoken = rig.said_since(said)
    assert len(spoken) == 2, spoken  # the prompt, then one reply: the dropped one never played
    assert _answered_entry(rig) == "convenience-store-certificates"


@pytest.mark.parametrize("turn_rig", [True], indirect=True)
def test_the_button_ends_a_waiting_turn_at_once(turn_rig):
    """「マイナンバーカードを…」 goes on by its words, so the kiosk would wait 1.8 s; a press
    ends the turn at the very next block of audio, with the pause's transcript."""
    rig = turn_rig
    rig.ask(load_wav(PAUSED / "p03.wav"))
    assert rig.judged.wait(120), "the pause was judged"
    rig.kiosk.settle()
    assert rig.kiosk.state is State.LISTENING  # held: the silence has not run out
    blocks = len(rig.endpoints)
    rig.kiosk.post(Press())
    rig.kiosk.settle()
    rig.mic.open.set()
    rig.wait(lambda: "SpeechEnded" in rig.kinds(), 30, "the end of the turn")
    ended = next(e for e in rig.endpoints if type(e).__name__ == "SpeechEnded")
    assert ended.reason == "flush"
    assert len(rig.endpoints) == blocks + 1  # the first event after the press
    rig.wait(lambda: rig.kiosk.state is not State.LISTENING, 30, "the kiosk to stop listening")
    rig.wait(lambda: rig.kiosk.state is not State.THINKING, 60, "a reply")
    assert rig.decodes == 1, "the pause's transcript was used, not decoded again"
    assert "マイナンバー" in rig.kiosk.view().heard


class _NotedEvent(threading.Event):
    """An event that notes when someone starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.set()
        return super().wait(timeout)


def test_the_search_waits_for_the_guess_under_way_instead_of_searching_again(turn_rig):
    """The endpointer is told the turn may end before the pause's guess is searched, so the
    conversation can ask for the answer while that search still runs: it waits for it
    (one search, not two). The guess is held until the conversation's request waits."""
    turns = turn_rig.kiosk.turns
    compose, searched = turns._compose, []
    noted = _NotedEvent()
    turns._composed, turns._prepare = noted, None

    def held(texts, confidence):
        searched.append(texts)
        noted.waited.wait(30)  # until answer_for is waiting for this search
        return compose(texts, confidence)

    turns._compose = held
    transcript = Transcript("図書館は何時まで開いていますか", confidence=0.9)
    turns.paused(9999)
    judging = threading.Thread(target=turns.heard_in_pause,
                               args=(9999, load_wav(SPEECH / "q09.wav"), transcript))
    judging.start()
    try:
        for _ in range(3000):  # the guess has begun (no clock involved: it is held)
            if searched:
                break
            threading.Event().wait(0.01)
        answer = turns.answer_for((transcript.text,))
    finally:
        noted.waited.set()
        judging.join(30)
    assert searched == [(transcript.text,)]
    assert answer is not None and answer.candidates
    assert "図書館" in answer.candidates[0].entry.title


def test_a_pause_the_visitor_spoke_on_through_stops_its_decode_and_the_turn_goes_on(turn_rig):
    """The decode of a pause asks, after the encoder, whether the pause is still the current
    one; when the visitor has spoken on, it stops there (no error, nothing shown or
    guessed) and the turn goes on: the question is heard whole and answered once."""
    rig = turn_rig
    turns = rig.kiosk.turns
    wants = turns.wants_decode
    asked: dict[int, int] = {}
    stopped: list[int] = []

    def first_pause_spoken_on(pause):
        asked[pause] = asked.get(pause, 0) + 1
        if pause == 1 and asked[pause] > 1:  # inside the decode: as if speech came back
            stopped.append(pause)
            rig.mic.open.set()
            return False
        return wants(pause)

    turns.wants_decode = first_pause_spoken_on
    said = len(rig.voice.said)
    rig.ask(load_wav(PAUSED / "p02.wav"))  # 「住民票の写しがほしいです[0.3 s]コンビニでとれますか」
    rig.wait(lambda: rig.kiosk.state in (State.ANSWERING, State.WAITING, State.CLARIFYING), 120,
             "the answer")
    rig.kiosk.settle()
    assert stopped == [1], asked
    assert rig.kiosk.errors == 0
    assert rig.kinds().count("SpeechEnded") == 1
    assert len(rig.decisions) == len([e for e in rig.endpoints
                                      if type(e).__name__ == "SpeechPaused"]) - 1  # not 1
    assert "コンビニ" in rig.kiosk.view().heard
    assert len(rig.said_since(said)) == 2  # the prompt, then one reply
    assert _answered_entry(rig) == "convenience-store-certificates"
