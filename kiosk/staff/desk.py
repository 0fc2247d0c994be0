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

The desk's parts: accounts.py (passwords, sign-in back-off, sessions), uploads.py (forms
and files from the browser), pages.py (HTML), and here the HTTP routes and the desk's
state and actions.

CONTRACT:
    StaffPasswords(state_dir).set(user, password) / .check(user, password) -> bool  (accounts)
    StaffDesk(settings)                     — the page's state and actions (no HTTP)
    make_server(settings, host=None, port=None) -> ThreadingHTTPServer
    serve_in_background(settings) -> ThreadingHTTPServer — inside `kiosk run`
    serve(settings) -> None                 — `kiosk admin`
"""

from __future__ import annotations

import hmac
import http.server
import ipaddress
import json
import logging
import secrets
import shutil
import sys
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from kiosk import KioskError, i18n
from kiosk.config import Settings
from kiosk.content.audit import AuditLog
from kiosk.i18n import N_, _, ngettext
from kiosk.loopback import BodyRefused, LoopbackHandler, LoopbackServer
from kiosk.progress import LatestProgress, reporting_to
from kiosk.staff.accounts import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    Session,
    Sessions,
    SignInForms,
    SignInLimiter,
    StaffPasswords,
)
from kiosk.staff.pages import WEB_DIR, _esc, bar_chart, notice, page, render, table
from kiosk.staff.uploads import Upload, UploadError, _display_name, parse_form, write_upload

log = logging.getLogger(__name__)


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
    https: bool = False  # served through an HTTPS proxy: cookies get Secure


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
_SIGNED_OUT = N_("You are not signed in, or your session has expired. Please sign in again.")


#: Largest sign-in POST read (a name, a password and a token are a few hundred bytes).
LOGIN_BODY_BYTES = 8192
_FORM_EXPIRED = N_("This form has expired or was sent from another page. Reload the page and "
                   "try again.")


class _Handler(LoopbackHandler):
    """The desk's HTTP side on the shared loopback base (Host check, strict lengths,
    socket timeout = [admin] socket_timeout_seconds, set by make_server)."""

    server_version = "KioskStaffDesk"
    sys_version = ""
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

    def refuse_host(self) -> None:
        self._send(Response(HTTPStatus.MISDIRECTED_REQUEST, page(
            _("Refused"), notice(_("The desk cannot be used at this address. Open it at "
                                   "http://127.0.0.1."), bad=True))), head=self.command == "HEAD")

    def _handle(self, method: str, head: bool = False) -> None:
        try:
            response = self._respond(method)
        except Exception:  # a bug must not take the desk down or show a traceback
            log.exception(_("staff desk request failed"))
            response = Response(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                page(_("Error"), notice(_("Something went wrong on the server. Please try "
                                          "again; if it keeps happening, contact the "
                                          "administrator."), bad=True)),
            )
        self._send(response, head)

    def _send(self, response: Response, head: bool = False) -> None:
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
        if method == "GET" and url.path in _STATIC:
            name, ctype = _STATIC[url.path]
            return Response(200, (WEB_DIR / name).read_bytes(), ctype,
                            {"Cache-Control": "max-age=300"})
        cookies = self._cookies()
        session = desk.current_session(cookies.get(SESSION_COOKIE))
        form: dict[str, str] = {}
        files: list[Upload] = []
        if method == "POST":
            refused = self._refuse_cross_site()
            if refused:
                self.close_connection = True
                return refused
            # Who may send a body, and how big, is settled before a byte of it is read.
            if url.path == "/login":
                expected = cookies.get(PRESESSION_COOKIE)
                if not desk.signin_forms.known(expected):
                    self.close_connection = True
                    return desk.error_page(HTTPStatus.FORBIDDEN, _(_FORM_EXPIRED), None)
                limit = LOGIN_BODY_BYTES
            elif session is None:
                self.close_connection = True
                return desk.error_page(HTTPStatus.FORBIDDEN, _(_SIGNED_OUT), None)
            else:
                expected = session.csrf
                limit = desk.settings.admin.max_upload_bytes + 64 * 1024
            try:
                length = self.body_length(limit)
            except BodyRefused as exc:
                if exc.status != HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                    return desk.error_page(exc.status, _("The length of what was sent is unknown."), session)
                what = (_("What was sent is too large.") if url.path == "/login" else
                        _("The file is too large (at most {mb} MB). Split it and load the parts "
                          "one by one.").format(mb=desk.settings.admin.max_upload_bytes // 1_000_000))
                return desk.error_page(exc.status, what, session)
            body = self.rfile.read(length)
            try:
                form, files = parse_form(self.headers.get("Content-Type", ""), body)
            except UploadError as exc:
                return desk.error_page(HTTPStatus.BAD_REQUEST, str(exc), session)
            if not expected or not hmac.compare_digest(
                form.get("csrf", "").encode(), expected.encode()
            ) or (url.path == "/login" and not desk.signin_forms.take(expected)):
                return desk.error_page(HTTPStatus.FORBIDDEN, _(_FORM_EXPIRED), session)
        request = Request(method, url.path, dict(urllib.parse.parse_qsl(url.query)), form,
                          files, session, self.client_address[0], self._https())
        return desk.handle(request)

    def _https(self) -> bool:
        """Reached through an HTTPS proxy (which says so), or a page served over HTTPS."""
        proto = (self.headers.get("X-Forwarded-Proto") or "").strip().lower()
        return proto == "https" or (self.headers.get("Origin") or "").startswith("https://")

    def _refuse_cross_site(self) -> Response | None:
        """Browsers send Origin on POST; one naming another site is a forged request. The
        desk's own forms send Origin "null" (its pages ask for no referrer), which is fine:
        the CSRF token and SameSite cookie still apply. Sec-Fetch-Site settles it when
        present."""
        origin = self.headers.get("Origin")
        fetch_site = self.headers.get("Sec-Fetch-Site")
        forged = fetch_site is not None and fetch_site not in ("same-origin", "none")
        if origin and origin != "null":
            host = urllib.parse.urlsplit(origin).netloc
            forged = forged or host != self.headers.get("Host")
        if forged:
            return Response(HTTPStatus.FORBIDDEN, page(
                _("Refused"), notice(_("Requests from other sites are not accepted."), bad=True)))
        return None


class _DeskServer(LoopbackServer):
    def server_close(self) -> None:
        super().server_close()
        self.desk.close()  # type: ignore[attr-defined]


def make_server(settings: Settings, host: str | None = None,
                port: int | None = None) -> http.server.ThreadingHTTPServer:
    """A ready server for the staff desk (port 0 picks a free one; see .server_address)."""
    i18n.set_language(settings.ui.language)
    desk = StaffDesk(settings)
    handler = type("StaffDeskHandler", (_Handler,),
                   {"desk": desk, "timeout": settings.admin.socket_timeout_seconds})
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
        self.signin_forms = SignInForms()
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

    def current_session(self, token: str | None) -> Session | None:
        """The session for a cookie, unless its user's password changed since sign-in."""
        session = self.sessions.get(token)
        if session is not None and self.passwords.stamp(session.user) != session.stamp:
            self.sessions.drop(session.token)
            return None
        return session

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
                                       _("This action is not possible here."), req.session)
            return self.error_page(HTTPStatus.NOT_FOUND, _("Page not found."), req.session)
        if req.session is None and req.path not in ("/login",):
            if req.method == "GET":
                return redirect("/login")
            return self.error_page(HTTPStatus.FORBIDDEN, _(_SIGNED_OUT), None)
        try:
            return route(req)
        except KioskError as exc:
            return self.error_page(HTTPStatus.BAD_REQUEST, str(exc), req.session)

    def error_page(self, status: int, message: str, session: Session | None) -> Response:
        link = ('<p><a href="/">' + _esc(_("Back to the home page")) + "</a></p>" if session else
                '<p><a href="/login">' + _esc(_("To the sign-in page")) + "</a></p>")
        return Response(status, page(_("That did not work"), notice(message, bad=True) + link,
                                     session))

    def _flash(self, session: Session) -> str:
        text, session.notice = session.notice, ""
        warning = ""
        if self.audit.problem():
            warning = notice(_("The record of actions (audit log) cannot be written now (the "
                               "disk is full, or writing is not allowed). You can keep working, "
                               "but nothing is recorded. Contact the administrator."), bad=True)
        return warning + (notice(text) if text else "")

    # -- sign-in

    def login_form(self, req: Request, error: str = "", user: str = "",
                   status: int = 200) -> Response:
        token = self.signin_forms.issue()
        err_html = ""
        invalid = ""
        if error:
            err_html = f'<p id="signin-error" class="error" role="alert">{_esc(error)}</p>'
            invalid = 'aria-invalid="true" aria-describedby="signin-error"'
        body = render("login.html", csrf=token, error=err_html, user=_esc(user),
                      user_invalid=invalid, password_invalid=invalid)
        cookie = f"{PRESESSION_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict"
        cookie += "; Secure" if req.https else ""
        return Response(status, page(_("Sign in"), body), headers={"Set-Cookie": cookie})

    def login(self, req: Request) -> Response:
        user = req.form.get("user", "").strip()[:64]
        wait, attempt = self.limiter.reserve(user, req.client)
        if wait:
            self.audit.record("signin_failed", user or "?", address=req.client,
                              reason="rate-limited")
            resp = self.login_form(
                req, _("Signing in is paused after several wrong passwords. Try again in "
                       "{seconds} seconds.").format(seconds=wait), user, HTTPStatus.TOO_MANY_REQUESTS)
            resp.headers["Retry-After"] = str(wait)
            return resp
        ok = False
        try:  # the attempt was reserved before the check: parallel guesses wait their turn
            ok = self.passwords.check(user, req.form.get("password", ""))
        finally:
            self.limiter.finish(attempt, ok)
        if not ok:
            self.audit.record("signin_failed", user or "?", address=req.client)
            return self.login_form(req, _("The name or the password is wrong. Check them and "
                                          "enter them again."),
                                   user, HTTPStatus.UNAUTHORIZED)
        session = self.sessions.create(user, self.passwords.stamp(user))
        self.audit.record("signin", user, address=req.client)
        cookie = f"{SESSION_COOKIE}={session.token}; Path=/; HttpOnly; SameSite=Strict"
        cookie += "; Secure" if req.https else ""
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
            flash += notice(_("The file could not be loaded. Nothing has changed."), bad=True)
        if s.draft is not None:
            waiting = _("There is content waiting to be checked.")
            flash += (f'<div class="notice" role="status"><p>{_esc(waiting)}'
                      '<a href="/preview">' + _esc(_("Open the check page")) + "</a></p></div>")
        return Response(status, page(_("Home"), body, s, "home", flash))

    def ask_live(self, req: Request) -> Response:
        question = req.form.get("question", "").strip()
        answer = self.content.ask(question) if question else None
        return self.home(req, question, _answer_html(question, answer))

    def upload(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        uploads = [u for u in req.files if u.data or u.filename]
        if not uploads or not uploads[0].filename:
            return self.home(req, upload_error=_("No file was chosen. Please choose a file."),
                             status=HTTPStatus.BAD_REQUEST)
        if len(uploads[0].data) > self.settings.admin.max_upload_bytes:
            return self.home(req, upload_error=_("The file is too large. Split it and load the "
                                                 "parts one by one."),
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
            s.notice = _("There is no content being checked. Please load a file.")
            return redirect("/")
        errors = [p for p in d.problems if not p.warning]
        warnings = [p for p in d.problems if p.warning]
        problems_html = ""
        if d.problems:
            rows = [[p.line if p.line is not None else "—", p.field or "—", p.message,
                     _("Warning") if p.warning else _("Error"), p.file] for p in errors + warnings]
            heading = (ngettext("{count} error", "{count} errors", len(errors)).format(
                count=len(errors)) if errors else "") + (
                "  " + ngettext("{count} warning", "{count} warnings", len(warnings)).format(
                    count=len(warnings)) if warnings else "")
            problems_html = (
                f'<section aria-labelledby="prob-h" class="card"><h2 id="prob-h">{heading}</h2>'
                + ("<p>" + _esc(_("This cannot be published because of the errors. Fix the "
                                  "original file and load it again. The live content has not "
                                  "changed.")) + "</p>" if errors else
                   "<p>" + _esc(_("Warnings do not stop publishing, but fixing them makes the "
                                  "answers easier to listen to.")) + "</p>")
                + table(_("Problems found (the heading row counts as row 1)"),
                        [_("Row"), _("Field"), _("Problem"), _("Kind"), _("File")], rows)
                + "</section>"
            )
        changes = ""
        if d.added or d.changed or d.removed:
            listing = [[_("Added"), i, t] for i, t in d.added[:50]] + \
                      [[_("Changed"), i, t] for i, t in d.changed[:50]] + \
                      [[_("Removed"), i, t] for i, t in d.removed[:50]]
            changes = table(_("Entries that change (at most 50 of each)"),
                            [_("Change"), _("ID"), _("Title")], listing)
        changes += _freshness_note(d.entries, self.settings.content.review_months)
        try_section = ""
        publish_form = ("<p>" + _esc(_("This cannot be published because of the errors.")) + "</p>"
                        if errors else
                        f'<form method="post" action="/publish" class="inline">'
                        f'<input type="hidden" name="csrf" value="{_esc(s.csrf)}">'
                        f'<input type="hidden" name="draft" value="{_esc(d.id)}">'
                        '<button type="submit">' + _esc(ngettext(
                            "Publish ({count} entry)", "Publish ({count} entries)", len(d.entries)).format(
                            count=len(d.entries))) + '</button></form>')
        if not errors:
            fields = []
            previous = [q for q, _ in answers or []]
            label = _("Question {n}")
            for i in range(self.settings.admin.test_questions):
                q = previous[i] if i < len(previous) else ""
                fields.append(
                    f'<div class="field"><label for="q{i}">{_esc(label.format(n=i + 1))}</label>'
                    f'<input id="q{i}" name="q{i}" type="text" value="{_esc(q)}"></div>')
            results = "".join(_answer_html(q, a) for q, a in (answers or []) if q)
            try_section = (
                '<section aria-labelledby="try-h" class="card"><h2 id="try-h">'
                + _esc(_("Ask before publishing")) + "</h2><p>"
                + _esc(_("See how the kiosk answers with the new content (visitors do not see "
                         "it yet).")) + "</p>"
                f'<form method="post" action="/preview"><input type="hidden" name="csrf" '
                f'value="{_esc(s.csrf)}">{"".join(fields)}'
                '<button type="submit">' + _esc(_("See the answers with the new content"))
                + "</button></form>"
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
            flash += notice(ngettext(
                "“{file}” has {count} error, so it cannot be published. The live content has "
                "not changed.", "“{file}” has {count} errors, so it cannot be published. The "
                "live content has not changed.", len(errors)).format(file=d.filename,
                                                                      count=len(errors)), bad=True)
        return Response(200, page(_("Check the loaded content"), body, s, "", flash))

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
            s.notice = _("The checked content was not found. Please load it again.")
            return redirect("/")
        if any(not p.warning for p in d.problems):
            return self.error_page(HTTPStatus.BAD_REQUEST,
                                   _("Content with errors cannot be published."), s)
        with self._publish_lock, reporting_to(self.progress):
            self.progress.clear()
            version = self.content.publish(d, s.user)
        self.audit.record("publish", s.user, version=version, file=d.filename,
                          entries=len(d.entries), added=len(d.added), changed=len(d.changed),
                          removed=len(d.removed))
        s.draft = None
        d.close()
        s.notice = _("Published (version {version}, {count} entries). The kiosk is already "
                     "answering with the new content.").format(version=version,
                                                               count=len(d.entries))
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
        s.notice = _("The loaded content was discarded. The live content has not changed.")
        return redirect("/")

    def history(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        rows = []
        back_to = _("Go back to this version ({version})")
        for v in self.content.versions():
            if v["live"]:
                action = "<strong>" + _esc(_("Live")) + "</strong>"
            else:
                action = (
                    f'<form method="post" action="/rollback" class="inline">'
                    f'<input type="hidden" name="csrf" value="{_esc(s.csrf)}">'
                    f'<input type="hidden" name="version" value="{_esc(v["version"])}">'
                    f'<button type="submit" class="secondary" '
                    f'aria-label="{_esc(back_to.format(version=v["version"]))}">'
                    + _esc(_("Go back to this version")) + "</button></form>"
                )
            rows.append([v["version"], v["when"], v["who"], v["entries"], v["note"], action])
        versions = (table(_("Saved versions (newest first)"),
                          [_("Version"), _("Published"), _("Published by"), _("Entries"),
                           _("Note"), _("Action")], rows, numeric={3}, raw={5})
                    if rows else "<p>" + _esc(_("Nothing has been published yet.")) + "</p>")
        audit_rows = [[_when(a.get("time", "")), a.get("who", ""),
                       _(_ACTIONS[a["action"]]) if a.get("action") in _ACTIONS else a.get("action", ""),
                       _audit_detail(a)]
                      for a in reversed(self.audit.read(limit=30))]
        audit = (table(_("Recent actions (newest first, at most 30)"),
                       [_("When"), _("Who"), _("Action"), _("Details")], audit_rows)
                 if audit_rows else "<p>" + _esc(_("Nothing has been recorded yet.")) + "</p>")
        body = render("history.html", versions=versions, audit=audit)
        return Response(200, page(_("Publishing history"), body, s, "history", self._flash(s)))

    def rollback(self, req: Request) -> Response:
        s = req.session
        assert s is not None
        version = req.form.get("version", "")
        with self._publish_lock:
            self.content.rollback(version)
        self.audit.record("rollback", s.user, version=version)
        s.notice = _("Went back to version {version}. The kiosk is already answering with "
                     "this version.").format(version=version)
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
            body = render("report.html", intro=_esc(_(
                "There is no record of questions. Questions are recorded only when the "
                "question log ([logging] query_log) is switched on.")), body="")
            return Response(200, page(_("Unanswered questions"), body, s, "report"))
        top = rep["unanswered"]
        parts = [table(_("Unanswered questions (most asked first)"), [_("Question"), _("Times")],
                       [[q, n] for q, n in top], numeric={1})
                 if top else "<p>" + _esc(_("There are no unanswered questions.")) + "</p>"]
        for week, cats in rep["weeks"]:
            title = _("Categories asked most in the week of {week}").format(week=week)
            desc = _(", ").join(_("{category} {count} times").format(category=c, count=n)
                                for c, n in cats)
            parts.append(f"<h2>{_esc(title)}</h2>")
            parts.append(bar_chart(title, desc, cats))
            parts.append(table(_("{title} (table)").format(title=title),
                               [_("Category"), _("Times")], [[c, n] for c, n in cats],
                               numeric={1}))
        body = render("report.html", intro=_esc(_(
            "Questions visitors asked that found no answer. Writing new content for the most "
            "asked ones helps most.")), body="".join(parts))
        return Response(200, page(_("Unanswered questions"), body, s, "report"))

    def review(self, req: Request) -> Response:
        """The live entries by the date their facts were checked: stale and unverified ones
        first, so staff know what to re-check against the city's pages."""
        from kiosk.content.contract import review_list

        s = req.session
        assert s is not None
        months = self.settings.content.review_months
        items = review_list(self.content.live_entries(), months)
        rows = []
        for i in items:
            e = i.entry
            link = (f'<a href="{_esc(e.source_url)}">{_esc(e.source_url)}</a>'
                    if e.source_url.startswith(("https://", "http://")) else "—")
            status = _(_STATUS[e.status]) if e.status in _STATUS else "—"
            rows.append([_checked_date(e) or "—", status,
                         i.reasons or _("none"), e.id, e.title, link])
        need = sum(i.needs_review for i in items)
        intro = _("Of {total} entries, {need} need a review ({stale} checked more than "
                  "{months} months ago, {unverified} not yet checked against the city's pages, "
                  "{unchecked} with no checked date). Those needing a review come first, oldest "
                  "checked date first. `kiosk content review` prints the same list.").format(
                      total=len(items), need=need, months=months,
                      stale=sum(i.stale for i in items), unverified=sum(i.unverified for i in items),
                      unchecked=sum(i.unchecked for i in items))
        body = render("report.html", intro=_esc(intro), body=table(
            _("Content review (oldest checked date first)"),
            [_("Checked"), _("Status"), _("Review"), _("ID"), _("Title"), _("Source page")],
            rows, raw={5}))
        return Response(200, page(_("Content review"), body, s, "review"))


_STATUS = {"verified": N_("verified"), "unverified": N_("unverified")}


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
    text = _("This content has {unverified} entries not checked against the city's pages, "
             "{old} checked more than {months} months ago and {undated} with no checked date. "
             "Once published, check them on the {review} page.")
    review = '<a href="/review">' + _esc(_("Content review")) + "</a>"
    return "<p>" + _esc(text).format(unverified=unverified, old=old, months=months,
                                     undated=undated, review=review) + "</p>"

_ACTIONS = {
    "signin": N_("sign-in"), "signin_failed": N_("failed sign-in"), "signout": N_("sign-out"),
    "publish": N_("publish"), "rollback": N_("roll back"), "bundle_applied": N_("bundle applied"),
    "bundle_refused": N_("bundle refused"), "bundle_made": N_("bundle made"),
    "password_set": N_("password set"),
}


def _checked_date(entry: Any) -> str:
    """An entry's checked date as staff read it: 2026年11月27日 in Japanese (as the visitor
    hears it), the ISO date otherwise."""
    from kiosk.content.contract import checked_date_text

    return checked_date_text(entry) if i18n.language() == "ja" else entry.checked


def _when(iso: str) -> str:
    """ISO UTC time as staff read it: 2026-11-27 02:48:34 UTC."""
    return str(iso).replace("T", " ").replace("+00:00", " UTC")


def _audit_detail(record: dict[str, Any]) -> str:
    skip = {"time", "who", "action"}
    return _(", ").join(f"{k}={v}" for k, v in record.items() if k not in skip)


def _answer_html(question: str, answer: Any) -> str:
    """One question and what the kiosk would do with it (answer, ask back, or nothing)."""
    if not question:
        return ""
    head = "<p><strong>" + _esc(_("Question:")) + f"</strong> {_esc(question)}</p>"
    result = "<p><strong>" + _esc(_("Result:")) + "</strong> "
    if answer is None or answer.best is None or answer.kind.value == "none":
        return (f'<div class="answer">{head}{result}'
                + _esc(_("No answer found (the kiosk says it does not know).")) + "</p></div>")
    best = answer.best.entry
    kind = _("Answers") if answer.kind.value == "confident" else _("Asks back (not sure)")
    text = best.spoken or best.body
    status = _(_STATUS[best.status]) if best.status in _STATUS else _("no status given")
    where = (_esc(_("checked {date} ({status})").format(date=_checked_date(best), status=status))
             if best.checked else _esc(_("no checked date given")))
    source = (_esc(_(", source {source}").format(source=best.source_url or best.source))
              if best.source_url or best.source else "")
    return (f'<div class="answer">{head}{result}{_esc(kind)}</p>'
            + "<p><strong>" + _esc(_("Entry found:")) + "</strong> "
            f'<span class="hit-title">{_esc(best.title)}</span>'
            + _esc(_(" (ID {id})").format(id=best.id)) + f"</p><p>{_esc(text[:300])}</p>"
            f'<p class="provenance">{where}{source}</p></div>')


# ------------------------------------------------------------------------- content work


class Draft:
    """An upload being previewed: its entries and problems, what it changes against the live
    content, and a candidate index (in the draft's private temp folder) to try questions on.
    Nothing here touches the live index until `ContentDesk.publish`."""

    def __init__(self, filename: str, folder: Path, entries: list, problems: list,
                 live: list, settings: Settings, live_folder: Path | None = None):
        self.id = secrets.token_urlsafe(12)
        self.filename = filename
        self.folder = folder
        self.entries = entries
        self.problems = problems
        self.settings = settings
        self.live_folder = live_folder  # its vectors of unchanged entries are reused
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
                # as a publish does: the live version's vectors of unchanged entries are
                # copied (gone meanwhile, after a rollback or clean-up: all are embedded)
                build_index(self.entries, where, self.settings, previous=self.live_folder)
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

    return ask(index, AnswerComposer(settings.answer, (), settings.site), [question])


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
            return _("No content has been published yet.")
        return _("Version {version} (published {when} by {who}), {count} entries.").format(
            version=live["version"], when=live["when"], who=live["who"] or "—",
            count=live["entries"])

    def ask(self, question: str):
        live = self._live_index()
        return _compose(live, question, self.settings) if live else None

    # uploads

    def prepare(self, upload: Upload) -> Draft:
        """Read and check an upload exactly as `kiosk content import` would, without
        publishing it."""
        from kiosk.content.entries import ContentProblem, validate_content
        from kiosk.search.versions import IndexVersions

        folder = Path(tempfile.mkdtemp(prefix="kiosk-upload-"))  # mode 0700
        try:
            paths, names = write_upload(upload, folder, self.settings)
            entries, problems = validate_content(paths, self.settings)
            problems = [ContentProblem(_shown(p.file, names), p.line, p.field,
                                       _shown(p.message, names), p.warning) for p in problems]
            return Draft(_display_name(upload.filename), folder, list(entries), problems,
                         self.live_entries(), self.settings,
                         IndexVersions.from_settings(self.settings).current_path())
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
