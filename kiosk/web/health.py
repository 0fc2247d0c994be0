"""/healthz: one JSON answer an operator (or a monitoring script, or systemd's watchdog helper)
can read to know whether the kiosk can serve visitors — model loaded, devices present, index
version, uptime, last error. Served on loopback only, by the same small HTTP server as the
screen (kiosk/web/screen.py), or alone with `kiosk run --headless`.

CONTRACT:
    Health(probes…).snapshot() -> dict        — what /healthz returns
    HealthHandler                             — kiosk.loopback handler serving GET /healthz
    make_server(handler_class, host, port, **attrs) -> ThreadingHTTPServer (loopback only)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any

from kiosk import KioskError
from kiosk.i18n import _
from kiosk.loopback import BodyRefused, LoopbackHandler, LoopbackServer, is_loopback

log = logging.getLogger(__name__)


def _call(probe: Callable[[], Any] | None, default: Any) -> Any:
    """A probe that fails must not break /healthz: it reports the failure instead."""
    if probe is None:
        return default
    try:
        return probe()
    except Exception as exc:  # a health check reports problems, it never raises them
        return f"error: {exc}"


class Health:
    """Collects the kiosk's vital signs through small callables, so it needs no reference to
    how each stage is built (and a stage that is not running yet simply reports so)."""

    def __init__(self, *, model_loaded: Callable[[], bool] | None = None,
                 engine: Callable[[], str] | None = None,
                 devices: Callable[[], dict[str, bool]] | None = None,
                 index_version: Callable[[], str] | None = None,
                 loop: Callable[[], dict[str, Any]] | None = None,
                 bundle_poller: Callable[[], dict[str, Any]] | None = None,
                 problems: Callable[[], list[str]] | None = None,
                 clock: Callable[[], float] = time.time):
        self.bundle_poller = bundle_poller
        self.problems = problems  # plain sentences an operator can act on
        self.model_loaded = model_loaded
        self.engine = engine
        self.devices = devices
        self.index_version = index_version
        self.loop = loop
        self.clock = clock
        self.started = clock()
        self.last_error = ""

    def error(self, message: str) -> None:
        self.last_error = message

    def snapshot(self) -> dict[str, Any]:
        loop = _call(self.loop, {})
        loop = loop if isinstance(loop, dict) else {"last_error": str(loop)}
        devices = _call(self.devices, {})
        devices = devices if isinstance(devices, dict) else {"error": devices}
        model = _call(self.model_loaded, False)
        index_version = _call(self.index_version, "")
        last_error = loop.get("last_error") or self.last_error
        problems = _call(self.problems, [])
        problems = problems if isinstance(problems, list) else [str(problems)]
        poller = _call(self.bundle_poller, None)
        if poller is not None and not isinstance(poller, dict):
            poller = {"ok": False, "last_error": str(poller)}
        ok = model is True and all(v is True for v in devices.values()) and bool(index_version) \
            and not str(index_version).startswith("error") and not problems \
            and (poller is None or poller.get("ok") is True)
        extra: dict[str, Any] = {} if poller is None else {"bundle_poller": poller}
        return {
            "status": "ok" if ok else "degraded",
            "model_loaded": model,
            "engine": _call(self.engine, ""),
            "devices": devices,
            "index_version": index_version,
            "uptime_seconds": round(self.clock() - self.started, 1),
            "state": loop.get("state", ""),
            "errors": loop.get("errors", 0),
            "last_error": last_error,
            "problems": problems,
            **extra,
        }


class HealthHandler(LoopbackHandler):
    """GET /healthz. Subclassed by the screen's handler, which adds the page. The Host,
    body-length and timeout rules come from the shared loopback base."""

    server_version = "kiosk"
    health: Health  # set on the class by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        log.debug("%s %s", self.address_string(), format % args)

    def send_json(self, data: Any, status: int = HTTPStatus.OK) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.split("?")[0] == "/healthz":
            self.send_json(self.health.snapshot())
        else:
            self.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        try:
            self.body_length(0)
        except BodyRefused as exc:
            self.send_json({"error": exc.reason}, exc.status)
            return
        self.close_connection = True
        self.send_json({"error": "only GET /healthz"}, HTTPStatus.METHOD_NOT_ALLOWED)


def check_loopback(host: str, setting: str = "[screen] host") -> None:
    """The kiosk's own server takes button presses; nothing off this machine may send them."""
    if not is_loopback(host):
        raise KioskError(_("{setting} = {host!r} is not a loopback address; the kiosk's screen "
                           "and /healthz are served to this machine only. Use 127.0.0.1 (or "
                           "::1) and read /healthz through ssh or a local monitoring agent.")
                         .format(setting=setting, host=host))


def make_server(handler: type[HealthHandler], host: str, port: int,
                **attrs: Any) -> ThreadingHTTPServer:
    """A threaded loopback server for `handler`, with `attrs` set on a private subclass (so
    two servers in one process — as in tests — never share state)."""
    check_loopback(host)
    bound = type(f"Bound{handler.__name__}", (handler,), attrs)
    try:
        server = LoopbackServer((host, port), bound)
    except OSError as exc:
        raise KioskError(_("cannot listen on {host}:{port} ({reason}); another kiosk may "
                           "already be running, or change [screen] port").format(
            host=host, port=port, reason=exc.strerror or exc)) from None
    server.daemon_threads = True
    return server
