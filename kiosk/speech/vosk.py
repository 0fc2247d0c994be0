"""Vosk engine (Kaldi): streaming partial results while the visitor speaks, words with
confidences, n-best alternatives, and grammar mode for command words.

A fresh KaldiRecognizer per utterance: long-lived decoders grow in memory over a day of
questions, while the Model (the big part) is loaded once and shared.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from kiosk.i18n import _
from kiosk.speech.audio import SPEECH_RATE, AudioClip, to_int16
from kiosk.speech.contract import Transcript
from kiosk.speech.models import ModelError, check_vosk_folder, require_vosk_model
from kiosk.speech.recogniser import join_japanese

log = logging.getLogger(__name__)


class VoskStream:
    """One utterance being decoded: feed() chunks as they arrive, finish() for the result."""

    def __init__(self, owner: VoskRecogniser, phrases: Sequence[str] | None):
        import vosk

        if phrases:
            # ensure_ascii=False: vosk silently ignores \\uXXXX-escaped words
            grammar = json.dumps([*dict.fromkeys(phrases), "[unk]"], ensure_ascii=False)
            self._rec = vosk.KaldiRecognizer(owner.model, SPEECH_RATE, grammar)
        else:
            self._rec = vosk.KaldiRecognizer(owner.model, SPEECH_RATE)
        self._rec.SetWords(True)
        self._rec.SetPartialWords(False)
        if owner.max_alternatives > 1:
            self._rec.SetMaxAlternatives(owner.max_alternatives)
        self.owner = owner
        self.audio_seconds = 0.0
        self._segments: list[dict[str, Any]] = []
        self._started = time.perf_counter()

    def feed(self, clip: AudioClip) -> str:
        """Add audio; returns the partial text heard so far (for live captions)."""
        clip = clip.at_rate(SPEECH_RATE)
        self.audio_seconds += clip.duration
        if self._rec.AcceptWaveform(to_int16(clip.samples).tobytes()):
            self._segments.append(json.loads(self._rec.Result()))
            return self.partial_text(include_pending=False)
        return self.partial_text()

    def partial_text(self, include_pending: bool = True) -> str:
        done = "".join(_best(seg)[0] for seg in self._segments)
        pending = json.loads(self._rec.PartialResult()).get("partial", "") if include_pending else ""
        return join_japanese(done + " " + pending)

    def finish(self, phrases: Sequence[str] | None = None) -> Transcript:
        self._segments.append(json.loads(self._rec.FinalResult()))
        segs = [s for s in self._segments if _best(s)[0].strip()]
        texts = [join_japanese(" ".join(_best(s)[0] for s in segs))]
        # alternatives vary the last (usually only) segment, keeping the earlier ones fixed
        if segs:
            head = " ".join(_best(s)[0] for s in segs[:-1])
            for alt in segs[-1].get("alternatives", [])[1:]:
                texts.append(join_japanese(head + " " + alt.get("text", "")))
        raw_words = [w for s in segs for w in _best(s)[1] if w.get("word") != "[unk]"]
        texts = [join_japanese(t.replace("[unk]", " ")) for t in texts]
        texts = [t for t in dict.fromkeys(texts) if t]
        confs = [float(w["conf"]) for w in raw_words if "conf" in w]
        if confs:
            confidence = sum(confs) / len(confs)
        else:  # n-best mode scores whole hypotheses instead of words
            confidence = min((_nbest_share(s) for s in segs), default=0.0)
        words = tuple((w["word"], float(w.get("conf", confidence))) for w in raw_words)
        return Transcript(
            text=texts[0] if texts else "",
            alternatives=tuple(texts[1:]),
            confidence=round(confidence, 3) if texts else 0.0,
            audio_seconds=self.audio_seconds,
            elapsed_seconds=time.perf_counter() - self._started,
            engine=self.owner.name,
            words=words,
        )


def _best(segment: dict[str, Any]) -> tuple[str, list[dict[str, Any]], float | None]:
    """(text, words, score) of a vosk result, with or without n-best alternatives."""
    if "alternatives" in segment:
        alts = segment["alternatives"]
        if not alts:
            return "", [], None
        top = alts[0]
        return top.get("text", ""), top.get("result", []), top.get("confidence")
    return segment.get("text", ""), segment.get("result", []), None


def _nbest_share(segment: dict[str, Any]) -> float:
    """How much of the n-best list's probability mass the top hypothesis holds (0..1);
    vosk's per-hypothesis scores are log-likelihoods."""
    scores = [float(a.get("confidence", 0.0)) for a in segment.get("alternatives", [])]
    if not scores:
        return 0.0
    top = max(scores)
    return 1.0 / sum(math.exp(min(0.0, s - top)) for s in scores)


class VoskRecogniser:
    """The vosk model, loaded once; each utterance gets its own decoder."""

    name = "vosk"

    def __init__(self, model_dir: str, *, max_alternatives: int = 3):
        try:
            import vosk
        except ImportError:
            raise ModelError(_("the vosk engine needs the vosk package: run `pip install vosk`")) \
                from None
        from pathlib import Path

        problem = check_vosk_folder(Path(model_dir))
        if problem is not None:
            raise ModelError(_("the vosk model at {folder} is {problem}; reinstall it with "
                               "`kiosk models install`").format(folder=model_dir, problem=problem))
        vosk.SetLogLevel(-2)  # keep Kaldi's chatter off the kiosk's stderr
        try:
            self.model = vosk.Model(str(model_dir))
        except Exception as exc:  # vosk raises a bare Exception on a broken model
            raise ModelError(_("the vosk model at {folder} could not be loaded ({reason}); "
                               "reinstall it with `kiosk models install`").format(
                folder=model_dir, reason=exc)) from None
        self.max_alternatives = max_alternatives

    @classmethod
    def from_settings(cls, settings: Any, *, vocabulary: Sequence[str] = ()) -> VoskRecogniser:
        # Free questions use the model's full vocabulary: a runtime grammar would forbid every
        # word not listed, so content words are only used for command phrases.
        return cls(str(require_vosk_model(settings)), max_alternatives=settings.asr.max_alternatives)

    def stream(self, *, phrases: Sequence[str] | None = None) -> VoskStream:
        return VoskStream(self, phrases)

    def transcribe(self, clip: AudioClip, *, phrases: Sequence[str] | None = None,
                   wanted: Callable[[], bool] | None = None) -> Transcript:
        """`wanted` is not asked: vosk's decode is streamed and cheap."""
        s = self.stream(phrases=phrases)
        step = SPEECH_RATE // 5  # 0.2 s, as a live stream would arrive
        clip = clip.at_rate(SPEECH_RATE)
        for i in range(0, len(clip.samples), step):
            s.feed(AudioClip(clip.samples[i : i + step], SPEECH_RATE))
        return s.finish(phrases)
