"""Audio in and out through the real sounddevice/PortAudio/ALSA stack, without a sound card.

- ALSA `file` devices (ALSA_CONFIG_PATH): a microphone that reads a raw file and a speaker
  that writes one — bit-exact, but not paced in real time.
- A PulseAudio null sink started by the test (stopped by its PID): real-time paced, so
  barge-in stopping and a sound server that vanishes mid-stream and comes back are real.
- WAV files: rates, stereo, sample widths, and every kind of bad file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk import KioskError
from kiosk.speech.audio import (
    AudioClip,
    AudioError,
    DeviceLost,
    Microphone,
    ReconnectingMicrophone,
    Speaker,
    StreamResampler,
    find_device,
    from_int16,
    load_wav,
    resample,
    rescan_devices,
    to_int16,
    wav_bytes,
)

SYSTEM_ALSA = Path("/usr/share/alsa/alsa.conf")


def _use_alsa_config(text: str | None, folder: Path) -> None:
    """Point ALSA at our config (or back at the system's) and make PortAudio re-list."""
    if text is None:
        os.environ.pop("ALSA_CONFIG_PATH", None)
    else:
        conf = folder / "asound.conf"
        conf.write_text(f"<{SYSTEM_ALSA}>\n{text}", encoding="ascii")
        os.environ["ALSA_CONFIG_PATH"] = str(conf)
    rescan_devices()


def _tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


# --- ALSA file devices: bit-exact ----------------------------------------------------------

@pytest.fixture(scope="module")
def file_devices(tmp_path_factory):
    if not SYSTEM_ALSA.is_file():
        pytest.skip("ALSA is not installed (apt-get install alsa-utils libportaudio2)")
    folder = tmp_path_factory.mktemp("alsa")
    rng = np.random.default_rng(7)
    captured = (rng.standard_normal(48000) * 4000).astype("<i2")
    (folder / "mic.raw").write_bytes(captured.tobytes())
    _use_alsa_config(f"""
pcm.kiosk_file_mic {{ type file; slave.pcm "null"; file "/dev/null";
                      infile "{folder}/mic.raw"; format "raw" }}
pcm.kiosk_file_spk {{ type file; slave.pcm "null"; file "{folder}/played.raw"; format "raw" }}
""", folder)
    yield folder, captured
    _use_alsa_config(None, folder)


def _played(folder: Path) -> np.ndarray:
    data = np.fromfile(folder / "played.raw", dtype="<i2")
    nonzero = np.flatnonzero(data)
    return data[nonzero[0]:] if nonzero.size else data  # PortAudio primes with silence


def test_file_devices_are_listed(file_devices):
    assert find_device("kiosk_file_mic", "input") is not None
    assert find_device("kiosk_file_spk", "output") is not None


def test_capture_is_bit_exact_at_16k(file_devices):
    folder, captured = file_devices
    got = []
    with Microphone("kiosk_file_mic", rate=16000, stall_seconds=2) as mic:
        for chunk in mic:
            assert chunk.rate == 16000
            got.append(chunk.samples)
            if sum(map(len, got)) >= len(captured):
                break
    x = np.concatenate(got)[: len(captured)]
    assert np.array_equal(to_int16(x), captured)


def test_capture_at_native_rate_is_resampled_like_the_whole_signal(file_devices):
    folder, captured = file_devices
    got = []
    with Microphone("kiosk_file_mic", rate=44100) as mic:  # the device's own default rate
        for chunk in mic:
            got.append(chunk.samples)
            if sum(map(len, got)) >= 16000:
                break
    x = np.concatenate(got)[:15000]
    whole = resample(from_int16(captured), 44100, 16000)[:15000]
    assert np.max(np.abs(x - whole)) < 1e-4


def test_playback_is_bit_exact(file_devices):
    folder, _ = file_devices
    (folder / "played.raw").unlink(missing_ok=True)
    rng = np.random.default_rng(3)
    ints = (rng.standard_normal(8000) * 3000).astype(np.int16)
    assert Speaker("kiosk_file_spk", rate=16000).play(AudioClip(from_int16(ints), 16000)) is True
    played = _played(folder)
    assert np.array_equal(played[: len(ints)], ints)


def test_playback_resamples_and_applies_volume(file_devices):
    folder, _ = file_devices
    (folder / "played.raw").unlink(missing_ok=True)
    clip = AudioClip(_tone(440, 1.0, 16000, amp=0.8), 16000)
    Speaker("kiosk_file_spk", volume=0.5).play(clip)  # device default: 44100 Hz
    played = from_int16(_played(folder))
    assert abs(len(played) - 44100) < 200
    assert abs(_dominant_hz(played, 44100) - 440) < 3
    assert 0.37 < np.max(np.abs(played)) < 0.43


def test_a_set_stop_event_plays_nothing(file_devices):
    folder, _ = file_devices
    (folder / "played.raw").unlink(missing_ok=True)
    stop = threading.Event()
    stop.set()
    assert Speaker("kiosk_file_spk").play(AudioClip(_tone(440, 1, 16000), 16000), stop) is False
    assert not (folder / "played.raw").exists() or not np.any(_played(folder))


def test_unknown_device_names_the_available_ones(file_devices):
    with pytest.raises(DeviceLost, match="kiosk_file_mic.*kiosk doctor|kiosk doctor"):
        find_device("usb-mic-that-is-not-there", "input")


def test_stream_resampler_matches_whole_signal_resampling():
    x = np.random.default_rng(1).standard_normal(48000).astype(np.float32) * 0.3
    for src in (44100, 48000, 22050, 8000):
        r = StreamResampler(src, 16000)
        parts = [r.feed(x[i : i + 441]) for i in range(0, len(x), 441)]
        streamed = np.concatenate(parts)
        whole = resample(x, src, 16000)
        n = len(streamed)
        assert n > len(whole) * 0.9
        assert np.max(np.abs(streamed - whole[:n])) < 1e-4


# --- PulseAudio null sink: real-time paced ---------------------------------------------------

class PulseServer:
    """A private PulseAudio daemon with one null sink; started and stopped by PID."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.runtime = folder / "run"
        # A sink name of this test run's own, so a second PulseAudio on the machine (another
        # test run, a desktop session) can never be the one our devices reach.
        self.sink = f"kiosk_sink_{os.getpid()}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.runtime.mkdir(exist_ok=True)
        env = {**os.environ, "HOME": str(self.folder), "PULSE_RUNTIME_PATH": str(self.runtime)}
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
             "--use-pid-file=no", "--system=no", "-L", "module-native-protocol-unix",
             "-L", f"module-null-sink sink_name={self.sink} rate=48000"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (self.runtime / "native").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pulseaudio did not start")
            time.sleep(0.05)
        time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        (self.runtime / "native").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    if not shutil.which("pulseaudio") or not SYSTEM_ALSA.is_file():
        pytest.skip("PulseAudio is not installed (apt-get install pulseaudio libasound2-plugins)")
    folder = tmp_path_factory.mktemp("pulse")
    (folder / "client.conf").write_text("autospawn = no\n")
    saved = {k: os.environ.get(k) for k in ("PULSE_RUNTIME_PATH", "PULSE_CLIENTCONFIG")}
    os.environ["PULSE_RUNTIME_PATH"] = str(folder / "run")
    os.environ["PULSE_CLIENTCONFIG"] = str(folder / "client.conf")
    server = PulseServer(folder)
    server.start()
    _use_alsa_config("""
pcm.kiosk_pulse_mic {{ type pulse; server "unix:{native}"; device "{sink}.monitor" }}
pcm.kiosk_pulse_spk {{ type pulse; server "unix:{native}"; device "{sink}" }}
""".format(native=server.runtime / "native", sink=server.sink), folder)
    yield server
    server.stop()
    _use_alsa_config(None, folder)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_speaker_stops_quickly_when_stop_event_is_set(pulse):
    stop = threading.Event()
    result: dict[str, object] = {}

    def run():
        result["finished"] = Speaker("kiosk_pulse_spk").play(
            AudioClip(_tone(330, 4.0, 22050), 22050), stop)
        result["returned_at"] = time.monotonic()

    t = threading.Thread(target=run)
    started = time.monotonic()
    t.start()
    time.sleep(0.6)
    stop.set()
    set_at = time.monotonic()
    t.join(5)
    assert result["finished"] is False
    assert time.monotonic() - started < 2.0  # did not play the 4 s clip out
    assert result["returned_at"] - set_at < 0.15  # target ~50 ms; slack for a loaded CI box


def test_played_sound_is_heard_by_the_microphone_at_16k(pulse):
    got: list[np.ndarray] = []
    with Microphone("kiosk_pulse_mic", stall_seconds=3) as mic:
        player = threading.Thread(target=lambda: Speaker("kiosk_pulse_spk").play(
            AudioClip(_tone(440, 1.5, 24000), 24000)))
        player.start()
        start = time.monotonic()
        for chunk in mic:
            assert chunk.rate == 16000
            got.append(chunk.samples)
            if sum(map(len, got)) >= 24000 or time.monotonic() - start > 6:
                break
        elapsed = time.monotonic() - start
        player.join(5)
    x = np.concatenate(got)
    assert len(x) >= 24000
    assert elapsed > 1.0  # paced in real time (a file device would take milliseconds)
    loud = x[np.abs(x) > 0.05]
    assert loud.size > 8000, "the tone never reached the microphone"
    assert abs(_dominant_hz(x, 16000) - 440) < 5


def test_microphone_survives_the_device_vanishing_and_returning(pulse):
    events: list[str] = []
    after_back: list[int] = []
    mic = ReconnectingMicrophone(
        lambda: Microphone("kiosk_pulse_mic", stall_seconds=1.0), retry_seconds=0.3,
        on_lost=lambda exc: events.append(f"lost: {exc}"),
        on_back=lambda: events.append("back"))
    chunks_before = 0
    done = threading.Event()
    streaming = threading.Event()  # set once audio flows: a loaded box may take seconds to open

    def consume():
        nonlocal chunks_before
        for _chunk in mic:
            if any(e == "back" for e in events):
                after_back.append(1)
                if len(after_back) > 25:  # half a second of audio again
                    break
            elif not events:
                chunks_before += 1
                if chunks_before > 10:
                    streaming.set()
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    assert streaming.wait(30), "the microphone delivered no audio before the device vanished"
    pulse.stop()  # the sound server (our "USB microphone") disappears mid-stream
    deadline = time.monotonic() + 6
    while not any(e.startswith("lost") for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(e.startswith("lost") for e in events), "losing the device was not noticed"
    time.sleep(1.0)  # a few failed reconnection attempts while it is gone
    pulse.start()
    assert done.wait(15), f"audio did not come back; events: {events}"
    mic.close()
    assert chunks_before > 10
    assert events[0].startswith("lost") and "back" in events
    assert len(after_back) > 25


# --- WAV files -------------------------------------------------------------------------------

def _wav(path: Path, data: np.ndarray, rate: int, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if data.ndim == 1 else data.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 2:
            w.writeframes(to_int16(data).tobytes())
        elif width == 1:
            w.writeframes((np.clip(data * 128 + 128, 0, 255)).astype(np.uint8).tobytes())
        elif width == 3:
            v = np.clip(np.round(data * (1 << 23)), -(1 << 23), (1 << 23) - 1).astype(np.int32)
            b = v.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
            w.writeframes(b.tobytes())
        else:
            w.writeframes((data * ((1 << 31) - 1)).astype("<i4").tobytes())
    return path


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_any_common_rate_loads_and_resamples(tmp_path, rate):
    clip = load_wav(_wav(tmp_path / "q.wav", _tone(500, 1.0, rate), rate), rate=16000)
    assert clip.rate == 16000 and abs(clip.duration - 1.0) < 0.01
    assert abs(_dominant_hz(clip.samples, 16000) - 500) < 3


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_sample_widths(tmp_path, width):
    clip = load_wav(_wav(tmp_path / "q.wav", _tone(300, 0.5, 16000, 0.5), 16000, width))
    assert abs(np.max(np.abs(clip.samples)) - 0.5) < 0.02


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = _tone(300, 0.5, 16000, 0.4), np.zeros(8000, dtype=np.float32)
    clip = load_wav(_wav(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000))
    assert clip.samples.ndim == 1 and len(clip.samples) == 8000
    assert abs(np.max(np.abs(clip.samples)) - 0.2) < 0.01


def test_wav_round_trip_is_exact(tmp_path):
    x = from_int16((np.random.default_rng(0).standard_normal(1000) * 5000).astype(np.int16))
    (tmp_path / "r.wav").write_bytes(wav_bytes(AudioClip(x, 16000)))
    clip = load_wav(tmp_path / "r.wav")
    assert np.array_equal(clip.samples, x)


def test_silent_wav_loads(tmp_path):
    clip = load_wav(_wav(tmp_path / "quiet.wav", np.zeros(16000, dtype=np.float32), 16000))
    assert clip.duration == 1.0 and not np.any(clip.samples)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"ID3\x03\x00\x00\x00 this is an mp3", "not a WAV file"),
    (b"hello, this is text", "not a WAV file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00", "damaged"),
])
def test_bad_files_get_plain_messages(tmp_path, content, message):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioError, match=message) as info:
        load_wav(p)
    assert isinstance(info.value, KioskError) and str(p) in str(info.value)


def test_header_only_wav_has_no_audio(tmp_path):
    p = _wav(tmp_path / "none.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no audio"):
        load_wav(p)


def test_truncated_wav_says_it_is_cut_short(tmp_path):
    """Issue 17: a cut-off copy was transcribed and reported as "no speech was heard"."""
    p = _wav(tmp_path / "cut.wav", _tone(300, 1.0, 16000), 16000)
    p.write_bytes(p.read_bytes()[:5001])  # cut mid-sample
    with pytest.raises(AudioError, match=r"cut short: it holds 0\.2 s of the 1\.0 s") as info:
        load_wav(p)
    assert str(p) in str(info.value) and "copy or record it again" in str(info.value)


def test_wav_cut_inside_its_header_says_so(tmp_path):
    p = _wav(tmp_path / "cut.wav", _tone(300, 1.0, 16000), 16000)
    p.write_bytes(p.read_bytes()[:30])
    with pytest.raises(AudioError, match="cut short or damaged"):
        load_wav(p)


def test_streamed_wav_without_a_size_is_read_whole(tmp_path):
    """Recorders stopped abruptly leave 0xFFFFFFFF as the data size: not a truncation."""
    p = _wav(tmp_path / "live.wav", _tone(300, 0.5, 16000), 16000)
    data = bytearray(p.read_bytes())
    data[40:44] = b"\xff\xff\xff\xff"
    p.write_bytes(bytes(data))
    assert load_wav(p).duration == 0.5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_wav_is_read(tmp_path, dtype):
    """Issue 17: a float32 WAV (what many editors export) was refused as "unknown format: 3"."""
    import scipy.io.wavfile

    tone = _tone(300, 0.5, 22050, 0.5)
    stereo = np.stack([tone, tone], axis=1).astype(dtype)
    scipy.io.wavfile.write(tmp_path / "f.wav", 22050, stereo)
    clip = load_wav(tmp_path / "f.wav", rate=16000)
    assert clip.rate == 16000 and abs(clip.duration - 0.5) < 0.01
    assert abs(np.max(np.abs(clip.samples)) - 0.5) < 0.02


def test_compressed_wav_names_its_format(tmp_path):
    p = _wav(tmp_path / "adpcm.wav", _tone(300, 0.2, 16000), 16000)
    data = bytearray(p.read_bytes())
    data[20:22] = (2).to_bytes(2, "little")  # Microsoft ADPCM
    p.write_bytes(bytes(data))
    with pytest.raises(AudioError, match=r"compressed \(format 2\).*16-bit PCM"):
        load_wav(p)


def test_a_folder_is_not_a_wav_file(tmp_path):
    with pytest.raises(AudioError, match="is a folder, not a WAV file"):
        load_wav(tmp_path)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    p = tmp_path / "huge.wav"
    with open(p, "wb") as fh:  # sparse: 3 GB on paper, nothing on disk
        fh.truncate(3_000_000_000)
    with pytest.raises(AudioError, match=r"3,000,000,000 bytes.*max_file_bytes"):
        load_wav(p)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such audio file"):
        load_wav(tmp_path / "nope.wav")


