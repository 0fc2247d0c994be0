"""Audio stage: frames in from the microphone and out to the speaker via sounddevice.
Everything stays in memory: the kiosk never writes a visitor's audio to disk.

CONTRACT:
    AudioClip(samples: np.ndarray float32 mono in [-1, 1], rate: int)
    Microphone — yields AudioClip chunks at 16 kHz from the configured device
    Speaker.play(clip, stop_event) — blocking playback that stops within ~50 ms of stop_event

Also here: load_wav/write_wav (files as input and output), resample, list_devices (for
`kiosk doctor`), DeviceLost and ReconnectingMicrophone (a replugged USB microphone comes
back without a restart), probe_devices/DeviceMonitor (the doctor's device check, repeated
for /healthz) and plain_audio_error (a device problem as a sentence an operator can use).
"""

from __future__ import annotations

import io
import logging
import math
import queue
import re
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kiosk import KioskError
from kiosk.config import AudioSettings
from kiosk.i18n import N_, _

log = logging.getLogger(__name__)

#: The rate every recogniser wants; the microphone resamples to it.
SPEECH_RATE = 16000
_INT16_SCALE = 32768.0


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples at a known rate; the unit every stage passes audio in."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.rate)

    def at_rate(self, rate: int) -> AudioClip:
        """The same sound at another sample rate (a no-op when it already matches)."""
        if rate == self.rate:
            return self
        return AudioClip(resample(self.samples, self.rate, rate), rate)

    @staticmethod
    def concat(clips: list[AudioClip]) -> AudioClip:
        """Glue chunks of one rate into one clip (the endpointer builds utterances this way)."""
        if not clips:
            return AudioClip(np.zeros(0, dtype=np.float32), SPEECH_RATE)
        rate = clips[0].rate
        return AudioClip(np.concatenate([c.samples for c in clips]).astype(np.float32), rate)


class AudioError(KioskError):
    """An audio file or device the kiosk cannot use."""


class DeviceLost(AudioError):
    """The sound device vanished or PortAudio failed; the kiosk keeps serving touch input and
    tries again (ReconnectingMicrophone) instead of crashing."""


class DeviceMissing(DeviceLost):
    """The configured device is not in PortAudio's list (unplugged, or plugged in after
    start-up: PortAudio must then be asked to list devices again)."""


# --- sample conversion and resampling ------------------------------------------------------

def to_int16(samples: np.ndarray) -> np.ndarray:
    """float [-1, 1] → int16, the exact inverse of from_int16 (so file devices are bit-exact)."""
    scaled = np.round(np.asarray(samples, dtype=np.float64) * _INT16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def from_int16(samples: np.ndarray) -> np.ndarray:
    return (np.asarray(samples, dtype=np.float32) / np.float32(_INT16_SCALE)).astype(np.float32)


def _ratio(src: int, dst: int) -> tuple[int, int]:
    g = math.gcd(int(src), int(dst))
    return int(dst) // g, int(src) // g


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling of a whole signal (scipy's resample_poly)."""
    samples = np.asarray(samples, dtype=np.float32)
    if src_rate == dst_rate or samples.size == 0:
        return samples
    from scipy.signal import resample_poly

    up, down = _ratio(src_rate, dst_rate)
    return resample_poly(samples, up, down).astype(np.float32)


class StreamResampler:
    """Resamples a live stream chunk by chunk with the same result as resampling the whole
    signal at once: each step keeps a block of past and future input as filter context, so
    chunk edges leave no clicks that could look like speech to the VAD."""

    def __init__(self, src_rate: int, dst_rate: int):
        self.src_rate, self.dst_rate = int(src_rate), int(dst_rate)
        self.up, self.down = _ratio(self.src_rate, self.dst_rate)
        half_taps = 10 * max(self.up, self.down) / self.up  # resample_poly's filter, in input samples
        self.ctx = self.down * math.ceil(max(64.0, half_taps + 4) / self.down)
        self._buf = np.zeros(self.ctx, dtype=np.float32)  # leading silence as past context

    def feed(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if self.up == self.down:
            return samples
        self._buf = np.concatenate([self._buf, samples])
        usable = len(self._buf) - 2 * self.ctx
        block = (usable // self.down) * self.down
        if block <= 0:
            return np.zeros(0, dtype=np.float32)
        span = self._buf[: self.ctx + block + self.ctx]
        out = resample(span, self.src_rate, self.dst_rate)
        start = self.ctx * self.up // self.down
        result = out[start : start + block * self.up // self.down]
        self._buf = self._buf[block:]
        return result


# --- WAV files ------------------------------------------------------------------------------

#: WAV format tags (the fmt chunk's first field; EXTENSIBLE carries the real one in its GUID).
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
#: A data chunk size some recorders leave when they are stopped before writing the real one.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)


def load_wav(path: str | Path, rate: int | None = None, *,
             max_bytes: int | None = None) -> AudioClip:
    """Read a WAV file (8/16/24/32-bit integer or 32/64-bit float samples, any rate, mono or
    stereo) as a mono clip, resampled to `rate` when given. Bad files raise AudioError
    saying what is wrong: missing, a folder, empty, too big, cut short, another format."""
    p = Path(path)
    limit = AudioSettings().max_file_bytes if max_bytes is None else max_bytes
    if p.is_dir():
        raise AudioError(_("{file}: this is a folder, not a WAV file; give the path of one "
                           ".wav recording inside it").format(file=p))
    if not p.is_file():
        raise AudioError(_("{file}: no such audio file; give the path of a .wav recording")
                         .format(file=p))
    size = p.stat().st_size
    if size > limit:
        raise AudioError(_("{file}: the file is {size:,} bytes, more than the {limit:,} bytes "
                           "a spoken question needs ([audio] max_file_bytes); cut out the "
                           "question (a few seconds) and try again").format(
            file=p, size=size, limit=limit))
    data = p.read_bytes()
    if not data:
        raise AudioError(_("{file}: the file is empty (0 bytes); record the question again")
                         .format(file=p))
    return decode_wav(data, name=str(p), rate=rate)


def _wav_chunks(data: bytes, name: str) -> tuple[bytes, bytes, int]:
    """The fmt chunk, the data chunk's bytes and the data size its header announces."""
    fmt, pos = None, 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = body
        elif chunk_id == b"data":
            if fmt is None:
                break
            return fmt, body, size
        pos += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16:
        raise AudioError(_("{name}: the WAV file is cut short or damaged: its format header is "
                           "missing ({size} bytes in all); copy or record it again").format(
            name=name, size=len(data)))
    raise AudioError(_("{name}: the WAV file is cut short: it has a header but no audio data "
                       "({size} bytes in all); copy or record it again").format(
        name=name, size=len(data)))


def decode_wav(data: bytes, *, name: str = "audio", rate: int | None = None) -> AudioClip:
    """The body of load_wav, for WAV bytes received over HTTP."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(_(
            "{name}: not a WAV file (it does not start with a RIFF/WAVE header); convert it "
            "first, e.g. `ffmpeg -i input.mp3 -ar 16000 -ac 1 question.wav`").format(name=name))
    fmt, raw, announced = _wav_chunks(data, name)
    tag, channels, src_rate = struct.unpack_from("<HHI", fmt)
    bits = struct.unpack_from("<H", fmt, 14)[0]
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the sub-format GUID starts with the tag
    if src_rate <= 0 or channels <= 0 or bits <= 0:
        raise AudioError(_("{name}: the WAV header is damaged (rate {rate}, {channels} "
                           "channels, {bits}-bit); save the recording again").format(
            name=name, rate=src_rate, channels=channels, bits=bits))
    width = (bits + 7) // 8
    if tag == _FLOAT and width not in (4, 8) or tag == _PCM and width not in (1, 2, 3, 4) \
            or tag not in (_PCM, _FLOAT):
        kind = _("{bits}-bit float").format(bits=bits) if tag == _FLOAT else \
            _("{bits}-bit").format(bits=bits) if tag == _PCM else \
            _("compressed (format {tag})").format(tag=tag)
        raise AudioError(_("{name}: {kind} WAV audio cannot be read; save it as 16-bit PCM "
                           "WAV, e.g. `ffmpeg -i {name} -ar 16000 -ac 1 -c:a pcm_s16le "
                           "question.wav`").format(name=name, kind=kind))
    frame = width * channels
    if announced not in _UNKNOWN_SIZES and len(raw) < announced:
        raise AudioError(_("{name}: the WAV file is cut short: it holds {have:.1f} s of the "
                           "{want:.1f} s its header announces (an unfinished copy or download?); "
                           "copy or record it again").format(
            name=name, have=len(raw) / frame / src_rate, want=announced / frame / src_rate))
    usable = len(raw) - len(raw) % frame
    if usable == 0:
        raise AudioError(_("{name}: the WAV file holds no audio (0 samples); record it again")
                         .format(name=name))
    raw = raw[:usable]
    if tag == _FLOAT:
        x = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
        x = np.clip(np.nan_to_num(x), -1.0, 1.0)
    elif width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = from_int16(np.frombuffer(raw, dtype="<i2"))
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = (v / float(1 << 23)).astype(np.float32)
    else:
        x = (np.frombuffer(raw, dtype="<i4") / float(1 << 31)).astype(np.float32)
    x = x.reshape(-1, channels).mean(axis=1).astype(np.float32)
    clip = AudioClip(x, src_rate)
    return clip.at_rate(rate) if rate else clip


def wav_bytes(clip: AudioClip) -> bytes:
    """16-bit mono PCM WAV of a clip (for HTTP answers and `--out answer.wav`)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(clip.rate))
        w.writeframes(to_int16(clip.samples).tobytes())
    return buf.getvalue()


def write_wav(path: str | Path, clip: AudioClip) -> Path:
    p = Path(path)
    p.write_bytes(wav_bytes(clip))
    return p


# --- devices ----------------------------------------------------------------------------------

def _sd() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 missing
        raise AudioError(_(
            "sound is unavailable: the PortAudio library is missing ({reason}); install it "
            "with `apt-get install libportaudio2`").format(reason=exc)) from None
    return sounddevice


#: What PortAudio's error codes mean for the person at the kiosk (pa_error codes).
_PORTAUDIO_ADVICE = {
    -10000: N_("the sound system was not started or was shut down; restart the kiosk "
               "(`systemctl restart kiosk`)"),
    -9996: N_("the device is not there (unplugged or renamed); plug it in and check [audio] "
              "in the config (`kiosk doctor` lists devices)"),
    -9997: N_("the device does not support this sample rate; set [audio] input_rate / "
              "output_rate to 0 (the device's own rate) or to a rate `kiosk doctor` shows"),
    -9998: N_("the device does not support this number of channels; choose another device in "
              "[audio] (`kiosk doctor` lists devices)"),
    -9985: N_("the device is busy (another program is using it); close that program or "
              "choose another device"),
    -9988: N_("the device stopped working (unplugged?); check the cable; the kiosk retries "
              "by itself"),
    -9999: N_("the sound system failed; check the cable and `kiosk doctor`, then restart the "
              "kiosk"),
}


def plain_portaudio(exc: BaseException) -> str:
    """A PortAudio error ('PortAudio not initialized [PaErrorCode -10000]') as what to do."""
    code = None
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[1], int):
        code = args[1]
    else:
        found = re.search(r"PaErrorCode (-?\d+)", str(exc))
        code = int(found.group(1)) if found else None
    advice = _PORTAUDIO_ADVICE.get(code) if code is not None else None
    if advice is None:
        return _("{error}; check the cable and `kiosk doctor`").format(error=exc)
    return _(advice)


def rescan_devices() -> None:
    """Make PortAudio list devices again (a replugged USB device gets a new entry). Only
    safe while no stream is open, so the reconnect loop calls it between attempts."""
    sd = _sd()
    sd._terminate()
    sd._initialize()


def list_devices() -> list[dict[str, Any]]:
    """Every sound device PortAudio sees, for `kiosk doctor`."""
    sd = _sd()
    try:
        return [dict(d) for d in sd.query_devices()]
    except sd.PortAudioError as exc:
        raise AudioError(_("cannot list sound devices: {advice}").format(
            advice=plain_portaudio(exc))) from None


def plain_audio_error(label: str, message: str) -> str:
    """For /healthz: "<device>: what to do" (PortAudio's codes through plain_portaudio, so
    'PortAudio not initialized [PaErrorCode -10000]' never reaches an operator as is)."""
    text = plain_portaudio(Exception(message)) if "PaErrorCode" in message else message
    hint = "" if "kiosk doctor" in text else \
        _("; plug it in (or fix [audio] in the config) and run `kiosk doctor` to list devices")
    return f"{label}: {text}{hint}"


def probe_devices(input_device: str = "", output_device: str = "",
                  headphone_device: str = "") -> dict[str, str]:
    """Each configured device → "" when PortAudio lists it, else what is wrong (the same
    check as `kiosk doctor`, cheap enough for /healthz to repeat)."""
    wanted = [("microphone", "input", input_device), ("speaker", "output", output_device)]
    if headphone_device:
        wanted.append(("headphones", "output", headphone_device))
    out: dict[str, str] = {}
    for label, kind, spec in wanted:
        try:
            if find_device(spec, kind) is None:
                raise DeviceMissing(_("no sound input device found") if kind == "input"
                                    else _("no sound output device found"))
            out[label] = ""
        except KioskError as exc:
            out[label] = plain_audio_error(label, str(exc))
        except Exception as exc:  # PortAudioError and friends: reported, never raised
            out[label] = plain_audio_error(label, str(exc))
    return out


class DeviceMonitor:
    """Probes the configured sound devices at start and every `every_seconds`, so
    /healthz says a speaker is missing before a visitor's answer fails to play."""

    def __init__(self, settings: Any, every_seconds: float = 60.0):
        self.audio = settings.audio
        self.every = every_seconds
        self._found: dict[str, str] = {}
        self.check()

    def check(self) -> dict[str, str]:
        a = self.audio
        self._found = probe_devices(a.input_device, a.output_device, a.headphone_device)
        return self._found

    def present(self, label: str) -> bool:
        return self._found.get(label, "") == ""

    def problems(self) -> list[str]:
        return [why for why in self._found.values() if why]

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.every):
            self.check()


def find_device(spec: str | int | None, kind: str) -> int | None:
    """Resolve a configured device ("" = system default, a number, or part of its name) to a
    PortAudio index; kind is "input" or "output"."""
    sd = _sd()
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    devices = list(sd.query_devices())
    usable = [(i, d) for i, d in enumerate(devices) if d[key] > 0]
    if spec is None or spec == "":
        try:
            default = sd.default.device[0 if kind == "input" else 1]
        except Exception:
            default = -1
        if default is not None and default >= 0:
            return int(default)
        if usable:
            return usable[0][0]
        raise DeviceMissing(
            _("no microphone found; plug one in (`kiosk doctor` lists devices)") if
            kind == "input" else
            _("no speaker found; plug one in (`kiosk doctor` lists devices)"))
    text = str(spec)
    if text.isdigit():
        i = int(text)
        if i < len(devices) and devices[i][key] > 0:
            return i
    else:
        for i, d in usable:
            if d["name"] == text:
                return i
        for i, d in usable:
            if text.lower() in d["name"].lower():
                return i
    names = ", ".join(f"{i}: {d['name']}" for i, d in usable) or _("none")
    raise DeviceMissing(
        _("sound {kind} device '{name}' is not connected (available: {names}); plug it in or "
          "change [audio] {kind}_device (`kiosk doctor` lists devices)").format(
            kind=kind, name=text, names=names))


def _device_rate(index: int | None, kind: str, configured: int) -> int:
    if configured:
        return int(configured)
    info = _sd().query_devices(index, kind)
    return int(info["default_samplerate"])


def _audio_settings(settings: Any) -> Any:
    """Accept either the whole Settings or its [audio] section."""
    return getattr(settings, "audio", settings)


class Speaker:
    """Plays clips through sounddevice at the device's own rate. play() blocks until the clip
    ends or stop_event is set (barge-in: the visitor touched the screen or spoke)."""

    def __init__(self, device: str | int | None = None, *, volume: float = 1.0, rate: int = 0,
                 block_ms: int = 20):
        self.device = device
        self.volume = float(volume)
        self.rate = int(rate)
        self.block_ms = int(block_ms)
        # Called with each clip (16 kHz) the moment its first samples go to the device: the
        # audio front end's echo reference (kiosk.speech.frontend), in step with the sound.
        self.monitor: Callable[[AudioClip], None] | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Speaker:
        a = _audio_settings(settings)
        return cls(a.output_device, volume=a.volume, rate=a.output_rate, block_ms=a.block_ms)

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool:
        """Play a clip; returns True when it played to the end, False when stopped."""
        sd = _sd()
        if stop_event is not None and stop_event.is_set():
            return False
        if clip.samples.size == 0:
            return True
        try:
            index = find_device(self.device, "output")
            rate = _device_rate(index, "output", self.rate)
        except sd.PortAudioError as exc:
            raise DeviceLost(_("speaker unavailable: {advice}").format(
                advice=plain_portaudio(exc))) from None
        data = to_int16(resample(clip.samples, clip.rate, rate) * self.volume)
        block = max(1, rate * self.block_ms // 1000)
        pos = 0
        monitor = self.monitor
        heard = AudioClip(from_int16(data), rate).at_rate(SPEECH_RATE) if monitor else None
        done = threading.Event()
        stopped = False

        def callback(outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
            nonlocal pos, stopped
            if stop_event is not None and stop_event.is_set():
                stopped = True
                outdata.fill(0)
                raise sd.CallbackAbort
            chunk = data[pos : pos + frames]
            if pos == 0 and monitor is not None and heard is not None:
                monitor(heard)
            outdata[: len(chunk), 0] = chunk
            outdata[len(chunk) :] = 0
            pos += len(chunk)
            if pos >= len(data):
                raise sd.CallbackStop

        # A vanished device stops calling back; give up well after the clip should have ended.
        deadline = time.monotonic() + len(data) / rate + 3.0
        try:
            stream = sd.OutputStream(device=index, samplerate=rate, channels=1, dtype="int16",
                                     blocksize=block, callback=callback,
                                     finished_callback=done.set)
            with stream:
                while not done.wait(0.005):
                    if stop_event is not None and stop_event.is_set():
                        stopped = True
                        stream.abort()
                        break
                    if time.monotonic() > deadline:
                        raise DeviceLost(_("the speaker stopped responding; check the cable "
                                           "and power (`kiosk doctor` lists devices)"))
        except sd.PortAudioError as exc:
            raise DeviceLost(_("speaker failed: {advice}").format(
                advice=plain_portaudio(exc))) from None
        return not stopped


def _close_stream(stream: Any, timeout: float = 1.0) -> None:
    """Abort and close a stream without hanging the kiosk: a driver stuck in a read on a
    dead device can block abort() forever, so give up waiting after `timeout`."""

    def run() -> None:
        try:
            stream.abort()
            stream.close()
        except Exception as exc:  # a vanished device may fail to close; it is gone anyway
            log.debug("closing audio stream: %s", exc)

    closer = threading.Thread(target=run, name="audio-close", daemon=True)
    closer.start()
    closer.join(timeout)
    if closer.is_alive():
        log.warning(_("an audio stream did not close within %.1f s; leaving it behind"), timeout)


#: How long a freshly opened input may take to deliver its first block before it counts as
#: stalled: PulseAudio and some USB devices fill a whole first fragment (seen: 2.5 s on a
#: loaded 2-core box), and reporting that as an unplugged microphone would start a
#: reconnect loop that never lets the stream start.
_FIRST_BLOCK_SECONDS = 10.0


class Microphone:
    """Captures from the configured input device at its native rate (PortAudio rejects
    rates a device does not support) and yields 16 kHz AudioClip chunks. Raises DeviceLost
    when the device vanishes, errors, or stops delivering audio."""

    def __init__(self, device: str | int | None = None, *, rate: int = 0, block_ms: int = 20,
                 stall_seconds: float = 2.0):
        self.device = device
        self.rate = int(rate)
        self.block_ms = int(block_ms)
        self.stall_seconds = float(stall_seconds)
        self._stream: Any = None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._closed = threading.Event()

    @classmethod
    def from_settings(cls, settings: Any) -> Microphone:
        a = _audio_settings(settings)
        return cls(a.input_device, rate=a.input_rate, block_ms=a.block_ms,
                   stall_seconds=a.stall_seconds)

    def open(self) -> Microphone:
        sd = _sd()
        try:
            index = find_device(self.device, "input")
            self.device_rate = _device_rate(index, "input", self.rate)
            self._resampler = StreamResampler(self.device_rate, SPEECH_RATE)
            self._queue = queue.Queue()
            self._closed.clear()

            def callback(indata: np.ndarray, _frames: int, _time: Any, status: Any) -> None:
                if status.input_overflow:
                    log.debug("microphone overflow: some audio was dropped")
                self._queue.put(indata[:, 0].copy())

            self._stream = sd.InputStream(
                device=index, samplerate=self.device_rate, channels=1, dtype="int16",
                blocksize=max(1, self.device_rate * self.block_ms // 1000), callback=callback,
                finished_callback=lambda: self._queue.put(None),
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise DeviceLost(_("microphone unavailable: {advice}").format(
                advice=plain_portaudio(exc))) from None
        return self

    def close(self) -> None:
        self._closed.set()
        stream, self._stream = self._stream, None
        if stream is not None:
            _close_stream(stream)
        self._queue.put(None)

    def __enter__(self) -> Microphone:
        return self.open() if self._stream is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[AudioClip]:
        return self.chunks()

    def chunks(self) -> Iterator[AudioClip]:
        """16 kHz chunks until close(); DeviceLost when the device stops delivering."""
        if self._stream is None:
            self.open()
        wait = max(self.stall_seconds, _FIRST_BLOCK_SECONDS)
        while True:
            try:
                block = self._queue.get(timeout=wait)
            except queue.Empty:
                if self._closed.is_set():
                    return
                raise DeviceLost(
                    _("the microphone delivered no audio for {seconds:g} s; it may have been "
                      "unplugged (the kiosk retries by itself)").format(seconds=wait)) from None
            wait = self.stall_seconds
            if block is None:
                if self._closed.is_set():
                    return
                raise DeviceLost(_("the microphone stream stopped (device unplugged or "
                                   "failed); the kiosk retries by itself"))
            out = self._resampler.feed(from_int16(block))
            if out.size:
                yield AudioClip(out, SPEECH_RATE)


class ReconnectingMicrophone:
    """A microphone that survives unplugging: on DeviceLost it logs once, tells on_lost (the
    kiosk shows "microphone unavailable, please use the touch screen"), and retries every
    retry_seconds until the device is back, then tells on_back. No restart needed."""

    def __init__(self, factory: Callable[[], Microphone], *, retry_seconds: float = 2.0,
                 on_lost: Callable[[DeviceLost], None] | None = None,
                 on_back: Callable[[], None] | None = None,
                 rescan: Callable[[], None] | None = rescan_devices):
        self.factory = factory
        self.retry_seconds = float(retry_seconds)
        self.on_lost = on_lost
        self.on_back = on_back
        self.rescan = rescan
        self.stop_event = threading.Event()
        self._mic: Microphone | None = None

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> ReconnectingMicrophone:
        a = _audio_settings(settings)
        return cls(lambda: Microphone.from_settings(a), retry_seconds=a.reconnect_seconds,
                   **kwargs)

    def close(self) -> None:
        self.stop_event.set()
        if self._mic is not None:
            self._mic.close()

    def __iter__(self) -> Iterator[AudioClip]:
        return self.chunks()

    def chunks(self) -> Iterator[AudioClip]:
        lost: DeviceLost | None = None
        while not self.stop_event.is_set():
            try:
                self._mic = self.factory()
                self._mic.open()
                for chunk in self._mic.chunks():
                    if lost is not None:  # "back" only once audio really flows again
                        log.warning(_("microphone is back"))
                        if self.on_back:
                            self.on_back()
                        lost = None
                    yield chunk
                if self.stop_event.is_set():
                    return
            except DeviceLost as exc:
                if lost is None:
                    log.warning("%s", exc)
                    if self.on_lost:
                        self.on_lost(exc)
                lost = exc
            finally:
                if self._mic is not None:
                    self._mic.close()
            if self.stop_event.wait(self.retry_seconds):
                return
            if self.rescan is not None and isinstance(lost, DeviceMissing):
                try:
                    self.rescan()
                except Exception as exc:
                    log.debug("device rescan failed: %s", exc)
