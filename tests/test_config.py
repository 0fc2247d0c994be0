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
