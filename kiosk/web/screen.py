"""The visitor screen: a local web page (kiosk/web/screen/) served on loopback and shown
full-screen by a kiosk browser. It only shows the loop's state and sends the visitor's touches
and keys back as events; everything the page can do, the voice and the keys can do too.

Why a web page: a browser gives screen-reader support (aria-live), zoom, furigana (<ruby>)
and touch for free, and the same page is testable in a real headless Chromium.

The page gets the current view at /api/view and every change through server-sent events
(/events); it sends /api/press, /api/key, /api/query (the text box), /api/category and
/api/choose (and a presence sensor may send /api/approach: the spoken invitation). POSTs must
come from the page itself (JSON, same origin), and only the loopback names are served (no DNS
rebinding), so another web page open in the same browser can neither press the kiosk's
buttons nor read what a visitor asked. Limits and timeouts: kiosk/loopback.py.

CONTRACT:
    ScreenHandler (HealthHandler + the page)   make_screen_server(kiosk, health, settings)
    view_json(view, settings) -> dict          furigana(text) -> str (HTML with <ruby>)
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import logging
import queue
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import jaconv

from kiosk import sudachi
from kiosk.config import Settings
from kiosk.dialogue.conversation import (
    KEYMAP,
    Approach,
    CategoryPicked,
    Choose,
    Command,
    Event,
    Key,
    Press,
    Typed,
    View,
)
from kiosk.i18n import _
from kiosk.loopback import BodyRefused
from kiosk.web.health import Health, HealthHandler, make_server

log = logging.getLogger(__name__)


class Kiosk(Protocol):
    """What the screen needs of the running kiosk (kiosk.dialogue.runner.Kiosk): the
    current view, being told when it changes, and a way to post the visitor's input."""

    def view(self) -> View: ...

    def subscribe(self, callback: Callable[[View], None]) -> None: ...

    def post(self, event: Event) -> None: ...

    def categories(self) -> list[str]: ...


WEB_DIR = Path(__file__).with_name("assets") / "screen"
_STATIC = {"screen.css": "text/css; charset=utf-8", "screen.js": "text/javascript; charset=utf-8"}
_KANJI = re.compile(r"[\u3400-\u9fff\uf900-\ufaff々〆ヶ]")
_MAX_QUERY_CHARS = 200
_MAX_BODY_BYTES = 4096


def _ruby(surface: str, reading: str) -> str:
    """<ruby> for one word, leaving kana the word already shows (送り仮名) outside the ruby."""
    reading = jaconv.kata2hira(reading)
    plain = jaconv.kata2hira(surface)
    head = 0
    while head < min(len(plain), len(reading)) and plain[head] == reading[head] \
            and not _KANJI.match(surface[head]):
        head += 1
    tail = 0
    while tail < min(len(plain), len(reading)) - head and plain[-1 - tail] == reading[-1 - tail] \
            and not _KANJI.match(surface[-1 - tail]):
        tail += 1
    core = surface[head:len(surface) - tail]
    core_reading = reading[head:len(reading) - tail]
    if not core or not core_reading:
        return html.escape(surface)
    return (html.escape(surface[:head]) + f"<ruby>{html.escape(core)}<rt>{html.escape(core_reading)}"
            "</rt></ruby>" + html.escape(surface[len(surface) - tail:]))


@functools.lru_cache(maxsize=1)
def _place_readings():
    """The voice's own reading table (place names from Japan Post, the hand-written names),
    so the screen shows 中町 as なかちょう exactly as the voice says it."""
    from kiosk.voice.speakable import BUNDLED_PLACE_READINGS, BUNDLED_READINGS, ReadingDictionary

    readings = ReadingDictionary.load(BUNDLED_READINGS, places=BUNDLED_PLACE_READINGS)
    return readings, readings.pattern()


@functools.lru_cache(maxsize=512)
def furigana(text: str) -> str:
    """HTML of `text` with readings over its kanji — the readings the voice itself uses:
    place names from its reading table, everything else from Open JTalk; escaped; plain
    escaped text when no reader is available."""
    if not _KANJI.search(text):
        return html.escape(text)
    try:
        readings, pattern = _place_readings()
    except Exception as exc:  # a broken table must not blank the page
        log.debug("reading table unavailable: %s", exc)
        readings, pattern = None, None
    if pattern is None:
        return _furigana_by_reader(text)
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        reading = readings.reading_of(m.group(0))
        if not _KANJI.search(m.group(0)) or not re.fullmatch(r"[ァ-ヺーぁ-ゖ]+", reading or ""):
            continue  # Latin words and readings that are not kana (TEL → 電話)
        out.append(_furigana_by_reader(text[pos:m.start()]))
        out.append(_ruby(m.group(0), reading))
        pos = m.end()
    out.append(_furigana_by_reader(text[pos:]))
    return "".join(out)


def _furigana_by_reader(text: str) -> str:
    if not _KANJI.search(text):
        return html.escape(text)
    try:
        import pyopenjtalk

        sudachi.share_with_openjtalk()  # its reading fixes: the process's one dictionary
        words = [(w["string"], w["read"]) for w in pyopenjtalk.run_frontend(text)]
    except Exception as exc:  # furigana is a help, never a reason to fail a page
        log.debug("furigana unavailable: %s", exc)
        return html.escape(text)
    out: list[str] = []
    pos = 0
    for surface, reading in words:
        if not _KANJI.search(surface) or not reading:
            continue
        at = text.find(surface, pos)
        if at < 0:
            continue  # normalised by the reader (8 → 八): shown without ruby
        out.append(html.escape(text[pos:at]))
        out.append(_ruby(surface, reading))
        pos = at + len(surface)
    out.append(html.escape(text[pos:]))
    return "".join(out)


def view_json(view: View, settings: Settings) -> dict[str, Any]:
    """The view as the page needs it: plain text, plus furigana HTML for every text."""
    data = dataclasses.asdict(view)
    ruby: dict[str, Any] = {"status": furigana(view.status), "question": furigana(view.question),
                            "notice": furigana(view.notice), "heard": furigana(view.heard),
                            "choices": [furigana(c) for c in view.choices],
                            "categories": [furigana(c) for c in view.categories]}
    if view.answer:
        ruby["answer"] = {k: furigana(v) for k, v in view.answer.items() if v}
    data["ruby"] = ruby
    return data


class _Broadcast:
    """The latest view JSON and a queue per connected page (server-sent events)."""

    def __init__(self, kiosk: Kiosk, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: list[queue.Queue[str | None]] = []
        self.seq = 0
        self.current = self._encode(kiosk.view())
        kiosk.subscribe(self.publish)

    def _encode(self, view: View) -> str:
        self.seq += 1
        data = view_json(view, self.settings)
        data["seq"] = self.seq
        return json.dumps(data, ensure_ascii=False)

    def publish(self, view: View) -> None:
        with self._lock:
            self.current = self._encode(view)
            for q in self._clients:
                q.put(self.current)

    def connect(self) -> queue.Queue[str | None]:
        q: queue.Queue[str | None] = queue.Queue()
        with self._lock:
            self._clients.append(q)
            q.put(self.current)
        return q

    def disconnect(self, q: queue.Queue[str | None]) -> None:
        with self._lock:
            if q in self._clients:
                self._clients.remove(q)

    def close(self) -> None:
        with self._lock:
            for q in self._clients:
                q.put(None)


class ScreenHandler(HealthHandler):
    """The page, its assets, the live view and the visitor's inputs; plus /healthz."""

    kiosk: Kiosk
    broadcast: _Broadcast
    settings: Settings
    protocol_version = "HTTP/1.1"

    def _send(self, body: bytes, ctype: str, status: int = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; style-src 'self'; script-src 'self'; "
                         "connect-src 'self'; frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = self.path.split("?")[0]
        if path in ("/", "/index.html"):
            self._send((WEB_DIR / "index.html").read_bytes(), "text/html; charset=utf-8")
        elif path.startswith("/static/") and path.removeprefix("/static/") in _STATIC:
            name = path.removeprefix("/static/")
            self._send((WEB_DIR / name).read_bytes(), _STATIC[name])
        elif path == "/api/view":
            self._send(self.broadcast.current.encode("utf-8"), "application/json; charset=utf-8")
        elif path == "/api/config":
            self.send_json({"keymap": KEYMAP, "text_sizes": list(self.settings.screen.text_sizes),
                            "furigana": self.settings.screen.furigana,
                            "categories": self.kiosk.categories()})
        elif path == "/events":
            self._events()
        else:
            super().do_GET()

    def _events(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        q = self.broadcast.connect()
        try:
            while True:
                try:
                    item = q.get(timeout=15)
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    continue
                if item is None:
                    return
                self.wfile.write(f"data: {item}\n\n".encode("utf-8"))
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        finally:
            self.broadcast.disconnect(q)

    def _from_own_page(self) -> bool:
        """The page posts JSON from its own origin. Any other content type could be sent by
        another site without asking first (a form, a beacon), so it is refused too."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return not self.cross_site() and ctype == "application/json"

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        if not self._from_own_page():
            self.close_connection = True
            self.send_json({"error": _("only the kiosk's own page may send input")}, HTTPStatus.FORBIDDEN)
            return
        try:
            length = self.body_length(_MAX_BODY_BYTES)
        except BodyRefused as exc:
            self.send_json({"error": exc.reason}, exc.status)
            return
        try:
            data = json.loads(self.rfile.read(length) or b"{}") if length else {}
            if not isinstance(data, dict):
                raise ValueError(_("not an object"))
            event = self._event(self.path.split("?")[0], data)
        except (ValueError, KeyError, TypeError) as exc:
            self.send_json({"error": _("bad input: {reason}").format(reason=exc)}, HTTPStatus.BAD_REQUEST)
            return
        if event is None:
            self.send_json({"error": _("not found")}, HTTPStatus.NOT_FOUND)
            return
        self.kiosk.post(event)
        self.send_json({"ok": True})

    def _event(self, path: str, data: dict[str, Any]) -> Any:
        if path == "/api/press":
            return Press()
        if path == "/api/approach":  # a presence sensor's helper: someone came near
            return Approach()
        if path == "/api/key":
            return Key(Command(str(data["command"])))
        if path == "/api/query":
            text = str(data.get("text", "")).strip()[:_MAX_QUERY_CHARS]
            if not text:
                raise ValueError(_("empty question"))
            return Typed(text)
        if path == "/api/category":
            return CategoryPicked(str(data["category"])[:_MAX_QUERY_CHARS])
        if path == "/api/choose":
            return Choose(int(data["index"]))
        return None


def make_screen_server(kiosk: Kiosk, health: Health, settings: Settings,
                       port: int | None = None) -> ThreadingHTTPServer:
    """The screen + /healthz server on [screen] host/port (port 0 = any free port)."""
    broadcast = _Broadcast(kiosk, settings)
    server = make_server(ScreenHandler, settings.screen.host,
                         settings.screen.port if port is None else port,
                         kiosk=kiosk, health=health, broadcast=broadcast, settings=settings,
                         timeout=settings.screen.socket_timeout_seconds)
    original_close = server.server_close

    def server_close() -> None:
        broadcast.close()
        original_close()

    server.server_close = server_close  # type: ignore[method-assign]
    return server


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="kiosk-http", daemon=True)
    thread.start()
    return thread


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
