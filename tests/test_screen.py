"""The visitor screen in a real headless Chromium: it follows the loop's states as the loop
runs, takes touch, typing and keys, and axe-core finds zero violations in every state
(including the WCAG AAA 7:1 contrast rule). Also /healthz and the screen server's guards."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kiosk.config import Settings, settings_from_dict
from kiosk.content.publishing import ensure_index
from kiosk.dialogue.conversation import State
from kiosk.dialogue.runner import make_kiosk
from kiosk.search.versions import LiveIndex
from kiosk.speech.simulated import RecordingSpeaker, SimulatedMicrophone
from kiosk.web.health import Health, HealthHandler, make_server
from kiosk.web.screen import furigana, make_screen_server, serve_in_background, url_of

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE_OPTIONS = {"resultTypes": ["violations"],
               "rules": {"color-contrast-enhanced": {"enabled": True}}}


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture(scope="module")
def voice():
    from kiosk.voice.synthesis import Voice

    return Voice(Settings())


@pytest.fixture(scope="module")
def screen(tmp_path_factory, voice):
    home = tmp_path_factory.mktemp("screen")
    settings = settings_from_dict({"paths": {"index_dir": str(home / "index"),
                                             "state_dir": str(home / "var")}},
                                  base_dir=home)
    ensure_index(settings)
    searcher = LiveIndex(settings.index_dir, settings)
    clock = Clock()
    kiosk = make_kiosk(settings, searcher=searcher, microphone=SimulatedMicrophone(pace=4.0),
                       speaker=RecordingSpeaker(pace=8.0), voice=voice, clock=clock.now,
                       tick_seconds=0.05)
    kiosk.clock_control = clock  # type: ignore[attr-defined]
    health = Health(model_loaded=lambda: False, devices=lambda: {"microphone": True},
                    index_version=lambda: searcher.version or "", loop=kiosk.health)
    server = make_screen_server(kiosk, health, settings, port=0)
    serve_in_background(server)
    kiosk.start()
    yield kiosk, url_of(server)
    kiosk.stop()
    server.shutdown()
    server.server_close()
    searcher.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, screen):
    kiosk, url = screen
    # bypass_csp: Playwright's own polling uses eval, which the page's CSP (rightly) forbids
    context = browser.new_context(viewport={"width": 1280, "height": 1024}, locale="ja-JP",
                                  bypass_csp=True)
    pg = context.new_page()
    pg.goto(url)
    pg.wait_for_function("document.body.dataset.state !== undefined")
    yield pg
    context.close()
    from kiosk.dialogue.conversation import Command, Key

    kiosk.post(Key(Command.END))  # leave the kiosk idle for the next test
    kiosk.settle()
    _wait(lambda: kiosk.state is State.IDLE)


def _wait(predicate, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def _state(page, state: str, timeout: float = 20_000) -> None:
    page.wait_for_function(f"document.body.dataset.state === '{state}'", timeout=timeout)


def _axe(page, label: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=AXE_OPTIONS)
    violations = results.response["violations"]
    details = [(v["id"], v["help"], [n["html"][:120] for n in v["nodes"][:3]]) for v in violations]
    assert not violations, f"axe-core violations in the {label} state: {details}"


def test_every_state_is_shown_and_passes_axe(page, screen):
    kiosk, _ = screen
    _state(page, "idle")
    assert "ボタンを押して" in page.inner_text("#status")
    _axe(page, "idle")

    page.fill("#q", "図書館は何時まで開いていますか")
    page.click("#text-search button[type=submit]")
    page.wait_for_selector("#answer:not([hidden])")
    assert "図書館" in page.inner_text("#answer-title")
    assert "出典" in page.inner_text("#answer-source")
    _axe(page, "answering")
    _state(page, "waiting")
    _axe(page, "waiting")

    page.click("#furigana")
    page.wait_for_selector("#answer-title ruby")
    assert page.get_attribute("#furigana", "aria-pressed") == "true"
    _axe(page, "waiting with furigana")
    page.click("#bigger")
    page.click("#bigger")
    assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--scale')") \
        .strip() == "1.5"
    _axe(page, "waiting with larger text")

    page.fill("#q", "ごみ")
    page.click("#text-search button[type=submit]")
    _state(page, "clarifying")
    assert page.inner_text("#ask-question").endswith("についてですか？")
    _axe(page, "clarifying")
    page.click("#ask button[data-key=yes]")
    _state(page, "answering")

    page.fill("#q", "ピアノの調律をしたい")
    page.click("#text-search button[type=submit]")
    _state(page, "suggesting")
    assert page.locator("#suggest-list button").count() > 0
    _axe(page, "suggesting")
    page.locator("#suggest-list button").first.click()
    page.wait_for_selector("#choices:not([hidden])")
    page.locator("#choice-list button").first.click()
    _state(page, "answering")

    kiosk.settle()
    _wait(lambda: kiosk.machine.speaking is None)
    kiosk.clock_control.offset += kiosk.settings.loop.session_timeout_seconds + 1
    _state(page, "warning")
    page.wait_for_selector("#warning:not([hidden])")
    _axe(page, "warning")
    page.click("#extend")
    _state(page, "waiting")

    page.click("#talk")  # the big button on screen
    page.wait_for_function("['prompting', 'listening'].includes(document.body.dataset.state)")
    _axe(page, "listening")
    page.click("button[data-key=end]")
    _state(page, "idle")
    # the visitor's screen settings are forgotten with the session
    assert page.get_attribute("#furigana", "aria-pressed") == "false"
    assert page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--scale')") \
        .strip() == "1"


def test_keyboard_alone_operates_the_kiosk(page, screen):
    kiosk, _ = screen
    _state(page, "idle")
    page.keyboard.press("Space")  # a USB button arrives as a key press
    page.wait_for_function("['prompting', 'listening'].includes(document.body.dataset.state)")
    page.keyboard.press("e")
    _state(page, "idle")
    page.keyboard.press("Tab")  # skip link first, then every control in order
    page.keyboard.press("Enter")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'q' "
                           "|| location.hash === '#text-search'")


def test_touch_targets_are_at_least_44_px(page):
    sizes = page.evaluate("""() => [...document.querySelectorAll('button, input')]
        .filter(e => e.offsetParent !== null)
        .map(e => { const r = e.getBoundingClientRect(); return [e.textContent || e.id, r.width, r.height]; })""")
    small = [s for s in sizes if s[1] < 44 or s[2] < 44]
    assert sizes and not small, small


def test_furigana_uses_the_voices_readings():
    html = furigana("市役所は何時まで開いていますか")
    assert "<ruby>市役所<rt>しやくしょ</rt></ruby>" in html
    assert "<ruby>何時<rt>なんじ</rt></ruby>" in html or "<rt>なん</rt>" in html
    assert furigana("<script>") == "&lt;script&gt;"


def test_furigana_reads_town_names_as_japan_post_and_the_voice_do():
    assert "<ruby>中町<rt>なかちょう</rt></ruby>" in furigana("市役所は中町3-17-17です")
    assert "<ruby>寿町<rt>ことぶきちょう</rt></ruby>" in furigana("寿町の公園")
    html = furigana("温水の温水プール")
    assert "<ruby>温水<rt>ぬるみず</rt></ruby>" in html and "おんすい" in html


def test_healthz_and_input_guards(screen):
    kiosk, url = screen
    with urllib.request.urlopen(url + "healthz", timeout=5) as r:
        data = json.loads(r.read())
    assert {"model_loaded", "devices", "index_version", "uptime_seconds", "last_error"} <= set(data)
    assert data["index_version"]
    request = urllib.request.Request(url + "api/press", data=b"{}", method="POST",
                                     headers={"Origin": "http://evil.example",
                                              "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 403
    request = urllib.request.Request(url + "api/key", data=b'{"command": "dance"}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 400


def test_servers_refuse_non_loopback_addresses():
    from kiosk import KioskError

    with pytest.raises(KioskError, match="loopback"):
        make_server(HealthHandler, "0.0.0.0", 0, health=Health())
