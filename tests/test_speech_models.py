"""Model management: the whisper model assembled from the wheels with every checksum
verified, and `kiosk models install` for vosk from a zip or a loopback HTTP server — with
every kind of bad download refused by a plain message naming the command that fixes it."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import AsrSettings, Settings
from kiosk.speech.models import (
    MANIFEST,
    ModelError,
    active_engine,
    assemble_whisper_model,
    ensure_whisper_model,
    install_vosk_model,
    parse_checksum,
    vosk_status,
    whisper_status,
)
from kiosk.speech.recogniser import open_recogniser

NAME = "vosk-model-small-ja-0.22"


def _model_zip(folder: Path, name: str = NAME) -> Path:
    """A zip shaped like the vosk archive (one top folder); the mechanics do not load it."""
    files = {
        "am/final.mdl": b"A" * 5000,
        "conf/model.conf": b"--min-active=200\n",
        "conf/mfcc.conf": b"--use-energy=false\n",
        "graph/HCLr.fst": b"F" * 20000,
        "graph/Gr.fst": b"G" * 10000,
        "graph/phones/word_boundary.int": b"1 nonword\n",
        "ivector/final.ie": b"I" * 3000,
        "README": b"test model\n",
    }
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"{name}/{rel}", data)
    return path


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _config(tmp_path: Path, checksum: str = "", url: str = "") -> Path:
    cfg = tmp_path / "kiosk.toml"
    lines = ["[asr]"]
    if checksum:
        lines.append(f'vosk_checksum = "{checksum}"')
    if url:
        lines.append(f'vosk_url = "{url}"')
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


# --- whisper -----------------------------------------------------------------------------

def test_bundled_whisper_is_ready_or_assemblable(speech_settings, whisper_recogniser):
    status = whisper_status(speech_settings)
    assert status.state == "ready" and status.usable
    manifest = json.loads((status.path / MANIFEST).read_text())
    assert manifest["sha256"]["model.bin"].startswith("d01c3014")


def test_whisper_checksum_failure_is_refused(tmp_path):
    fake = tmp_path / "config.json"
    fake.write_text('{"tampered": true}')
    with pytest.raises(ModelError, match="failed its SHA-256 check.*force-reinstall"):
        assemble_whisper_model(tmp_path / "models" / "whisper-base",
                               sources={"config.json": [fake]})
    assert not (tmp_path / "models" / "whisper-base").exists()  # nothing half-written


def test_truncated_whisper_model_is_noticed_and_rebuilt(tmp_path):
    settings = Settings(base_dir=tmp_path)
    assert whisper_status(settings).state == "not assembled yet"
    folder = ensure_whisper_model(settings)
    with open(folder / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    status = whisper_status(settings)
    assert status.state == "corrupt" and "truncated" in status.detail
    ensure_whisper_model(settings)  # rebuilt from the wheels
    assert whisper_status(settings).state == "ready"
    assert (folder / "model.bin").stat().st_size == 145217532


def test_first_use_assembles_the_model_without_a_warning_and_shows_progress(tmp_path, caplog):
    """Issue 17: the first `kiosk ask --wav` logged a WARNING for the normal assembly."""
    import logging

    from kiosk.progress import reporting_to
    from kiosk.speech.whisper import WhisperRecogniser

    seen = []
    caplog.set_level(logging.INFO, logger="kiosk")
    with reporting_to(seen.append):
        WhisperRecogniser.from_settings(Settings(base_dir=tmp_path))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("assembling the whisper model" in r.getMessage() for r in caplog.records)
    steps = [u for u in seen if u.step.startswith("assembling the speech model")]
    assert steps[-1].finished and steps[-1].done == steps[-1].total > 100_000_000
    # a damaged model is still worth a warning
    with open(tmp_path / "models" / "whisper-base" / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    caplog.clear()
    ensure_whisper_model(Settings(base_dir=tmp_path), log=logging.getLogger("kiosk.t").info,
                         warn=logging.getLogger("kiosk.t").warning)
    assert [r.levelname for r in caplog.records if "damaged" in r.getMessage()] == ["WARNING"]


# --- vosk install ---------------------------------------------------------------------------

def test_install_from_zip_then_list_shows_vosk_active(tmp_path, capsys):
    z = _model_zip(tmp_path)
    cfg = _config(tmp_path, _sha(z))
    assert main(["--config", str(cfg), "models", "install", "--from", str(z)]) == 0
    out, err = capsys.readouterr()
    assert "vosk model installed" in out and "100%" in err
    settings = Settings(base_dir=tmp_path, asr=AsrSettings(vosk_checksum=_sha(z)))
    assert vosk_status(settings).state == "ready"
    assert active_engine(settings) == "vosk"
    assert main(["--config", str(cfg), "models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "* vosk" in listing and "active engine: vosk" in listing


def test_wrong_checksum_installs_nothing(tmp_path, capsys):
    z = _model_zip(tmp_path)
    cfg = _config(tmp_path, "sha256:" + "0" * 64)
    assert main(["--config", str(cfg), "models", "install", "--from", str(z)]) == 2
    err = capsys.readouterr().err
    assert "failed its SHA256 check" in err and "Nothing was installed" in err
    assert "Traceback" not in err
    assert not (tmp_path / "models" / NAME).exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == []  # no leftovers


def test_md5_pins_work_too(tmp_path):
    z = _model_zip(tmp_path)
    md5 = "md5:" + hashlib.md5(z.read_bytes()).hexdigest()
    install_vosk_model(Settings(base_dir=tmp_path), z, checksum=md5, show_progress=False)
    assert vosk_status(Settings(base_dir=tmp_path)).state == "ready"


def test_bad_checksum_setting_is_explained():
    with pytest.raises(ModelError, match="sha256:<hex> or md5:<hex>"):
        parse_checksum("crc32:1234")


def test_truncated_zip_is_refused(tmp_path):
    z = _model_zip(tmp_path)
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(ModelError, match="not a valid zip"):
        install_vosk_model(Settings(base_dir=tmp_path), z, checksum=_sha(z), show_progress=False)


def test_zip_without_a_model_is_refused(tmp_path):
    z = tmp_path / "photos.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("holiday/photo.jpg", b"x" * 100)
    with pytest.raises(ModelError, match="does not hold a vosk model.*am/final.mdl"):
        install_vosk_model(Settings(base_dir=tmp_path), z, checksum=_sha(z), show_progress=False)


def test_zip_with_unsafe_paths_is_refused(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../etc/evil", b"x")
    with pytest.raises(ModelError, match="unsafe path"):
        install_vosk_model(Settings(base_dir=tmp_path), z, checksum=_sha(z), show_progress=False)
    assert not (tmp_path.parent / "etc").exists()


def test_missing_zip_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        install_vosk_model(Settings(base_dir=tmp_path), tmp_path / "nope.zip",
                           checksum="md5:00", show_progress=False)


@pytest.fixture
def http_server(tmp_path):
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(folder), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_install_downloads_over_http_with_progress(tmp_path, http_server, capsys):
    folder, base = http_server
    z = _model_zip(folder)
    cfg = _config(tmp_path, _sha(z), f"{base}/{z.name}")
    assert main(["--config", str(cfg), "models", "install"]) == 0
    err = capsys.readouterr().err
    assert "downloading" in err and "100%" in err
    assert (tmp_path / "models" / NAME / "am" / "final.mdl").is_file()


def test_failed_download_points_to_usb_install(tmp_path, http_server, capsys):
    _, base = http_server
    cfg = _config(tmp_path, "md5:00", f"{base}/missing.zip")
    assert main(["--config", str(cfg), "models", "install"]) == 2
    err = capsys.readouterr().err
    assert "could not download" in err and "--from FILE.zip" in err


def test_reinstall_replaces_the_old_model(tmp_path):
    z = _model_zip(tmp_path)
    settings = Settings(base_dir=tmp_path)
    install_vosk_model(settings, z, checksum=_sha(z), show_progress=False)
    (tmp_path / "models" / NAME / "stale-file").write_text("old")
    install_vosk_model(settings, z, checksum=_sha(z), show_progress=False)
    assert not (tmp_path / "models" / NAME / "stale-file").exists()


# --- damaged installed models ------------------------------------------------------------

@pytest.fixture
def installed(tmp_path):
    z = _model_zip(tmp_path)
    settings = Settings(base_dir=tmp_path)
    install_vosk_model(settings, z, checksum=_sha(z), show_progress=False)
    return settings, tmp_path / "models" / NAME


def test_truncated_vosk_model_is_corrupt_and_names_the_fix(installed, capsys):
    settings, folder = installed
    with open(folder / "graph" / "HCLr.fst", "r+b") as fh:
        fh.truncate(100)
    status = vosk_status(settings)
    assert status.state == "corrupt" and "truncated" in status.detail
    assert "kiosk models install" in status.detail
    assert active_engine(settings) == "whisper"  # auto falls back to the bundled engine


def test_partial_vosk_model_names_missing_files(installed):
    settings, folder = installed
    (folder / "am" / "final.mdl").unlink()
    status = vosk_status(settings)
    assert status.state == "partial" and "am/final.mdl" in status.detail


def test_forcing_a_broken_vosk_model_gives_a_plain_error(installed):
    settings, _ = installed
    forced = Settings(base_dir=settings.base_dir, asr=AsrSettings(engine="vosk"))
    with pytest.raises(ModelError, match="could not be loaded.*kiosk models install"):
        open_recogniser(forced)  # files complete but not a real model


def test_doctor_reports_devices_and_models(tmp_path, capsys):
    cfg = _config(tmp_path)
    code = main(["--config", str(cfg), "doctor"])
    out = capsys.readouterr().out
    assert "Sound devices:" in out and "Speech models:" in out
    assert "recording of questions" not in out  # the kiosk never records audio
    assert "meaning (multilingual-e5-small): ok" in out
    assert "kana to kanji (Mozc dictionary): ok" in out
    assert code in (0, 1)
    shutil.rmtree(tmp_path / "models", ignore_errors=True)


def test_doctor_says_dereverberation_needs_nara_wpe(tmp_path, capsys, monkeypatch):
    """[frontend] dereverberation = "wpe" without the package: `kiosk doctor`'s audio front
    end line says what to install, as for the front end's other optional parts."""
    cfg = _config(tmp_path)
    cfg.write_text(cfg.read_text(encoding="utf-8") + '[frontend]\ndereverberation = "wpe"\n',
                   encoding="utf-8")
    for name in ("nara_wpe", "nara_wpe.wpe", "nara_wpe.utils"):
        monkeypatch.setitem(sys.modules, name, None)
    main(["--config", str(cfg), "doctor"])
    out = capsys.readouterr().out
    front = out[out.index("Audio front end:"):].split("Search helpers")[0]
    assert "dereverberation" in front and "pip install nara-wpe" in front, front
    shutil.rmtree(tmp_path / "models", ignore_errors=True)
