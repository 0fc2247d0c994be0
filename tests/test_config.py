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
    with pytest.raises(ConfigError, match="'limit' must be int"):
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
