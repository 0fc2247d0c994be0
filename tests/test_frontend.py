"""The audio front end (kiosk.speech.frontend) on real audio frames: the kiosk's own voice
played into a simulated room is cancelled, a visitor's question still comes through to the
real whisper recogniser, barge-in by speech works while the loudspeaker talks, whisper's
hallucinated word lists are dropped, and `kiosk ask --wav --playback` replays a recording.
Figures (how much, how often) live in bench/echo_bench.py and bench/asr_bench.py --room."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import ConfigError, FrontEndSettings, Settings, settings_from_dict
from kiosk.dialogue.ask import ask
from kiosk.speech.audio import SPEECH_RATE, AudioClip, load_wav, write_wav
from kiosk.speech.frontend import FrontEnd, FrontEndError
from kiosk.speech.recogniser import character_error_rate, hallucination_reason
from kiosk.speech.simulated import EchoingRoom

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
sys.path.insert(0, str(ROOT / "tools"))
from make_speech_fixtures import read_questions  # noqa: E402

QUESTIONS = read_questions(FIXTURES / "questions.tsv")
ANSWER = ("市役所の窓口は、平日の朝8時30分から夕方5時15分までです。土日と祝日は休みです。"
          "くわしくは市役所の代表電話にお問い合わせください。")

pytest.importorskip("pywebrtc_audio")


@pytest.fixture(scope="module")
def voice():
    from kiosk.voice.synthesis import Voice

    return Voice(Settings())


@pytest.fixture(scope="module")
def played(voice) -> AudioClip:
    """An answer as the kiosk's loudspeaker plays it (the real voice, 16 kHz)."""
    return voice.render(ANSWER).at_rate(SPEECH_RATE)


def echo_of(clip: AudioClip, gain: float = 0.5) -> np.ndarray:
    """What the microphone hears of it in the simulated room (delay, loudspeaker, room)."""
    room = EchoingRoom(echo_gain=gain)
    room._sound(clip)
    return room._echo(len(clip.samples))


def over_the_answer(played: AudioClip, question: np.ndarray, *, lead_seconds: float = 4.0,
                    stop_after: float = 0.3) -> tuple[np.ndarray, np.ndarray, int]:
    """(microphone, what was played, where the visitor starts): the kiosk reads its answer
    out, the visitor starts speaking `lead_seconds` in, and the answer stops `stop_after`
    seconds later (barge-in); 1 s of room after the question."""
    lead = int(lead_seconds * SPEECH_RATE)
    total = lead + len(question) + SPEECH_RATE
    far = np.concatenate([played.samples] * 3)[:total].copy()
    far[lead + int(stop_after * SPEECH_RATE):] = 0.0
    mic = echo_of(AudioClip(far, SPEECH_RATE), gain=0.3)
    mic[lead : lead + len(question)] += question
    return mic.astype(np.float32), far.astype(np.float32), lead


def power_db(x: np.ndarray) -> float:
    return 10 * np.log10(float(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-12)


# --- echo --------------------------------------------------------------------------------

def test_the_kiosks_own_voice_is_cancelled(played):
    mic = echo_of(played) + np.random.default_rng(1).standard_normal(len(played.samples)) * 1e-4
    frontend = FrontEnd(FrontEndSettings())
    out = frontend.process_recording(AudioClip(mic.astype(np.float32), SPEECH_RATE), played)
    half = len(out.samples) // 2  # once the canceller has learned the room
    assert power_db(out.samples[half:]) < power_db(mic[half:len(out.samples)]) - 20
    assert frontend.echo_ready and frontend.echo_return_loss_db > 15


def test_without_a_reference_the_echo_stays(played):
    """The reference is what makes it work: the same echo without it is not removed."""
    mic = echo_of(played)
    out = FrontEnd(FrontEndSettings()).process_recording(AudioClip(mic, SPEECH_RATE))
    half = len(out.samples) // 2
    assert power_db(out.samples[half:]) > power_db(mic[half:len(out.samples)]) - 10


def talk_over_at(frontend: FrontEnd, mic: np.ndarray, far: np.ndarray) -> list[float]:
    """Stream one playback through the front end in 20 ms chunks, as the kiosk's microphone
    loop does; the moments (s) its talk-over detector heard a visitor over the voice."""
    frontend.far_end(AudioClip(far, SPEECH_RATE))
    heard = []
    for at in range(0, len(mic), 320):
        frontend.process(AudioClip(mic[at : at + 320], SPEECH_RATE))
        if frontend.talk_over:
            heard.append(at / SPEECH_RATE)
    frontend.far_end_stopped()
    return heard


def test_the_kiosks_own_voice_is_never_taken_for_a_visitor_speaking_over_it(played):
    """Barge-in over the loudspeaker: answer after answer of the kiosk's own voice through
    the room never trips the talk-over detector; a visitor asking over an answer does, and
    only once they have started."""
    frontend = FrontEnd(FrontEndSettings())
    rng = np.random.default_rng(3)
    answers = [played.samples, played.samples[: len(played.samples) // 2], played.samples]
    for n, far in enumerate(answers * 2):
        mic = echo_of(AudioClip(far, SPEECH_RATE)) + rng.standard_normal(len(far)) * 1e-4
        heard = talk_over_at(frontend, mic.astype(np.float32), far)
        assert not heard, f"answer {n}: the kiosk's own voice was taken for a visitor at {heard}"
    assert frontend.echo_ready
    question = load_wav(FIXTURES / QUESTIONS[4][0]).at_rate(SPEECH_RATE).samples
    mic, far, lead = over_the_answer(played, question, stop_after=99.0)
    heard = talk_over_at(frontend, mic, far)
    assert heard, "the visitor speaking over the answer was not heard"
    assert min(heard) >= lead / SPEECH_RATE, heard


def a_warmed_front_end(played: AudioClip, settings: FrontEndSettings) -> FrontEnd:
    """A front end that has heard six answers of the kiosk's own voice in the room, none of
    which it took for a visitor."""
    frontend = FrontEnd(settings)
    rng = np.random.default_rng(3)
    half = played.samples[: len(played.samples) // 2]
    for n, far in enumerate([played.samples, half, played.samples] * 2):
        mic = echo_of(AudioClip(far, SPEECH_RATE)) + rng.standard_normal(len(far)) * 1e-4
        heard = talk_over_at(frontend, mic.astype(np.float32), far)
        assert not heard, f"answer {n}: the kiosk's own voice was taken for a visitor at {heard}"
    return frontend


def loud_moments(far: np.ndarray) -> list[tuple[int, int]]:
    """(frame, frame of the voice's next pause) for the kiosk's loudest 10 ms frame in each
    of two stretches of the answer (1.5-4 s, 4-6.5 s)."""
    frames = far[: len(far) // 160 * 160].reshape(-1, 160).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    top = np.percentile(level, 90)
    moments = []
    for begin, end in ((150, 400), (400, 650)):
        loudest = begin + int(np.argmax(level[begin:end]))
        pause = next(j for j in range(loudest, len(level) - 3) if (level[j : j + 3] < top - 25).all())
        moments.append((loudest, pause))
    return moments


def test_a_visitor_starting_at_the_loudest_of_the_kiosks_voice_is_heard_before_it_pauses(played):
    """AEC3 passes nothing of a visitor who starts while the kiosk's voice is loudest until
    the voice dips (its suppressor gates them); the front end's linear model of the echo
    hears them over it. A visitor 6 dB quieter than the kiosk's echo, starting at the
    loudest of the answer, is heard before the voice's next pause — and the kiosk's own
    voice, also at another loudspeaker volume, never is."""
    pytest.importorskip("speexaec", reason="the linear echo model is the [echo] extra")
    frontend = a_warmed_front_end(played, FrontEndSettings())
    for gain in (0.35, 0.7):  # someone turned the loudspeaker down, or up
        far = played.samples
        mic = echo_of(played, gain) + np.random.default_rng(4).standard_normal(len(far)) * 1e-4
        heard = talk_over_at(frontend, mic.astype(np.float32), far)
        assert not heard, f"the kiosk's own voice at gain {gain} was taken for a visitor at {heard}"

    question = load_wav(FIXTURES / QUESTIONS[4][0]).at_rate(SPEECH_RATE).samples
    question = question[np.flatnonzero(np.abs(question) > 0.02)[0] :]  # from its first sound
    echo = echo_of(played) + np.random.default_rng(5).standard_normal(len(played.samples)) * 1e-4

    def active(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x[np.abs(x) > 0.01] ** 2)))
    question = question * active(echo) / active(question) * 10 ** (-6 / 20)
    for loudest, pause in loud_moments(played.samples):
        frontend = a_warmed_front_end(played, FrontEndSettings())
        mic = echo.copy()
        lead = (loudest - 5) * 160
        end = min(len(mic), lead + len(question))
        mic[lead:end] += question[: end - lead]
        heard = talk_over_at(frontend, mic.astype(np.float32), played.samples)
        assert heard, f"the visitor speaking over the loudest of the answer ({lead / SPEECH_RATE} s) was not heard"
        assert lead / SPEECH_RATE <= min(heard) < pause / 100, (lead / SPEECH_RATE, heard[:3], pause / 100)


def test_without_speexaec_barge_in_uses_webrtc_alone_and_says_why(played, monkeypatch):
    """The linear echo model is an optional extra ([echo]): without the package the front end
    still cancels the echo, never takes the kiosk's own voice for a visitor, hears a visitor
    over it from AEC3's output alone, and says why in one plain note."""
    monkeypatch.setitem(sys.modules, "speexaec", None)
    frontend = a_warmed_front_end(played, FrontEndSettings())
    assert frontend.cancels_echo and frontend.echo_ready
    assert "speexaec" in frontend.problem and "pip install speexaec" in frontend.problem
    question = load_wav(FIXTURES / QUESTIONS[4][0]).at_rate(SPEECH_RATE).samples
    mic, far, lead = over_the_answer(played, question, stop_after=99.0)
    heard = talk_over_at(frontend, mic, far)
    assert heard, "the visitor speaking over the answer was not heard"
    assert min(heard) >= lead / SPEECH_RATE, heard


# --- speech kept -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def index_and_composer(tmp_path_factory, speech_settings):
    from kiosk.answer.composer import AnswerComposer
    from kiosk.content.entries import load_content
    from kiosk.search.index import SearchIndex, build_index

    entries = load_content(sorted((ROOT / "kiosk" / "data").glob("*.jsonl")))
    folder = tmp_path_factory.mktemp("fe-index")
    build_index(entries, folder, speech_settings)
    index = SearchIndex.open(folder, speech_settings)
    yield index, AnswerComposer(speech_settings.answer, index.categories()), entries
    index.close()


@pytest.fixture
def whisper(whisper_recogniser, index_and_composer):
    from kiosk.speech.recogniser import vocabulary_from

    whisper_recogniser.set_vocabulary(vocabulary_from(index_and_composer[2]))
    yield whisper_recogniser
    whisper_recogniser.set_vocabulary([])


def reaches(index_and_composer, transcript, expected) -> bool:
    index, composer, _ = index_and_composer
    answer = ask(index, composer, (transcript.text, *transcript.alternatives),
                 confidence=transcript.confidence)
    offered = [h.entry.id for h in (answer.choices if answer.kind.value == "unsure"
                                    else answer.candidates[:1])]
    return answer.kind.value != "none" and expected in offered


def test_questions_come_through_the_front_end(whisper, index_and_composer):
    """Every other fixture question through the front end (as the kiosk's microphone path
    runs it) is still heard and reaches its entry."""
    chosen = QUESTIONS[::2]
    reached, cers = 0, []
    for name, expected, text in chosen:
        clip = FrontEnd(FrontEndSettings()).process_recording(load_wav(FIXTURES / name))
        t = whisper.transcribe(clip)
        cers.append(character_error_rate(text, t.text))
        reached += reaches(index_and_composer, t, expected)
    assert np.mean(cers) <= 0.2, cers
    assert reached >= len(chosen) - 1


def test_a_question_over_the_kiosks_voice_is_heard(whisper, index_and_composer, played):
    """Double talk: the visitor asks while the kiosk is still reading an answer out (until
    barge-in stops it)."""
    name, expected, _ = QUESTIONS[4]  # マイナンバーカードを作りたいです
    question = load_wav(FIXTURES / name).at_rate(SPEECH_RATE).samples
    mic, far, lead = over_the_answer(played, question, stop_after=0.3)
    out = FrontEnd(FrontEndSettings()).process_recording(AudioClip(mic, SPEECH_RATE),
                                                          AudioClip(far, SPEECH_RATE))
    t = whisper.transcribe(AudioClip(out.samples[lead - 4800:], SPEECH_RATE))
    # the canceller's double-talk suppression may cost the first mora (アイナンバー…)
    assert character_error_rate(QUESTIONS[4][2], t.text) <= 0.25, t
    assert reaches(index_and_composer, t, expected), t


# --- barge-in through the fake microphone, the loudspeaker on ------------------------------

def test_own_voice_never_barges_in_and_a_visitor_does(tmp_path, speech_settings, whisper_recogniser,
                                                      voice):
    from kiosk.content.publishing import ensure_index
    from kiosk.dialogue.conversation import State, Typed
    from kiosk.dialogue.runner import Kiosk
    from kiosk.search.versions import LiveIndex
    from kiosk.speech.endpointing import Endpointer

    settings = settings_from_dict({
        "paths": {"index_dir": str(tmp_path / "index"),
                  "models_dir": str(speech_settings.models_dir), "state_dir": str(tmp_path / "var")},
        "loop": {"partial_seconds": 0.0, "session_timeout_seconds": 600.0,
                 "barge_in_by_speech": True},
    }, base_dir=tmp_path)
    ensure_index(settings)
    searcher = LiveIndex(settings.index_dir, settings)
    room = EchoingRoom(pace=2.0, echo_gain=0.5)
    finished: dict[int, bool] = {}
    said: list[str] = []

    class Voice:  # the real voice, noting whether each utterance played to the end
        def __init__(self, real):
            self.real = real

        def speak(self, text, speaker, stop_event=None, **kwargs):
            said.append(text)
            done = self.real.speak(text, speaker, stop_event, **kwargs)
            finished[len(said) - 1] = bool(done)
            return done

    whisper_recogniser.set_vocabulary([])
    kiosk = Kiosk(settings, microphone=room.microphone, speaker=room.speaker,
                  recogniser=whisper_recogniser, voice=Voice(voice), searcher=searcher,
                  endpointer=Endpointer(settings), frontend=FrontEnd.from_settings(settings),
                  tick_seconds=0.05)

    def wait(predicate, what, timeout=90.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; said {said}, {kiosk.view()}")

    kiosk.start()
    try:
        for question in ("市役所は何時まで開いていますか", "図書館は何時まで開いていますか"):
            n = len(said)
            kiosk.post(Typed(question))
            wait(lambda: len(said) > n and n in finished, "the answer to be read out")
            kiosk.settle()
            wait(lambda: kiosk.machine.speaking is None, "the kiosk to stop talking")
            assert all(finished.values()), f"the kiosk's own voice cut itself off: {finished}"
        assert kiosk.frontend.echo_ready

        n = len(said)
        kiosk.post(Typed("ごみの出し方を教えてください"))
        wait(lambda: len(said) > n and len(room.speaker.played) > 0
             and room.speaker.playing_at(time.monotonic()) is not None, "the answer to play")
        room.microphone.say(load_wav(FIXTURES / "q07.wav"), silence_after=2.0)  # 粗大ごみ…
        wait(lambda: n in finished, "the answer to stop")
        assert finished[n] is False, "the visitor speaking over the answer was not heard"
        wait(lambda: "ごみ" in kiosk.view().heard or "ゴミ" in kiosk.view().heard,
             "the visitor's question to be heard", timeout=120)
        assert kiosk.state is not State.IDLE
    finally:
        kiosk.stop()
        searcher.close()


# --- hallucinations ------------------------------------------------------------------------

def test_hallucinated_word_lists_are_recognised_as_such():
    vocab = ["ゴミ", "住民票", "パスポート", "図書館", "マイナンバーカード", "粗大ごみ", "児童手当"]
    assert hallucination_reason("ゴミ、カンディア、テルト、スプレーサー、ガス", vocabulary=vocab)
    assert hallucination_reason("住民票、パスポート、図書館", vocabulary=vocab)
    assert hallucination_reason("ゴミゴミ ゴミ ゴミ ゴミ", vocabulary=vocab)
    assert hallucination_reason("住民票を取りたいです" * 4, vocabulary=vocab, speech_seconds=2.0)
    for _, _, text in QUESTIONS:  # real questions are kept
        assert not hallucination_reason(text, vocabulary=vocab, speech_seconds=len(text) / 7), text


def test_whisper_drops_its_prompt_read_back(whisper, voice):
    """A clip that is nothing but a list of the prompt's words (what whisper writes in
    babble) is heard as nothing, so the kiosk asks again instead of searching it."""
    words = list(whisper.vocabulary[:6])
    clip = voice.render("、".join(words))
    t = whisper.transcribe(clip)
    assert t.heard_nothing, t


def test_low_confidence_is_asked_back_not_read_out(index_and_composer):
    from dataclasses import replace

    index, composer, _ = index_and_composer
    sure = ask(index, composer, ("住民票の写しがほしいです",), confidence=0.9)
    assert sure.kind.value == "confident"
    strict = replace(composer.settings, min_heard_confidence=0.5,
                     min_heard_confidence_noisy=0.8, noisy_room_dbfs=-50.0)
    asking = type(composer)(strict, index.categories())
    assert ask(index, asking, ("住民票の写しがほしいです",), confidence=0.3).kind.value == "unsure"
    assert ask(index, asking, ("住民票の写しがほしいです",), confidence=0.7,
                noise_dbfs=-30.0).kind.value == "unsure"
    assert ask(index, asking, ("住民票の写しがほしいです",), confidence=0.7,
                noise_dbfs=-70.0).kind.value == "confident"


# --- kiosk ask --wav --playback ------------------------------------------------------------

def _ask(tmp_path, speech_settings, *args, env_extra=None):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nmodels_dir = "{speech_settings.models_dir}"\n'
                   f'index_dir = "{tmp_path / "index"}"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "kiosk", "--config", str(cfg), "ask", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)


@pytest.fixture(scope="module")
def recording(tmp_path_factory, played):
    """A kiosk recording: the visitor asks while the answer plays; and what was played."""
    folder = tmp_path_factory.mktemp("recording")
    question = load_wav(FIXTURES / "q05.wav").at_rate(SPEECH_RATE).samples
    mic, far, _ = over_the_answer(played, question, stop_after=0.3)
    write_wav(folder / "mic.wav", AudioClip(mic, SPEECH_RATE))
    write_wav(folder / "played.wav", AudioClip(far, SPEECH_RATE))
    write_wav(folder / "played-8k.wav", AudioClip(far, SPEECH_RATE).at_rate(8000))
    write_wav(folder / "played-short.wav", AudioClip(far[: len(far) // 2], SPEECH_RATE))
    return folder


def test_ask_wav_with_playback_replays_a_kiosk_recording(tmp_path, speech_settings, recording):
    run = _ask(tmp_path, speech_settings, "--wav", str(recording / "mic.wav"),
               "--playback", str(recording / "played.wav"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("聞き取り: ") and "マイナンバーカード" in run.stdout, run.stdout


@pytest.mark.parametrize("playback, words", [
    ("played-8k.wav", "8000 Hz"),
    ("played-short.wav", "same moments"),
    ("missing.wav", "missing.wav"),
])
def test_ask_playback_bad_inputs_are_plain_messages(tmp_path, speech_settings, recording,
                                                    playback, words):
    run = _ask(tmp_path, speech_settings, "--wav", str(recording / "mic.wav"),
               "--playback", str(recording / playback))
    assert run.returncode == 2, run.stdout + run.stderr
    assert words in run.stderr and "Traceback" not in run.stderr


def test_ask_playback_without_wav_is_a_plain_message(tmp_path, speech_settings, recording):
    run = _ask(tmp_path, speech_settings, "住民票", "--playback", str(recording / "played.wav"))
    assert run.returncode == 2 and "--wav" in run.stderr and "Traceback" not in run.stderr


def test_missing_package_is_a_plain_message_and_audio_passes(tmp_path, speech_settings,
                                                             recording, monkeypatch):
    blocker = tmp_path / "blocked"
    (blocker / "pywebrtc_audio").mkdir(parents=True)
    (blocker / "pywebrtc_audio" / "__init__.py").write_text(
        "raise ImportError('blocked for the test')\n", encoding="utf-8")
    run = _ask(tmp_path, speech_settings, "--wav", str(recording / "mic.wav"),
               "--playback", str(recording / "played.wav"),
               env_extra={"PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "pip install pywebrtc-audio" in run.stderr and "Traceback" not in run.stderr

    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)  # the kiosk itself keeps going
    frontend = FrontEnd(FrontEndSettings())
    assert not frontend.active and "pip install pywebrtc-audio" in frontend.problem
    chunk = AudioClip(np.full(320, 0.1, np.float32), SPEECH_RATE)
    assert frontend.process(chunk) is chunk


def test_process_recording_checks_its_inputs(played):
    frontend = FrontEnd(FrontEndSettings())
    mic = AudioClip(np.zeros(len(played.samples), np.float32), SPEECH_RATE)
    with pytest.raises(FrontEndError, match="8000 Hz"):
        frontend.process_recording(mic, played.at_rate(8000))
    with pytest.raises(FrontEndError, match="same moments"):
        frontend.process_recording(mic, AudioClip(played.samples[:16000], SPEECH_RATE))


def test_frontend_settings_are_checked_at_load(tmp_path):
    with pytest.raises(ConfigError, match=r"\[frontend\].*neural_suppressor"):
        settings_from_dict({"frontend": {"neural_suppressor": "magic"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"\[frontend\].*noise_suppression_level"):
        settings_from_dict({"frontend": {"noise_suppression_level": 7}}, base_dir=tmp_path)


# --- dereverberation ([frontend] dereverberation = "wpe") ---------------------------------

def in_a_hall(samples: np.ndarray, rt60: float = 0.8, seed: int = 13) -> np.ndarray:
    """The question as a microphone 1 m away in a hard-walled hall hears it: direct sound,
    then an exponentially decaying diffuse tail (RT60 0.8 s) as loud as the direct sound,
    over a faint noise floor; and a second of the room after it."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    n = int(rt60 * SPEECH_RATE)
    tail = rng.standard_normal(n) * np.exp(-6.908 * np.arange(n) / SPEECH_RATE / rt60)
    tail[:80] = 0.0  # 5 ms: the diffuse tail starts after the direct sound
    rir = tail / np.sqrt(np.sum(tail**2))
    rir[0] = 1.0
    x = np.concatenate([samples.astype(np.float64), np.zeros(SPEECH_RATE)])
    wet = fftconvolve(x, rir)[: len(x)] + rng.standard_normal(len(x)) * 10 ** (-70 / 20)
    return (0.3 * wet / np.max(np.abs(wet))).astype(np.float32)


def test_dereverberation_takes_out_the_halls_tail_and_the_question_is_still_heard(
        whisper, index_and_composer):
    """WPE on a question in a reverberant hall, through the recogniser wrapper the kiosk
    uses: the reverberation ringing on after the last word is quieter, and whisper still
    hears the question and reaches its entry."""
    pytest.importorskip("nara_wpe")
    import dataclasses

    from kiosk.speech.frontend import dereverberating

    name, expected, text = QUESTIONS[9]  # 図書館のカードを作りたいです
    dry = load_wav(FIXTURES / name).at_rate(SPEECH_RATE).samples
    wet = in_a_hall(dry)
    settings = dataclasses.replace(FrontEndSettings(), dereverberation="wpe")
    recogniser = dereverberating(whisper, settings)
    assert recogniser is not whisper
    out = FrontEnd(settings).dereverberate(AudioClip(wet, SPEECH_RATE)).samples
    assert len(out) == len(wet)
    last = int(np.flatnonzero(np.abs(dry) > 0.02)[-1])
    ringing = slice(last + SPEECH_RATE // 10, last + SPEECH_RATE // 2)  # 0.1-0.5 s after
    assert power_db(out[ringing]) < power_db(wet[ringing]) - 1.0, \
        (power_db(wet[ringing]), power_db(out[ringing]))
    spoken = slice(0, last)  # the words themselves keep their level
    assert abs(power_db(out[spoken]) - power_db(wet[spoken])) < 1.5
    t = recogniser.transcribe(AudioClip(wet, SPEECH_RATE))
    assert character_error_rate(text, t.text) <= 0.25, t
    assert reaches(index_and_composer, t, expected), t


def test_dereverberation_without_nara_wpe_is_a_plain_message(monkeypatch, caplog):
    """Without the package the kiosk keeps running without dereverberation: the front end
    (and so `kiosk doctor`'s "Audio front end" line) says what to install, the recogniser is
    used as it is, and the log says it once."""
    import dataclasses
    import logging

    from kiosk.speech import frontend as fe

    monkeypatch.setitem(sys.modules, "nara_wpe", None)
    monkeypatch.setitem(sys.modules, "nara_wpe.wpe", None)
    monkeypatch.setitem(sys.modules, "nara_wpe.utils", None)
    monkeypatch.setattr(fe, "_dereverberation_noted", set())
    settings = dataclasses.replace(FrontEndSettings(), dereverberation="wpe")
    frontend = FrontEnd(settings)
    assert "pip install nara-wpe" in frontend.problem and "dereverberation" in frontend.problem
    assert not frontend.dereverberates
    clip = AudioClip(np.full(16000, 0.1, np.float32), SPEECH_RATE)
    assert frontend.dereverberate(clip) is clip

    class Recogniser:
        name = "fake"

    recogniser = Recogniser()
    with caplog.at_level(logging.WARNING, logger="kiosk.speech.frontend"):
        assert fe.dereverberating(recogniser, settings) is recogniser
        assert fe.dereverberating(recogniser, settings) is recogniser
    said = [r.getMessage() for r in caplog.records if "nara-wpe" in r.getMessage()]
    assert len(said) == 1 and "pip install nara-wpe" in said[0], said
