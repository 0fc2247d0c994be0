"""The documented defaults file and the code's defaults must never drift apart."""

import tomllib
from pathlib import Path

import pytest

from kiosk.config import DEFAULTS_FILE, ConfigError, defaults_as_dict, load_settings


def test_defaults_file_documents_every_default_exactly():
    with open(DEFAULTS_FILE, "rb") as fh:
        documented = tomllib.load(fh)
    assert documented == defaults_as_dict()


def test_defaults_file_loads_as_a_config(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_bytes(DEFAULTS_FILE.read_bytes())
    settings = load_settings(cfg)
    assert settings.index_dir == tmp_path / "index"


def test_unknown_key_is_named(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[search]\nlimt = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="limt"):
        load_settings(cfg)


def test_wrong_type_is_named(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[search]\nlimit = "ten"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="'limit' must be a whole number"):
        load_settings(cfg)


def test_broken_toml_names_the_file(tmp_path: Path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[search\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)


def test_relative_paths_resolve_against_the_config_folder_at_load(tmp_path: Path, monkeypatch):
    """`kiosk run` hands each stage only its own section (Speakable(settings.voice)); under the
    shipped unit the working folder is /var/lib/kiosk, so a relative [voice] readings_file must
    already point into the config's folder when the config is loaded."""
    from kiosk.voice.speakable import Speakable

    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "readings.tsv").write_text("妻田\tツマタ\n", encoding="utf-8")
    cfg = conf_dir / "kiosk.toml"
    cfg.write_text('[voice]\nreadings_file = "readings.tsv"\n'
                   '[content]\nsynonyms_file = "syn.tsv"\n', encoding="utf-8")
    elsewhere = tmp_path / "var-lib-kiosk"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(cfg)
    assert Path(settings.voice.readings_file) == conf_dir / "readings.tsv"
    assert Path(settings.content.synonyms_file) == conf_dir / "syn.tsv"
    assert Speakable(settings.voice).normalise("妻田") == "ツマタ"


def test_config_error_is_a_kiosk_error():
    """The CLI prints every KioskError plainly, without a traceback."""
    from kiosk import KioskError

    assert issubclass(ConfigError, KioskError)


# ------------------------------------------------------------ issue 17: checked at load


def _load(tmp_path: Path, text: str):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg, lambda: load_settings(cfg)


@pytest.mark.parametrize("text, message", [
    ("[voice]\nvolume = 3\n", r"\[voice\]: 'volume' = 3 is out of range; it must be between 0 and 1"),
    ("[audio]\nvolume = -0.5\n", r"'volume' = -0.5 is out of range"),
    ("[screen]\nport = 70000\n", r"'port' = 70000 is out of range; it must be between 0 and 65535"),
    ("[search]\nlimit = 0\n", r"'limit' = 0 is out of range; it must be between 1 and 1000"),
    ("[voice]\nvolume_steps = [0.5, 2.0]\n", r"'volume_steps' = 2 is out of range"),
    ("[voice]\nrate_steps = []\n", r"'rate_steps' must list at least one value"),
    ("[content]\nkeep_versions = -1\n", r"'keep_versions' = -1 is out of range; it must be at least 0"),
    ('[asr]\nengine = "whsper"\n', r"'engine' = 'whsper' is not allowed; use one of \"auto\""),
    ('[ui]\nlanguage = "fr"\n', r"'language' = 'fr' is not allowed; use one of \"ja\", \"en\""),
    ("[search]\nsemantic = 1\n", r"'semantic' must be true or false, not 1"),
    ("[search]\nlimit = true\n", r"'limit' must be a whole number, not True"),
    ("[voice]\nrate_steps = [5, \"fast\"]\n", r"'rate_steps' must be a number, not 'fast'"),
    ("[search]\nreading_ngram_min = 4\nreading_ngram_max = 3\n",
     r"'reading_ngram_min' \(4\) must not be larger than 'reading_ngram_max' \(3\)"),
    # [endpointing] was refused only when the microphone's endpointer was first built
    ("[endpointing]\npause_seconds = 0\n", r"'pause_seconds' = 0 is out of range"),
    ("[endpointing]\nunsure_silence_seconds = 2.5\n",
     r"'unsure_silence_seconds' \(2\.5\) must not be larger than 'continuing_silence_seconds' "
     r"\(1\.8\)"),
    ("[endpointing]\npause_seconds = 0.4\n",
     r"'pause_seconds' \(0\.4\) must be smaller than 'complete_silence_seconds' \(0\.4\)"),
    # a speech probability of 1 (or 0) is never crossed: refused only by the endpointer
    ("[endpointing]\nthreshold = 1.0\n",
     r"'threshold' = 1 is out of range; it must be between 0\.01 and 0\.99"),
])
def test_values_are_checked_when_the_config_is_read(tmp_path: Path, text: str, message: str):
    """Issue 17: `[voice] volume = 3` was accepted until the voice was first used."""
    cfg, load = _load(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load()
    assert str(cfg) in str(info.value)


def test_a_typo_gets_did_you_mean(tmp_path: Path):
    _, load = _load(tmp_path, "[voice]\nvolum = 0.5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'volum' \(did you mean 'volume'\?\)"):
        load()
    _, load = _load(tmp_path, "[sreen]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section \[sreen\] \(did you mean 'screen'\?\)"):
        load()


def test_a_key_in_the_wrong_section_says_where_it_belongs(tmp_path: Path):
    _, load = _load(tmp_path, "[audio]\nsemantic_threads = 2\n")
    with pytest.raises(ConfigError, match=r"'semantic_threads' \(it belongs in \[search\]\)"):
        load()


def test_every_range_names_a_real_setting():
    from kiosk.config import CHOICES, RANGES

    for name in [*RANGES, *CHOICES]:
        section, key = name.split(".")
        assert key in defaults_as_dict()[section], name


@pytest.mark.parametrize("line", ["record = true", "record = false", 'record_dir = "rec"'])
def test_the_removed_audio_recording_option_is_refused_with_the_reason(tmp_path: Path, line):
    """`[audio] record` never recorded anything (issue 15): it is gone, and a config that
    still sets it is told so instead of promising a recording that never happens."""
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f"[audio]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[audio\] record.* removed.*never saves audio"):
        load_settings(cfg)
    assert "record" not in defaults_as_dict()["audio"]
