"""The kiosk's Japanese voice: Open JTalk (pyopenjtalk-plus, bundled mei voice) as a pyttsx3
driver, plus the synthesis engine that kiosk.voice.synthesis streams from.

pyttsx3's own Linux engine (espeak-ng) reads every kanji as "Chinese letter", so the kiosk
brings its own driver. Importing this module registers it as `pyttsx3.drivers.openjtalk`,
so `pyttsx3.init("openjtalk")` works with pyttsx3's usual interface: say, save_to_file,
runAndWait, the properties rate (morae per minute), volume (0-1), pitch (semitones), voice
and voices, and the started-utterance / started-word / finished-utterance events.

Differences from pyttsx3's bundled drivers, on purpose:
- save_to_file has written a complete WAV (48 kHz, 16-bit, mono) before runAndWait returns.
- A "word" in started-word is one sentence or clause: Japanese has no spaces to split at.
- Playback goes through kiosk.speech.audio.Speaker (sounddevice, resampled to the device's rate);
  set the extra property "speaker" to any object with play(clip, stop_event) to redirect it.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kiosk import KioskError, sudachi
from kiosk.config import Settings, VoiceSettings, load_settings
from kiosk.i18n import _
from kiosk.speech.audio import AudioClip, wav_bytes
from kiosk.voice.speakable import split_sentences

DRIVER_NAME = "openjtalk"
#: The voice bundled with pyopenjtalk-plus.
DEFAULT_VOICE = "mei_normal"
# Read at load time to learn the voice's natural pace; plain words, no commas, and kanji that
# make pyopenjtalk load its reading models now rather than during the first answer.
_CALIBRATION_TEXT = "市役所の受付は何時から始まるのか窓口の方に聞いてください"
_CALIBRATION_SPEEDS = (1.0, 0.7)
# Edge silence is trimmed to this margin; frames this far below the loudest count as silence.
_EDGE_MARGIN_SECONDS = 0.03
_SILENCE_BELOW_PEAK_DB = 40.0
_SMALL_KANA = set("ァィゥェォャュョヮ")
_INT16_FULL_SCALE = 32768.0


class VoiceError(KioskError):
    """A voice that cannot be found, loaded or used."""


@dataclass(frozen=True)
class VoiceFile:
    """One Open JTalk voice (.htsvoice file) the kiosk can speak with."""

    id: str  # file stem: "mei_normal"
    path: Path
    bundled: bool

    @property
    def name(self) -> str:
        return self.id.replace("_", " ")


def bundled_voice_files() -> list[VoiceFile]:
    """The voices shipped inside pyopenjtalk-plus (the mei voice, CC-BY 3.0 NITech)."""
    import pyopenjtalk

    folder = Path(os.fsdecode(pyopenjtalk.DEFAULT_HTS_VOICE)).parent
    return [VoiceFile(p.stem, p, True) for p in sorted(folder.glob("*.htsvoice")) if _is_voice(p)]


def _is_voice(path: Path) -> bool:
    """A real voice starts with its [GLOBAL] header (the package also ships a LICENSE_*.htsvoice
    text file)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"[GLOBAL]"
    except OSError:
        return False


def find_voice_files(models_dir: Path | None = None) -> list[VoiceFile]:
    """Bundled voices, then every .htsvoice under the models folder (an operator adds a voice
    by copying the file there; no code or config change beyond [voice] voice)."""
    voices = bundled_voice_files()
    seen = {v.id for v in voices}
    if models_dir is not None and Path(models_dir).is_dir():
        for p in sorted(Path(models_dir).rglob("*.htsvoice")):
            if p.stem not in seen and _is_voice(p):
                voices.append(VoiceFile(p.stem, p, False))
                seen.add(p.stem)
    return voices


def resolve_voice(name: str, models_dir: Path | None = None) -> VoiceFile:
    """A voice by id (file stem) or by path to a .htsvoice file."""
    name = (name or DEFAULT_VOICE).strip()
    as_path = Path(name).expanduser()
    if name.endswith(".htsvoice"):
        if as_path.is_file():
            return VoiceFile(as_path.stem, as_path, False)
        raise VoiceError(_("voice file {file} does not exist; check [voice] voice or --voice")
                         .format(file=as_path))
    voices = find_voice_files(models_dir)
    for v in voices:
        if v.id == name:
            return v
    where = _(" or under {folder}").format(folder=models_dir) if models_dir else ""
    raise VoiceError(
        _("no voice called '{name}'; available: {voices}. Copy {name}.htsvoice into the models "
          "folder{where} (`kiosk say --list-voices` shows them)").format(
            name=name, voices=", ".join(v.id for v in voices), where=where))


def count_morae(text: str) -> int:
    """Morae (kana beats) Open JTalk will say for text: the unit speaking rate is set in."""
    import pyopenjtalk

    sudachi.share_with_openjtalk()
    kana = pyopenjtalk.g2p(text, kana=True)
    return sum(1 for c in kana if ("ァ" <= c <= "ヶ" or c == "ー") and c not in _SMALL_KANA)


def speech_span(samples: np.ndarray, rate: int) -> tuple[int, int]:
    """[start, end) of the audible part: 10 ms frames within 40 dB of the loudest frame."""
    frame = max(1, rate // 100)
    n = len(samples) // frame
    if n == 0:
        return 0, 0
    x = np.asarray(samples[: n * frame], dtype=np.float64).reshape(n, frame)
    db = 10.0 * np.log10((x * x).mean(axis=1) + 1e-20)
    loud = np.flatnonzero(db > db.max() - _SILENCE_BELOW_PEAK_DB)
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


def peak_for(volume: float, peak_dbfs: float) -> float:
    """Linear peak level for a 0-1 volume; never at or above full scale."""
    top = 10.0 ** (min(peak_dbfs, -0.1) / 20.0)
    return float(np.clip(volume, 0.0, 1.0)) * top


class OpenJTalkSynth:
    """One loaded HTS voice. Loading and calibrating happen once per process (see load_synth),
    because the kiosk must answer quickly and the 2-core machine has no time to spare."""

    def __init__(self, voice: VoiceFile):
        import pyopenjtalk
        from pyopenjtalk.htsengine import HTSEngine

        sudachi.share_with_openjtalk()  # not a second 80 MB copy of sudachidict-core
        self.voice = voice
        self._pyopenjtalk = pyopenjtalk
        try:
            self._engine = HTSEngine(os.fsencode(voice.path))
        except (RuntimeError, OSError) as exc:
            raise VoiceError(
                _("voice file {file} could not be loaded ({reason}); replace it with a valid "
                  ".htsvoice file or choose another voice in [voice] voice").format(
                    file=voice.path, reason=exc)) from None
        self._lock = threading.Lock()
        self.sample_rate = int(self._engine.get_sampling_frequency())
        self._natural_rate, self._exponent = self._calibrate()

    def _raw(self, text: str, speed: float, pitch: float) -> np.ndarray:
        labels = self._pyopenjtalk.extract_fullcontext(text)
        with self._lock:
            self._engine.set_speed(float(speed))
            self._engine.add_half_tone(float(pitch))
            wave = self._engine.synthesize(labels)
        return np.asarray(wave, dtype=np.float64) / _INT16_FULL_SCALE

    def _calibrate(self) -> tuple[float, float]:
        """Measure morae/s at two speeds and fit rate = r1 * speed**b: HTS's speed factor
        does not scale the audible pace linearly, and each voice has its own natural pace."""
        morae = count_morae(_CALIBRATION_TEXT)
        rates = []
        for speed in _CALIBRATION_SPEEDS:
            wave = self._raw(_CALIBRATION_TEXT, speed, 0.0)
            start, end = speech_span(wave, self.sample_rate)
            rates.append(morae / max((end - start) / self.sample_rate, 1e-3))
        (s1, s2), (r1, r2) = _CALIBRATION_SPEEDS, rates
        exponent = float(np.log(r1 / r2) / np.log(s1 / s2)) if r1 != r2 else 1.0
        return r1, min(max(exponent, 0.3), 1.5)

    @property
    def natural_rate(self) -> float:
        """Morae per second at HTS speed 1.0."""
        return self._natural_rate

    def speed_for(self, morae_per_second: float) -> float:
        target = max(float(morae_per_second), 1.0)
        return float(np.clip((target / self._natural_rate) ** (1.0 / self._exponent), 0.3, 3.0))

    def synthesize(self, text: str, *, rate: float, pitch: float = 0.0,
                   peak: float = 0.9) -> np.ndarray:
        """Float32 samples of text at `rate` morae/s, edge silence trimmed to a small margin
        (pauses are the caller's to choose), scaled so the loudest sample is `peak`."""
        if not text.strip() or not re.search(r"[^\s、。！？!?,.・]", text):
            return np.zeros(0, dtype=np.float32)
        wave = self._raw(text, self.speed_for(rate), pitch)
        start, end = speech_span(wave, self.sample_rate)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        margin = int(_EDGE_MARGIN_SECONDS * self.sample_rate)
        wave = wave[max(0, start - margin) : min(len(wave), end + margin)]
        top = float(np.max(np.abs(wave)))
        if top > 0:
            wave = wave * (peak / top)
        return wave.astype(np.float32)


_synths: dict[Path, OpenJTalkSynth] = {}
_synths_lock = threading.Lock()


def load_synth(voice: VoiceFile) -> OpenJTalkSynth:
    """The process-wide loaded synthesizer for a voice (the driver and Voice share it)."""
    key = voice.path.resolve()
    with _synths_lock:
        synth = _synths.get(key)
        if synth is None:
            synth = _synths[key] = OpenJTalkSynth(voice)
        return synth


@dataclass(frozen=True)
class Chunk:
    """One piece synthesized in one go, where it sits in the text, and the silence after it."""

    text: str
    location: int
    pause_after: float


def plan_chunks(text: str, settings: VoiceSettings, *, split_first: bool = True) -> list[Chunk]:
    """Sentences (and the comma-split parts kiosk.voice.speakable made) with their pauses. The first
    part is cut at its first comma when long, so the first sound comes sooner."""
    pieces = split_sentences(text)
    if split_first and pieces and len(pieces[0]) > settings.first_chunk_max_chars:
        comma = pieces[0].find("、", 4)
        if 0 < comma < len(pieces[0]) - 2:
            pieces[:1] = [pieces[0][: comma + 1], pieces[0][comma + 1 :]]
    chunks: list[Chunk] = []
    pos = 0
    for i, piece in enumerate(pieces):
        found = text.find(piece, pos)
        location = found if found >= 0 else pos
        pos = location + len(piece) if found >= 0 else pos
        if i == len(pieces) - 1:
            pause = 0.0
        elif piece.endswith(("、", ",")):
            pause = settings.clause_pause_seconds
        else:
            pause = settings.sentence_pause_seconds
        chunks.append(Chunk(piece, location, pause))
    return chunks


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(max(0, int(round(seconds * rate))), dtype=np.float32)


def write_wav_complete(path: str | Path, clip: AudioClip) -> Path:
    """Write a WAV so that it is either absent or complete (temp file, then rename)."""
    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise VoiceError(_("cannot write {file}: folder {folder} does not exist; create it or "
                           "choose another --out path").format(file=target, folder=target.parent))
    tmp = target.with_name(f".{target.name}.part")
    try:
        tmp.write_bytes(wav_bytes(clip))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise VoiceError(_("cannot write {file}: {reason}; choose another path").format(
            file=target, reason=exc.strerror)) from None
    return target


# --- the pyttsx3 driver -------------------------------------------------------------------------


def buildDriver(proxy: Any) -> OpenJTalkDriver:  # noqa: N802 - name required by pyttsx3
    """pyttsx3's entry point: called by pyttsx3.init("openjtalk")."""
    return OpenJTalkDriver(proxy)


class OpenJTalkDriver:
    """pyttsx3 driver. Every command runs synchronously inside pyttsx3's queue pump, so a
    file is complete and playback has ended when runAndWait returns."""

    def __init__(self, proxy: Any, settings: Settings | None = None):
        self._proxy = proxy
        self._settings = settings or load_settings()
        vs = self._settings.voice
        self._voice_settings = vs
        self._models_dir = self._settings.models_dir
        self._voice = resolve_voice(vs.voice, self._models_dir)
        self._synth = load_synth(self._voice)
        self._rate = float(vs.rate) * 60.0  # pyttsx3 "words" per minute = morae per minute
        self._volume = float(vs.volume)
        self._pitch = float(vs.pitch)
        self._speaker: Any = None
        self._stop = threading.Event()
        self._looping = False
        self._end_pending = False
        self._wake = threading.Event()

    # run loop ---------------------------------------------------------------------------
    def startLoop(self) -> None:  # noqa: N802
        # On a second runAndWait pyttsx3 runs the queue (including endLoop) before calling
        # startLoop, so an endLoop that already came means: nothing left to do.
        if self._end_pending:
            self._end_pending = False
            return
        self._looping = True
        self._wake.clear()
        self._proxy.setBusy(False)  # runs every queued command, normally ending in endLoop
        while self._looping:
            self._wake.wait(0.05)

    def endLoop(self) -> None:  # noqa: N802
        if self._looping:
            self._looping = False
            self._wake.set()
        else:
            self._end_pending = True

    def iterate(self) -> Iterator[None]:
        self._proxy.setBusy(False)
        yield

    def destroy(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    # commands ---------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self._utter(text, None)

    def save_to_file(self, text: str, filename: str) -> None:
        self._utter(text, Path(filename))

    def _utter(self, text: str, filename: Path | None) -> None:
        self._proxy.setBusy(True)
        self._stop.clear()
        self._proxy.notify("started-utterance")
        completed = False
        try:
            completed = self._render(text, filename)
        finally:
            self._proxy.notify("finished-utterance", completed=completed)
            self._proxy.setBusy(False)

    def _render(self, text: str, filename: Path | None) -> bool:
        vs, rate = self._voice_settings, self._synth.sample_rate
        peak = peak_for(self._volume, vs.peak_dbfs)
        parts: list[np.ndarray] = []
        for chunk in plan_chunks(text, vs, split_first=False):
            if self._stop.is_set():
                return False
            samples = self._synth.synthesize(chunk.text, rate=self._rate / 60.0,
                                             pitch=self._pitch, peak=peak)
            self._proxy.notify("started-word", location=chunk.location, length=len(chunk.text))
            samples = np.concatenate([samples, silence(chunk.pause_after, rate)])
            if filename is not None:
                parts.append(samples)
            elif not self._get_speaker().play(AudioClip(samples, rate), self._stop):
                return False
        if filename is not None:
            audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
            write_wav_complete(filename, AudioClip(audio, rate))
        return True

    def _get_speaker(self) -> Any:
        if self._speaker is None:
            from kiosk.speech.audio import Speaker

            self._speaker = Speaker.from_settings(self._settings)
        return self._speaker

    # properties -------------------------------------------------------------------------
    def _pyttsx3_voice(self, v: VoiceFile) -> Any:
        from pyttsx3.voice import Voice as Pyttsx3Voice

        gender = "female" if v.id.startswith("mei") else None
        return Pyttsx3Voice(v.id, v.name, ["ja_JP"], gender, None)

    def getProperty(self, name: str) -> Any:  # noqa: N802
        if name == "voices":
            return [self._pyttsx3_voice(v) for v in find_voice_files(self._models_dir)]
        if name == "voice":
            return self._voice.id
        if name == "rate":
            return self._rate
        if name == "volume":
            return self._volume
        if name == "pitch":
            return self._pitch
        if name == "speaker":
            return self._speaker
        raise KeyError(f"unknown property {name}")

    def setProperty(self, name: str, value: Any) -> None:  # noqa: N802
        if name == "voice":
            self._voice = resolve_voice(str(value), self._models_dir)
            self._synth = load_synth(self._voice)
        elif name == "rate":
            self._rate = float(np.clip(float(value), 120.0, 900.0))
        elif name == "volume":
            self._volume = float(np.clip(float(value), 0.0, 1.0))
        elif name == "pitch":
            self._pitch = float(np.clip(float(value), -12.0, 12.0))
        elif name == "speaker":
            if value is not None and not callable(getattr(value, "play", None)):
                raise ValueError("speaker must have a play(clip, stop_event) method")
            self._speaker = value
        else:
            raise KeyError(f"unknown property {name}")


def register() -> None:
    """Make `pyttsx3.init("openjtalk")` find this module (pyttsx3 imports
    pyttsx3.drivers.<name>, and an entry in sys.modules satisfies that import)."""
    import pyttsx3.drivers

    module = sys.modules[__name__]
    sys.modules.setdefault(f"pyttsx3.drivers.{DRIVER_NAME}", module)
    setattr(pyttsx3.drivers, DRIVER_NAME, module)


register()
