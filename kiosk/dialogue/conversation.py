"""The visitor's conversation as a pure state machine: events and time in, actions out.

It holds one visitor's session and nothing else, never blocks and touches no device, so
every state can be tested with a table of (event, time) -> actions. `kiosk.dialogue.runner`
carries its actions out with real stages.

Accessibility promises kept here (EN 301 549 5.1, Section 508 §402, WCAG 2.2): any key or new
speech stops the voice at once; repeat and pause always work; rate has steps at and below the
default and volume has steps, both reset when a session ends; the voice warns before a
timeout and one press extends it; a session reset forgets everything of the visitor.

CONTRACT:
    State, Command, KEYMAP, the event classes (Press, Key, …) and action classes (Say, …)
    Conversation(settings, prompts=None).handle(event, now) -> list[Action];  .view() -> View
    command_in(text, max_chars) -> Command | None   — follow-up words in a short reply
"""

from __future__ import annotations

import enum
import itertools
import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jaconv

from kiosk.answer.contract import Answer, AnswerKind, topic_of
from kiosk.config import Settings
from kiosk.content.contract import Entry, as_of, checked_date_text, stale
from kiosk.dialogue.wording import STATUS, Prompts
from kiosk.search.contract import Hit
from kiosk.speech.audio import AudioClip
from kiosk.speech.recogniser import closest_phrase

log = logging.getLogger(__name__)



class State(enum.Enum):
    IDLE = "idle"              # nobody is using the kiosk; the invitation is shown
    PROMPTING = "prompting"    # the kiosk asks the visitor to speak (then the start tone)
    LISTENING = "listening"    # the microphone is open for a question
    THINKING = "thinking"      # recognising and searching
    ANSWERING = "answering"    # reading an answer out (and showing it)
    CLARIFYING = "clarifying"  # asked back 「〇〇についてですか？」, waiting for はい/いいえ/次
    SUGGESTING = "suggesting"  # nothing fitted: said so honestly, categories offered
    WAITING = "waiting"        # answer given; follow-up (もう一度/ゆっくり/次/終わり) or a new question
    WARNING = "warning"        # 「まだお使いですか？」 — one press keeps the session


class Command(enum.Enum):
    REPEAT = "repeat"
    SLOWER = "slower"
    FASTER = "faster"
    NEXT = "next"
    END = "end"
    YES = "yes"
    NO = "no"
    PAUSE = "pause"
    VOLUME_UP = "volume_up"
    VOLUME_DOWN = "volume_down"
    HEADPHONES = "headphones"


#: Keyboard keys (KeyboardEvent.key names; a USB button arrives as one of these) → action.
#: "press" is the big button. The screen page and the headless key reader both use this.
KEYMAP: dict[str, str] = {
    " ": "press", "Enter": "press",
    "r": "repeat", "s": "slower", "f": "faster", "n": "next", "e": "end", "Escape": "end",
    "y": "yes", "d": "no", "p": "pause", "+": "volume_up", "ArrowUp": "volume_up",
    "-": "volume_down", "ArrowDown": "volume_down", "h": "headphones",
}

#: Follow-up words understood when a visitor says them (short replies only).
COMMAND_WORDS: dict[Command, tuple[str, ...]] = {
    Command.REPEAT: ("もう一度", "もういちど", "もう一回", "もういっかい", "繰り返して", "くりかえして"),
    Command.SLOWER: ("ゆっくり", "ゆっくりお願いします", "ゆっくり話して", "もっとゆっくり"),
    Command.FASTER: ("速く", "早く", "はやく", "もっと速く"),
    Command.NEXT: ("次", "つぎ", "次の", "次のもの", "ほかの", "他の", "別の"),
    Command.END: ("終わり", "おわり", "終了", "さようなら", "もういいです", "結構です"),
    Command.YES: ("はい", "そうです", "うん", "ええ", "はいそうです"),
    # いえ / いぇ: how whisper often writes a short いいえ
    Command.NO: ("いいえ", "いえ", "いぇ", "違います", "ちがいます", "違う", "いや", "いいえ違います"),
    Command.VOLUME_UP: ("大きく", "大きな声で", "もっと大きく"),
    Command.VOLUME_DOWN: ("小さく", "もっと小さく"),
}



# --- events (in) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Press:
    """The big button (a USB button arrives as a key press, or the screen's 話す button)."""


@dataclass(frozen=True)
class Key:
    command: Command


@dataclass(frozen=True)
class Approach:
    """Someone came near (presence sensor); the kiosk offers its invitation."""


@dataclass(frozen=True)
class SpeechStart:
    pass


@dataclass(frozen=True)
class SpeechEnd:
    clip: AudioClip | None = None


@dataclass(frozen=True)
class NoSpeechHeard:
    pass


@dataclass(frozen=True)
class Partial:
    text: str


@dataclass(frozen=True)
class Heard:
    text: str  # recognised text; "" = nothing usable was heard
    alternatives: tuple[str, ...] = ()  # the engine's other hypotheses (n-best)


@dataclass(frozen=True)
class Typed:
    text: str  # the screen's text box


@dataclass(frozen=True)
class CategoryPicked:
    category: str


@dataclass(frozen=True)
class Choose:
    index: int  # a candidate or category entry touched on screen


@dataclass(frozen=True)
class Answered:
    answer: Answer
    asked: int = 0  # the Search it answers: a result that arrives late is told apart


@dataclass(frozen=True)
class Browsed:
    category: str
    entries: tuple[Entry, ...]
    asked: int = 0  # the Browse it answers


@dataclass(frozen=True)
class SpeechFinished:
    utterance: int
    completed: bool = True


@dataclass(frozen=True)
class Tick:
    pass


@dataclass(frozen=True)
class DeviceChanged:
    device: str  # "microphone" | "speaker"
    present: bool
    message: str = ""


Event = (Press | Key | Approach | SpeechStart | SpeechEnd | NoSpeechHeard | Partial | Heard
         | Typed | CategoryPicked | Choose | Answered | Browsed | SpeechFinished | Tick
         | DeviceChanged)


# --- actions (out) ------------------------------------------------------------------------

@dataclass(frozen=True)
class Say:
    text: str
    utterance: int
    rate: float
    volume: float
    headphones: bool = False
    tone_after: bool = False  # play the start tone when the text has been spoken


@dataclass(frozen=True)
class Stop:
    """Stop the voice now (barge-in, pause)."""


@dataclass(frozen=True)
class Tone:
    kind: str  # "start" (listening begins) | "end" (question received)
    volume: float = 1.0
    headphones: bool = False


@dataclass(frozen=True)
class Listen:
    active: bool  # feed the microphone to the endpointer (False in idle: nothing is heard)
    fresh: bool = False  # restart the endpointer (its "no speech" clock starts now)


@dataclass(frozen=True)
class EndUtterance:
    """Second press while listening: the question ends now, not after the silence."""


@dataclass(frozen=True)
class Recognise:
    clip: AudioClip


@dataclass(frozen=True)
class Search:
    text: str
    alternatives: tuple[str, ...] = ()  # the recogniser's other transcripts, in its order
    asked: int = 0  # handed back with the result (Answered.asked)


@dataclass(frozen=True)
class Browse:
    category: str
    asked: int = 0  # handed back with the result (Browsed.asked)


@dataclass(frozen=True)
class Record:
    """A question and its outcome, for the opt-in query log."""

    text: str
    kind: str
    entry_id: str = ""
    category: str = ""


@dataclass(frozen=True)
class LogEvent:
    name: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Show:
    pass  # the view changed; the screen asks Conversation.view()


Action = Say | Stop | Tone | Listen | EndUtterance | Recognise | Search | Browse | Record | LogEvent | Show


# --- the view (what the screen shows) ------------------------------------------------------

@dataclass(frozen=True)
class View:
    """A snapshot of what the visitor should see; the screen renders it, nothing more."""

    state: str
    status: str  # one headline sentence for the state, also read by screen readers
    heard: str = ""  # partial or final transcript, or the typed query
    answer: dict[str, str] | None = None  # title, body, source, updated, address, phone, hours
    question: str = ""  # the ask-back question
    choices: tuple[str, ...] = ()  # candidate titles / entries of a category
    categories: tuple[str, ...] = ()
    notice: str = ""  # device trouble, in plain words
    speaking: bool = False
    rate_step: int = 0  # 1 = slowest
    rate_steps: int = 1
    volume_step: int = 0
    volume_steps: int = 1
    headphones: bool = False
    seconds_left: int | None = None  # while a timeout warning runs
    mic: bool = True
    speaker: bool = True


#: States in which a visitor's silence counts towards the session timeout.
_TIMED = {State.WAITING, State.CLARIFYING, State.SUGGESTING, State.PROMPTING, State.THINKING}


def _normalise_words(text: str) -> str:
    """NFKC, no punctuation or spaces, katakana as hiragana (engines write いえ as イエ)."""
    text = unicodedata.normalize("NFKC", text)
    text = jaconv.kata2hira(text)
    text = "".join(c for c in text if not unicodedata.category(c).startswith(("P", "Z", "S")))
    return text.replace("ー", "").rstrip("っ")  # はーい, いえっ


def command_in(text: str, max_chars: int) -> Command | None:
    """The follow-up command a short reply means, or None (then it is a question)."""
    said = _normalise_words(text)
    if not said or len(said) > max_chars:
        return None
    table = {_normalise_words(w): c for c, words in COMMAND_WORDS.items() for w in words}
    for form in (said, said.removesuffix("です"), said.removesuffix("ください")):
        if form in table:
            return table[form]
    near = closest_phrase(said, [w for w in table if len(w) >= 3], max_cer=0.34)
    return table[near] if near else None


def _step_index(steps: Sequence[float], value: float) -> int:
    return min(range(len(steps)), key=lambda i: abs(steps[i] - value)) if steps else 0


@dataclass
class Session:
    """Everything the kiosk knows about the current visitor; dropped whole at reset."""

    rate_index: int
    volume_index: int
    headphones: bool
    started: float
    last_activity: float
    reprompts: int = 0
    questions: int = 0
    asked: int = -1  # the search (or category listing) in flight; only its result is taken
    answer: Answer | None = None  # the last search result (its entries survive an import)
    offer: int = 0  # which candidate is being offered / was answered
    browse: tuple[Entry, ...] = ()  # entries of a picked category
    last_said: str = ""  # for もう一度
    hinted: bool = False  # the follow-up hint is said once per session
    heard: str = ""
    resume: State = State.WAITING  # where a WARNING returns to
    warned_at: float | None = None


class Conversation:
    """The state machine. Pure: no threads, no I/O; `now` comes with each event."""

    def __init__(self, settings: Settings, prompts: Prompts | None = None):
        self.settings = settings
        self.prompts = prompts or Prompts()
        self.loop = settings.loop
        self.rate_steps = tuple(sorted(set(settings.voice.rate_steps) | {settings.voice.rate}))
        self.volume_steps = tuple(sorted(set(settings.voice.volume_steps) | {settings.voice.volume}))
        self.state = State.IDLE
        self.session: Session | None = None
        self.speaking: int | None = None  # utterance id being spoken
        self._ids = itertools.count(1)
        self._last_invitation = float("-inf")
        self.mic_ok = True
        self.speaker_ok = True
        #: One handler per event class; a new event class must be added here.
        self._handlers: dict[type, Callable[[Any, float], list[Action]]] = {
            Approach: self._on_Approach,
            Press: self._on_Press,
            Key: self._on_Key,
            SpeechStart: self._on_SpeechStart,
            Partial: self._on_Partial,
            SpeechEnd: self._on_SpeechEnd,
            NoSpeechHeard: self._on_NoSpeechHeard,
            Heard: self._on_Heard,
            Typed: self._on_Typed,
            CategoryPicked: self._on_CategoryPicked,
            Browsed: self._on_Browsed,
            Choose: self._on_Choose,
            Answered: self._on_Answered,
            SpeechFinished: self._on_SpeechFinished,
            Tick: self._on_Tick,
            DeviceChanged: self._on_DeviceChanged,
        }
        self.notice = ""
        self._now = 0.0

    # --- helpers ---------------------------------------------------------------------------

    def provenance(self, entry: Entry, today: date | None = None) -> str:
        """The line under every answer on the screen: where the facts come from and the
        day they were checked, and for a stale entry the month the facts are as of."""
        p = self.prompts
        if entry.status == "unverified":
            source = entry.source or "市のページで未確認"
        else:
            source = " ".join(x for x in (entry.source, entry.source_url) if x)
        parts = [p.source_line.format(source=source)] if source else []
        if entry.checked:
            parts.append(p.checked_line.format(date=checked_date_text(entry)))
        if stale(entry, self.settings.content.review_months, today):
            parts.append(p.as_of.format(month=as_of(entry)))
        return "　".join(parts)

    def _new_session(self, now: float) -> Session:
        return Session(
            rate_index=_step_index(self.rate_steps, self.settings.voice.rate),
            volume_index=_step_index(self.volume_steps, self.settings.voice.volume),
            headphones=self.settings.audio.private_listening,
            started=now, last_activity=now)

    def _say(self, text: str, *, tone_after: bool = False, remember: bool = False) -> list[Action]:
        s = self.session
        rate = self.rate_steps[s.rate_index] if s else self.settings.voice.rate
        volume = self.volume_steps[s.volume_index] if s else self.settings.voice.volume
        if remember and s is not None:
            s.last_said = text
        self.speaking = next(self._ids)
        return [Say(text, self.speaking, rate, volume, bool(s and s.headphones), tone_after)]

    def _stop(self) -> list[Action]:
        if self.speaking is None:
            return []
        self.speaking = None
        return [Stop()]

    def _to(self, state: State) -> list[Action]:
        if state is self.state:
            return [Show()]
        old, self.state = self.state, state
        return [LogEvent("state", {"from": old.value, "to": state.value}), Show()]

    def _tone(self) -> Tone:
        s = self.session
        return Tone("start", self.loop.tone_volume, bool(s and s.headphones))

    def _listen_now(self) -> list[Action]:
        """Start tone, then the microphone is open for a question."""
        acts: list[Action] = [*self._stop(), self._tone(), Listen(True, fresh=True),
                              *self._to(State.LISTENING)]
        if self.session:
            self.session.heard = ""
        return acts

    def _start_session(self, now: float) -> list[Action]:
        self.session = self._new_session(now)
        return [LogEvent("session_start", {}), Listen(True)]

    def _reset(self, farewell: str = "") -> list[Action]:
        """Forget the visitor: answers, transcript, rate, volume, headphones."""
        acts: list[Action] = []
        s = self.session
        if s is not None:
            acts.append(LogEvent("session_end", {"seconds": round(self._now - s.started, 1),
                                                 "questions": s.questions}))
        acts.append(Listen(False))
        acts += self._stop()
        if farewell:  # still at the visitor's pace, volume and output
            acts += self._say(farewell)
        self.session = None
        return acts + self._to(State.IDLE)

    def _touch(self, now: float) -> None:
        if self.session is not None:
            self.session.last_activity = now
            self.session.warned_at = None

    # --- the view ---------------------------------------------------------------------------

    def view(self) -> View:
        s = self.session
        question = ""
        shown: dict[str, str] | None = None
        choices: tuple[str, ...] = ()
        categories: tuple[str, ...] = ()
        seconds_left = None
        if s is not None and s.answer is not None:
            a = s.answer
            if self.state in (State.ANSWERING, State.WAITING, State.WARNING) and s.offer < len(a.candidates):
                e = a.candidates[s.offer].entry
                shown = {"title": e.title, "body": e.body, "source": e.source,
                         "updated": e.updated, "address": e.address, "phone": e.phone,
                         "hours": e.hours, "category": e.category,
                         "source_url": e.source_url, "checked": e.checked, "status": e.status,
                         "provenance": self.provenance(e)}
            if self.state is State.CLARIFYING and s.offer < len(a.candidates):
                question = self.prompts.ask_back.format(
                    topic=a.topic(s.offer)).split("？")[0] + "？"
                choices = tuple(h.entry.title for h in self._offerable(a))
            if a.kind is AnswerKind.NONE or self.state is State.SUGGESTING:
                categories = a.suggestions
        if s is not None and s.browse and self.state in (State.SUGGESTING, State.WAITING):
            choices = tuple(e.title for e in s.browse)
        if self.state is State.WARNING and s is not None and s.warned_at is not None:
            seconds_left = max(0, round(self.loop.timeout_warning_seconds - (self._now - s.warned_at)))
        return View(
            state=self.state.value, status=STATUS[self.state.value], heard=s.heard if s else "",
            answer=shown, question=question, choices=choices, categories=categories,
            notice=self.notice, speaking=self.speaking is not None,
            rate_step=(s.rate_index if s else _step_index(self.rate_steps, self.settings.voice.rate)) + 1,
            rate_steps=len(self.rate_steps),
            volume_step=(s.volume_index if s else _step_index(self.volume_steps, self.settings.voice.volume)) + 1,
            volume_steps=len(self.volume_steps),
            headphones=bool(s and s.headphones) or (s is None and self.settings.audio.private_listening),
            seconds_left=seconds_left, mic=self.mic_ok, speaker=self.speaker_ok)

    # --- the machine ------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        self._now = now
        return self._handlers[type(event)](event, now)

    def _on_Approach(self, event: Approach, now: float) -> list[Action]:
        if self.state is not State.IDLE or self.speaking is not None:
            return []
        if now - self._last_invitation < self.loop.invitation_interval_seconds:
            return []
        self._last_invitation = now
        return self._say(self.prompts.invitation)

    def _on_Press(self, event: Press, now: float) -> list[Action]:
        self._touch(now)
        if self.state is State.IDLE:
            acts = self._stop() + self._start_session(now)
            if not self.mic_ok:
                return acts + self._say(self.prompts.mic_lost) + self._to(State.WAITING)
            return acts + self._say(self.prompts.speak_now, tone_after=True) + self._to(State.PROMPTING)
        if self.state is State.WARNING:
            return self._extend()
        if self.state is State.LISTENING:
            return [EndUtterance()]  # second press: the question ends now
        if not self.mic_ok:
            return self._stop() + self._say(self.prompts.mic_lost)
        return self._listen_now()  # barge-in / a new question

    def _extend(self) -> list[Action]:
        s = self.session
        assert s is not None
        state = s.resume
        return [LogEvent("timeout_extended", {}), *self._stop(),
                *self._say(self.prompts.extended), *self._to(state)]

    def _on_Key(self, event: Key, now: float) -> list[Action]:
        c = event.command
        self._touch(now)
        if self.state is State.IDLE:
            if c in (Command.PAUSE, Command.END):
                return self._stop()
            return self._on_Press(Press(), now)  # any key wakes the kiosk
        if self.state is State.WARNING:
            return self._extend()
        return self._command(c)

    def _command(self, c: Command) -> list[Action]:
        s = self.session
        assert s is not None
        acts = self._stop()
        if c is Command.PAUSE:
            return acts + [Show()]
        if c is Command.END:
            return acts + self._reset(self.prompts.goodbye)
        if c in (Command.SLOWER, Command.FASTER):
            step = -1 if c is Command.SLOWER else 1
            s.rate_index = min(max(0, s.rate_index + step), len(self.rate_steps) - 1)
            return acts + self._say(s.last_said or self.prompts.rate_changed) + [Show()]
        if c in (Command.VOLUME_UP, Command.VOLUME_DOWN):
            step = 1 if c is Command.VOLUME_UP else -1
            s.volume_index = min(max(0, s.volume_index + step), len(self.volume_steps) - 1)
            return acts + self._say(self.prompts.volume_changed) + [Show()]
        if c is Command.HEADPHONES:
            s.headphones = not s.headphones
            return acts + self._say(self.prompts.headphones_on if s.headphones
                                    else self.prompts.headphones_off) + [Show()]
        if c is Command.REPEAT:
            if not s.last_said:
                return acts + self._say(self.prompts.nothing_to_repeat)
            return acts + self._say(s.last_said)
        if self.state is State.CLARIFYING or (s.answer and s.resume is State.CLARIFYING):
            if c is Command.YES:
                return acts + self._give_answer(s.offer)
            if c in (Command.NO, Command.NEXT):
                return acts + self._offer_next()
        if c is Command.NEXT and s.answer is not None and s.answer.kind is not AnswerKind.NONE:
            return acts + self._offer_next()
        if c in (Command.YES, Command.NO, Command.NEXT):
            return acts + self._listen_now()  # nothing to agree to: let them ask
        return acts

    def _on_SpeechStart(self, event: SpeechStart, now: float) -> list[Action]:
        self._touch(now)
        if self.session is None or (not self.loop.barge_in_by_speech and self.speaking is not None):
            return []
        if self.state is State.WARNING:
            return [*self._stop(), *self._to(State.LISTENING)]
        if self.state in (State.PROMPTING, State.ANSWERING, State.CLARIFYING, State.SUGGESTING,
                          State.WAITING):
            if self.state in (State.CLARIFYING, State.SUGGESTING, State.WAITING):
                self.session.resume = self.state
            return [*self._stop(), *self._to(State.LISTENING)]
        return [Show()] if self.state is State.LISTENING else []

    def _on_Partial(self, event: Partial, now: float) -> list[Action]:
        if self.state is State.LISTENING and self.session is not None:
            self.session.heard = event.text
            return [Show()]
        return []

    def _on_SpeechEnd(self, event: SpeechEnd, now: float) -> list[Action]:
        self._touch(now)
        if self.state is not State.LISTENING or event.clip is None:
            return []
        return [Tone("end", self.loop.tone_volume, bool(self.session and self.session.headphones)),
                Recognise(event.clip), *self._to(State.THINKING)]

    def _on_NoSpeechHeard(self, event: NoSpeechHeard, now: float) -> list[Action]:
        if self.state is not State.LISTENING or self.session is None:
            return []
        return self._not_heard()

    def _not_heard(self) -> list[Action]:
        s = self.session
        assert s is not None
        s.reprompts += 1
        if s.reprompts > self.loop.max_reprompts:
            return [LogEvent("no_speech", {"reprompts": s.reprompts - 1}),
                    *self._reset(self.prompts.bye_no_speech)]
        return [*self._say(self.prompts.not_heard, tone_after=True), *self._to(State.PROMPTING)]

    def _on_Heard(self, event: Heard, now: float) -> list[Action]:
        if self.state is not State.THINKING or self.session is None:
            return []
        s = self.session
        text = event.text.strip()
        if not text:
            return self._not_heard()
        s.reprompts = 0
        s.heard = text
        command = next((c for c in (command_in(t, self.loop.command_max_chars)
                                    for t in (text, *event.alternatives)) if c is not None), None)
        if command is not None and (s.answer is not None or command in
                                    (Command.END, Command.SLOWER, Command.FASTER,
                                     Command.VOLUME_UP, Command.VOLUME_DOWN)):
            if s.resume is State.CLARIFYING:
                self.state = State.CLARIFYING
            else:
                self.state = State.WAITING
            return [LogEvent("command", {"command": command.value, "by": "voice"}),
                    *self._command(command)]
        return self._search(text, tuple(a.strip() for a in event.alternatives if a.strip()))

    def _search(self, text: str, alternatives: tuple[str, ...] = ()) -> list[Action]:
        s = self.session
        assert s is not None
        s.heard = text
        s.questions += 1
        s.browse = ()
        s.asked = next(self._ids)
        return [Search(text, alternatives, s.asked), *self._to(State.THINKING)]

    def _on_Typed(self, event: Typed, now: float) -> list[Action]:
        text = event.text.strip()
        if not text:
            return []
        acts = self._stop()
        self._touch(now)
        if self.session is None:
            acts += self._start_session(now)
        return acts + self._search(text)

    def _on_CategoryPicked(self, event: CategoryPicked, now: float) -> list[Action]:
        acts = self._stop()
        self._touch(now)
        if self.session is None:
            acts += self._start_session(now)
        assert self.session is not None
        self.session.asked = next(self._ids)
        return acts + [Browse(event.category, self.session.asked), *self._to(State.THINKING)]

    def _on_Browsed(self, event: Browsed, now: float) -> list[Action]:
        s = self.session
        if s is None or event.asked != s.asked:
            return []
        s.browse = event.entries
        s.answer = None
        titles = "、".join(topic_of(e.title) for e in event.entries[:3])
        text = self.prompts.category_list.format(category=event.category, titles=titles)
        return [*self._say(text, remember=True), *self._to(State.SUGGESTING)]

    def _on_Choose(self, event: Choose, now: float) -> list[Action]:
        s = self.session
        self._touch(now)
        if s is None:
            return []
        acts = self._stop()
        if s.browse and 0 <= event.index < len(s.browse):
            entry = s.browse[event.index]
            s.answer = Answer(AnswerKind.CONFIDENT, entry.title, (Hit(entry, 1.0, 1.0),))
            s.browse = ()
            return acts + [Record(entry.title, "chosen", entry.id, entry.category)] + self._give_answer(0)
        if s.answer is not None and 0 <= event.index < len(self._offerable(s.answer)):
            return acts + self._give_answer(event.index)
        return acts

    def _offerable(self, answer: Answer) -> tuple[Hit, ...]:
        """Candidates honest enough to offer: the close ones, plus any still above the
        minimum confidence (for 次)."""
        floor = self.settings.answer.min_score
        extra = tuple(h for h in answer.candidates[len(answer.choices):] if h.confidence >= floor)
        return answer.choices + extra[: max(0, self.settings.answer.max_choices - len(answer.choices))]

    def _on_Answered(self, event: Answered, now: float) -> list[Action]:
        s = self.session
        if s is None or self.state is not State.THINKING or event.asked != s.asked:
            return []  # a result the visitor has moved on from (a newer question, a reset)
        a = event.answer
        s.answer = a
        s.offer = 0
        if a.query:  # the transcript answered: the recogniser's runner-up may have fitted better
            s.heard = a.query
        best = a.best
        record = Record(a.query, a.kind.value, best.entry.id if best and a.kind is not AnswerKind.NONE else "",
                        best.entry.category if best and a.kind is not AnswerKind.NONE else "")
        log_fields = {"kind": a.kind.value, "entry": record.entry_id,
                      "confidence": round(best.confidence, 3) if best else 0.0}
        acts: list[Action] = [record, LogEvent("answer", log_fields)]
        if a.kind is AnswerKind.CONFIDENT:
            return acts + self._give_answer(0)
        if a.kind is AnswerKind.UNSURE:
            return acts + self._ask_back(0)
        return acts + self._nothing_found(a)

    def _nothing_found(self, a: Answer | None, prefix: str | None = None) -> list[Action]:
        text = self.prompts.not_found if prefix is None else prefix
        if self.session is not None:
            self.session.resume = State.SUGGESTING
        if a is not None and a.suggestions:
            text += self.prompts.offer_categories.format(categories="、".join(a.suggestions[:3]))
        return [*self._say(text, remember=True), *self._to(State.SUGGESTING)]

    def _ask_back(self, index: int) -> list[Action]:
        s = self.session
        assert s is not None and s.answer is not None
        s.offer = index
        s.resume = State.CLARIFYING
        topic = s.answer.topic(index)
        return [*self._say(self.prompts.ask_back.format(topic=topic), remember=True),
                *self._to(State.CLARIFYING)]

    def _offer_next(self) -> list[Action]:
        s = self.session
        assert s is not None
        if s.answer is None:
            return self._listen_now()
        offer = self._offerable(s.answer)
        nxt = s.offer + 1
        if nxt < len(offer):
            return self._ask_back(nxt)
        return self._nothing_found(s.answer, self.prompts.no_more)

    def _give_answer(self, index: int) -> list[Action]:
        s = self.session
        assert s is not None and s.answer is not None
        s.offer = index
        s.resume = State.WAITING
        entry = s.answer.candidates[index].entry
        text = self.speakable(entry)
        if not s.hinted:
            s.hinted = True
            spoken = f"{text}\n{self.prompts.follow_up_hint}"
        else:
            spoken = text
        acts = self._say(spoken)
        s.last_said = text
        return [*acts, *self._to(State.ANSWERING)]

    def reply_for(self, answer: Answer) -> tuple[str, float, float]:
        """(text, rate, volume) the kiosk would begin to say if this answer came now: lets
        the runner synthesize a likely reply's first sentence while the visitor's last pause
        is still running. Pure; changes nothing."""
        s = self.session
        rate = self.rate_steps[s.rate_index] if s else self.settings.voice.rate
        volume = self.volume_steps[s.volume_index] if s else self.settings.voice.volume
        if answer.kind is AnswerKind.CONFIDENT and answer.candidates:
            text = self.speakable(answer.candidates[0].entry)
        elif answer.kind is AnswerKind.UNSURE and answer.candidates:
            text = self.prompts.ask_back.format(topic=topic_of(answer.candidates[0].entry.title))
        else:
            text = self.prompts.not_found
        return text, rate, volume

    def speakable(self, entry: Entry) -> str:
        """What to say for an entry; the Kiosk replaces this with the speakable-text stage."""
        return entry.spoken or entry.body

    def _on_SpeechFinished(self, event: SpeechFinished, now: float) -> list[Action]:
        if event.utterance != self.speaking:
            return []  # stopped earlier, or an old utterance
        self.speaking = None
        self._touch(now)
        if self.state is State.PROMPTING:  # the Say already ended with the start tone
            return [Listen(True, fresh=True), *self._to(State.LISTENING)]
        if self.state is State.ANSWERING:
            return self._to(State.WAITING)
        if self.state is State.WARNING and self.session is not None:
            self.session.warned_at = now
            self.session.last_activity = now
        return [Show()]

    def _on_Tick(self, event: Tick, now: float) -> list[Action]:
        s = self.session
        if s is None or self.speaking is not None:
            return []
        if self.state is State.WARNING:
            if s.warned_at is not None and now - s.warned_at >= self.loop.timeout_warning_seconds:
                return [LogEvent("timeout", {}), *self._reset(self.prompts.timed_out)]
            return [Show()] if s.warned_at is not None else []
        if self.state in _TIMED and now - s.last_activity >= self.loop.session_timeout_seconds:
            s.resume = self.state if self.state not in (State.PROMPTING, State.THINKING) \
                else State.WAITING
            return [LogEvent("timeout_warning", {}), *self._say(self.prompts.still_there),
                    *self._to(State.WARNING)]
        return []

    def _on_DeviceChanged(self, event: DeviceChanged, now: float) -> list[Action]:
        acts: list[Action] = [LogEvent("device", {"device": event.device, "present": event.present},
                                       )]
        if event.device == "speaker":
            self.speaker_ok = event.present
            self.notice = "" if event.present else self.prompts.speaker_lost
            return acts + [Show()]
        if event.present == self.mic_ok:
            return []
        self.mic_ok = event.present
        self.notice = "" if event.present else self.prompts.mic_lost
        if self.session is None:
            return acts + [Show()]
        if not event.present:
            acts += self._say(self.prompts.mic_lost)
            if self.state in (State.LISTENING, State.PROMPTING):
                acts += self._to(State.WAITING)
            return acts + [Show()]
        return acts + self._say(self.prompts.mic_back) + [Show()]

