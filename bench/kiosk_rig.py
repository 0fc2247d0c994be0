"""Shared set-up of bench/soak.py and bench/latency.py: the real kiosk loop (real index,
endpointer, answer composer, speakable text, voice, recogniser) on simulated sound devices,
in a throw-away folder. Not a benchmark by itself."""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", category=SyntaxWarning)
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kiosk.config import Settings, settings_from_dict  # noqa: E402
from kiosk.content.publishing import ensure_index  # noqa: E402
from kiosk.dialogue.conversation import State  # noqa: E402
from kiosk.dialogue.runner import Kiosk  # noqa: E402
from kiosk.dialogue.runner import make_kiosk as build_kiosk  # noqa: E402
from kiosk.search.versions import LiveIndex  # noqa: E402
from kiosk.speech.audio import AudioClip, load_wav  # noqa: E402
from kiosk.speech.contract import Transcript  # noqa: E402
from kiosk.speech.simulated import RecordingSpeaker, SimulatedMicrophone  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "speech"


def questions() -> list[tuple[str, str, str, AudioClip]]:
    """(file, expected entry id, question text, clip) for every spoken question fixture."""
    out = []
    for line in (FIXTURES / "questions.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, entry_id, text = line.split("\t")[:3]
        out.append((name, entry_id, text, load_wav(FIXTURES / name)))
    return out


class ReplayRecogniser:
    """Recognises each distinct clip once with the real engine, then replays that transcript:
    for soak runs long enough that re-decoding every visit would take hours. The loop, the
    endpointer, the search and the voice still run for every session."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.name = f"replay({getattr(engine, 'name', 'engine')})"
        self.current = ""  # the fixture being streamed; set by the driver before each session
        self._memo: dict[str, Transcript] = {}

    def transcribe(self, clip: AudioClip, **kwargs: Any) -> Transcript:
        if self.current not in self._memo:
            self._memo[self.current] = self.engine.transcribe(clip, **kwargs)
        return self._memo[self.current]


class ReplayVoice:
    """The real voice, with each distinct utterance synthesized once and replayed."""

    def __init__(self, voice: Any):
        self.voice = voice
        self._memo: dict[tuple[str, float, float], list[AudioClip]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.voice, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("voice", "_memo"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.voice, name, value)

    def speak(self, text: str, speaker: Any, stop_event: threading.Event | None = None,
              **kwargs: Any) -> bool:
        key = (text, self.voice.rate, self.voice.volume)
        if key not in self._memo:
            self._memo[key] = list(self.voice.synthesize(text))
        return self.voice.play_clips(self._memo[key], speaker, stop_event)


class SpeechTimer:
    """Wraps the speaker: notes when the speech thread (not a tone) first plays each turn."""

    def __init__(self, speaker: RecordingSpeaker):
        self.speaker = speaker
        self.first_play: list[float] = []
        self.first_voice: list[float] = []
        self._armed = False
        self._seen_play = False

    def arm(self) -> None:
        self._armed, self._seen_play = True, False

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool:
        if self._armed and threading.current_thread().name == "kiosk-speech":
            now = time.perf_counter()
            if not self._seen_play:
                self._seen_play = True
                self.first_play.append(now)
            elif float(abs(clip.samples).max(initial=0.0)) > 0.0:
                self.first_voice.append(now)
                self._armed = False
        return self.speaker.play(clip, stop_event)


def make_kiosk(*, recogniser: Any, voice: Any, mic_pace: float, speaker_pace: float,
               home: Path | None = None, **sections: dict) -> tuple[Kiosk, SimulatedMicrophone,
                                                                     RecordingSpeaker, Settings]:
    home = home or Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    data: dict[str, dict] = {"paths": {"index_dir": str(home / "index"),
                                       "state_dir": str(home / "var"),
                                       "models_dir": str(REPO / "models")},
                             "loop": {"partial_seconds": 0.0, "session_timeout_seconds": 3600.0},
                             "endpointing": {"speech_start_seconds": 0.2}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    settings = settings_from_dict(data, base_dir=home)
    ensure_index(settings)
    searcher = LiveIndex(settings.index_dir, settings)
    mic = SimulatedMicrophone(pace=mic_pace)
    speaker = RecordingSpeaker(pace=speaker_pace, keep=50)
    kiosk = build_kiosk(settings, searcher=searcher, microphone=mic, speaker=speaker,
                        recogniser=recogniser, voice=voice, tick_seconds=0.05)
    return kiosk, mic, speaker, settings


def wait_for(predicate: Any, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.002)
    return False


def wait_state(kiosk: Kiosk, *states: State, timeout: float = 60.0) -> bool:
    kiosk.settle()
    return wait_for(lambda: kiosk.state in states, timeout)
