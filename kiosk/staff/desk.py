"""Staff content desk: a small web page where city staff load, check, publish and roll back
the kiosk's content without a developer.

It deliberately reuses the import path everyone else uses (kiosk.content.entries for parsing and
validation, kiosk.publishing/index_versions for the atomic swap), so an upload is checked by
exactly the same rules as `kiosk content import`. Uploads are read in memory and, where the
import path needs files, written under names of our own into a private temporary folder
(a zipped Markdown file keeps only its checked base name, which is its entry id): nothing a
browser sends is ever used as a path.

Security: a password per staff member stored as a scrypt hash; a session cookie (HttpOnly,
SameSite=Strict); a CSRF token on every form; wrong passwords rate-limited per address;
upload size limits; loopback only unless configured otherwise.

CONTRACT:
    StaffPasswords(state_dir).set(user, password) / .check(user, password) -> bool
    StaffDesk(settings)                     — the page's state and actions (no HTTP)
    make_server(settings, host=None, port=None) -> ThreadingHTTPServer
    serve_in_background(settings) -> ThreadingHTTPServer — inside `kiosk run`
    serve(settings) -> None                 — `kiosk admin`
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import http.server
import io
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import string
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from pathlib import Path
from typing import Any

from kiosk import KioskError, i18n
from kiosk.config import Settings
from kiosk.content.audit import AuditLog
from kiosk.i18n import _
from kiosk.progress import LatestProgress, reporting_to

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("assets")
PASSWORD_FILE = "staff-passwords.json"
SESSION_COOKIE = "kiosk_staff"
PRESESSION_COOKIE = "kiosk_signin"
MIN_PASSWORD_CHARS = 10
# scrypt cost: ~50 ms and 16 MiB per check on the kiosk's small CPU; slows guessing offline.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


# ------------------------------------------------------------------------------ sign-in


class StaffPasswords:
    """Staff names with scrypt password hashes, in a 0600 file under the state folder."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / PASSWORD_FILE
        # Checked for unknown names too, so timing does not tell which names exist.
        self._dummy = self._hash("not-a-password", b"0" * 16)

    @staticmethod
    def _hash(password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, maxmem=64 * 1024 * 1024,
                              **_SCRYPT)

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KioskError(
                _("the staff password file {file} is unreadable ({reason}); set the passwords "
                  "again with `kiosk admin set-password --user NAME`").format(
                    file=self.path, reason=exc)) from None
        return data.get("users", {}) if isinstance(data, dict) else {}

    def users(self) -> list[str]:
        return sorted(self._load())

    def set(self, user: str, password: str) -> None:
        user = user.strip()
        if not user or len(user) > 64 or any(c.isspace() or not c.isprintable() for c in user):
            raise KioskError(
                _("the staff name must be 1–64 characters without spaces (for example: tanaka)"))
        if len(password) < MIN_PASSWORD_CHARS:
            raise KioskError(
                _("the password is too short: use at least {n} characters")
                .format(n=MIN_PASSWORD_CHARS))
        users = self._load()
        salt = secrets.token_bytes(16)
        users[user] = {
            "scrypt": "n={n},r={r},p={p}".format(**_SCRYPT),
            "salt": base64.b64encode(salt).decode(),
            "hash": base64.b64encode(self._hash(password, salt)).decode(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"users": users}, fh, indent=1, ensure_ascii=False)
        os.replace(tmp, self.path)

    def check(self, user: str, password: str) -> bool:
        record = self._load().get(user)
        try:
            salt = base64.b64decode(record["salt"]) if record else b"0" * 16
            expected = base64.b64decode(record["hash"]) if record else self._dummy
        except (KeyError, ValueError, TypeError):
            return False
        ok = hmac.compare_digest(self._hash(password, salt), expected)
        return ok and record is not None


class SignInLimiter:
    """At most `max_failures` wrong passwords per address in a sliding window; then every
    sign-in from that address is refused until the window has passed."""

    def __init__(self, max_failures: int, window_seconds: float, clock=time.monotonic):
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] >= self.window:
            q.popleft()
        return q

    def wait_seconds(self, key: str) -> int:
        """0 when the address may try; otherwise how long it must wait."""
        with self._lock:
            q = self._recent(key)
            if len(q) < self.max_failures:
                return 0
            return max(1, int(self.window - (self.clock() - q[0]) + 0.999))

    def failed(self, key: str) -> None:
        with self._lock:
            self._recent(key).append(self.clock())

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


@dataclass
class Session:
    token: str
    user: str
    csrf: str
    last_seen: float
    draft: Any = None  # the upload being previewed (a Draft), at most one per session
    notice: str = ""  # one-time message shown on the next page


class Sessions:
    """Signed-in sessions, in memory only: restarting the desk signs everyone out."""

    def __init__(self, idle_seconds: float, clock=time.monotonic):
        self.idle = idle_seconds
        self.clock = clock
        self._items: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str) -> Session:
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), self.clock())
        with self._lock:
            self._expire()
            self._items[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            self._expire()
            s = self._items.get(token)
            if s:
                s.last_seen = self.clock()
            return s

    def drop(self, token: str) -> None:
        with self._lock:
            s = self._items.pop(token, None)
        if s and s.draft:
            s.draft.close()

    def clear(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for s in items:
            if s.draft:
                s.draft.close()

    def _expire(self) -> None:
        now = self.clock()
        for token, s in list(self._items.items()):
            if now - s.last_seen > self.idle:
                del self._items[token]
                if s.draft:
                    s.draft.close()


# ------------------------------------------------------------------------------ uploads


class UploadError(KioskError):
    """An upload the desk cannot even read (wrong type, too big, broken zip)."""


@dataclass(frozen=True)
class Upload:
    """One file sent from the browser: its name only for messages, never as a path."""

    filename: str
    data: bytes


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], list[Upload]]:
    """Fields and files of a POST body (urlencoded or multipart/form-data)."""
    header = Message()
    header["content-type"] = content_type or ""
    ctype = header.get_content_type()
    if ctype == "application/x-www-form-urlencoded":
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs), []
    if ctype != "multipart/form-data":
        raise UploadError("フォームの送られ方が正しくありません。ページを読み込み直して、もう一度操作してください。")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise UploadError("送信が不完全でした。ファイルを選び直してください。")
    fields: dict[str, str] = {}
    files: list[Upload] = []
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise UploadError("送信がとちゅうで切れました。ファイルを選び直して、もう一度送ってください。")
    for chunk in chunks[1:-1]:
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        chunk = chunk[:-2] if chunk.endswith(b"\r\n") else chunk
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        part = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip():
                part[key.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            continue
        if isinstance(filename, str):
            files.append(Upload(filename, content))
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


def _display_name(filename: str) -> str:
    """The last part of what the browser calls the file, for messages only."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(c for c in name if c.isprintable())[:120] or "upload"


UPLOAD_KINDS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".zip": "zip"}


def upload_kind(upload: Upload) -> str:
    """csv, jsonl or zip — by the file's name, checked against its first bytes."""
    suffix = Path(_display_name(upload.filename)).suffix.lower()
    kind = UPLOAD_KINDS.get(suffix)
    is_zip = upload.data[:4] == b"PK\x03\x04"
    if kind is None:
        raise UploadError(
            f"「{_display_name(upload.filename)}」は読み込めない種類のファイルです。"
            ".csv、.jsonl、または Markdown をまとめた .zip を選んでください。"
        )
    if (kind == "zip") != is_zip:
        raise UploadError(
            f"「{_display_name(upload.filename)}」の中身がファイル名（{suffix}）と合いません。"
            "保存し直してから選んでください。"
        )
    return kind


def write_upload(upload: Upload, folder: Path, settings: Settings) -> tuple[list[Path], dict[str, str]]:
    """Put an upload where the import path can read it: fixed names inside `folder` (a
    private temp dir). Returns the paths and a map from those paths to the names staff know,
    so every problem message names their file (and, for a zip, the file inside it)."""
    kind = upload_kind(upload)
    shown = _display_name(upload.filename)
    if kind in ("csv", "jsonl"):
        target = folder / f"upload.{kind}"
        target.write_bytes(upload.data)
        return [target], {str(target): shown}
    md_dir = folder / "markdown"
    md_dir.mkdir()
    names: dict[str, str] = {}
    limits = settings.admin
    try:
        zf = zipfile.ZipFile(io.BytesIO(upload.data))
    except zipfile.BadZipFile:
        raise UploadError(f"「{shown}」はこわれたzipファイルです。作り直してください。") from None
    with zf:
        members = [
            i for i in zf.infolist()
            if not i.is_dir() and not _is_junk(i.filename)
        ]
        if len(members) > limits.max_zip_files:
            raise UploadError(
                f"「{shown}」には {len(members)} 個のファイルがあります。"
                f"一度に読み込めるのは {limits.max_zip_files} 個までです。"
            )
        total = 0
        for number, info in enumerate(members, start=1):
            inner = info.filename
            if Path(inner).suffix.lower() not in (".md", ".markdown"):
                raise UploadError(
                    f"「{shown}」の中の「{inner}」は Markdown（.md）ではありません。"
                    "zip には .md ファイルだけを入れてください。"
                )
            if info.flag_bits & 0x1:
                raise UploadError(f"「{shown}」はパスワード付きのzipです。パスワードなしで作ってください。")
            total += info.file_size
            if total > limits.max_unzipped_bytes:
                raise UploadError(
                    f"「{shown}」は展開すると大きすぎます（上限 "
                    f"{limits.max_unzipped_bytes // 1_000_000} MB）。分けて読み込んでください。"
                )
            try:
                with zf.open(info) as fh:
                    data = fh.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError):
                raise UploadError(f"「{shown}」の中の「{inner}」が読めません。zipを作り直してください。") from None
            if len(data) > info.file_size:
                raise UploadError(f"「{shown}」の中の「{inner}」がこわれています。zipを作り直してください。")
            # The import takes a Markdown entry's id from its file name, so the name is
            # kept — but only as one checked file name in a numbered folder of our own.
            stem = Path(inner.replace("\\", "/").rsplit("/", 1)[-1]).stem
            if not _SAFE_STEM.fullmatch(stem):
                raise UploadError(
                    f"「{shown}」の中の「{inner}」はファイル名に使えない文字があります。"
                    "名前は文字・数字・- と _ だけにしてください（例: library-hours.md）。")
            slot = md_dir / f"{number:05d}"
            slot.mkdir()
            target = slot / f"{stem}.md"
            target.write_bytes(data)
            names[str(target)] = f"{shown}/{inner}"
    if not names:
        raise UploadError(f"「{shown}」の中に Markdown（.md）ファイルがありません。")
    names[str(md_dir)] = shown
    return [md_dir], names


#: File names (without .md) accepted inside an uploaded zip: letters of any script, digits,
#: '-' and '_' — never a separator, dot or anything a filesystem could read as a path.
_SAFE_STEM = re.compile(r"[^\W][\w-]{0,99}")


def _is_junk(name: str) -> bool:
    """Files that zip tools add on their own (macOS resource forks, Windows thumbnails)."""
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith(".") or parts[-1] == "Thumbs.db"


# ----------------------------------------------------------------------------- rendering


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


_templates: dict[str, string.Template] = {}


def render(name: str, **values: object) -> str:
    """Fill a template from kiosk/web/staff; values are inserted as given, so callers escape
    text with _esc and pass ready-made HTML only for fragments they built."""
    if name not in _templates:
        _templates[name] = string.Template((WEB_DIR / name).read_text(encoding="utf-8"))
    return _templates[name].substitute({k: str(v) for k, v in values.items()})


def page(title: str, main: str, session: Session | None = None, current: str = "",
         flash: str = "") -> str:
    nav = ""
    if session is not None:
        marks = {f"current_{k}": ('aria-current="page"' if k == current else "")
                 for k in ("home", "history", "report", "review")}
        nav = render("nav.html", csrf=_esc(session.csrf), user=_esc(session.user), **marks)
    return render("layout.html", title=_esc(title), nav=nav, main=main, flash=flash)


def notice(text: str, bad: bool = False) -> str:
    role = 'role="alert"' if bad else 'role="status"'
    return f'<div class="notice{" bad" if bad else ""}" {role}><p>{_esc(text)}</p></div>'


def table(caption: str, headers: list[str], rows: list[list[object]],
          numeric: set[int] = frozenset(), raw: set[int] = frozenset()) -> str:
    """An accessible data table; columns in `raw` hold HTML this module built."""
    head = "".join(
        f'<th scope="col"{" class=num" if i in numeric else ""}>{_esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = str(value) if i in raw else _esc(value)
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<th scope=\"row\"{cls}>{text}</th>" if i == 0 else f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table><caption>{_esc(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def bar_chart(title: str, desc: str, bars: list[tuple[str, int]]) -> str:
    """A horizontal SVG bar chart with a text alternative; the same numbers are always also
    given as a table next to it, so nothing depends on seeing the bars."""
    if not bars:
        return ""
    width, label_w, bar_h, gap = 640, 220, 26, 10
    top = max(v for _, v in bars) or 1
    height = len(bars) * (bar_h + gap) + gap
    uid = secrets.token_hex(4)
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="t{uid} d{uid}" viewBox="0 0 {width} '
        f'{height}" width="100%" style="max-width:{width}px">',
        f'<title id="t{uid}">{_esc(title)}</title><desc id="d{uid}">{_esc(desc)}</desc>',
    ]
    for i, (label, value) in enumerate(bars):
        y = gap + i * (bar_h + gap)
        w = int((width - label_w - 60) * value / top)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.0f}" text-anchor="end">'
            f"{_esc(label[:16])}</text>"
            f'<rect class="bar" x="{label_w}" y="{y}" width="{max(w, 2)}" height="{bar_h}"/>'
            f'<text x="{label_w + max(w, 2) + 6}" y="{y + bar_h * 0.7:.0f}">{value}</text>'
        )
    parts.append(f'<line class="axis" x1="{label_w}" y1="0" x2="{label_w}" y2="{height}"/>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------- HTTP


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    files: list[Upload]
    session: Session | None
    client: str


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def redirect(location: str, **headers: str) -> Response:
    return Response(HTTPStatus.SEE_OTHER, b"", headers={"Location": location, **headers})


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STATIC = {"/static/staff.css": ("staff.css", "text/css; charset=utf-8"),
           "/static/progress.js": ("progress.js", "text/javascript; charset=utf-8")}
_SIGNED_OUT = "サインインしていないか、時間切れです。サインインし直してください。"


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "KioskStaffDesk"
    sys_version = ""
    timeout = 60  # a client that stops sending mid-upload frees its thread
    desk: "StaffDesk"  # set on the subclass made by make_server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("GET", head=True)

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def log_message(self, fmt: str, *args: Any) -> None:
        log.info("%s %s", self.client_address[0], fmt % args)

    def _cookies(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep:
                out[key] = value
        return out

    def _handle(self, method: str, head: bool = False) -> None:
        try:
            response = self._respond(method)
        except Exception:  # a bug must not take the desk down or show a traceback
            log.exception("staff desk request failed")
            response = Response(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                page("エラー", notice("サーバーで問題が起きました。もう一度試してください。"
                                     "続くときは管理者に連絡してください。", bad=True)),
            )
        body = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
        self.send_response(response.status)
        for key, value in {**_SECURITY_HEADERS, **response.headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _respond(self, method: str) -> Response:
        desk = self.desk
        url = urllib.parse.urlsplit(self.path)
        if not self._host_allowed():
            return Response(HTTPStatus.MISDIRECTED_REQUEST, page(
                "拒否しました", notice("このアドレスでは使えません。http://127.0.0.1 で開いてください。",
                                     bad=True)))
        if method == "GET" and url.path in _STATIC:
            name, ctype = _STATIC[url.path]
            return Response(200, (WEB_DIR / name).read_bytes(), ctype,
                            {"Cache-Control": "max-age=300"})
        cookies = self._cookies()
        session = desk.sessions.get(cookies.get(SESSION_COOKIE))
        form: dict[str, str] = {}
        files: list[Upload] = []
        if method == "POST":
            refused = self._refuse_cross_site()
            if refused:
                return refused
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                return desk.error_page(HTTPStatus.LENGTH_REQUIRED, "送信内容の長さがわかりません。",
                                       session)
            limit = desk.settings.admin.max_upload_bytes + 64 * 1024
            if int(length) > limit:
                self.close_connection = True
                return desk.error_page(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"ファイルが大きすぎます（上限 {desk.settings.admin.max_upload_bytes // 1_000_000} MB）。"
                    "分けて読み込んでください。", session)
            body = self.rfile.read(int(length))
            try:
                form, files = parse_form(self.headers.get("Content-Type", ""), body)
            except UploadError as exc:
                return desk.error_page(HTTPStatus.BAD_REQUEST, str(exc), session)
            if url.path == "/login":
                expected = cookies.get(PRESESSION_COOKIE)
            elif session is None:
                return desk.error_page(HTTPStatus.FORBIDDEN, _SIGNED_OUT, None)
            else:
                expected = session.csrf
            if not expected or not hmac.compare_digest(
                form.get("csrf", "").encode(), expected.encode()
            ):
                return desk.error_page(
                    HTTPStatus.FORBIDDEN,
                    "このフォームは期限切れか、ほかのページから送られました。"
                    "ページを読み込み直してから、もう一度操作してください。", session)
        request = Request(method, url.path, dict(urllib.parse.parse_qsl(url.query)), form,
                          files, session, self.client_address[0])
        return desk.handle(request)

    def _host_allowed(self) -> bool:
        """On loopback, only loopback names: a web page that rebinds its own DNS name to
        127.0.0.1 must not get to talk to the desk."""
        bound = self.server.server_address[0]
        if not ipaddress.ip_address(bound).is_loopback:
            return True
        host = urllib.parse.urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
        return host in ("localhost", "127.0.0.1", "::1") or host == bound

    def _refuse_cross_site(self) -> Response | None:
        """Browsers send Origin on POST; one naming another site is a forged request."""
        origin = self.headers.get("Origin")
        if origin and origin != "null":
            host = urllib.parse.urlsplit(origin).netloc
            if host != self.headers.get("Host"):
                return Response(HTTPStatus.FORBIDDEN, page(
                    "拒否しました", notice("ほかのサイトからの操作は受け付けません。", bad=True)))
        return None


class _DeskServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_close(self) -> None:
        super().server_close()
        self.desk.close()  # type: ignore[attr-defined]


def make_server(settings: Settings, host: str | None = None,
                port: int | None = None) -> http.server.ThreadingHTTPServer:
    """A ready server for the staff desk (port 0 picks a free one; see .server_address)."""
    i18n.set_language(settings.ui.language)
    desk = StaffDesk(settings)
    handler = type("StaffDeskHandler", (_Handler,), {"desk": desk})
    address = (host or settings.admin.host, settings.admin.port if port is None else port)
    try:
        server = _DeskServer(address, handler)
    except OSError as exc:
        raise KioskError(
            _("cannot listen on {host}:{port} ({reason}); another program may use that port: "
              "set another in [admin] port or pass --port").format(
                host=address[0], port=address[1], reason=exc.strerror)) from None
    server.desk = desk  # type: ignore[attr-defined]
    return server


def serve_in_background(settings: Settings) -> http.server.ThreadingHTTPServer:
    """For the kiosk process itself (`kiosk run`): the desk on its own daemon thread; stop it
    with .shutdown() and .server_close()."""
    server = make_server(settings)
    threading.Thread(target=server.serve_forever, name="staff-desk", daemon=True).start()
    return server


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """`kiosk admin`: serve until interrupted."""
    if not StaffPasswords(settings.state_dir).users():
        raise KioskError(
            _("no staff password is set yet, so nobody could sign in. Set one first with: "
              "kiosk admin set-password --user NAME"))
    from kiosk.content.publishing import ensure_index

    ensure_index(settings)  # a new install starts with the bundled content live
    server = make_server(settings, host, port)
    h, p = server.server_address[:2]
    print(_("Staff content desk: http://{host}:{port}/  (Ctrl+C stops it)").format(
        host=h, port=p), flush=True)
    if not ipaddress.ip_address(h).is_loopback:
        print(_("Warning: the staff page is reachable from the network and is plain HTTP; "
                "put it behind an HTTPS proxy or set [admin] host = \"127.0.0.1\"."),
              file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ------------------------------------------------------------------------------ the desk


class StaffDesk:
    """Everything the staff page does, as plain methods on requests; the HTTP handler only
    parses and checks requests (session, CSRF, size) before calling `handle`."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.passwords = StaffPasswords(settings.state_dir)
        self.limiter = SignInLimiter(settings.admin.max_failed_signins,
                                     settings.admin.lockout_seconds)
        self.sessions = Sessions(settings.admin.session_minutes * 60)
        self.audit = AuditLog(settings.state_dir)
        self.content = ContentDesk(settings)
        self._publish_lock = threading.Lock()
        #: The latest step of the upload check or publish under way, for /progress.
        self.progress = LatestProgress()
        self._routes = {
            ("GET", "/progress"): self.progress_json,
            ("GET", "/login"): self.login_form,
            ("POST", "/login"): self.login,
            ("POST", "/logout"): self.logout,
            ("GET", "/"): self.home,
            ("POST", "/ask"): self.ask_live,
            ("POST", "/upload"): self.upload,
            ("GET", "/preview"): self.preview,
            ("POST", "/preview"): self.try_questions,
            ("POST", "/publish"): self.publish,
            ("POST", "/discard"): self.discard,
            ("GET", "/history"): self.history,
            ("POST", "/rollback"): self.rollback,
            ("GET", "/content.csv"): self.download,
            ("GET", "/report"): self.report,
            ("GET", "/review"): self.review,
        }

    def close(self) -> None:
        """Drop every session (and its draft's temp folder) and the live index."""
        self.sessions.clear()
        self.content.close()

    # -- plumbing

    def handle(self, req: Request) -> Response:
        route = self._routes.get((req.method, req.path))
        if route is None:
            if any(path == req.path for _, path in self._routes):
                return self.error_page(HTTPStatus.METHOD_NOT_ALLOWED,
                                       "この操作はできません。", req.session)
            return self.error_page(HTTPStatus.NOT_FOUND, "ページが見つかりません。", req.session)
        if req.session is None and req.path not in ("/login",):
            if req.method == "GET":
                return redirect("/login")
            return self.error_page(HTTPStatus.FORBIDDEN, _SIGNED_OUT, None)
        try:
            return route(req)
        except KioskError as exc:
            return self.error_page(HTTPStatus.BAD_REQUEST, str(exc), req.session)

    def error_page(self, status: int, message: str, session: Session | None) -> Response:
        link = '<p><a href="/">ホームへ戻る</a></p>' if session else \
            '<p><a href="/login">サインインのページへ</a></p>'
        return Response(status, page("できませんでした", notice(message, bad=True) + link,
                                     session))

    def _flash(self, session: Session) -> str:
        text, session.notice = session.notice, ""
        return notice(text) if text else ""

    # -- sign-in

    def login_form(self, req: Request, error: str = "", user: str = "",
                   status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        err_html = ""
        invalid = ""
        if error:
            err_html = f'<p id="signin-error" class="error" role="alert">{_esc(error)}</p>'
            invalid = 'aria-invalid="true" aria-describedby="signin-error"'
        body = render("login.html", csrf=token, error=err_html, user=_esc(user),
                      user_invalid=invalid, password_invalid=invalid)
        cookie = f"{PRESESSION_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict"
        return Response(status, page("サインイン", body), headers={"Set-Cookie": cookie})

    def login(self, req: Request) -> Response:
        user = req.form.get("user", "").strip()
        wait = self.limiter.wait_seconds(req.client)
        if wait:
            self.audit.record("signin_failed", user or "?", address=req.client,
                              reason="rate-limited")
            resp = self.login_form(
                req, f"パスワードのまちがいが続いたため、サインインを止めています。"
                     f"{wait} 秒後にもう一度試してください。", user, HTTPStatus.TOO_MANY_REQUESTS)
            resp.headers["Retry-After"] = str(wait)
            return resp
        if not self.passwords.check(user, req.form.get("password", "")):
            self.limiter.failed(req.client)
            self.audit.record("signin_failed", user or "?", address=req.client)
            return self.login_form(req, "名前かパスワードがちがいます。確かめて入力し直してください。",
                                   user, HTTPStatus.UNAUTHORIZED)
        self.limiter.succeeded(req.client)
        session = self.sessions.create(user)
        self.audit.record("signin", user, address=req.client)
        cookie = f"{SESSION_COOKIE}={session.token}; Path=/; HttpOnly; SameSite=Strict"
        return redirect("/", **{"Set-Cookie": cookie})

    def logout(self, req: Request) -> Response:
        assert req.session is not None
        self.sessions.drop(req.session.token)
        self.audit.record("signout", req.session.user, address=req.client)
        return redirect("/login", **{
            "Set-Cookie": f"{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"})

    # -- pages

    def home(self, req: Request, question: str = "", answer_html: str = "",
             upload_error: str = "", status: int = 200) -> Response:
        s = req.session
        assert s is not None
        err = ""
        describedby = "file-hint"
        invalid = ""
        if upload_error:
            err = f'<p id="file-error" class="error">{_esc(upload_error)}</p>'
            describedby = "file-hint file-error"
            invalid = 'aria-invalid="true"'
        body = render(
            "home.html", csrf=_esc(s.csrf), live_summary=_esc(self.content.live_summary()),
            max_mb=self.settings.admin.max_upload_bytes // 1_000_000, upload_error=err,
            file_describedby=describedby, file_invalid=invalid, question=_esc(question),
            live_answer=answer_html,
        )
        flash = self._flash(s)
        if upload_error:
            flash += notice("ファイルを読み込めませんでした。内容は何も変わっていません。", bad=True)
        if s.draft is not None:
            flash += ('<div class="notice" role="status"><p>確認中の内容があります。'
                      '<a href="/preview">確認の画面を開く</a></p></div>')
        return Response(status, page("ホーム", body, s, "home", flash))

    def ask_live(self, req: Request) -> Response:
        question = req.form.get("question", "").strip()
        answer = self.content.ask(question) if question else None
        return self.home(req, question, _answer_html(question, answer))

    def upload(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        uploads = [u for u in req.files if u.data or u.filename]
        if not uploads or not uploads[0].filename:
            return self.home(req, upload_error="ファイルが選ばれていません。ファイルを選んでください。",
                             status=HTTPStatus.BAD_REQUEST)
        if len(uploads[0].data) > self.settings.admin.max_upload_bytes:
            return self.home(req, upload_error="ファイルが大きすぎます。分けて読み込んでください。",
                             status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        try:
            self.progress.clear()
            with reporting_to(self.progress):
                draft = self.content.prepare(uploads[0])
        except UploadError as exc:
            return self.home(req, upload_error=str(exc), status=HTTPStatus.BAD_REQUEST)
        if s.draft is not None:
            s.draft.close()
        s.draft = draft
        return redirect("/preview")

    def preview(self, req: Request, answers: list[tuple[str, Any]] | None = None) -> Response:
        s = req.session
        assert s is not None
        d = s.draft
        if d is None:
            s.notice = "確認中の内容はありません。ファイルを読み込んでください。"
            return redirect("/")
        errors = [p for p in d.problems if not p.warning]
        warnings = [p for p in d.problems if p.warning]
        problems_html = ""
        if d.problems:
            rows = [[p.line if p.line is not None else "—", p.field or "—", p.message,
                     "注意" if p.warning else "エラー", p.file] for p in errors + warnings]
            heading = (f"まちがい {len(errors)} 件" if errors else "") + (
                f"　注意 {len(warnings)} 件" if warnings else "")
            problems_html = (
                f'<section aria-labelledby="prob-h" class="card"><h2 id="prob-h">{heading}</h2>'
                + ("<p>エラーがあるため公開できません。元のファイルを直してから、もう一度読み込んで"
                   "ください。いま公開している内容は変わっていません。</p>" if errors else
                   "<p>注意は公開を止めませんが、直すと聞きやすくなります。</p>")
                + table("見つかった問題（行番号は見出しの行を1行目として数えます）",
                        ["行", "項目", "内容", "種類", "ファイル"], rows)
                + "</section>"
            )
        changes = ""
        if d.added or d.changed or d.removed:
            listing = [["追加", i, t] for i, t in d.added[:50]] + \
                      [["変更", i, t] for i, t in d.changed[:50]] + \
                      [["削除", i, t] for i, t in d.removed[:50]]
            changes = table("変わる項目（それぞれ最大50件）", ["変更", "ID", "タイトル"], listing)
        changes += _freshness_note(d.entries, self.settings.content.review_months)
        try_section = ""
        publish_form = ('<p>エラーがあるため公開できません。</p>' if errors else
                        f'<form method="post" action="/publish" class="inline">'
                        f'<input type="hidden" name="csrf" value="{_esc(s.csrf)}">'
                        f'<input type="hidden" name="draft" value="{_esc(d.id)}">'
                        f'<button type="submit">公開する（{len(d.entries)} 件）</button></form>')
        if not errors:
            fields = []
            previous = [q for q, _ in answers or []]
            for i in range(self.settings.admin.test_questions):
                q = previous[i] if i < len(previous) else ""
                fields.append(
                    f'<div class="field"><label for="q{i}">質問 {i + 1}</label>'
                    f'<input id="q{i}" name="q{i}" type="text" value="{_esc(q)}"></div>')
            results = "".join(_answer_html(q, a) for q, a in (answers or []) if q)
            try_section = (
                '<section aria-labelledby="try-h" class="card"><h2 id="try-h">'
                '公開する前に質問してみる</h2><p>新しい内容でキオスクがどう答えるかを確かめられます'
                '（来館者にはまだ見えません）。</p>'
                f'<form method="post" action="/preview"><input type="hidden" name="csrf" '
                f'value="{_esc(s.csrf)}">{"".join(fields)}'
                '<button type="submit">新しい内容で答えを見る</button></form>'
                f'<div aria-live="polite">{results}</div></section>'
            )
        body = render(
            "preview.html", filename=_esc(d.filename), added=len(d.added),
            changed=len(d.changed), removed=len(d.removed), same=d.same, changes=changes,
            problems=problems_html, try_section=try_section, publish_form=publish_form,
            csrf=_esc(s.csrf),
        )
        flash = self._flash(s)
        if errors:
            flash += notice(f"「{d.filename}」に {len(errors)} 件のまちがいがあります。"
                            "公開できません。いま公開している内容は変わっていません。", bad=True)
        return Response(200, page("読み込んだ内容の確認", body, s, "", flash))

    def try_questions(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        if s.draft is None:
            return self.preview(req)
        questions = [req.form.get(f"q{i}", "").strip()[:200]
                     for i in range(self.settings.admin.test_questions)]
        answers = [(q, s.draft.ask(q) if q else None) for q in questions]
        return self.preview(req, answers)

    def publish(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        d = s.draft
        if d is None or req.form.get("draft") != d.id:
            s.notice = "確認した内容が見つかりません。もう一度読み込んでください。"
            return redirect("/")
        if any(not p.warning for p in d.problems):
            return self.error_page(HTTPStatus.BAD_REQUEST,
                                   "エラーがある内容は公開できません。", s)
        with self._publish_lock, reporting_to(self.progress):
            self.progress.clear()
            version = self.content.publish(d, s.user)
        self.audit.record("publish", s.user, version=version, file=d.filename,
                          entries=len(d.entries), added=len(d.added), changed=len(d.changed),
                          removed=len(d.removed))
        s.draft = None
        d.close()
        s.notice = (f"公開しました（版 {version}、{len(d.entries)} 件）。"
                    "キオスクはもう新しい内容で答えています。")
        return redirect("/")

    def progress_json(self, req: Request) -> Response:
        """Each step of the check or publish under way: what it does, how far, how long."""
        body = json.dumps(self.progress.snapshot(), ensure_ascii=False).encode("utf-8")
        return Response(200, body, "application/json; charset=utf-8")

    def discard(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        if s.draft is not None:
            s.draft.close()
            s.draft = None
        s.notice = "読み込んだ内容を取り消しました。公開している内容は変わっていません。"
        return redirect("/")

    def history(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        rows = []
        for v in self.content.versions():
            if v["live"]:
                action = "<strong>公開中</strong>"
            else:
                action = (
                    f'<form method="post" action="/rollback" class="inline">'
                    f'<input type="hidden" name="csrf" value="{_esc(s.csrf)}">'
                    f'<input type="hidden" name="version" value="{_esc(v["version"])}">'
                    f'<button type="submit" class="secondary" '
                    f'aria-label="この版に戻す（版 {_esc(v["version"])}）">この版に戻す</button></form>'
                )
            rows.append([v["version"], v["when"], v["who"], v["entries"], v["note"], action])
        versions = (table("保存されている版（新しい順）",
                          ["版", "公開した日時", "公開した人", "件数", "メモ", "操作"], rows,
                          numeric={3}, raw={5})
                    if rows else "<p>まだ公開された版はありません。</p>")
        audit_rows = [[_when(a.get("time", "")), a.get("who", ""), _ACTIONS.get(a.get("action"),
                       a.get("action", "")), _audit_detail(a)]
                      for a in reversed(self.audit.read(limit=30))]
        audit = (table("最近の操作（新しい順、最大30件）", ["日時", "だれが", "操作", "くわしく"],
                       audit_rows) if audit_rows else "<p>記録はまだありません。</p>")
        body = render("history.html", versions=versions, audit=audit)
        return Response(200, page("公開の履歴", body, s, "history", self._flash(s)))

    def rollback(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        version = req.form.get("version", "")
        with self._publish_lock:
            self.content.rollback(version)
        self.audit.record("rollback", s.user, version=version)
        s.notice = f"版 {version} に戻しました。キオスクはもうこの版で答えています。"
        return redirect("/history")

    def download(self, req: Request) -> Response:
        data = self.content.export_csv()
        return Response(200, data, "text/csv; charset=utf-8", {
            "Content-Disposition": 'attachment; filename="kiosk-content.csv"'})

    def report(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        rep = self.content.unanswered_report()
        if rep is None:
            body = render("report.html", intro=_esc(
                "質問の記録がありません。記録は来館者の同意の設定（質問の記録）を有効にしたときだけ"
                "残ります。"), body="")
            return Response(200, page("答えられなかった質問", body, s, "report"))
        top = rep["unanswered"]
        parts = [table("答えられなかった質問（多い順）", ["質問", "回数"],
                       [[q, n] for q, n in top], numeric={1})
                 if top else "<p>答えられなかった質問はありません。</p>"]
        for week, cats in rep["weeks"]:
            title = f"{week} の週によく聞かれた分類"
            desc = "、".join(f"{c} {n} 回" for c, n in cats)
            parts.append(f"<h2>{_esc(title)}</h2>")
            parts.append(bar_chart(title, desc, cats))
            parts.append(table(f"{title}（表）", ["分類", "回数"], [[c, n] for c, n in cats],
                               numeric={1}))
        body = render("report.html", intro=_esc(
            "来館者が聞いたのに答えが見つからなかった質問です。多いものから新しい内容を書くと役に立ちます。"),
            body="".join(parts))
        return Response(200, page("答えられなかった質問", body, s, "report"))

    def review(self, req: Request) -> Response:
        """The live entries by the date their facts were checked: stale and unverified ones
        first, so staff know what to re-check against the city's pages."""
        from kiosk.content.contract import checked_date_text, review_list

        s = req.session
        assert s is not None
        months = self.settings.content.review_months
        items = review_list(self.content.live_entries(), months)
        rows = []
        for i in items:
            e = i.entry
            link = (f'<a href="{_esc(e.source_url)}">{_esc(e.source_url)}</a>'
                    if e.source_url.startswith(("https://", "http://")) else "—")
            rows.append([checked_date_text(e) or "—", _STATUS.get(e.status, "—"),
                         i.reasons or "なし", e.id, e.title, link])
        need = sum(i.needs_review for i in items)
        intro = (f"全 {len(items)} 件のうち、見直しが必要なのは {need} 件です"
                 f"（{months} か月より前に確認したもの {sum(i.stale for i in items)} 件、"
                 f"市のページで未確認 {sum(i.unverified for i in items)} 件、"
                 f"確認日のないもの {sum(i.unchecked for i in items)} 件）。"
                 "見直しが必要なものを先に、確認日の古い順に並べています。"
                 "同じ一覧は `kiosk content review` でも出せます。")
        body = render("report.html", intro=_esc(intro), body=table(
            "内容の見直し（確認日の古い順）", ["確認日", "状態", "見直し", "ID", "タイトル", "出典ページ"],
            rows, raw={5}))
        return Response(200, page("内容の見直し", body, s, "review"))


_STATUS = {"verified": "確認済み", "unverified": "未確認"}


def _freshness_note(entries: list, months: int) -> str:
    """How many of an upload's entries are unverified, old or undated: what the review page
    will list first once it is published."""
    from kiosk.content.contract import review_list

    items = review_list(entries, months)
    unverified = sum(i.unverified for i in items)
    old = sum(i.stale for i in items)
    undated = sum(i.unchecked for i in items)
    if not (unverified or old or undated):
        return ""
    return (f"<p>この内容には、市のページで未確認の項目が {unverified} 件、{months} か月より前に"
            f"確認した項目が {old} 件、確認日のない項目が {undated} 件あります。公開した後、"
            '<a href="/review">内容の見直し</a>で確かめられます。</p>')

_ACTIONS = {
    "signin": "サインイン", "signin_failed": "サインイン失敗", "signout": "サインアウト",
    "publish": "公開", "rollback": "元に戻す", "bundle_applied": "バンドル適用",
    "bundle_refused": "バンドル拒否", "bundle_made": "バンドル作成",
    "password_set": "パスワード設定",
}


def _when(iso: str) -> str:
    """ISO UTC time as staff read it: 2026-11-27 02:48:34 UTC."""
    return str(iso).replace("T", " ").replace("+00:00", " UTC")


def _audit_detail(record: dict[str, Any]) -> str:
    skip = {"time", "who", "action"}
    return "、".join(f"{k}={v}" for k, v in record.items() if k not in skip)


def _answer_html(question: str, answer: Any) -> str:
    """One question and what the kiosk would do with it (answer, ask back, or nothing)."""
    if not question:
        return ""
    head = f"<p><strong>質問:</strong> {_esc(question)}</p>"
    if answer is None or answer.best is None or answer.kind.value == "none":
        return (f'<div class="answer">{head}<p><strong>結果:</strong> 答えが見つかりません'
                "（キオスクは「わかりません」と答えます）。</p></div>")
    best = answer.best.entry
    kind = "答えます" if answer.kind.value == "confident" else "聞き返します（自信が低い）"
    text = best.spoken or best.body
    from kiosk.content.contract import checked_date_text

    where = (f"確認日 {_esc(checked_date_text(best))}（{_STATUS.get(best.status, '状態の記入なし')}）"
             if best.checked else "確認日の記入なし")
    source = f"、出典 {_esc(best.source_url or best.source)}" if best.source_url or best.source else ""
    return (f'<div class="answer">{head}<p><strong>結果:</strong> {kind}</p>'
            f'<p><strong>見つかった項目:</strong> <span class="hit-title">{_esc(best.title)}</span>'
            f"（ID {_esc(best.id)}）</p><p>{_esc(text[:300])}</p>"
            f'<p class="provenance">{where}{source}</p></div>')


# ------------------------------------------------------------------------- content work


class Draft:
    """An upload being previewed: its entries and problems, what it changes against the live
    content, and a candidate index (in the draft's private temp folder) to try questions on.
    Nothing here touches the live index until `ContentDesk.publish`."""

    def __init__(self, filename: str, folder: Path, entries: list, problems: list,
                 live: list, settings: Settings):
        self.id = secrets.token_urlsafe(12)
        self.filename = filename
        self.folder = folder
        self.entries = entries
        self.problems = problems
        self.settings = settings
        old = {e.id: e for e in live}
        new = {e.id: e for e in entries}
        self.added = [(i, e.title) for i, e in new.items() if i not in old]
        self.changed = [(i, e.title) for i, e in new.items() if i in old and old[i] != e]
        self.removed = [(i, e.title) for i, e in old.items() if i not in new]
        self.same = sum(1 for i, e in new.items() if old.get(i) == e)
        self._index = None
        self._lock = threading.Lock()

    def ask(self, question: str):
        """What the kiosk would answer with this content (built on first question)."""
        from kiosk.search.index import SearchIndex, build_index

        with self._lock:
            if self._index is None:
                where = self.folder / "candidate-index"
                build_index(self.entries, where, self.settings)
                self._index = SearchIndex.open(where, self.settings)
            return _compose(self._index, question, self.settings)

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None
            shutil.rmtree(self.folder, ignore_errors=True)


def _compose(index, question: str, settings: Settings):
    """The preview answers exactly as the kiosk would (kiosk.dialogue.ask)."""
    from kiosk.answer.composer import AnswerComposer
    from kiosk.dialogue.ask import ask

    return ask(index, AnswerComposer(settings.answer, ()), [question])


class ContentDesk:
    """The content side of the desk, all through the shared import and publishing path."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._live = None
        self._live_lock = threading.Lock()

    # live content

    def _live_index(self):
        """The kiosk's live index (None until something is published); it follows every
        publish and rollback by itself."""
        from kiosk.search.versions import LiveIndex

        with self._live_lock:
            if self._live is None:
                try:
                    self._live = LiveIndex(self.settings.index_dir, self.settings)
                except KioskError:
                    return None
            return self._live

    def close(self) -> None:
        with self._live_lock:
            if self._live is not None:
                self._live.close()
                self._live = None

    def live_entries(self) -> list:
        live = self._live_index()
        return live.entries() if live else []

    def live_summary(self) -> str:
        live = next((v for v in self.versions() if v["live"]), None)
        if live is None:
            return "まだ内容が公開されていません。"
        return (f"版 {live['version']}（{live['when']} 公開、{live['who'] or '—'}）、"
                f"{live['entries']} 件の項目。")

    def ask(self, question: str):
        live = self._live_index()
        return _compose(live, question, self.settings) if live else None

    # uploads

    def prepare(self, upload: Upload) -> Draft:
        """Read and check an upload exactly as `kiosk content import` would, without
        publishing it."""
        from kiosk.content.entries import ContentProblem, validate_content

        folder = Path(tempfile.mkdtemp(prefix="kiosk-upload-"))  # mode 0700
        try:
            paths, names = write_upload(upload, folder, self.settings)
            entries, problems = validate_content(paths, self.settings)
            problems = [ContentProblem(_shown(p.file, names), p.line, p.field,
                                       _shown(p.message, names), p.warning) for p in problems]
            return Draft(_display_name(upload.filename), folder, list(entries), problems,
                         self.live_entries(), self.settings)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def publish(self, draft: Draft, who: str) -> str:
        from kiosk.content.publishing import ContentPublisher

        result = ContentPublisher(self.settings).publish_entries(
            draft.entries, who=who, note=f"uploaded {draft.filename}")
        return result.version.id

    # versions

    def versions(self) -> list[dict[str, Any]]:
        from kiosk.search.versions import IndexVersions

        return [{"version": v.id, "when": _when(v.created),
                 "who": v.who, "entries": v.entries, "note": v.note, "live": v.current}
                for v in IndexVersions.from_settings(self.settings).list()]

    def rollback(self, version: str) -> None:
        from kiosk.search.versions import IndexVersions

        IndexVersions.from_settings(self.settings).rollback(to=version)

    def export_csv(self) -> bytes:
        from kiosk.content.entries import csv_bytes

        return csv_bytes(self.live_entries())

    # what visitors asked

    def unanswered_report(self) -> dict[str, Any] | None:
        """Unanswered questions and categories per week from the opt-in query log; None when
        the log is switched off and empty."""
        from kiosk.dialogue.eventlog import QueryLog

        qlog = QueryLog(self.settings)
        if not qlog.enabled and not qlog.read():
            return None
        return {"unanswered": qlog.unanswered(limit=50),
                "weeks": [(w, cats[:10]) for w, cats in qlog.categories_by_week()[:8]]}


def _shown(text: str, names: dict[str, str]) -> str:
    """Replace the private temp paths in a message by the names staff gave their files."""
    for path in sorted(names, key=len, reverse=True):  # files before their folder
        text = text.replace(path, names[path])
    return text
