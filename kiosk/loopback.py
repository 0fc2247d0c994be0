"""One HTTP base for the kiosk's own small servers — the visitor screen, /healthz and the
staff desk — so each gets the same defences instead of its own half of them:

- a Host check: on loopback only the loopback names answer, so a web page that rebinds its
  DNS name to 127.0.0.1 (DNS rebinding) reads nothing and sends nothing;
- a strict Content-Length: digits only, at most the handler's limit, checked before a byte
  of the body is read (a negative or huge length never makes the server read until EOF);
- a socket timeout per connection (a client that stops sending frees its thread);
- a listen backlog that takes a burst of clients instead of resetting them;
- a cross-site check for POSTs (Origin and Sec-Fetch-Site).

CONTRACT:
    LISTEN_BACKLOG
    LoopbackServer((host, port), handler)   — threaded, daemon threads, real backlog
    LoopbackHandler                         — BaseHTTPRequestHandler with the checks:
        .timeout (seconds; set on the class), .host_allowed(), .body_length(limit) -> int
        (raises BodyRefused), .cross_site() -> bool, .refuse_host() (override to render)
    BodyRefused(status, reason)
    is_loopback(host) -> bool
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kiosk.i18n import _

log = logging.getLogger(__name__)

#: Pending connections the kernel queues before the server accepts them (the stdlib's 5
#: reset a burst of parallel requests).
LISTEN_BACKLOG = 128
#: Names a loopback server answers to, besides the address it is bound to.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_DIGITS = re.compile(r"[0-9]{1,15}")


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BodyRefused(Exception):
    """A request body the server will not read: the status to answer and why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LoopbackServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with daemon threads and a listen backlog for bursts. A client
    that hangs up or times out is logged quietly, not printed as a traceback."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address[0], exc)
            return
        log.error(_("request from %s failed"), client_address[0], exc_info=True)


class LoopbackHandler(BaseHTTPRequestHandler):
    """Checks every request's Host before it is dispatched; gives handlers a safe way to
    learn the body length and to spot cross-site POSTs."""

    #: Socket timeout in seconds (StreamRequestHandler applies it to each connection).
    timeout: float | None = 30.0

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if not self.host_allowed():
            self.close_connection = True
            self.refuse_host()
            return False
        return True

    def host_allowed(self) -> bool:
        """On loopback, only loopback names (and the bound address) are served."""
        bound = str(self.server.server_address[0])
        if not is_loopback(bound):
            return True  # served to the network on purpose (behind an HTTPS proxy)
        raw = self.headers.get("Host") or ""
        try:
            host = urllib.parse.urlsplit("//" + raw).hostname or ""
        except ValueError:
            return False
        return host in LOOPBACK_NAMES or host == bound

    def refuse_host(self) -> None:
        """Answer a request for a host name this server does not serve."""
        body = b"This server answers only to 127.0.0.1 and localhost.\n"
        self.send_response(HTTPStatus.MISDIRECTED_REQUEST)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body_length(self, limit: int) -> int:
        """The declared body length, checked before anything is read. A refusal closes the
        connection afterwards (the unread body must not be taken as the next request)."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise BodyRefused(HTTPStatus.LENGTH_REQUIRED, _("send a Content-Length"))
            return 0
        if not _DIGITS.fullmatch(raw.strip()):
            self.close_connection = True
            raise BodyRefused(HTTPStatus.BAD_REQUEST, _("the Content-Length is not a number"))
        length = int(raw.strip())
        if length > limit:
            self.close_connection = True
            raise BodyRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                              _("the body is larger than {limit} bytes").format(limit=limit))
        return length

    def cross_site(self) -> bool:
        """True for a request a browser sent on behalf of another site (or an opaque
        origin such as a sandboxed frame). Requests without these headers (curl, scripts
        on this machine) are not cross-site; the Host check still applies to them."""
        fetch_site = self.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return True
        origin = self.headers.get("Origin")
        if origin is None:
            return False
        parsed = urllib.parse.urlsplit(origin)
        return parsed.scheme not in ("http", "https") or \
            parsed.netloc != (self.headers.get("Host") or "")
