"""Recogniser stage: speech → text. Two engines behind one interface (vosk when its
Japanese model is installed, faster-whisper on the bundled whisper-base otherwise).

CONTRACT:
    Transcript(text, alternatives, confidence, audio_seconds, elapsed_seconds, engine)
    Recogniser (Protocol): name: str; transcribe(clip: AudioClip) -> Transcript
    open_recogniser(settings) -> Recogniser   — picks the engine per asr.engine

Both engines also accept `transcribe(clip, phrases=[...])`: the answer must be one of a few
command phrases (はい / いいえ / もう一度); vosk restricts its grammar, whisper snaps to the
closest phrase. `open_recogniser(settings, vocabulary=[...])` passes content words (titles,
keywords — the caller collects them; this stage does not read the index) as hints.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kiosk.speech.contract import Recogniser, Transcript

if TYPE_CHECKING:
    from kiosk.speech.audio import AudioClip

_JA = r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uff66-\uff9f々〆ー]"
_SPACE_IN_JA = re.compile(rf"(?<={_JA})\s+(?={_JA})")


def join_japanese(text: str) -> str:
    """Drop the spaces engines put between Japanese words (vosk: 粗大 ごみ → 粗大ごみ) but keep
    those between Latin words (Wi-Fi free spot)."""
    text = re.sub(r"\s+", " ", text).strip()
    text = _SPACE_IN_JA.sub("", text)
    # a space between Japanese and Latin/digits is an engine artefact too
    text = re.sub(rf"(?<={_JA})\s+(?=[0-9A-Za-z])|(?<=[0-9A-Za-z])\s+(?={_JA})", "", text)
    return text


_PUNCT = re.compile(r"[\s、。，．,.!?！？「」『』（）()・…〜~\-\"'：:；;]+")


def normalise_for_comparison(text: str) -> str:
    """Width-folded text without spaces or punctuation (for CER and hallucination checks)."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text)).lower()


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def character_error_rate(reference: str, hypothesis: str) -> float:
    """CER on normalised text: the standard figure for Japanese, which has no word spaces."""
    ref, hyp = normalise_for_comparison(reference), normalise_for_comparison(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def closest_phrase(text: str, phrases: Sequence[str], max_cer: float = 0.5) -> str:
    """The command phrase the text is nearest to, or "" when none is near enough."""
    best, best_cer = "", max_cer
    for phrase in phrases:
        cer = character_error_rate(phrase, text)
        if cer <= best_cer:
            best, best_cer = phrase, cer
    return best


def is_hallucination(text: str, hallucinations: Sequence[str]) -> bool:
    """Whisper invents stock phrases on noise; a transcript made only of them is dropped."""
    rest = normalise_for_comparison(text)
    if not rest:
        return True
    for phrase in sorted((normalise_for_comparison(h) for h in hallucinations), key=len,
                         reverse=True):
        if phrase:
            rest = rest.replace(phrase, "")
    return not rest


_LIST_SEPARATORS = re.compile(r"[、,，\s・;；]+")


def hallucination_reason(text: str, *, vocabulary: Sequence[str] = (),
                         speech_seconds: float = 0.0,
                         max_chars_per_second: float = 12.0) -> str:
    """Why a transcript is not what the visitor said, or "" when it may be. In noise whisper
    writes out its prompt (「ゴミ、カンディア、テルト、スプレーサー…」), loops on one word, or
    produces far more text than the speech could hold; searching that answers a question
    nobody asked. Japanese speech runs at ~8 characters a second, brisk speech ~10."""
    norm = normalise_for_comparison(text)
    if not norm:
        return ""
    if speech_seconds > 0 and len(norm) > max(12.0, max_chars_per_second * speech_seconds):
        return f"{len(norm)} characters from {speech_seconds:.1f} s of speech"
    pieces = [normalise_for_comparison(p) for p in _LIST_SEPARATORS.split(text)]
    pieces = [p for p in pieces if p]
    if len(pieces) >= 3 and max(pieces.count(p) for p in pieces) >= 3:
        return "the same word over and over"
    bare = sum(1 for p in pieces if not "\u3041" <= p[-1] <= "\u309f")  # no particle/ending
    if len(pieces) >= 4 and bare >= 0.6 * len(pieces):
        return "a list of words, as in the recogniser's prompt"
    words = sorted({normalise_for_comparison(w) for w in vocabulary
                    if len(normalise_for_comparison(w)) >= 2}, key=len, reverse=True)
    covered = [False] * len(norm)
    found = 0
    for w in words:
        at = norm.find(w)
        while at >= 0:
            if not any(covered[at : at + len(w)]):
                covered[at : at + len(w)] = [True] * len(w)
                found += 1
            at = norm.find(w, at + 1)
    share = sum(covered) / len(norm)
    if len(pieces) >= 3 and share >= 0.5 or found >= 4 and share >= 0.8:
        return "mostly the recogniser's prompt words"
    return ""


def vocabulary_words(words: Sequence[str], limit: int) -> list[str]:
    """Unique, non-empty content words in the caller's order, at most `limit`."""
    seen: dict[str, None] = {}
    for w in words:
        w = w.strip()
        if w and w not in seen:
            seen[w] = None
        if len(seen) >= limit:
            break
    return list(seen)


def vocabulary_from(entries: Sequence[Any]) -> list[str]:
    """Content words for the engines' hints, spread over every topic: each entry's first
    keyword, then each entry's second, and so on (staff list the main word first). Plain
    frequency would let 148 shelter entries crowd out everything else. Takes anything with
    `.keywords` (content.Entry), so this stage never reads the index; the caller passes
    `index.entries()`."""
    lists = [[w.strip() for w in (getattr(e, "keywords", ()) or ()) if w.strip()]
             for e in entries]
    seen: dict[str, None] = {}
    for rank in range(max((len(k) for k in lists), default=0)):
        for words in lists:
            if rank < len(words):
                seen.setdefault(words[rank], None)
    return list(seen)


def open_recogniser(settings: Any, *, vocabulary: Sequence[str] = ()) -> Recogniser:
    """The engine asr.engine asks for; "auto" = vosk when its Japanese model is installed,
    else the bundled whisper (dereverberating each clip first when [frontend] says so).
    Model problems raise ModelError naming the fixing command."""
    from kiosk.speech.frontend import dereverberating
    from kiosk.speech.models import active_engine

    engine = active_engine(settings)
    recogniser: Recogniser
    if engine == "vosk":
        from kiosk.speech.vosk import VoskRecogniser

        recogniser = VoskRecogniser.from_settings(settings, vocabulary=vocabulary)
    else:
        from kiosk.speech.whisper import WhisperRecogniser

        recogniser = WhisperRecogniser.from_settings(settings, vocabulary=vocabulary)
    # [frontend] dereverberation: each question with the room's reverberation taken out
    return dereverberating(recogniser, getattr(settings, "frontend", None))


def transcribe_file(path: str, settings: Any, vocabulary: Sequence[str] = (), *,
                    clip: AudioClip | None = None) -> Transcript:
    """A WAV file's question as text (`kiosk ask --wav`); silence is an error a person can
    fix rather than an empty search. `clip`: the file's audio already loaded (and cleaned by
    the audio front end)."""
    from kiosk import KioskError
    from kiosk.i18n import _
    from kiosk.speech.audio import load_wav

    if clip is None:
        clip = load_wav(path, max_bytes=settings.audio.max_file_bytes)
    transcript = open_recogniser(settings, vocabulary=vocabulary).transcribe(clip)
    if transcript.heard_nothing:
        raise KioskError(
            _("{file}: no speech was heard in this recording ({seconds:.1f} s); check that it "
              "holds a spoken question and is not silent or only noise").format(
                file=path, seconds=clip.duration))
    return transcript


def describe_transcript(t: Transcript) -> str:
    """What an operator reads before the answer: what was heard, and the runners-up."""
    from kiosk.i18n import _

    lines = [_("聞き取り: {text}  (engine {engine}, confidence {confidence:.2f}, {audio:.1f} s "
               "audio in {elapsed:.2f} s)").format(
        text=t.text, engine=t.engine, confidence=t.confidence, audio=t.audio_seconds,
        elapsed=t.elapsed_seconds)]
    lines += [f"  候補 {n}: {alt}" for n, alt in enumerate(t.alternatives, 2)]
    return "\n".join(lines) + "\n"

