"""A simulated city-hall lobby for the speech benchmarks: what the kiosk's microphone hears.

    python3 bench/room_sim.py --out /tmp/room      # write a few example scenes as WAVs to listen to

Everything is made here from project audio, with a fixed seed (same scenes every run):
- visitors: the question spoken by Open JTalk (the engine behind the kiosk's voice) in voices
  the kiosk never uses itself — shifted pitch and pace (`visitor_voice`);
- the room: a synthetic impulse response per scene (RT60 0.3–0.9 s, exponentially decaying
  noise with a few early reflections, direct sound ∝ 1/distance against a diffuse tail whose
  level does not depend on distance; critical distance ≈ 1.2 m, a 300 m³ hall), the visitor at
  0.5–1.0 m;
- babble: five other talkers (Open JTalk at other pitches, espeak-ng's Japanese voice) saying
  the city's own entry titles, 2–4 m away, through their own impulse responses;
- fan/HVAC: brown-ish broadband rumble, 50 Hz mains hum and harmonics (Atsugi is on 50 Hz),
  slowly breathing;
- echo: the kiosk's own voice (kiosk.voice.Voice) through a small loudspeaker (band-limited,
  slightly saturated), 20–60 ms of playback delay, its own impulse response at 0.3 m.
SNR is the reverberant speech's power (where it is active) over the noise's power.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.speech.audio import SPEECH_RATE, AudioClip, decode_wav  # noqa: E402

RATE = SPEECH_RATE
SEED = 13
CRITICAL_DISTANCE_M = 1.2  # 0.057·sqrt(V/RT60) for a ~300 m³ hall at RT60 0.6 s
SOUND_SPEED = 343.0


@dataclass(frozen=True)
class Condition:
    """One way the lobby sounds. noise: "" | "fan" | "babble"; echo: the kiosk is speaking
    when the visitor starts (its voice reaches the microphone `echo_db` louder than the
    visitor's) and stops `echo_stops_after` seconds later, as barge-in makes it."""

    name: str
    noise: str = ""
    snr_db: float = 40.0
    reverb: bool = True
    echo: bool = False
    echo_db: float = 6.0
    echo_stops_after: float = 0.5  # seconds after the visitor starts (barge-in); 99 = never


CONDITIONS = {c.name: c for c in [
    Condition("dry", reverb=False, snr_db=60.0),
    Condition("room"),
    Condition("fan 20dB", "fan", 20.0),
    Condition("fan 10dB", "fan", 10.0),
    Condition("babble 10dB", "babble", 10.0),
    Condition("babble 5dB", "babble", 5.0),
    Condition("echo+fan 20dB", "fan", 20.0, echo=True),
    Condition("talk-over+fan 20dB", "fan", 20.0, echo=True, echo_stops_after=99.0),
]}


def short_condition(name: str) -> str:
    """「fan 20dB」 → 「fan20」 for the benchmarks' summary lines."""
    return name.replace(" ", "").replace("dB", "")


@dataclass
class Scene:
    """One recording: `mic` is what the microphone hears; `far_end` what the kiosk played at
    the same moments (zeros where it was silent); speech runs from `speech_start` to
    `speech_end` seconds."""

    mic: np.ndarray
    far_end: np.ndarray
    speech_start: float
    speech_end: float
    rt60: float
    distance: float
    # echo only: the kiosk speaking earlier in the same place (microphone, played), for the
    # echo canceller to learn the room first, as it has in a kiosk that has been talking
    warmup_mic: np.ndarray | None = None
    warmup_far: np.ndarray | None = None


# --- rooms ------------------------------------------------------------------------------

def room_impulse_response(rt60: float, distance: float, rng: np.random.Generator,
                          critical_distance: float = CRITICAL_DISTANCE_M) -> np.ndarray:
    """Direct sound after distance/c, early reflections, then a diffuse tail decaying 60 dB
    in rt60 seconds whose energy equals the direct sound's at the critical distance."""
    n = int((rt60 + 0.05) * RATE)
    t = np.arange(n) / RATE
    delay = distance / SOUND_SPEED
    h = np.zeros(n)
    h[int(delay * RATE)] = 1.0 / distance
    for _ in range(6):  # floor, ceiling, near walls: 3-30 ms after the direct sound
        at = int((delay + rng.uniform(0.003, 0.03)) * RATE)
        h[at] += rng.uniform(-0.6, 0.6) / (distance + rng.uniform(1.0, 4.0))
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    tail[: int((delay + 0.005) * RATE)] = 0.0
    # walls absorb the highs: the tail is darker than the direct sound
    tail = lfilter([0.35], [1, -0.65], tail)
    tail *= np.sqrt(1.0 / critical_distance**2 / max(1e-12, float(np.sum(tail**2))))
    return (h + tail).astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    return fftconvolve(x, rir)[: len(x)].astype(np.float32)


# --- sources ----------------------------------------------------------------------------

VISITOR_VOICES = [  # (half_tone, speed): deeper and slower, higher and quicker, ...
    (-4.0, 0.9), (3.0, 1.1), (-2.0, 1.0), (5.0, 0.95), (-6.0, 1.05), (1.5, 0.85),
]


def visitor_voice(text: str, index: int) -> np.ndarray:
    """The question in a visitor's voice (16 kHz): Open JTalk shifted in pitch and pace."""
    import pyopenjtalk

    half_tone, speed = VISITOR_VOICES[index % len(VISITOR_VOICES)]
    x, rate = pyopenjtalk.tts(text, speed=speed, half_tone=half_tone)
    return AudioClip((x / 32768.0).astype(np.float32), int(rate)).at_rate(RATE).samples


def espeak_voice(text: str, variant: int = 0) -> np.ndarray:
    """espeak-ng's Japanese voice (a different synthesiser altogether) for babble."""
    pitch = 30 + 25 * variant
    # to a file, not --stdout: a piped WAV's header announces an unknown (maximal) length,
    # which decode_wav rightly refuses as a file cut short
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "babble.wav"
        subprocess.run(["espeak-ng", "-v", "ja", "-p", str(pitch), "-s", "150", "-w", str(path),
                        text], capture_output=True, check=True)
        return decode_wav(path.read_bytes(), name="espeak", rate=RATE).samples


def kiosk_voice(text: str) -> np.ndarray:
    """The kiosk's own voice, as its speaker stage plays it (16 kHz)."""
    voice = _kiosk_voice()
    return voice.render(text).at_rate(RATE).samples


@lru_cache(maxsize=1)
def _kiosk_voice():
    from kiosk.voice.synthesis import Voice

    return Voice()


@lru_cache(maxsize=1)
def city_sentences() -> tuple[str, ...]:
    """What other people in the lobby talk about, and what the kiosk reads out: the
    project's own entries (titles for chatter, spoken answers for the kiosk)."""
    import json

    rows = []
    for line in (ROOT / "kiosk" / "data" / "city_services.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return tuple(r["title"] for r in rows) + tuple(r.get("spoken") or "" for r in rows if r.get("spoken"))


def kiosk_answers() -> list[str]:
    """The spoken answers of the city's entries (what the kiosk's voice says most)."""
    import json

    out = []
    for line in (ROOT / "kiosk" / "data" / "city_services.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(row.get("spoken") or row["body"][:80])
    return out


@lru_cache(maxsize=1)
def babble_track(seconds: float = 90.0, talkers: int = 5, seed: int = SEED) -> np.ndarray:
    """Several other visitors and staff talking at once, 2–4 m away, in the same room."""
    rng = np.random.default_rng(seed)
    sentences = [s for s in city_sentences() if len(s) < 40]
    n = int(seconds * RATE)
    mix = np.zeros(n, dtype=np.float32)
    for k in range(talkers):
        track = np.zeros(n, dtype=np.float32)
        at = int(rng.uniform(0, 1.0) * RATE)
        while at < n:
            text = sentences[int(rng.integers(len(sentences)))]
            if k % 2:
                x = espeak_voice(text, k // 2)
            else:
                x = visitor_voice(text, 3 + k)
            x = x / (np.sqrt(np.mean(x[np.abs(x) > 0.01] ** 2)) + 1e-9) * 0.1
            end = min(n, at + len(x))
            track[at:end] += x[: end - at]
            at = end + int(rng.uniform(0.2, 0.9) * RATE)
        rir = room_impulse_response(rng.uniform(0.5, 0.9), rng.uniform(2.0, 4.0), rng)
        mix += reverberate(track, rir) * rng.uniform(0.6, 1.0)
    return mix


def hvac_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Air conditioning and fans: brown-ish rumble + broadband hiss, 50 Hz hum with
    harmonics, breathing slowly (0.1-0.3 Hz)."""
    t = np.arange(samples) / RATE
    rumble = lfilter([1.0], [1, -0.985], rng.standard_normal(samples))
    rumble /= np.std(rumble) + 1e-9
    hiss = sosfilt(butter(2, [300, 4000], "bandpass", fs=RATE, output="sos"),
                   rng.standard_normal(samples))
    hiss /= np.std(hiss) + 1e-9
    hum = sum(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28))
              for f, a in [(50, 0.5), (100, 0.35), (150, 0.2), (300, 0.08)])
    breath = 1.0 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t)
    return ((rumble + 0.6 * hiss + hum) * breath).astype(np.float32)


def loudspeaker(x: np.ndarray) -> np.ndarray:
    """A kiosk's small loudspeaker: no bass below ~200 Hz, rolled-off highs, a little
    saturation at its loudest."""
    y = sosfilt(butter(2, [200, 6500], "bandpass", fs=RATE, output="sos"), x)
    peak = float(np.max(np.abs(y))) or 1.0
    return (np.tanh(1.5 * y / peak) / np.tanh(1.5) * peak).astype(np.float32)


# --- scenes -----------------------------------------------------------------------------

def _active_power(x: np.ndarray) -> float:
    loud = np.abs(x) > 0.1 * (np.max(np.abs(x)) or 1.0)
    return float(np.mean(x[loud] ** 2)) if loud.any() else 1e-9


def make_scene(speech: np.ndarray, condition: Condition, seed: int, *,
               lead_seconds: float = 0.5, tail_seconds: float = 3.0,
               echo_text: str | None = None) -> Scene:
    """The visitor's dry speech (16 kHz) as the microphone hears it in this condition.
    With echo, the kiosk starts speaking `echo_text` 2 s before the visitor and keeps on."""
    rng = np.random.default_rng([SEED, seed])
    rt60, distance = float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.5, 1.0))
    lead = lead_seconds + (2.0 if condition.echo else 0.0)
    n = int((lead + tail_seconds) * RATE) + len(speech)
    dry = np.zeros(n, dtype=np.float32)
    at = int(lead * RATE)
    dry[at : at + len(speech)] = speech
    if condition.reverb:
        wet = reverberate(dry, room_impulse_response(rt60, distance, rng))
    else:
        wet = dry.copy()
    power = _active_power(wet[at : at + len(speech)])
    mic = wet.copy()
    far = np.zeros(n, dtype=np.float32)
    warmup_mic = warmup_far = None
    if condition.echo:
        answers = kiosk_answers()
        played = kiosk_voice(echo_text or answers[seed % len(answers)])
        while len(played) < n:
            played = np.concatenate([played, played])
        far = played[:n].astype(np.float32).copy()
        # barge-in: the kiosk stops talking half a second after the visitor starts
        far[at + int(condition.echo_stops_after * RATE):] = 0.0
        delay = int(rng.uniform(0.02, 0.06) * RATE)
        speaker_path = room_impulse_response(rt60, 0.3, rng)

        def through_room(x: np.ndarray) -> np.ndarray:
            y = np.concatenate([np.zeros(delay, np.float32), loudspeaker(x)])[: len(x)]
            return reverberate(y, speaker_path)

        heard = through_room(far)
        scale = np.sqrt(power * 10 ** (condition.echo_db / 10) / _active_power(heard))
        mic += heard * scale
        warmup_far = kiosk_voice(answers[(seed + 1) % len(answers)]).astype(np.float32)
        warmup_mic = (through_room(warmup_far) * scale
                      + rng.standard_normal(len(warmup_far)).astype(np.float32) * 1e-4)
    if condition.noise:
        if condition.noise == "fan":
            noise = hvac_noise(n, rng)
        else:
            track = babble_track()
            start = int(rng.integers(0, len(track) - n))
            noise = track[start : start + n].copy()
        noise *= np.sqrt(power / 10 ** (condition.snr_db / 10) / float(np.mean(noise**2)))
        mic += noise
    else:
        mic += rng.standard_normal(n).astype(np.float32) * np.sqrt(power / 10 ** (condition.snr_db / 10))
    peak = float(np.max(np.abs(mic)))
    if peak > 0.99:  # the microphone's preamp would clip; keep the level like a real gain stage
        mic *= 0.99 / peak
        far *= 1.0  # the reference is what was played, not what was heard
    return Scene(mic.astype(np.float32), far, lead, lead + len(speech) / RATE, rt60, distance,
                 warmup_mic, warmup_far)


def main() -> int:
    import argparse

    from kiosk.speech.audio import write_wav

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/room-scenes")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    speech = visitor_voice("住民票の写しがほしいのですが", 0)
    for k, cond in enumerate(CONDITIONS.values()):
        scene = make_scene(speech, cond, seed=k)
        name = cond.name.replace(" ", "_").replace("+", "_")
        write_wav(out / f"{name}.wav", AudioClip(scene.mic, RATE))
        if cond.echo:
            write_wav(out / f"{name}.played.wav", AudioClip(scene.far_end, RATE))
        print(f"{out / name}.wav  RT60 {scene.rt60:.2f} s, {scene.distance:.2f} m")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
