"""Whisper engine: faster-whisper (CTranslate2, int8, CPU) on the bundled whisper-base, the
engine that works on a fresh machine with no download.

Short questions (≤ 30 s, one Whisper window) are decoded directly with beam search so one
pass gives the n-best alternatives and the no-speech probability; longer files go through
faster-whisper's own transcribe(). Silence is cut with the Silero VAD faster-whisper ships,
and known hallucinations (「ご視聴ありがとうございました」 on noise) are dropped instead of searched.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kiosk.i18n import _
from kiosk.speech.audio import SPEECH_RATE, AudioClip
from kiosk.speech.contract import DecodeNotWanted, Transcript
from kiosk.speech.models import ModelError, ensure_whisper_model
from kiosk.speech.recogniser import (
    closest_phrase,
    hallucination_reason,
    is_hallucination,
    join_japanese,
    normalise_for_comparison,
    vocabulary_words,
)

log = logging.getLogger(__name__)

_WINDOW_SECONDS = 30.0
_PROMPT_TOKENS = 200  # Whisper allows up to 223 prompt tokens before the start token
_MAX_COMPRESSION = 2.4  # gzip ratio above which a text is a repetition loop


class WhisperRecogniser:
    """Loaded once (≈ 0.5 s, 150 MB) and reused for every question."""

    name = "whisper"

    def __init__(self, model_dir: str, *, language: str = "ja", compute_type: str = "int8",
                 beam_size: int = 5, threads: int = 2, no_speech_threshold: float = 0.6,
                 max_alternatives: int = 3, hallucinations: Sequence[str] = (),
                 vocabulary: Sequence[str] = (), max_vocabulary_words: int = 120,
                 vad: bool = True, max_characters_per_second: float = 12.0,
                 window_seconds: float = 10.0, second_opinion_below: float = 0.0,
                 greedy_above: float = 0.0, second_opinion_alongside: bool = False):
        try:
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError:
            raise ModelError(_("the whisper engine needs faster-whisper: "
                               "run `pip install faster-whisper`")) from None
        try:
            # alongside: two decoders at once (the hinted pass and the unhinted second
            # opinion), each on its own share of the threads
            workers = 2 if second_opinion_alongside else 1
            self.model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type,
                                      cpu_threads=max(1, threads // workers),
                                      num_workers=workers)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(
                _("the whisper model in {folder} cannot be loaded ({reason}); delete that "
                  "folder and it is rebuilt from the installed wheels on the next start")
                .format(folder=model_dir, reason=exc)) from None
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, True, task="transcribe",
                                   language=language)
        self.language = language
        self.beam_size = beam_size
        self.no_speech_threshold = no_speech_threshold
        self.max_alternatives = max(1, max_alternatives)
        self.hallucinations = tuple(hallucinations)
        self.max_vocabulary_words = max_vocabulary_words
        self.vad = vad
        self.max_characters_per_second = max_characters_per_second
        self.window_seconds = min(_WINDOW_SECONDS, max(1.0, float(window_seconds)))
        self.second_opinion_below = float(second_opinion_below)
        self.greedy_above = float(greedy_above)
        self.second_opinion_alongside = bool(second_opinion_alongside)
        self._unread: tuple[Any, Any] | None = None  # a second opinion still being decoded
        self._suppress = self._suppressed_tokens()
        self.set_vocabulary(vocabulary)

    @classmethod
    def from_settings(cls, settings: Any, *, vocabulary: Sequence[str] = ()) -> WhisperRecogniser:
        asr = settings.asr
        # the one-time assembly is normal (info, with progress); a damaged model is a warning
        folder = ensure_whisper_model(settings, log=log.info, warn=log.warning)
        return cls(str(folder), language=asr.language, compute_type=asr.whisper_compute_type,
                   beam_size=asr.whisper_beam_size, threads=asr.whisper_threads,
                   no_speech_threshold=asr.no_speech_threshold,
                   max_alternatives=asr.max_alternatives, hallucinations=asr.hallucinations,
                   vocabulary=vocabulary, max_vocabulary_words=asr.max_vocabulary_words,
                   max_characters_per_second=asr.max_characters_per_second,
                   window_seconds=asr.whisper_window_seconds,
                   second_opinion_below=asr.whisper_second_opinion_below,
                   greedy_above=asr.whisper_greedy_above,
                   second_opinion_alongside=asr.whisper_second_opinion_alongside)

    def set_vocabulary(self, words: Sequence[str]) -> None:
        """Content words become the decoder's "previous text", which biases Whisper towards
        writing 粗大ごみ rather than そだいごみ. Kept within Whisper's prompt budget."""
        chosen: list[str] = []
        tokens: list[int] = []
        for w in vocabulary_words(words, self.max_vocabulary_words):
            candidate = self.tokenizer.encode(" " + "、".join([*chosen, w]))
            if len(candidate) > _PROMPT_TOKENS:
                break
            chosen.append(w)
            tokens = candidate
        self.vocabulary = tuple(chosen)
        self._prompt = [self.tokenizer.sot_prev, *tokens] if tokens else []

    def _suppressed_tokens(self) -> list[int]:
        t = self.tokenizer
        return sorted({*t.non_speech_tokens, t.transcribe, t.translate, t.sot, t.sot_prev,
                       t.sot_lm, t.no_speech})

    def _speech_only(self, audio: np.ndarray) -> np.ndarray:
        """Cut silence with Silero VAD (no speech at all → empty array)."""
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        stamps = get_speech_timestamps(
            audio, VadOptions(min_silence_duration_ms=500, speech_pad_ms=300))
        if not stamps:
            return np.zeros(0, dtype=np.float32)
        chunks, _chunk_info = collect_chunks(audio, stamps, max_duration=_WINDOW_SECONDS * 10)
        return np.concatenate(chunks).astype(np.float32) if chunks else audio

    def transcribe(self, clip: AudioClip, *, phrases: Sequence[str] | None = None,
                   wanted: Callable[[], bool] | None = None) -> Transcript:
        """`wanted`: asked after the encoder and before a second decoder pass; False raises
        DecodeNotWanted, so a pause the visitor spoke on through costs the encoder, not the
        whole decode, and the next pause's decode starts sooner."""
        started = time.perf_counter()
        if self._unread is not None:  # the last question's second opinion, not needed
            self._unread[0].result()
            self._unread = None

        def check() -> None:
            if wanted is not None and not wanted():
                raise DecodeNotWanted(clip.duration)

        audio = clip.at_rate(SPEECH_RATE).samples.astype(np.float32)
        seconds = len(audio) / SPEECH_RATE

        speech_seconds = seconds

        def plausible(texts: list[str]) -> list[str]:
            """Hypotheses that may be what was said: no stock phrase, no prompt echo."""
            unique: dict[str, str] = {}  # hypotheses differing only in punctuation are one
            for t in map(join_japanese, texts):
                if not t or is_hallucination(t, self.hallucinations):
                    continue
                reason = hallucination_reason(
                    t, vocabulary=self.vocabulary, speech_seconds=speech_seconds,
                    max_chars_per_second=self.max_characters_per_second)
                if reason:
                    log.info(_("dropping a hallucinated transcript (%s): %r"), reason, t)
                    continue
                unique.setdefault(normalise_for_comparison(t), t)
            return list(unique.values())

        def result(texts: list[str], confidence: float) -> Transcript:
            if phrases:
                texts = [p for p in dict.fromkeys(closest_phrase(t, phrases) for t in texts) if p]
            return Transcript(
                text=texts[0] if texts else "",
                alternatives=tuple(texts[1:]),
                confidence=round(confidence, 3) if texts else 0.0,
                audio_seconds=seconds,
                elapsed_seconds=time.perf_counter() - started,
                engine=self.name,
            )

        if self.vad and audio.size:
            audio = self._speech_only(audio)
        speech_seconds = len(audio) / SPEECH_RATE
        if audio.size < SPEECH_RATE // 10:  # under 0.1 s of speech: nothing to decode
            return result([], 0.0)
        if len(audio) > _WINDOW_SECONDS * SPEECH_RATE:
            texts, confidence = self._long(audio)
            return result(plausible(texts), confidence)
        encoded = self.model.encode(self._features(audio))
        check()
        alongside = None
        if self.second_opinion_alongside and self._prompt and not phrases \
                and self.second_opinion_below > 0:
            # started now, on the other decoder, while the hinted pass runs; waited for only
            # if that pass is unsure (else it finishes unread)
            alongside = self._generate(encoded, prompt=False, speech_seconds=speech_seconds,
                                       asynchronous=True)
            self._unread = (alongside, encoded)  # kept alive until it has finished
        texts = []
        if self.greedy_above > 0:
            # One greedy pass costs half a beam search (docs/turn_taking.md); its words are
            # kept only when whisper is sure of them, else the beam search below decides.
            raw, confidence = self._window(encoded, prompt=True, beam_size=1,
                                           speech_seconds=speech_seconds)
            texts = plausible(raw) if confidence >= self.greedy_above else []
        if not texts:
            if self.greedy_above > 0:
                check()
            raw, confidence = self._window(encoded, prompt=True, speech_seconds=speech_seconds)
            texts = plausible(raw)
        if raw and not texts and self._prompt:
            # Noise made whisper write out its prompt: hear the audio again without hints,
            # so what was really said (if anything) can still come through; in the window
            # faster-whisper pads, where a read-back list keeps its commas (_features).
            check()
            encoded = self.model.encode(self._features(audio, silence=False))
            raw, confidence = self._window(encoded, prompt=False, speech_seconds=speech_seconds)
            texts = plausible(raw)
        elif texts and self._prompt and not phrases and confidence < self.second_opinion_below:
            # Unsure: hear it again without the hints, which in babble pull a garbled
            # question towards the wrong content words; the first decode keeps first place
            # (and its confidence), the second adds its two best as alternatives. The encoder
            # output is the same: only the decoder runs again.
            check()
            first = texts[:2]
            seen = {normalise_for_comparison(t) for t in first}
            second = self._read(alongside.result()) if alongside is not None else \
                self._window(encoded, prompt=False, speech_seconds=speech_seconds)
            self._unread = None
            texts = [*first, *(t for t in plausible(second[0])[:2]
                               if normalise_for_comparison(t) not in seen)]
        return result(texts, confidence)

    def _window(self, encoded: Any, *, prompt: bool = True, beam_size: int | None = None,
                speech_seconds: float = _WINDOW_SECONDS) -> tuple[list[str], float]:
        """One beam search (or greedy pass, `beam_size` 1) over one encoded window, keeping
        n-best hypotheses; `prompt` = with the content words as the decoder's previous text.
        The decoder stops after the tokens `speech_seconds` can hold (a repetition loop
        would otherwise run to whisper's 448 tokens, seconds of work, to be dropped)."""
        return self._read(self._generate(encoded, prompt=prompt, beam_size=beam_size,
                                         speech_seconds=speech_seconds))

    def _generate(self, encoded: Any, *, prompt: bool = True, beam_size: int | None = None,
                  speech_seconds: float = _WINDOW_SECONDS, asynchronous: bool = False) -> Any:
        """CTranslate2's generate() for _window; `asynchronous`: returns at once, with a
        result to wait for (on another decoder when the model has two)."""
        m = self.model
        beam = self.beam_size if beam_size is None else beam_size
        prompt_tokens = [*(self._prompt if prompt else []), *self.tokenizer.sot_sequence,
                         self.tokenizer.no_timestamps]
        return m.model.generate(
            encoded, [prompt_tokens], beam_size=beam,
            num_hypotheses=min(beam, self.max_alternatives),
            max_length=min(m.max_length, len(prompt_tokens) + self.max_new_tokens(speech_seconds)),
            return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=self._suppress, asynchronous=asynchronous,
        )[0]

    def _read(self, out: Any) -> tuple[list[str], float]:
        """Texts and confidence of one generate() result (repetition loops and silence
        dropped)."""
        texts, best_logprob = [], -math.inf
        for tokens, score in zip(out.sequences_ids, out.scores):
            text = self.tokenizer.decode(tokens).strip()
            ratio = len(text.encode()) / max(1, len(zlib.compress(text.encode())))
            if ratio > _MAX_COMPRESSION:
                log.debug("dropping a repetition loop: %r", text)
                continue
            avg_logprob = score * len(tokens) / (len(tokens) + 1)
            best_logprob = max(best_logprob, avg_logprob)
            texts.append(text)
        if out.no_speech_prob > self.no_speech_threshold and best_logprob < -1.0:
            log.debug("no speech (p=%.2f): dropping %r", out.no_speech_prob, texts[:1])
            return [], 0.0
        confidence = math.exp(best_logprob) * (1.0 - out.no_speech_prob) if texts else 0.0
        return texts, confidence

    def max_new_tokens(self, speech_seconds: float) -> int:
        """Tokens a transcript of `speech_seconds` may take: twice the characters
        [asr] max_characters_per_second allows (a longer text is dropped as invented anyway;
        whisper writes about one token per Japanese character), and at least 32."""
        return max(32, math.ceil(2 * self.max_characters_per_second * speech_seconds) + 8)

    def encoder_frames(self, samples: int) -> int:
        """The encoder window for `samples` of speech, in 10 ms feature frames: the smallest
        multiple of [asr] whisper_window_seconds that holds the speech and half a second of
        silence after it, at most whisper's full 30 s. A fixed step, not the question plus
        a margin: the encoder's work grows with its window, and whisper's words change with
        the window's length, so every short question (and each pause of one) gets the same
        window and the same words for the same audio."""
        step = int(round(self.window_seconds * 100))
        needed = samples // 160 + 50
        return min(int(_WINDOW_SECONDS * 100), step * max(1, math.ceil(needed / step)))

    def _features(self, audio: np.ndarray, *, silence: bool = True) -> np.ndarray:
        """Log-mel features of the window. `silence`: the audio is padded with zero samples
        before the features are taken, as openai-whisper pads its input; else the features
        are padded with zeros, as faster-whisper's transcribe() does, which is not silence
        but a steady level 30-40 dB above it (a zero feature is log-mel -4; silence is the
        loudest frame - 8). Measured (docs/turn_taking.md): with hints, silence reaches as
        many entries as the full window and zero features one fewer; without hints, on a
        spoken list of the prompt's words, only zero features keep its commas, which is how
        a prompt read back is caught."""
        frames = self.encoder_frames(len(audio))
        if silence:
            return self._silence_padded_features(audio[: frames * 160], frames)
        features = self._log_mel(audio)[..., :frames]
        return np.pad(features, ((0, 0), (0, frames - features.shape[-1])))

    def _log_mel(self, audio: np.ndarray) -> np.ndarray:
        """faster-whisper's log-mel features (its FeatureExtractor: the same STFT, mel filters
        and scaling), with the mel projection made on a contiguous copy of the power
        spectrum: numpy multiplies the extractor's sliced view without BLAS, 16 ms of CPU for
        a 3 s clip against 1 ms for the STFT itself (docs/turn_taking.md)."""
        fe = self.model.feature_extractor
        window = np.hanning(fe.n_fft + 1)[:-1].astype(np.float32)
        stft = fe.stft(np.pad(audio.astype(np.float32), (0, 160)), fe.n_fft, fe.hop_length,
                       window=window, return_complex=True).astype(np.complex64)
        power = np.ascontiguousarray(np.abs(stft[..., :-1]) ** 2, dtype=np.float32)
        log_spec = np.log10(np.clip(fe.mel_filters @ power, a_min=1e-10, a_max=None))
        log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    def _silence_padded_features(self, audio: np.ndarray, frames: int) -> np.ndarray:
        """The log-mel features of `audio` padded with zero samples to `frames`, taken over
        the audio and a little silence only (a 2.5 s question in the 10 s window: a quarter of
        the STFT). A frame whose 400-sample window holds only padding has no energy, so every
        mel band sits at the floor whisper clamps to (the loudest frame - 8 dB·10), which the
        frames after the audio are filled with: the same features as the whole padded window
        (tests/test_whisper_window.py)."""
        hop, half = 160, 200  # whisper's hop and half its 400-sample FFT window
        # frames beyond this one see only padding (and the extractor's own 160 zero samples)
        computed = min(frames, (len(audio) + half) // hop + 2)
        if computed >= frames:
            padded = np.pad(audio, (0, frames * hop - len(audio)))
            return self._log_mel(padded)[..., :frames]
        padded = np.pad(audio, (0, computed * hop + 2 * half - len(audio)))
        features = self._log_mel(padded)[..., :computed]
        floor = features.min()  # every band of a silent frame is clamped to the floor
        return np.concatenate(
            [features, np.full((features.shape[0], frames - computed), floor, features.dtype)],
            axis=-1)

    def _long(self, audio: np.ndarray) -> tuple[list[str], float]:
        """Long recordings (a `--wav` file): faster-whisper's own windowed transcription."""
        segments, _info = self.model.transcribe(
            audio, language=self.language, beam_size=self.beam_size,
            initial_prompt="、".join(self.vocabulary) or None, vad_filter=False,
            no_speech_threshold=self.no_speech_threshold, condition_on_previous_text=False,
        )
        kept = [s for s in segments if s.no_speech_prob <= self.no_speech_threshold
                and not is_hallucination(s.text, self.hallucinations)]
        if not kept:
            return [], 0.0
        confidence = float(np.mean([math.exp(s.avg_logprob) for s in kept]))
        return ["".join(s.text for s in kept)], confidence
