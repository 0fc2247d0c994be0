"""Turn-taking at conversational speed: the work of a turn is done while the visitor pauses.

At each short pause inside a question (the endpointer's SpeechPaused) the utterance so far is
recognised. That transcript
  - is the partial transcript shown on screen,
  - decides how long the silence must last before the turn ends (kiosk/speech/turn_end.py:
    0.4 s after 〜ですか, 1.8 s after 〜を or えーと), which the endpointer is told,
  - when the turn is probably complete, is searched at once and the first sentence of the
    likely reply is synthesized (Voice.prepare), so both are ready when the end is confirmed,
  - is the final transcript if the turn ends in this pause: the audio after it is silence,
    so decoding it again would give the same words. If the visitor speaks again
    (SpeechResumed) everything made for the pause is dropped, silently: nothing is ever
    played before the conversation says so, and the final transcript of the whole turn, not a
    partial, decides what is read out.

The runner calls in from three threads (microphone, recogniser, event loop); one lock keeps
the state of the current pause.

CONTRACT:
    TurnTaking(settings, endpointer=, post=, compose=, prepare=)
        .paused(pause) / .resumed(pause) / .ended(clip, pause)        — microphone thread
        .heard_in_pause(pause, clip, transcript) / .failed_in_pause(pause)  — recogniser thread
        .wants_decode(pause) -> bool
        .final_for(clip) -> bool: True = the Heard event comes from the pause's transcript
        .answer_for(texts) -> Answer | None                             — event thread
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiosk.answer.contract import Answer
from kiosk.dialogue.conversation import Event, Partial
from kiosk.i18n import _
from kiosk.speech.audio import AudioClip
from kiosk.speech.contract import PausingEndpointer, Transcript
from kiosk.speech.turn_end import TurnDecision, TurnEndModel, TurnVerdict

log = logging.getLogger(__name__)


@dataclass
class _Pause:
    pause: int
    transcript: Transcript | None = None
    decision: TurnDecision | None = None
    ended_clip: AudioClip | None = None  # the turn ended in this pause with this clip
    final_claimed: bool = False  # the conversation asked for the final transcript


class TurnTaking:
    def __init__(self, settings: Any, *, endpointer: PausingEndpointer,
                 post: Callable[[Event], None],
                 heard: Callable[[Transcript], None],
                 compose: Callable[[tuple[str, ...], float], Answer],
                 prepare: Callable[[Answer], None] | None = None,
                 log_event: Callable[..., None] | None = None):
        self.model = TurnEndModel(settings)
        self.endpointer = endpointer
        self.endpointer.pauses = True
        self.wait_unknown = settings.endpointing.continuing_silence_seconds
        self._post = post
        self._heard = heard  # hands the pause's transcript on as the turn's final one
        self._compose = compose
        self._prepare = prepare
        self._log = log_event or (lambda name, **fields: None)
        self._lock = threading.Lock()
        self._current: _Pause | None = None
        self._answers: dict[tuple[str, ...], Answer] = {}
        self._composing: tuple[str, ...] | None = None  # texts the guess is searching
        self._composed = threading.Event()  # set when that search is done
        self.compose_timeout = 5.0  # a guess slower than this is searched again
        self.dropped = 0  # speculative answers dropped because the visitor went on

    # --- microphone thread ----------------------------------------------------------------

    def paused(self, pause: int) -> None:
        """A pause began; until its words are known it counts as "goes on"."""
        with self._lock:
            self._current = _Pause(pause)
        self.endpointer.end_after(self.wait_unknown, pause)

    def resumed(self, pause: int) -> None:
        with self._lock:
            current = self._current
            if current is None or current.pause != pause:
                return
            self._current = None
            guessed = bool(self._answers)
            self._answers.clear()
        if guessed:
            self.dropped += 1
            self._log("speculation_dropped", pause=pause)

    def ended(self, clip: AudioClip, pause: int) -> None:
        """The endpointer ended the turn (silence, button, cap) in `pause` (0 = in speech)."""
        with self._lock:
            if self._current is not None and pause and self._current.pause == pause:
                self._current.ended_clip = clip
            else:
                self._current = None

    # --- recogniser thread ----------------------------------------------------------------

    def wants_decode(self, pause: int) -> bool:
        """Is this pause still the current one (a stale job is skipped)?"""
        with self._lock:
            return self._current is not None and self._current.pause == pause

    def heard_in_pause(self, pause: int, clip: AudioClip, transcript: Transcript) -> None:
        """The utterance up to this pause, recognised: show it, judge the turn, guess the
        answer, and hand it on as the final transcript if the turn already ended here."""
        decision = self.model.decide(transcript.text, clip.samples, clip.rate)
        with self._lock:
            current = self._current
            if current is None or current.pause != pause:
                return
            current.transcript, current.decision = transcript, decision
            claimed = current.final_claimed
        self._log("turn_judged", pause=pause, verdict=decision.verdict.value,
                  reason=decision.reason, wait=decision.wait_seconds)
        if claimed:  # the button ended the turn while this was being recognised
            self.endpointer.end_after(decision.wait_seconds, pause)
            self._heard(transcript)
            return
        if transcript.text:
            self._post(Partial(transcript.text))
        texts = (transcript.text, *transcript.alternatives)
        guess = bool(transcript.text) and decision.verdict is not TurnVerdict.CONTINUING
        if guess:
            with self._lock:
                self._composing = texts
                self._composed.clear()
        # The endpointer is told first: when the silence has already lasted long enough the
        # turn ends now, and the conversation's way to its answer (end → heard → search →
        # say) runs while the guess below is made; answer_for and the voice wait for it.
        self.endpointer.end_after(decision.wait_seconds, pause)
        if guess:
            self._guess(pause, texts, transcript.confidence)

    def _guess(self, pause: int, texts: tuple[str, ...], confidence: float) -> None:
        """Search and synthesize the first sentence now; kept only while the pause lasts."""
        try:
            answer = self._compose(texts, confidence)
        except Exception:
            log.exception(_("speculative search failed"))
            return
        finally:
            with self._lock:
                composing = self._composing == texts
            if composing:
                self._composed.set()
        with self._lock:
            if self._current is None or self._current.pause != pause:
                return
            self._answers = {texts: answer}
        if self._prepare is not None:
            try:
                self._prepare(answer)
            except Exception:
                log.exception(_("preparing the answer's first sentence failed"))

    def failed_in_pause(self, pause: int) -> AudioClip | None:
        """The pause's decode failed: the clip to recognise the usual way if the turn
        already ended there (else None; the turn ends after the long wait)."""
        with self._lock:
            current = self._current
            if current is None or current.pause != pause:
                return None
            if current.final_claimed:
                self._current = None
                return current.ended_clip
            current.ended_clip = None  # so final_for decodes the turn afresh
            return None

    # --- event thread ---------------------------------------------------------------------

    def final_for(self, clip: AudioClip) -> bool:
        """The conversation wants this clip recognised. True when the pause's transcript is
        (or will be, once its decode finishes) the final one, so no second decode is needed;
        then this posts the Heard event itself."""
        with self._lock:
            current = self._current
            if current is None or current.ended_clip is not clip:
                return False
            current.final_claimed = True
            transcript = current.transcript
        if transcript is not None:
            self._heard(transcript)
        return True

    def answer_for(self, texts: tuple[str, ...]) -> Answer | None:
        """The answer composed for exactly these transcripts, if any (used once); one still
        being composed at the pause is waited for rather than searched a second time."""
        with self._lock:
            composing = self._composing == texts
        if composing:
            self._composed.wait(timeout=self.compose_timeout)
        with self._lock:
            self._composing = None
            return self._answers.pop(texts, None)
