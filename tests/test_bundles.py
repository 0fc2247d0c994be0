"""Signed content bundles: only a complete bundle signed with the configured key and newer
than the live content is applied; anything else is refused and the live content stays as it
was. A good bundle is applied while searches keep answering."""

from __future__ import annotations

import functools
import http.server
import io
import stat
import threading
import zipfile
from pathlib import Path

import pytest
from kiosk_visitors import keep_searching

from kiosk import KioskError
from kiosk.config import load_settings
from kiosk.content.audit import AuditLog
from kiosk.content.bundles import (
    CONTENT_FILE,
    MANIFEST,
    SIGNATURE,
    BundleError,
    BundlePoller,
    applied_state,
    fetch_bundle,
    load_private_key,
    load_public_key,
    make_bundle,
    new_key_pair,
    pack_bundle,
    pull_bundle,
    read_bundle,
)
from kiosk.content.contract import Entry
from kiosk.content.publishing import ContentPublisher
from kiosk.search.versions import IndexVersions, LiveIndex

CSV_HEAD = "id,title,body,category\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    private, public = new_key_pair(folder)
    other_private, _ = new_key_pair(folder, "other")
    return load_private_key(private), load_public_key(public), load_private_key(other_private)


def _bundle(key, version: int = 1, content: bytes = b"x") -> bytes:
    return pack_bundle({CONTENT_FILE: content, "synonyms.tsv": b""}, key, version, 1)[0]


# ------------------------------------------------------------------------------- keys


def test_new_key_pair_keeps_the_private_key_private_and_never_overwrites(tmp_path: Path):
    private, public = new_key_pair(tmp_path)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in public.read_bytes()
    with pytest.raises(KioskError, match="never overwritten"):
        new_key_pair(tmp_path)
    with pytest.raises(KioskError, match="not an Ed25519 private key"):
        load_private_key(public)
    with pytest.raises(KioskError, match="not an Ed25519 public key"):
        load_public_key(private)


# ---------------------------------------------------------------------- verification


def test_a_good_bundle_verifies(keys):
    key, public, _ = keys
    verified = read_bundle(_bundle(key, 7, b"hello"), public)
    assert verified.manifest.version == 7
    assert verified.files[CONTENT_FILE] == b"hello"


def test_unsigned_bundle_is_refused(keys):
    key, public, _ = keys
    src = zipfile.ZipFile(io.BytesIO(_bundle(key)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in src.namelist():
            if name != SIGNATURE:
                out.writestr(name, src.read(name))
    with pytest.raises(BundleError, match="not signed"):
        read_bundle(buf.getvalue(), public)


def test_bundle_signed_with_another_key_is_refused(keys):
    _, public, other = keys
    with pytest.raises(BundleError, match="signature does not match"):
        read_bundle(_bundle(other), public)


def _rewrite(data: bytes, name: str, new: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for member in src.namelist():
            out.writestr(member, new if member == name else src.read(member))
    return buf.getvalue()


def test_tampered_content_or_manifest_is_refused(keys):
    key, public, _ = keys
    good = _bundle(key, 3, b"the real answers")
    with pytest.raises(BundleError, match="does not match its checksum"):
        read_bundle(_rewrite(good, CONTENT_FILE, b"the fake answers"), public)
    manifest = zipfile.ZipFile(io.BytesIO(good)).read(MANIFEST)
    with pytest.raises(BundleError, match="signature does not match"):
        read_bundle(_rewrite(good, MANIFEST, manifest.replace(b'"version": 3',
                                                              b'"version": 9')), public)


def test_truncated_bundle_is_refused(keys):
    key, public, _ = keys
    good = _bundle(key, 3, b"a" * 5000)
    for cut in (0, 10, len(good) // 2, len(good) - 1):
        with pytest.raises(BundleError, match="bundle refused"):
            read_bundle(good[:cut], public)


# ------------------------------------------------------------------ pulling on a kiosk

OLD = [
    Entry(id="library-hours", title="図書館の開館時間",
          body="中央図書館は朝9時から夜7時まで開いています。", category="施設"),
    Entry(id="garbage-days", title="ごみを出す日",
          body="燃えるごみは週2回、朝8時までに出してください。", category="ごみ"),
]
NEW = OLD + [Entry(id="pool-hours", title="市民プールの営業時間",
                   body="市民プールは夏の間、朝9時から夕方5時まで泳げます。", category="施設")]
QUESTION = "市民プールは何時まで泳げますか"


def _settings(folder: Path, public_key: Path | None = None, *bundle_lines: str):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["[paths]", 'index_dir = "index"', 'state_dir = "var"', "[bundle]", *bundle_lines]
    if public_key:
        lines.append(f'public_key_file = "{public_key}"')
    (folder / "kiosk.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_settings(folder / "kiosk.toml")


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    """The machine where staff edit content and make bundles: version 100 (old content)
    and 200 (new content), plus one signed with a stranger's key."""
    root = tmp_path_factory.mktemp("office")
    private, public = new_key_pair(root / "keys")
    stranger, _ = new_key_pair(root / "keys", "stranger")
    settings = _settings(root / "office")
    publisher = ContentPublisher(settings)
    publisher.publish_entries(OLD, who="office")
    make_bundle(settings, private, root / "www" / "old.kiosk", version=100)
    publisher.publish_entries(NEW, who="office")
    make_bundle(settings, private, root / "www" / "content.kiosk", version=200)
    make_bundle(settings, stranger, root / "www" / "stranger.kiosk", version=300)
    return {"root": root, "public": public, "private": private, "www": root / "www",
            "config": settings.source}


@pytest.fixture
def kiosk(office, tmp_path):
    """A kiosk with the old content live and the office's public key configured."""
    settings = _settings(tmp_path / "kiosk", office["public"])
    ContentPublisher(settings).publish_entries(OLD, who="install")
    return settings


def _live_ids(settings) -> tuple[str | None, list[str]]:
    versions = IndexVersions.from_settings(settings)
    with LiveIndex(settings.index_dir, settings) as live:
        return versions.current_id(), [e.id for e in live.entries()]


def _refused(settings, location: str, match: str) -> None:
    before = _live_ids(settings)
    with pytest.raises(BundleError, match=match):
        pull_bundle(settings, location)
    assert _live_ids(settings) == before
    assert AuditLog(settings.state_dir).read()[-1]["action"] == "bundle_refused"


def test_bundle_carries_content_tables_and_manifest(office):
    data = (office["www"] / "content.kiosk").read_bytes()
    verified = read_bundle(data, load_public_key(office["public"]))
    assert verified.manifest.version == 200 and verified.manifest.entries == len(NEW)
    assert set(verified.files) == {CONTENT_FILE, "synonyms.tsv", "readings.tsv"}
    assert verified.files["synonyms.tsv"]  # the table the live content was published with


def test_tampered_bundle_is_refused_and_live_content_unchanged(office, kiosk, tmp_path):
    good = (office["www"] / "content.kiosk").read_bytes()
    content = zipfile.ZipFile(io.BytesIO(good)).read(CONTENT_FILE)
    bad = _rewrite(good, CONTENT_FILE, content + "evil,悪い項目,まちがった答え\r\n".encode())
    (tmp_path / "tampered.kiosk").write_bytes(bad)
    _refused(kiosk, str(tmp_path / "tampered.kiosk"), "checksum")


def test_unsigned_or_foreign_bundle_is_refused(office, kiosk, tmp_path):
    good = zipfile.ZipFile(office["www"] / "content.kiosk")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in good.namelist():
            if name != SIGNATURE:
                out.writestr(name, good.read(name))
    (tmp_path / "unsigned.kiosk").write_bytes(buf.getvalue())
    _refused(kiosk, str(tmp_path / "unsigned.kiosk"), "not signed")
    _refused(kiosk, str(office["www"] / "stranger.kiosk"), "signature does not match")


def test_half_downloaded_bundle_is_refused_by_the_kiosk(office, kiosk, tmp_path):
    good = (office["www"] / "content.kiosk").read_bytes()
    (tmp_path / "half.kiosk").write_bytes(good[: len(good) // 2])
    _refused(kiosk, str(tmp_path / "half.kiosk"), "not a complete bundle")


def test_kiosk_without_a_public_key_refuses_everything(office, tmp_path):
    settings = _settings(tmp_path / "nokey")
    ContentPublisher(settings).publish_entries(OLD, who="install")
    _refused(settings, str(office["www"] / "content.kiosk"), "no bundle public key")


@pytest.fixture
def web(office):
    """Any static web server will do; here Python's own, on loopback."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(office["www"]))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_good_bundle_applies_over_http_while_searches_keep_answering(kiosk, web):
    with keep_searching(kiosk, "図書館は何時まで開いていますか"):
        result = pull_bundle(kiosk, f"{web}/content.kiosk")
    assert result.applied and result.version == 200
    with LiveIndex(kiosk.index_dir, kiosk) as live:
        assert live.search(QUESTION)[0].entry.id == "pool-hours"
    assert applied_state(kiosk)["version"] == 200
    record = AuditLog(kiosk.state_dir).read()[-1]
    assert record["action"] == "bundle_applied" and record["version"] == 200

    # the same bundle again: nothing to do; an older one: refused (no rollback attack)
    again = pull_bundle(kiosk, f"{web}/content.kiosk")
    assert not again.applied and "already live" in again.message
    _refused(kiosk, f"{web}/old.kiosk", "not newer")


def test_missing_bundle_on_the_server_is_a_plain_message(kiosk, web):
    with pytest.raises(KioskError, match="404"):
        pull_bundle(kiosk, f"{web}/nothing-here.kiosk")


def test_cli_keys_bundle_and_pull(office, kiosk, tmp_path, capsys):
    from kiosk.cli import main

    assert main(["keys", "new", "--out", str(tmp_path / "k")]) == 0
    assert (tmp_path / "k" / "kiosk-signing.key").exists()
    cfg = str(kiosk.source)
    assert main(["--config", cfg, "content", "pull", str(office["www"] / "content.kiosk")]) == 0
    assert "Applied bundle 200" in capsys.readouterr().out
    assert main(["--config", cfg, "content", "pull", str(office["www"] / "old.kiosk")]) == 2
    assert "not newer" in capsys.readouterr().err
    newer = tmp_path / "newer.kiosk"
    assert main(["--config", str(office["config"]), "content", "bundle", "--key",
                 str(office["private"]), "--out", str(newer), "--version", "201"]) == 0
    assert "version 201, 3 entries" in capsys.readouterr().out
    assert main(["--config", cfg, "content", "pull", str(newer)]) == 0
    assert applied_state(kiosk)["version"] == 201


def test_kiosk_polls_the_configured_location(office, web, tmp_path):
    settings = _settings(tmp_path / "polling", office["public"],
                         f'pull_url = "{web}/content.kiosk"', "poll_minutes = 15")
    ContentPublisher(settings).publish_entries(OLD, who="install")
    poller = BundlePoller(settings).start()  # polls at once, then every 15 minutes
    try:
        for _ in range(300):
            if applied_state(settings).get("version") == 200:
                break
            threading.Event().wait(0.05)
    finally:
        poller.stop()
    assert applied_state(settings)["version"] == 200
    with pytest.raises(KioskError, match="poll_minutes"):
        BundlePoller(_settings(tmp_path / "off", office["public"], 'pull_url = "x"'))


def test_kiosk_run_polls_for_bundles_and_serves_the_staff_page(office, web, tmp_path):
    """`kiosk run` itself keeps content current and, when configured, hosts the staff page."""
    import urllib.request

    from kiosk.cli.service import KioskService

    settings = _settings(tmp_path / "service", None, f'public_key_file = "{office["public"]}"',
                         f'pull_url = "{web}/content.kiosk"', "poll_minutes = 15",
                         "[admin]", "port = 0", "with_kiosk = true",
                         "[screen]", "port = 0")
    ContentPublisher(settings).publish_entries(OLD, who="install")
    service = KioskService(settings, headless=True, microphone=False)
    service.start()
    try:
        for _ in range(300):
            if applied_state(settings).get("version") == 200:
                break
            threading.Event().wait(0.05)
        assert applied_state(settings)["version"] == 200
        assert "pool-hours" in [e.id for e in service.searcher.entries()]
        host, port = service.staff_desk.server_address[:2]
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as page:
            assert page.status == 200
    finally:
        service.stop()


# ------------------------------------------------------- hostile servers and files (#15)


class _Trickle(http.server.BaseHTTPRequestHandler):
    """A bundle server that sends one byte every 50 ms: each socket read succeeds, so only
    a bound on the whole download stops it. `stop` (set by the fixture) ends it."""

    stop: threading.Event
    in_headers = False

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        try:
            if self.in_headers:  # headers that never end
                self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Padding: ")
            else:
                self.send_response(200)
                self.send_header("Content-Length", "1000000")
                self.end_headers()
            self.wfile.flush()
            while not self.stop.wait(0.05):
                self.wfile.write(b"a")
                self.wfile.flush()
        except OSError:
            pass


@pytest.fixture(params=["body", "headers"])
def trickle(request):
    stop = threading.Event()
    handler = type("Trickle", (_Trickle,), {"stop": stop,
                                            "in_headers": request.param == "headers"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/content.kiosk"
    stop.set()
    server.shutdown()
    server.server_close()


def test_a_slow_bundle_server_is_given_up_on_after_the_whole_download_bound(office, trickle,
                                                                           tmp_path):
    settings = _settings(tmp_path / "slow", office["public"], "download_timeout_seconds = 2",
                         "download_max_seconds = 1")
    outcome: list[BaseException] = []

    def pull() -> None:
        try:
            fetch_bundle(trickle, settings)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=pull, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the download was not bounded"
    assert isinstance(outcome[0], BundleError)
    assert "took longer than" in str(outcome[0]) and "download_max_seconds" in str(outcome[0])


def test_a_failing_or_blocked_poller_shows_in_healthz_and_the_log(office, trickle, tmp_path,
                                                                  caplog):
    import fcntl

    from kiosk.web.health import Health

    settings = _settings(tmp_path / "poller", office["public"], f'pull_url = "{trickle}"',
                         "poll_minutes = 15", "download_timeout_seconds = 2",
                         "download_max_seconds = 1")
    poller = BundlePoller(settings)
    health = Health(bundle_poller=poller.status)
    assert health.snapshot()["bundle_poller"]["ok"] is True  # nothing tried yet
    with caplog.at_level("WARNING", logger="kiosk"):
        assert poller.poll_once() is None
    status = health.snapshot()
    assert status["status"] == "degraded"
    assert status["bundle_poller"]["ok"] is False
    assert "took longer than" in status["bundle_poller"]["last_error"]
    assert status["bundle_poller"]["failures"] == 1
    assert any("took longer than" in r.getMessage() for r in caplog.records)
    # a pull that hangs elsewhere (another process holds the pull lock) no longer blocks
    # every later pull for ever
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.state_dir / ".bundle-pull.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert poller.poll_once() is None
    assert "another bundle pull" in poller.status()["last_error"]
    assert poller.status()["failures"] == 2
    running = poller.status(now=poller.status()["last_poll_started"] + 3600, polling=True)
    assert running["stuck"] is True and running["ok"] is False


def test_a_damaged_state_file_refuses_bundles_instead_of_accepting_older_ones(office, kiosk,
                                                                              web):
    assert pull_bundle(kiosk, f"{web}/content.kiosk").applied
    state = kiosk.state_dir / "bundle-state.json"
    good = state.read_bytes()
    for damaged in (good[: len(good) // 2], b"", b'{"version": "two hundred"}', b"[200]"):
        state.write_bytes(damaged)
        for name in ("old.kiosk", "content.kiosk"):
            with pytest.raises(BundleError, match="bundle-state.json"):
                pull_bundle(kiosk, f"{web}/{name}")
    assert _live_ids(kiosk)[1] == [e.id for e in NEW]
    state.unlink()  # deleting it on purpose is the operator's documented way out
    assert pull_bundle(kiosk, f"{web}/content.kiosk").applied
    assert applied_state(kiosk)["version"] == 200


def test_a_signed_bundle_is_bounded_in_total_not_only_per_file(keys):
    private, public, _ = keys
    pad = b"\0" * 40_000  # compresses to almost nothing, so only the unpacked size is large
    files = {CONTENT_FILE: b"x", "synonyms.tsv": b"", **{f"pad{i}": pad for i in range(6)}}
    data = pack_bundle(files, private, 1, 1)[0]
    assert len(data) < 50_000
    with pytest.raises(BundleError, match="unpacked, more than"):
        read_bundle(data, public, max_bytes=100_000)
    assert read_bundle(data, public, max_bytes=300_000).manifest.version == 1


def test_a_bundle_damaged_near_its_end_is_called_damaged_not_unsigned(keys):
    private, public, _ = keys
    good = _bundle(private, content="id,title,body\nx,題,本文\n".encode() * 20)
    wrong = []
    for back in range(1, 160):
        bad = bytearray(good)
        bad[-back] ^= 0x20
        try:
            read_bundle(bytes(bad), public)
        except BundleError as exc:
            text = str(exc)
            if not ("damaged" in text or "not a complete bundle" in text
                    or "signature does not match" in text or "checksum" in text):
                wrong.append((back, text))
    assert not wrong, wrong[:5]


def test_a_refusal_records_a_bounded_line_once_however_often_it_is_polled(office, kiosk,
                                                                         tmp_path):
    good = zipfile.ZipFile(office["www"] / "content.kiosk")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in good.namelist():
            out.writestr(name, good.read(name))
        for n in range(3000):
            out.writestr(f"extra-{'x' * 100}-{n}.txt", b"")
    (tmp_path / "extras.kiosk").write_bytes(buf.getvalue())
    before = len(AuditLog(kiosk.state_dir).read())
    for _ in range(3):
        with pytest.raises(BundleError, match="does not list") as refused:
            pull_bundle(kiosk, str(tmp_path / "extras.kiosk"))
        assert len(str(refused.value)) < 1000
    records = AuditLog(kiosk.state_dir).read()[before:]
    assert [r["action"] for r in records] == ["bundle_refused"]
    assert len((kiosk.state_dir / "audit.jsonl").read_bytes().splitlines()[-1]) < 2000
    # a different refusal is recorded again
    _refused(kiosk, str(office["www"] / "stranger.kiosk"), "signature does not match")
