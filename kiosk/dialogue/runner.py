"""The runner: carries the conversation's actions out with real stages, on threads.

A microphone thread feeds the endpointer, a speech thread plays the voice, a worker runs
the recogniser, and the event thread runs the `Conversation` and executes its actions.
Stages are injected, so tests drive it with a fake microphone streaming real audio frames
and a fake speaker recording what was played, and everything else real.

CONTRACT:
    Kiosk(settings, microphone=, speaker=, recogniser=, voice=, searcher=, …)
        .post(event) / .start() / .stop() / .subscribe(callback) / .view() / .settle()
        .microphone_lost(exc) / .microphone_back()  — ReconnectingMicrophone callbacks
    tone_clip(hz, seconds, volume) -> AudioClip
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kiosk.answer.composer import AnswerComposer
from kiosk.answer.contract import Answer, AnswerKind
from kiosk.config import Settings
from kiosk.dialogue.ask import ask
from kiosk.dialogue.conversation import (
    Action,
    Answered,
    Browse,
    Browsed,
    CategoryPicked,
    Choose,
    Conversation,
    DeviceChanged,
    EndUtterance,
    Event,
    Heard,
    Key,
    Listen,
    LogEvent,
    NoSpeechHeard,
    Partial,
    Press,
    Recognise,
    Record,
    Say,
    Search,
    Show,
    SpeechEnd,
    SpeechFinished,
    SpeechStart,
    State,
    Stop,
    Tick,
    Tone,
    Typed,
    View,
)
from kiosk.dialogue.eventlog import EventLog, QueryLog
from kiosk.dialogue.turns import TurnTaking
from kiosk.dialogue.wording import Prompts
from kiosk.i18n import _
from kiosk.search.contract import Searcher
from kiosk.speech.audio import AudioClip, DeviceLost
from kiosk.speech.contract import (
    AudioFrontEnd,
    AudioSink,
    AudioSource,
    DecodeNotWanted,
    EndpointEvent,
    NoSpeech,
    PausingEndpointer,
    Recogniser,
    SpeechEnded,
    SpeechEndpointer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    Transcript,
)
from kiosk.voice.contract import PreparingVoice, SpeakableText, SpeakingVoice

log = logging.getLogger(__name__)

# --- the runner --------------------------------------------------------------------------

def tone_clip(hz: float, seconds: float, volume: float, rate: int = 48000) -> AudioClip:
    """A soft sine beep with 10 ms fades (no click), distinct from the voice."""
    n = max(1, int(seconds * rate))
    t = np.arange(n, dtype=np.float32) / rate
    wave = np.sin(2 * np.pi * hz * t).astype(np.float32) * float(volume)
    fade = min(n // 2, int(0.01 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return AudioClip(wave, rate)


@dataclass(frozen=True)
class _Barrier:
    """Posted by settle(): handled once every event posted before it has been."""

    done: threading.Event


class _WatchedSpeaker:
    """The output the voice plays on: notes that something played, and reports device loss."""

    def __init__(self, speaker: AudioSink, on_lost: Callable[[DeviceLost], None]):
        self.speaker, self.on_lost = speaker, on_lost
        self.played = False

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool | None:
        try:
            done = self.speaker.play(clip, stop_event)
        except DeviceLost as exc:
            self.on_lost(exc)
            raise
        self.played = True
        return done


class Kiosk:
    """Runs the conversation with real stages. Thread-safe `post()`; the machine itself
    runs on one event thread, so it needs no locks."""

    def __init__(self, settings: Settings, *, microphone: AudioSource | None,
                 speaker: AudioSink, recogniser: Recogniser | None, voice: SpeakingVoice,
                 searcher: Searcher, endpointer: SpeechEndpointer | None = None,
                 headphones: AudioSink | None = None, speakable: SpeakableText | None = None,
                 composer: AnswerComposer | None = None,
                 clock: Callable[[], float] = time.monotonic, tick_seconds: float = 0.1,
                 query_log: QueryLog | None = None, events: EventLog | None = None,
                 prompts: Prompts | None = None, frontend: AudioFrontEnd | None = None):
        self.settings = settings
        self.microphone = microphone
        # The audio front end (kiosk.speech.frontend) cleans every microphone chunk; the
        # loudspeaker hands it what it plays, so the kiosk's own voice is cancelled and
        # never counts as a visitor speaking (barge-in). Headphones make no echo.
        self.frontend = frontend
        if frontend is not None:
            speaker = frontend.echo_reference(speaker)
        self.speaker = speaker
        self.headphones = headphones
        self.recogniser = recogniser
        self.voice = voice
        self.searcher = searcher
        self.endpointer = endpointer
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.query_log = query_log or QueryLog(settings)
        self.events = events or EventLog()
        self.composer = composer
        if speakable is None:
            from kiosk.voice.speakable import Speakable
            speakable = Speakable(settings.voice,
                                  review_months=settings.content.review_months)
        self.speakable = speakable
        self.machine = Conversation(settings, prompts)
        self.machine.speakable = speakable.for_entry  # type: ignore[method-assign]
        self._queue: queue.Queue[Event | _Barrier | None] = queue.Queue()
        self._stop_speech = threading.Event()
        self._speech_lock = threading.Lock()
        self._speech_thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._running = threading.Event()
        self._stopped = threading.Event()  # wakes the slow housekeeping threads on stop
        self._threads: list[threading.Thread] = []
        self._subscribers: list[Callable[[View], None]] = []
        self._recognise_q: queue.Queue[tuple[str, AudioClip, int] | None] = queue.Queue()
        self._recognising = threading.Event()
        self._heard_confidence = 1.0  # the last spoken question's recogniser confidence
        self._speech_audio: list[np.ndarray] = []
        self._partial_at = 0.0
        self._search_q: queue.Queue[Search | Browse | None] = queue.Queue()
        self._reset_endpointer = threading.Event()
        self._flush = threading.Event()
        self.last_error = ""
        self.errors = 0
        self.started_at = time.time()
        self._view = self.machine.view()
        self._view_lock = threading.Lock()
        self._tones: dict[str, AudioClip] = {}
        # the end of a turn judged from its words, with work done while the visitor pauses
        self.turns: TurnTaking | None = None
        if settings.endpointing.judge_from_words and isinstance(endpointer, PausingEndpointer):
            self.turns = TurnTaking(settings, endpointer=endpointer, post=self.post,
                                    heard=self._heard_at_pause,
                                    compose=self._compose, prepare=self._prepare_reply,
                                    log_event=self.events.event)

    # --- public --------------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """Hand an event to the machine (from any thread). A key or press while the kiosk
        talks silences it right here, before the event is even queued (barge-in ≤ 200 ms)."""
        if isinstance(event, (Press, Key, Typed, CategoryPicked, Choose)) and \
                self.machine.state is not State.IDLE:
            self._stop_speech.set()
        self._queue.put(event)

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every event posted so far has been handled (tests, benchmarks)."""
        done = threading.Event()
        self._queue.put(_Barrier(done))
        return done.wait(timeout)

    def view(self) -> View:
        with self._view_lock:
            return self._view

    def subscribe(self, callback: Callable[[View], None]) -> None:
        """Be told each time the view changes (the screen pushes it to the browser)."""
        self._subscribers.append(callback)

    def start(self) -> Kiosk:
        self._running.set()
        self._stopped.clear()
        self._spawn(lambda: self.query_log.keep_retention(self._stopped), "kiosk-retention")
        self._spawn(self._event_loop, "kiosk-events")
        self._spawn(self._recognise_loop, "kiosk-recognise")
        self._spawn(self._search_loop, "kiosk-search")
        if self.microphone is not None:
            self._spawn(self._microphone_loop, "kiosk-microphone")
        return self

    def stop(self) -> None:
        self._running.clear()
        self._stopped.set()
        self._stop_speech.set()
        self._queue.put(None)
        self._recognise_q.put(None)
        self._search_q.put(None)
        if self.microphone is not None:
            self.microphone.close()
        for t in self._threads:
            t.join(timeout=5)
        if self._speech_thread is not None:
            self._speech_thread.join(timeout=5)

    def __enter__(self) -> Kiosk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def state(self) -> State:
        return self.machine.state

    def categories(self) -> list[str]:
        """The live index's categories (the screen's category buttons)."""
        try:
            return list(self.searcher.categories())
        except Exception as exc:
            log.debug("categories unavailable: %s", exc)
            return []

    # --- threads -------------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _event_loop(self) -> None:
        next_tick = self.clock() + self.tick_seconds
        while self._running.is_set():
            try:
                event = self._queue.get(timeout=self.tick_seconds)
            except queue.Empty:
                event = Tick()
            if event is None:
                break
            if isinstance(event, _Barrier):
                event.done.set()
                continue
            if not isinstance(event, Tick):
                self._handle(event)
            if isinstance(event, Tick) or self.clock() >= next_tick:
                next_tick = self.clock() + self.tick_seconds
                self._handle(Tick())

    def _handle(self, event: Event) -> None:
        try:
            actions = self.machine.handle(event, self.clock())
            for action in actions:
                self._execute(action)
        except Exception as exc:  # one bad event must not take the kiosk down
            self._error("event", exc)
            log.exception(_("handling %s failed"), type(event).__name__)

    def _error(self, where: str, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = _("{where}: {error}").format(where=where, error=exc)
        self.events.event("error", logging.ERROR, where=where, error=type(exc).__name__)

    def _publish(self) -> None:
        view = self.machine.view()
        with self._view_lock:
            self._view = view
        for callback in list(self._subscribers):
            try:
                callback(view)
            except Exception as exc:
                log.debug("view subscriber failed: %s", exc)

    def _execute(self, action: Action) -> None:
        if isinstance(action, Show):
            self._publish()
        elif isinstance(action, Say):
            self._start_speech(action)
        elif isinstance(action, Stop):
            self._stop_speech.set()
        elif isinstance(action, Tone):
            self._play_tone(action)
        elif isinstance(action, Listen):
            self._set_listening(action.active, action.fresh)
        elif isinstance(action, EndUtterance):
            self._flush.set()
        elif isinstance(action, Recognise):
            if self.turns is None or not self.turns.final_for(action.clip):
                self._recognise_q.put(("final", action.clip, 0))
        elif isinstance(action, (Search, Browse)):
            self._search_q.put(action)  # off the event thread: the screen shows THINKING
        elif isinstance(action, Record):
            self.query_log.record(action.text, action.kind, action.entry_id, action.category)
        elif isinstance(action, LogEvent):
            self.events.event(action.name, **action.fields)

    # --- searching ------------------------------------------------------------------------

    def _search_loop(self) -> None:
        """Searches and category listings, one at a time; each result is posted back as an
        event, like a transcript, so the machine never waits on the index."""
        while True:
            job = self._search_q.get()
            if job is None:
                return
            self.post(self._run_search(job) if isinstance(job, Search) else self._run_browse(job))

    def _composer(self) -> AnswerComposer:
        if self.composer is None:
            self.composer = AnswerComposer(self.settings.answer, (), self.settings.site)
        return self.composer

    def _compose(self, texts: tuple[str, ...], confidence: float = 1.0) -> Answer:
        noise = self.frontend.noise_dbfs if self.frontend is not None and self.frontend.active \
            else None
        return ask(self.searcher, self._composer(), texts, confidence=confidence,
                   noise_dbfs=noise)

    def _heard_at_pause(self, transcript: Transcript) -> None:
        """The pause's transcript is the turn's final one (kiosk/dialogue/turns.py)."""
        self._heard_confidence = float(transcript.confidence)
        self.post(Heard(transcript.text, tuple(transcript.alternatives)))

    def _run_search(self, search: Search) -> Answered:
        try:
            texts = (search.text, *search.alternatives)
            guessed = self.turns.answer_for(texts) if self.turns is not None else None
            answer = guessed or self._compose(texts, self._heard_confidence)
            self._heard_confidence = 1.0  # a typed question next is not the recogniser's
        except Exception as exc:
            self._error("search", exc)
            log.exception(_("search failed"))
            answer = Answer(AnswerKind.NONE, search.text)
        return Answered(answer, search.asked)

    def _run_browse(self, browse: Browse) -> Browsed:
        try:
            entries = tuple(self.searcher.entries_in(browse.category))
        except Exception as exc:
            self._error("browse", exc)
            entries = ()
        limit = max(1, self.settings.answer.max_suggestions)
        return Browsed(browse.category, entries[:limit], browse.asked)

    def _prepare_reply(self, answer: Answer) -> None:
        """Synthesize the first sentence the conversation would say for this answer, at the
        visitor's pace and volume (a speculative answer, kiosk/dialogue/turns.py)."""
        if not isinstance(self.voice, PreparingVoice):
            return
        text, rate, volume = self.machine.reply_for(answer)
        if text.strip():
            self.voice.prepare(self.speakable.normalise(text), rate=rate, volume=volume)

    # --- speech out -----------------------------------------------------------------------

    def _output(self, headphones: bool) -> AudioSink:
        return self.headphones if headphones and self.headphones is not None else self.speaker

    def _start_speech(self, say: Say) -> None:
        """Stop whatever is playing, then speak on a fresh speech thread (the old one sees
        its stop event and ends by itself; its SpeechFinished is ignored as stale)."""
        self._stop_speech.set()
        self._stop_speech = threading.Event()
        stop = self._stop_speech
        with self._speech_lock:
            previous = self._speech_thread
            thread = threading.Thread(target=self._speak, args=(say, stop, previous),
                                      name="kiosk-speech", daemon=True)
            self._speech_thread = thread
        thread.start()

    def _speak(self, say: Say, stop: threading.Event, previous: threading.Thread | None) -> None:
        """One utterance. Waits for the stopped previous one to let go of the voice (it ends
        within one sentence's synthesis), so the synthesizer is never used twice at once."""
        if previous is not None:
            previous.join(timeout=5.0)
        completed = False
        # pace and loudness are the voice's own (peak-normalised, no clipping)
        self.voice.rate, self.voice.volume = say.rate, say.volume
        output = _WatchedSpeaker(self._output(say.headphones), self._speaker_lost)
        try:
            text = self.speakable.normalise(say.text)
            if text.strip():
                self.voice.speak(text, output, stop)
            if say.tone_after and not stop.is_set():
                output.play(self._tone_clip("start", self.settings.loop.tone_volume), stop)
            completed = not stop.is_set()
            if output.played and not self.machine.speaker_ok:
                self.post(DeviceChanged("speaker", True))
        except DeviceLost:
            pass
        except Exception as exc:
            self._error("voice", exc)
            log.exception(_("speaking failed"))
        self.post(SpeechFinished(say.utterance, completed))

    def _speaker_lost(self, exc: DeviceLost) -> None:
        self.last_error = _("speaker: {error}").format(error=exc)
        if self.machine.speaker_ok:
            self.post(DeviceChanged("speaker", False, str(exc)))

    def _tone_clip(self, kind: str, volume: float) -> AudioClip:
        key = f"{kind}:{volume}"
        if key not in self._tones:
            hz = self.settings.loop.tone_hz * (1.0 if kind == "start" else 0.75)
            self._tones[key] = tone_clip(hz, self.settings.loop.tone_seconds, volume)
        return self._tones[key]

    def _play_tone(self, tone: Tone) -> None:
        clip = self._tone_clip(tone.kind, tone.volume)
        output = self._output(tone.headphones)

        def play() -> None:
            try:
                output.play(clip, threading.Event())
            except DeviceLost as exc:
                self._speaker_lost(exc)
            except Exception as exc:
                self._error("tone", exc)

        threading.Thread(target=play, name="kiosk-tone", daemon=True).start()

    # --- speech in ------------------------------------------------------------------------

    def _set_listening(self, active: bool, fresh: bool = False) -> None:
        if active:
            if fresh or not self._listening.is_set():
                self._reset_endpointer.set()
            self._listening.set()
        else:
            self._listening.clear()

    def microphone_lost(self, exc: BaseException | None = None) -> None:
        """Callback for ReconnectingMicrophone: the visitor is told to use the screen."""
        self.last_error = (_("microphone: {error}").format(error=exc) if exc
                           else _("microphone lost; check its cable (the kiosk retries by itself)"))
        self.post(DeviceChanged("microphone", False, str(exc or "")))

    def microphone_back(self) -> None:
        self.post(DeviceChanged("microphone", True))

    def _microphone_loop(self) -> None:
        """Feed the endpointer while a session listens. A plain iterable that raises
        DeviceLost is iterated again after [audio] reconnect_seconds (ReconnectingMicrophone
        does its own retrying and reports through microphone_lost/back)."""
        assert self.microphone is not None
        lost = False
        while self._running.is_set():
            try:
                for chunk in self.microphone:
                    if not self._running.is_set():
                        return
                    if lost:
                        lost = False
                        self.microphone_back()
                    if self.frontend is not None:  # always: the echo canceller keeps adapting
                        chunk = self.frontend.process(chunk)
                        if self.frontend.talk_over:
                            self._talked_over()
                    self._feed(chunk)
                return
            except DeviceLost as exc:
                if not lost:
                    lost = True
                    self.microphone_lost(exc)
            except Exception as exc:
                self._error("microphone", exc)
                log.exception(_("microphone loop failed"))
                if not lost:
                    lost = True
                    self.microphone_lost(exc)
            if not self._running.is_set():
                return
            time.sleep(self.settings.audio.reconnect_seconds)

    def _feed(self, chunk: AudioClip) -> None:
        if not self._listening.is_set() or self.endpointer is None:
            return
        if self._reset_endpointer.is_set():
            self._reset_endpointer.clear()
            self.endpointer.reset()
            self._speech_audio = []
        events = self.endpointer.feed(chunk)
        if self.endpointer.speaking:
            self._speech_audio.append(chunk.samples)
            self._maybe_partial(chunk.rate)
        for ev in events:
            self._endpoint_event(ev)
        if self._flush.is_set():
            self._flush.clear()
            events = self.endpointer.flush()
            if not events:
                self.endpointer.reset()
                self.post(NoSpeechHeard())
            for ev in events:
                self._endpoint_event(ev)

    def _maybe_partial(self, rate: int) -> None:
        """While the visitor speaks, transcribe what was said so far for the screen, every
        [loop] partial_seconds of speech, when the recogniser is free."""
        every = self.settings.loop.partial_seconds
        if every <= 0 or self._recognising.is_set():
            return
        heard = sum(len(a) for a in self._speech_audio) / rate
        if heard - self._partial_at >= every:
            self._partial_at = heard
            self._recognising.set()
            self._recognise_q.put(("partial", AudioClip(np.concatenate(self._speech_audio), rate), 0))

    def _talked_over(self) -> None:
        """The front end heard a visitor speaking over the kiosk's voice: barge-in, as the
        endpointer's SpeechStarted does when nothing plays."""
        if not self._listening.is_set() or self.machine.speaking is None \
                or self._stop_speech.is_set() or not self.settings.loop.barge_in_by_speech:
            return
        self._partial_at = 0.0
        self.post(SpeechStart())
        self._stop_speech.set()

    def _endpoint_event(self, ev: EndpointEvent) -> None:
        if isinstance(ev, SpeechStarted):
            if self.machine.speaking is not None and self.frontend is not None \
                    and self.frontend.cancels_echo and not self._stop_speech.is_set() \
                    and self.endpointer is not None:
                # The kiosk is still talking: speech in what the canceller lets through is
                # most likely its own voice (a visitor over it is the front end's talk_over,
                # which has stopped the voice already). Keep listening afresh.
                self.endpointer.reset()
                self._speech_audio = []
                return
            self._partial_at = 0.0
            self.post(SpeechStart())
            if self.settings.loop.barge_in_by_speech and self.machine.speaking is not None:
                self._stop_speech.set()
        elif isinstance(ev, SpeechPaused) and self.turns is not None:
            # each pause's transcript is shown; a periodic partial only for long unbroken speech
            self._partial_at = sum(len(a) for a in self._speech_audio) / ev.clip.rate
            self.turns.paused(ev.pause)
            self._recognise_q.put(("pause", ev.clip, ev.pause))
        elif isinstance(ev, SpeechResumed) and self.turns is not None:
            self.turns.resumed(ev.pause)
        elif isinstance(ev, SpeechEnded):
            self._speech_audio = []
            if self.turns is not None:
                self.turns.ended(ev.clip, ev.pause)
            self.post(SpeechEnd(ev.clip))
        elif isinstance(ev, NoSpeech):
            self.post(NoSpeechHeard())

    def _recognise_loop(self) -> None:
        while True:
            job = self._recognise_q.get()
            if job is None:
                return
            kind, clip, pause = job
            if kind == "pause":
                self._recognise_pause(clip, pause)
                continue
            try:
                if self.recogniser is None:
                    raise RuntimeError(_("no speech recognition model is loaded"))
                transcript = self.recogniser.transcribe(clip)
                text, alternatives = transcript.text, tuple(transcript.alternatives)
                if kind == "final" and text:
                    self._heard_confidence = float(transcript.confidence)
            except Exception as exc:
                if kind == "final":
                    self._error("recogniser", exc)
                    log.exception(_("recognition failed"))
                text, alternatives = "", ()
            finally:
                self._recognising.clear()
            if kind == "final":
                self.post(Heard(text, alternatives))
            elif text and self._speech_audio:
                self.post(Partial(text))

    def _recognise_pause(self, clip: AudioClip, pause: int) -> None:
        """The question so far, at a pause (kiosk/dialogue/turns.py); stale pauses skipped."""
        assert self.turns is not None
        if not self.turns.wants_decode(pause):
            return
        try:
            if self.recogniser is None:
                raise RuntimeError(_("no speech recognition model is loaded"))
            transcript = self.recogniser.transcribe(
                clip, wanted=lambda: self.turns is not None and self.turns.wants_decode(pause))
        except DecodeNotWanted:
            log.debug("pause %d: the visitor spoke on, its decode was stopped", pause)
            return
        except Exception as exc:
            self._error("recogniser", exc)
            log.exception(_("recognition failed"))
            retry = self.turns.failed_in_pause(pause)
            if retry is not None:
                self._recognise_q.put(("final", retry, 0))
            return
        self.turns.heard_in_pause(pause, clip, transcript)

    # --- for /healthz ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {"state": self.machine.state.value, "microphone": self.machine.mic_ok,
                "speaker": self.machine.speaker_ok, "errors": self.errors,
                "last_error": self.last_error}


#: make_kiosk's default microphone: the configured input device, reconnecting by itself.
MICROPHONE_DEVICE = "device"


def make_kiosk(settings: Settings, *, searcher: Searcher | None = None,
               microphone: AudioSource | str | None = MICROPHONE_DEVICE,
               speaker: AudioSink | None = None, headphones: AudioSink | None = None,
               voice: SpeakingVoice | None = None, endpointer: SpeechEndpointer | None = None,
               recogniser: Recogniser | None = None, **options: Any) -> Kiosk:
    """The kiosk with its real stages, each built from its own section of the settings.
    Any stage can be handed in instead: `kiosk run` passes none, tests and benchmarks pass
    fakes at the hardware edge (a simulated microphone and speaker) or a voice already
    loaded. The recogniser loads slowly, so it is usually set later (kiosk.recogniser).
    `options` go to Kiosk (clock, tick_seconds, speakable, prompts, …)."""
    from kiosk.content.publishing import ensure_index
    from kiosk.search.versions import LiveIndex
    from kiosk.speech.audio import ReconnectingMicrophone, Speaker
    from kiosk.speech.endpointing import Endpointer
    from kiosk.speech.frontend import FrontEnd
    from kiosk.voice.synthesis import Voice

    audio = settings.audio
    if searcher is None:
        ensure_index(settings)
        searcher = LiveIndex(settings.index_dir, settings)
    if headphones is None and audio.headphone_device:
        headphones = Speaker(audio.headphone_device, volume=audio.headphone_volume,
                             rate=audio.output_rate, block_ms=audio.block_ms)
    wants_device = microphone == MICROPHONE_DEVICE
    if "frontend" not in options and wants_device:  # the real microphone: echo and all
        options["frontend"] = FrontEnd.from_settings(settings)
        log.info("%s", options["frontend"].description)
    kiosk = Kiosk(settings, microphone=None if isinstance(microphone, str) else microphone,
                  speaker=speaker if speaker is not None else Speaker.from_settings(settings),
                  headphones=headphones, recogniser=recogniser,
                  voice=voice if voice is not None else Voice(settings), searcher=searcher,
                  endpointer=endpointer if endpointer is not None else Endpointer(settings),
                  **options)
    if wants_device:
        kiosk.microphone = ReconnectingMicrophone.from_settings(
            settings, on_lost=kiosk.microphone_lost, on_back=kiosk.microphone_back)
    return kiosk
