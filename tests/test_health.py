"""/healthz tells the truth (issue 15): a missing speaker shows before anything tries to
play, and a failing bundle poller, an unwritable audit log or an index version that cannot
be reopened all show as problems an operator can act on. A real `kiosk run` service on
loopback, without a microphone."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from kiosk.config import load_settings
from kiosk.content.audit import AuditLog
from kiosk.content.contract import Entry
from kiosk.content.publishing import ContentPublisher

ENTRIES = [Entry(id="library-hours", title="図書館の開館時間",
                 body="中央図書館は朝9時から夜7時まで開いています。", category="施設")]


def _service(folder: Path, *lines: str):
    from kiosk.cli.service import KioskService

    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "kiosk.toml"
    cfg.write_text("\n".join(['[paths]', 'index_dir = "index"', 'state_dir = "var"',
                              '[screen]', 'port = 0', *lines]) + "\n", encoding="utf-8")
    settings = load_settings(cfg)
    ContentPublisher(settings).publish_entries(ENTRIES, who="install")
    return KioskService(settings, headless=True, microphone=False)


def _healthz(service) -> dict:
    with urllib.request.urlopen(service.url + "healthz", timeout=10) as r:
        return json.loads(r.read())


def _other_problems(health: dict) -> list[str]:
    """Problems apart from sound devices (a test machine may have no speaker at all)."""
    return [p for p in health["problems"]
            if not p.startswith(("speaker", "microphone", "headphones"))]


def _until(predicate, what: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_missing_speaker_shows_before_anything_plays(tmp_path):
    service = _service(tmp_path / "nospeaker", "[audio]",
                       'output_device = "no-such-speaker-in-this-room"')
    service.start()
    try:
        health = _healthz(service)
        assert health["devices"]["speaker"] is False
        assert health["status"] == "degraded"
        [problem] = [p for p in health["problems"] if p.startswith("speaker")]
        assert "no-such-speaker-in-this-room" in problem and "kiosk doctor" in problem
        assert "PaErrorCode" not in json.dumps(health)
    finally:
        service.stop()


def test_a_failing_poller_an_unwritable_audit_log_and_a_broken_index_show(tmp_path):
    missing = tmp_path / "not-there.kiosk"
    service = _service(tmp_path / "troubles", "[bundle]", f'pull_url = "{missing}"',
                       "poll_minutes = 15", f'public_key_file = "{missing}.pub"')
    service.start()
    try:
        assert not _other_problems(_healthz(service))
        poller = _until(lambda: _healthz(service).get("bundle_poller", {}).get("failures"),
                        "the first poll")
        assert poller == 1
        health = _healthz(service)
        assert health["bundle_poller"]["ok"] is False and health["status"] == "degraded"
        assert str(missing) in health["bundle_poller"]["last_error"]

        state = service.settings.state_dir
        audit = state / "audit.jsonl"
        audit.unlink(missing_ok=True)
        audit.mkdir()
        AuditLog(state).record("publish", "test")  # cannot be written: reported, not raised
        assert any("audit log" in p for p in _healthz(service)["problems"])

        publisher = ContentPublisher(service.settings)
        new = publisher.publish_entries([*ENTRIES, Entry(id="pool", title="プール",
                                                         body="市民プールです。")]).version
        for toc in new.path.glob("*.toc"):
            toc.write_bytes(b"damaged after publishing")
        service.searcher.refresh()
        problems = _healthz(service)["problems"]
        assert any(new.id in p and "index" in p for p in problems), problems
    finally:
        service.stop()


@pytest.mark.parametrize("message", ["PortAudio not initialized [PaErrorCode -10000]",
                                     "Error opening OutputStream: Invalid device [PaErrorCode -9996]"])
def test_portaudio_errors_read_as_something_an_operator_can_do(message):
    from kiosk.speech.audio import plain_audio_error

    text = plain_audio_error("speaker", message)
    assert "PaErrorCode" not in text and "kiosk doctor" in text
