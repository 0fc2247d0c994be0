"""The kiosk's three loopback HTTP servers — the visitor screen, the staff desk and the
headless /healthz — share one base (kiosk/web/loopback.py): the same body limits, socket
timeouts, listen backlog and Host checks. Attacked here over real sockets on 127.0.0.1."""

from __future__ import annotations

import http.client
import socket
import threading
from pathlib import Path

import pytest

from kiosk.config import settings_from_dict
from kiosk.dialogue.runner import Kiosk
from kiosk.speech.simulated import RecordingSpeaker
from kiosk.web.health import Health, HealthHandler, make_server
from kiosk.web.screen import make_screen_server

#: Per server: a page every client may GET, and a POST path with a body.
PATHS = {"screen": ("/api/view", "/api/query"), "desk": ("/login", "/login"),
         "healthz": ("/healthz", "/healthz")}


def _settings(tmp: Path):
    return settings_from_dict({"paths": {"index_dir": "index", "state_dir": "var"},
                               "screen": {"socket_timeout_seconds": 1.0},
                               "admin": {"socket_timeout_seconds": 1.0}}, base_dir=tmp)


def _screen_server(settings):
    """The visitor screen's server for a kiosk that is not started (nothing here needs
    the conversation to run)."""
    kiosk = Kiosk(settings, microphone=None, speaker=RecordingSpeaker(pace=8.0),
                  recogniser=None, voice=None, searcher=None)
    return make_screen_server(kiosk, Health(), settings, port=0)


@pytest.fixture
def screen_server(tmp_path):
    srv = _screen_server(_settings(tmp_path))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(params=list(PATHS))
def server(request, tmp_path):
    settings = _settings(tmp_path)
    if request.param == "screen":
        srv = _screen_server(settings)
    elif request.param == "desk":
        from kiosk.staff.desk import make_server as make_desk

        srv = make_desk(settings, "127.0.0.1", 0)
    else:
        srv = make_server(HealthHandler, "127.0.0.1", 0, health=Health(),
                          timeout=settings.screen.socket_timeout_seconds)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.kind = request.param  # type: ignore[attr-defined]
    yield srv
    srv.shutdown()
    srv.server_close()


def _port(srv) -> int:
    return srv.server_address[1]


def _status_line(sock: socket.socket) -> bytes:
    """The first line the server answers (b"" when it closed without answering)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("length", ["-1", "-4096", "abc", "1e3", "99999999999999"])
def test_a_bad_content_length_is_refused_without_reading_the_body(server, length):
    """A negative length once made the screen read until the client hung up (180 MB)."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=10) as sock:
        sock.sendall(f"POST {PATHS[server.kind][1]} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
                     .encode() + b"x" * 65536)  # and the connection stays open
        line = _status_line(sock)
    assert line.split()[1:2] and line.split()[1][:1] == b"4", line
    conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=10)
    conn.request("GET", PATHS[server.kind][0])
    assert conn.getresponse().status < 500  # and the server still answers
    conn.close()


def test_a_silent_connection_is_closed_after_the_socket_timeout(server):
    """Half-open connections once held a thread each for ever."""
    with socket.create_connection(("127.0.0.1", _port(server)), timeout=15) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")  # and never the rest
        try:
            closed = sock.recv(4096) is not None
        except TimeoutError:
            closed = False
    assert closed, "the server kept a silent connection open"


def test_the_listen_backlog_takes_a_burst_of_clients(server):
    assert server.request_queue_size >= 128
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(60)

    def client() -> None:
        start.wait()
        conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=30)
        try:
            conn.request("GET", PATHS[server.kind][0])
            status = conn.getresponse().status
        except OSError:
            status = 0
        finally:
            conn.close()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(statuses) == 60 and 0 not in statuses


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8471",
                                  "127.0.0.1.attacker.example", "10.0.0.5", ""])
def test_a_host_that_is_not_the_loopback_name_is_refused(server, host):
    """DNS rebinding: a web page whose name now points at 127.0.0.1 must read nothing."""
    for method, path in (("GET", PATHS[server.kind][0]), ("POST", PATHS[server.kind][1])):
        conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=10)
        headers = {"Host": host, "Content-Type": "application/json"}
        if host:
            headers["Origin"] = f"http://{host}"
        conn.request(method, path, body=b'{"text": "x"}' if method == "POST" else None,
                     headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        assert resp.status in (400, 403, 421), (method, path, resp.status)
        assert b"heard" not in body and b"uptime" not in body


def test_the_screen_refuses_rebinding_for_the_event_stream_too(screen_server):
    conn = http.client.HTTPConnection("127.0.0.1", _port(screen_server), timeout=10)
    conn.request("GET", "/events", headers={"Host": f"attacker.example:{_port(screen_server)}"})
    assert conn.getresponse().status == 421
    conn.close()


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain", "Origin": "http://attacker.example"},
    {"Content-Type": "text/plain", "Origin": "null"},
    {"Content-Type": "text/plain"},  # a form or beacon from elsewhere without Origin
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
    {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"},
])
def test_the_screen_refuses_cross_origin_posts_whatever_their_content_type(screen_server,
                                                                            headers):
    port = _port(screen_server)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/api/query", body='{"text": "図書館"}'.encode(), headers=headers)
    assert conn.getresponse().status == 403
    conn.close()
    own = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    own.request("POST", "/api/query", body='{"text": "図書館"}'.encode(),
                headers={"Content-Type": "application/json",
                         "Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"})
    assert own.getresponse().status == 200  # the kiosk's own page still works
    own.close()
