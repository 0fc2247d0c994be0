"""The kiosk voice end to end: pyttsx3 with the Open JTalk driver writing real WAV files, and
kiosk.voice.synthesis.Voice streaming real audio to a fake speaker (the hardware edge: there is no
sound card here). The voice is loaded once for the whole session."""

from __future__ import annotations

import shutil
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

import kiosk.voice.openjtalk as driver
from kiosk.cli import main
from kiosk.config import VoiceSettings
from kiosk.speech.audio import AudioClip
from kiosk.voice.synthesis import Voice

SENTENCE = "市役所の受付時間は午前八時半から午後五時十五分までです。"


class FakeSpeaker:
    """Collects what would have been played; can press "stop" after n clips (barge-in)."""

    def __init__(self, stop_after: int | None = None):
        self.clips: list[AudioClip] = []
        self.stop_after = stop_after

    def play(self, clip: AudioClip, stop_event: threading.Event | None = None) -> bool:
        self.clips.append(clip)
        if self.stop_after is not None and len(self.clips) >= self.stop_after and stop_event:
            stop_event.set()
            return False
        return True

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate([c.samples for c in self.clips])


@pytest.fixture(scope="session")
def engine():
    import pyttsx3

    eng = pyttsx3.init(driver.DRIVER_NAME)
    yield eng
    eng.setProperty("rate", VoiceSettings().rate * 60)


@pytest.fixture(scope="session")
def voice() -> Voice:
    return Voice(VoiceSettings())


@pytest.fixture(scope="session")
def morae() -> int:
    return driver.count_morae(SENTENCE)


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return params, data.astype(np.float64) / 32768.0


def spoken_seconds(samples: np.ndarray, rate: int) -> float:
    """From the first to the last sample above -34 dBFS: the audible speech."""
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return (loud[-1] - loud[0]) / rate if loud.size else 0.0


def save(engine, text: str, path: Path) -> None:
    engine.save_to_file(text, str(path))
    engine.runAndWait()


def test_wav_is_complete_when_runAndWait_returns(engine, tmp_path: Path, morae: int):
    out = tmp_path / "answer.wav"
    save(engine, SENTENCE, out)
    assert out.is_file()
    params, samples = read_wav(out)
    assert (params.framerate, params.sampwidth, params.nchannels) == (48000, 2, 1)
    seconds = spoken_seconds(samples, params.framerate)
    # ~8 morae per second by default: a dragging or rushing voice falls outside this range.
    assert morae / 8.0 * 0.8 < seconds < morae / 8.0 * 1.25
    assert params.nframes / params.framerate < seconds + 0.5  # no long silences at the edges


def test_peak_stays_below_full_scale(engine, tmp_path: Path):
    out = tmp_path / "loud.wav"
    engine.setProperty("volume", 1.0)
    save(engine, "大きな声でお知らせします！", out)
    engine.setProperty("volume", VoiceSettings().volume)
    _, samples = read_wav(out)
    peak_dbfs = 20 * np.log10(np.max(np.abs(samples)))
    assert -1.5 < peak_dbfs < 0.0


def test_slower_rate_lengthens_the_speech(engine, tmp_path: Path, morae: int):
    normal, slow = tmp_path / "normal.wav", tmp_path / "slow.wav"
    save(engine, SENTENCE, normal)
    engine.setProperty("rate", 6.0 * 60)
    try:
        save(engine, SENTENCE, slow)
    finally:
        engine.setProperty("rate", 8.0 * 60)
    n = spoken_seconds(read_wav(normal)[1], 48000)
    s = spoken_seconds(read_wav(slow)[1], 48000)
    assert s > n * 1.2
    assert morae / 6.0 * 0.8 < s < morae / 6.0 * 1.25


def test_second_runAndWait_works_and_events_fire(engine, tmp_path: Path):
    events: list[tuple[str, dict]] = []
    tokens = [engine.connect(topic, lambda topic=topic, **kw: events.append((topic, kw)))
              for topic in ("started-utterance", "started-word", "finished-utterance")]
    speaker = FakeSpeaker()
    engine.setProperty("speaker", speaker)
    try:
        for n in range(2):  # pyttsx3 sends endLoop before startLoop on the second run
            text = f"{n + 1}回目です。聞こえますか。"
            engine.say(text, f"utt{n}")
            engine.runAndWait()
            topics = [t for t, kw in events if kw["name"] == f"utt{n}"]
            assert topics == ["started-utterance", "started-word", "started-word",
                              "finished-utterance"]
            words = [kw for t, kw in events if t == "started-word" and kw["name"] == f"utt{n}"]
            assert [text[w["location"]: w["location"] + w["length"]] for w in words] == [
                f"{n + 1}回目です。", "聞こえますか。"]
            finished = [kw for t, kw in events if t == "finished-utterance"][-1]
            assert finished["completed"] is True
        assert len(speaker.clips) == 4 and all(c.rate == 48000 for c in speaker.clips)
    finally:
        engine.setProperty("speaker", None)
        for token in tokens:
            engine.disconnect(token)


def test_voices_list_bundled_mei_and_any_htsvoice_in_models(engine, tmp_path: Path):
    ids = [v.id for v in engine.getProperty("voices")]
    assert "mei_normal" in ids and not any(i.startswith("LICENSE") for i in ids)
    extra = tmp_path / "voices"
    extra.mkdir()
    shutil.copy(driver.resolve_voice("mei_normal").path, extra / "mei_copy.htsvoice")
    (extra / "notes.htsvoice").write_text("not a voice", encoding="utf-8")
    found = [v.id for v in driver.find_voice_files(tmp_path)]
    assert found == ["mei_normal", "mei_copy"]


def test_unknown_voice_names_the_choices():
    with pytest.raises(driver.VoiceError, match="available: mei_normal"):
        driver.resolve_voice("takumi_normal")


def test_voice_speaks_sentence_by_sentence_with_pauses(voice: Voice):
    speaker = FakeSpeaker()
    assert voice.speak("こんにちは。本厚木駅から歩いて五分です。", speaker, threading.Event())
    speech = speaker.clips
    assert len(speech) == 2
    # the short lead-in is in front of the first sentence, in the same clip (a device that
    # starts slowly clips silence, not the first word)
    lead = int(voice.settings.pause_before_seconds * 48000)
    assert lead > 0 and not speech[0].samples[:lead].any() and speech[0].samples[lead:].any()
    tail = speech[-1].samples[-int(0.45 * 48000):]
    assert not tail.any()  # the pause after the answer
    assert np.max(np.abs(speaker.samples)) < 1.0


def test_a_prepared_first_sentence_is_used_once_and_a_different_one_is_made_anew(voice: Voice):
    text = "図書館は、午後七時まで開いています。月曜日はお休みです。"
    direct = [c.samples for c in voice.synthesize(text)]
    voice.prepare(text)
    assert voice._prepared is not None
    prepared = [c.samples for c in voice.synthesize(text)]
    assert voice._prepared is None  # used up
    assert len(prepared) == len(direct) and all(np.array_equal(a, b) for a, b in zip(prepared, direct))
    voice.prepare(text, rate=6.0)  # another pace: not what is about to be said
    first = next(voice.synthesize("ごみは朝八時までに出してください。"))
    assert first.samples.any() and voice._prepared is None


class _GateLock:
    """The voice's synthesis lock, noting when a second thread asks for it (then `asked`)."""

    def __init__(self) -> None:
        self.lock, self.asked, self.entries = threading.Lock(), threading.Event(), 0

    def __enter__(self) -> None:
        self.entries += 1
        if self.entries == 2:
            self.asked.set()
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_speaking_while_the_first_sentence_is_being_prepared_waits_for_it(voice: Voice):
    """The kiosk ends a turn while its first sentence is still being synthesized
    (kiosk/dialogue/turns.py): the answer then waits for that sentence instead of making
    it a second time. The prepare is held inside the synthesizer until the answer asks
    for the lock, so the order is fixed whatever the machine's speed."""
    text = "図書館は、午後七時まで開いています。月曜日はお休みです。"
    synth, gate = voice.synth, _GateLock()
    made: list[str] = []

    class HeldSynth:  # the real synthesizer; its first call waits for the answer to start
        sample_rate = synth.sample_rate

        def synthesize(self, said: str, **kwargs: object) -> np.ndarray:
            made.append(said)
            if len(made) == 1:
                gate.asked.wait(30)
            return synth.synthesize(said, **kwargs)

    voice.synth, lock = HeldSynth(), voice._synth_lock
    voice._synth_lock = gate  # type: ignore[assignment]
    try:
        preparing = threading.Thread(target=voice.prepare, args=(text,))
        preparing.start()
        spoken = [c.samples for c in voice.synthesize(text)]
        preparing.join(30)
    finally:
        voice.synth, voice._synth_lock = synth, lock
    assert gate.asked.is_set()
    assert made.count(made[0]) == 1, made  # the first sentence was synthesized once
    direct = [c.samples for c in voice.synthesize(text)]
    assert len(spoken) == len(direct) and all(np.array_equal(a, b) for a, b in zip(spoken, direct))


def test_first_sentence_is_ready_before_the_rest_is_synthesized(voice: Voice):
    clips = voice.synthesize("受付の時間は、平日の午前八時半から午後五時十五分までです。"
                             "土曜日はお休みです。")
    first = next(clips)
    assert first.duration < 1.5  # only the first clause: it plays while the rest is made
    assert len(list(clips)) == 2


def test_slow_delivery_lengthens_the_answer(voice: Voice):
    normal = voice.render(SENTENCE)
    slow = voice.render(SENTENCE, slow=True)
    assert slow.duration > normal.duration * 1.2


def test_stop_event_cuts_the_answer_short(voice: Voice):
    speaker = FakeSpeaker(stop_after=2)
    assert not voice.speak("一つ目の文です。二つ目の文です。三つ目の文です。", speaker,
                           threading.Event())
    assert len(speaker.clips) == 2


def test_softer_volume_lowers_the_peak(voice: Voice):
    loud = np.max(np.abs(voice.render("音量の確認です。").samples))
    voice.volume = 0.4
    try:
        soft = np.max(np.abs(voice.render("音量の確認です。").samples))
    finally:
        voice.reset()
    assert soft == pytest.approx(loud * 0.4 / VoiceSettings().volume, rel=0.01)


def test_kiosk_say_writes_a_wav(tmp_path: Path, capsys):
    out = tmp_path / "say.wav"
    assert main(["say", "受付は8:30〜17:15です。", "--out", str(out), "--slow"]) == 0
    params, samples = read_wav(out)
    assert params.framerate == 48000 and spoken_seconds(samples, 48000) > 2.0


def test_kiosk_say_reading_and_about(capsys):
    assert main(["say", "--reading", "電話は046-223-1511です。"]) == 0
    assert "ゼロヨンロク" in capsys.readouterr().out
    assert main(["say", "--about"]) == 0
    about = capsys.readouterr().out
    assert "CC BY 3.0" in about and "Nagoya Institute of Technology" in about
    assert "Open JTalk" in about


def test_kiosk_say_bad_input_is_explained(tmp_path: Path, capsys):
    assert main(["say", "テスト", "--out", str(tmp_path / "no" / "x.wav")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["say", "テスト", "--volume", "3"]) == 2
    assert "between 0.0 and 1.0" in capsys.readouterr().err


def test_kiosk_ask_out_writes_the_spoken_answer(tmp_path: Path, capsys):
    from kiosk.config import Settings
    from kiosk.content.contract import Entry
    from kiosk.search.index import build_index

    index = tmp_path / "index"
    index.mkdir()
    build_index([Entry(id="t1", title="市役所の受付時間",
                       body="市役所の受付時間は、平日の8:30〜17:15です。", category="手続き"),
                 Entry(id="t2", title="ごみの出し方", body="燃えるごみは週2回です。",
                       category="くらし")], index, Settings())
    out = tmp_path / "answer.wav"
    assert main(["ask", "市役所の受付時間", "--index", str(index), "--out", str(out)]) == 0
    params, samples = read_wav(out)
    assert params.framerate == 48000 and spoken_seconds(samples, 48000) > 2.0


def test_interrupted_utterance_reports_not_completed(engine):
    finished: list[bool] = []
    token = engine.connect("finished-utterance", lambda **kw: finished.append(kw["completed"]))
    engine.setProperty("speaker", FakeSpeaker(stop_after=1))
    try:
        engine.say("一つ目の文です。二つ目の文です。")
        engine.runAndWait()
    finally:
        engine.setProperty("speaker", None)
        engine.disconnect(token)
    assert finished == [False]


def test_a_lost_speaker_is_reported_and_the_voice_still_works(voice: Voice):
    from kiosk.speech.audio import DeviceLost

    class Unplugged:
        def play(self, clip, stop_event=None):
            raise DeviceLost("the speaker is unplugged")

    with pytest.raises(DeviceLost):
        voice.speak("お知らせです。", Unplugged(), threading.Event())
    speaker = FakeSpeaker()  # the speaker is back: the voice speaks again at once
    assert voice.speak("お知らせです。", speaker, threading.Event())
    assert len(speaker.clips) == 1  # the lead-in and the one sentence, in one clip


def test_unusable_voice_settings_name_the_key():
    with pytest.raises(driver.VoiceError, match=r"\[voice\]: 'rate' = 50 is out of range"):
        Voice(VoiceSettings(rate=50.0))
    with pytest.raises(driver.VoiceError, match="peak_dbfs"):
        Voice(VoiceSettings(peak_dbfs=0.0))
