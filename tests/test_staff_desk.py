"""The staff content desk, served for real on loopback: plain HTTP requests for the security
rules, and a real headless Chromium (Playwright) for what staff do — sign in, upload, preview,
publish, ask, roll back — with axe-core checking every page."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import threading
import urllib.parse
import zipfile
from pathlib import Path

import pytest
from axe import assert_accessible, launch_chromium
from kiosk_visitors import keep_searching

from kiosk import i18n
from kiosk.config import load_settings
from kiosk.content.audit import AuditLog
from kiosk.content.contract import Entry
from kiosk.content.publishing import ContentPublisher
from kiosk.staff.accounts import StaffPasswords
from kiosk.staff.desk import make_server

USER, PASSWORD = "tanaka", "correct horse battery"
NEW_ID = "staff-test-pool"
NEW_TITLE = "市民プールの営業時間"
NEW_BODY = "市民プールは夏の間、朝9時から夕方5時まで泳げます。月曜日はお休みです。"

STARTING_CONTENT = [
    Entry(id="library-hours", title="図書館の開館時間",
          body="中央図書館は朝9時から夜7時まで開いています。月曜日はお休みです。",
          category="施設", keywords=("図書館",)),
    Entry(id="garbage-days", title="ごみを出す日",
          body="燃えるごみは週2回、朝8時までに出してください。", category="ごみ"),
    Entry(id="juminhyo", title="住民票の写しがほしい",
          body="住民票の写しは市民課の窓口で取れます。手数料は1通300円です。",
          category="戸籍・住民票"),
]

# ------------------------------------------------------------------------------ set-up


@pytest.fixture(autouse=True, scope="module")
def desk_in_japanese():
    """The desk speaks Japanese by default, and these tests read it as staff do (the rest of
    the suite reads English: tests/conftest.py; the English desk: tests/test_messages.py)."""
    saved = os.environ.pop(i18n.LANGUAGE_ENV, None)
    i18n.set_language()
    yield
    if saved is not None:
        os.environ[i18n.LANGUAGE_ENV] = saved
    i18n.set_language()


def write_config(folder: Path, language: str | None = None, **admin: object) -> Path:
    lines = ["[paths]", 'index_dir = "index"', 'state_dir = "var"', "",
             "[logging]", "query_log = true", ""]
    lines += ["[ui]", f"language = {json.dumps(language)}", ""] if language else []
    lines += ["[admin]", "port = 0"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in admin.items()]
    cfg = folder / "kiosk.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


class Desk:
    """A running staff desk on a free loopback port."""

    def __init__(self, folder: Path, publish: bool = True, language: str | None = None,
                 **admin: object):
        folder.mkdir(parents=True, exist_ok=True)
        self.settings = load_settings(write_config(folder, language, **admin))
        StaffPasswords(self.settings.state_dir).set(USER, PASSWORD)
        if publish:
            ContentPublisher(self.settings).publish_entries(STARTING_CONTENT, who="install")
        self.server = make_server(self.settings, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read().decode("utf-8", "replace")
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def sign_in(self, user: str = USER, password: str = PASSWORD) -> tuple[int, dict, str]:
        """Plain-HTTP sign-in, as a browser would do it (pre-session cookie + its token)."""
        _, headers, page = self.request("GET", "/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        pre = headers["set-cookie"].split(";")[0]
        form = urllib.parse.urlencode({"csrf": token, "user": user, "password": password})
        return self.request("POST", "/login", form, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": pre})


def session_cookie(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";")[0]


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    d = Desk(tmp_path_factory.mktemp("desk"))
    yield d
    d.close()


# ---------------------------------------------------------------------- plain HTTP rules


def test_pages_need_a_session(desk: Desk):
    status, headers, _ = desk.request("GET", "/")
    assert status == 303 and headers["location"] == "/login"
    status, headers, body = desk.request("GET", "/content.csv")
    assert status == 303 and "title" not in body
    status, _, body = desk.request(
        "POST", "/rollback", "version=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403


def test_sign_in_sets_a_strict_http_only_cookie_and_is_audited(desk: Desk):
    status, headers, _ = desk.sign_in()
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert any(r["action"] == "signin" and r["who"] == USER
               for r in AuditLog(desk.settings.state_dir).read())


def test_posts_without_the_csrf_token_are_refused(desk: Desk):
    _, headers, _ = desk.sign_in()
    cookie = session_cookie(headers)
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    status, _, body = desk.request("POST", "/rollback", "version=1", form)
    assert status == 403 and "ページを読み込み直して" in body
    status, _, _ = desk.request("POST", "/rollback", "version=1&csrf=forged", form)
    assert status == 403
    # a real token, but sent from another site
    status, _, page = desk.request("GET", "/history", headers={"Cookie": cookie})
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    status, _, _ = desk.request("POST", "/discard", f"csrf={token}", {
        **form, "Origin": "http://evil.example"})
    assert status == 403
    status, headers, _ = desk.request("POST", "/discard", f"csrf={token}", form)
    assert status == 303


def test_other_host_names_are_refused(desk: Desk):
    """DNS rebinding: a page on evil.example re-pointed at 127.0.0.1 is still refused."""
    status, _, _ = desk.request("GET", "/login", headers={"Host": "evil.example"})
    assert status == 421
    status, _, _ = desk.request("GET", "/login", headers={"Host": f"localhost:{desk.port}"})
    assert status == 200


def test_sign_in_form_needs_its_token_too(desk: Desk):
    form = urllib.parse.urlencode({"user": USER, "password": PASSWORD})
    status, _, _ = desk.request("POST", "/login", form,
                                {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403


def test_wrong_passwords_are_rate_limited(tmp_path: Path):
    d = Desk(tmp_path / "limited", False, max_failed_signins=3, lockout_seconds=60)
    try:
        for _ in range(3):
            status, _, body = d.sign_in(password="wrong password!")
            assert status == 401 and "パスワードがちがいます" in body
        status, headers, body = d.sign_in()  # even the right password now waits
        assert status == 429 and int(headers["retry-after"]) > 0
        assert "秒後" in body
        failed = [r for r in AuditLog(d.settings.state_dir).read()
                  if r["action"] == "signin_failed"]
        assert len(failed) == 4
    finally:
        d.close()


def test_oversized_upload_is_refused_before_reading(tmp_path: Path):
    d = Desk(tmp_path / "small", False, max_upload_bytes=1000)
    try:
        _, headers, _ = d.sign_in()
        status, _, body = d.request("POST", "/upload", b"x" * 200_000, {
            "Cookie": session_cookie(headers),
            "Content-Type": "multipart/form-data; boundary=zzz"})
        assert status == 413 and "大きすぎます" in body
    finally:
        d.close()


# --------------------------------------------------------------------- in a real browser

@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def staff(browser, desk: Desk):
    """A signed-in browser tab."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(desk.url + "/")
    assert page.url.endswith("/login")
    page.get_by_label("名前").fill(USER)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="サインイン").click()
    page.wait_for_url(desk.url + "/")
    yield page
    context.close()


def upload(page, tmp_path: Path, name: str, data: bytes) -> None:
    file = tmp_path / name
    file.write_bytes(data)
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + "/")
    page.get_by_label(re.compile("ファイル")).set_input_files(str(file))
    page.get_by_role("button", name="読み込んで確認する").click()


def ask_live(page, question: str) -> str:
    page.get_by_label("質問", exact=True).fill(question)
    page.get_by_role("button", name="質問する").click()
    return page.locator(".answer").inner_text()


def test_sign_in_page_is_accessible_with_and_without_an_error(browser, desk: Desk):
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(desk.url + "/login")
        assert_accessible(page)
        page.get_by_label("名前").fill("nobody")
        page.get_by_label("パスワード").fill("not the password")
        page.get_by_role("button", name="サインイン").click()
        error = page.get_by_role("alert")
        assert "ちがいます" in error.inner_text()
        # the message is tied to the fields it is about
        assert page.get_by_label("パスワード").get_attribute("aria-describedby") == "signin-error"
        assert_accessible(page)
    finally:
        context.close()
    # the failure above must not lock the other tests out
    desk.server.desk.limiter.clear()


def new_row() -> bytes:
    return f'{NEW_ID},{NEW_TITLE},{NEW_BODY},施設,プール|水泳\r\n'.encode("utf-8")


def test_upload_preview_publish_ask_and_roll_back(staff, desk: Desk, tmp_path: Path):
    page = staff
    assert_accessible(page)
    assert NEW_TITLE not in ask_live(page, "市民プールは何時まで泳げますか")
    current = page.request.get(desk.url + "/content.csv").body()
    upload(page, tmp_path, "更新.csv", current + new_row())
    page.wait_for_url("**/preview")
    assert page.locator("#count-added").inner_text() == "1 件"
    assert page.locator("#count-changed").inner_text() == "0 件"
    assert page.locator("#count-removed").inner_text() == "0 件"
    assert_accessible(page)

    # try it on the candidate before anyone else can see it
    page.get_by_label("質問 1").fill("市民プールは何時まで泳げますか")
    page.get_by_role("button", name="新しい内容で答えを見る").click()
    assert NEW_TITLE in page.locator(".answer").first.inner_text()
    assert_accessible(page)
    versions_before = len(desk.server.desk.content.versions())

    # the kiosk (its own LiveIndex, as in `kiosk run`) keeps answering through the swap
    with keep_searching(desk.settings, "図書館は何時まで開いていますか"):
        page.get_by_role("button", name=re.compile("公開する")).click()
        page.wait_for_url(desk.url + "/")
    assert "公開しました" in page.get_by_role("status").first.inner_text()
    # the page polled /progress while publishing (issue 17): every step, each finished
    steps = page.request.get(desk.url + "/progress").json()
    assert {"項目を解析", "索引を書き込み"} <= {s["step"] for s in steps}  # in the desk's language
    assert all(s["finished"] for s in steps)
    analysed = next(s for s in steps if s["step"] == "項目を解析")
    assert analysed["done"] == analysed["total"] > 0 and "件" in analysed["line"]
    assert NEW_TITLE in ask_live(page, "市民プールは何時まで泳げますか")
    assert len(desk.server.desk.content.versions()) == min(
        versions_before + 1, desk.settings.content.keep_versions + 1)
    audit = AuditLog(desk.settings.state_dir).read()
    assert audit[-1]["action"] == "publish" and audit[-1]["who"] == USER

    page.get_by_role("link", name="公開の履歴").click()
    assert_accessible(page)
    page.get_by_role("button", name=re.compile("この版に戻す")).first.click()
    page.wait_for_url("**/history")
    assert "戻しました" in page.get_by_role("status").first.inner_text()
    page.get_by_role("link", name="ホーム").click()
    assert NEW_TITLE not in ask_live(page, "市民プールは何時まで泳げますか")
    assert AuditLog(desk.settings.state_dir).read()[-1]["action"] == "rollback"


def test_bad_upload_shows_row_level_errors_and_changes_nothing(staff, desk: Desk,
                                                             tmp_path: Path):
    page = staff
    before = desk.server.desk.content.versions()
    live_csv = page.request.get(desk.url + "/content.csv").body()
    bad = ("id,title,body,category\n"
           "ok-1,正しい項目,これは正しい本文です。,施設\n"
           "bad-1,,本文はあります。,施設\n"
           "ok-1,同じID,IDがかぶっています。,施設\n").encode("utf-8")
    upload(page, tmp_path, "まちがい.csv", bad)
    page.wait_for_url("**/preview")
    rows = page.locator("#prob-h ~ table tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert any(t.startswith("3") and "title" in t for t in texts), texts
    assert any(t.startswith("4") and "id" in t for t in texts), texts
    assert page.get_by_role("button", name=re.compile("公開する")).count() == 0
    assert "公開できません" in page.get_by_role("alert").first.inner_text()
    assert_accessible(page)
    assert desk.server.desk.content.versions() == before
    assert page.request.get(desk.url + "/content.csv").body() == live_csv
    page.get_by_role("button", name=re.compile("取り消す")).click()


def test_unreadable_upload_is_explained_next_to_the_file_field(staff, desk: Desk,
                                                              tmp_path: Path):
    page = staff
    upload(page, tmp_path, "content.xlsx", b"PK\x03\x04 not really")
    error = page.locator("#file-error")
    assert "読み込めない種類" in error.inner_text()
    assert "file-error" in page.get_by_label(re.compile("ファイル")).get_attribute(
        "aria-describedby")
    assert_accessible(page)


def test_downloaded_csv_round_trips_unchanged(staff, desk: Desk, tmp_path: Path):
    page = staff
    current = page.request.get(desk.url + "/content.csv")
    assert current.headers["content-type"].startswith("text/csv")
    upload(page, tmp_path, "そのまま.csv", current.body())
    page.wait_for_url("**/preview")
    for kind in ("added", "changed", "removed"):
        assert page.locator(f"#count-{kind}").inner_text() == "0 件"
    page.get_by_role("button", name=re.compile("取り消す")).click()


def test_shift_jis_csv_json_lines_and_markdown_zip_uploads(staff, desk: Desk, tmp_path: Path):
    page = staff
    sjis = ("id,title,body,category\n"
            "sjis-1,粗大ごみの申し込み,粗大ごみは電話で申し込んでください。,ごみ\n").encode("cp932")
    upload(page, tmp_path, "sjis.csv", sjis)
    page.wait_for_url("**/preview")
    assert page.locator("#count-added").inner_text() == "1 件"
    jsonl = json.dumps({"id": "jsonl-1", "title": "犬の登録", "body": "犬を飼ったら30日以内に"
                        "登録してください。", "category": "くらし"}, ensure_ascii=False)
    upload(page, tmp_path, "entries.jsonl", jsonl.encode("utf-8") + b"\n")
    page.wait_for_url("**/preview")
    assert page.locator("#count-added").inner_text() == "1 件"
    assert page.locator("#count-removed").inner_text() == f"{len(STARTING_CONTENT)} 件"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pages/pool-hours.md",
                    "---\ntitle: 図書館の開館時間\ncategory: 施設\n---\n図書館は朝9時から開きます。\n")
        zf.writestr("../../../escape.md", "# 外に出ようとするファイル\n中身です。\n")
    upload(page, tmp_path, "pages.zip", buf.getvalue())
    page.wait_for_url("**/preview")
    assert page.locator("#count-added").inner_text() == "2 件"
    assert "escape" in page.locator("table").first.inner_text()
    assert not (tmp_path.parent / "escape.md").exists()
    page.get_by_role("button", name=re.compile("取り消す")).click()


def test_unanswered_report_has_a_table_and_an_accessible_chart(staff, desk: Desk):
    import datetime as dt

    from kiosk.dialogue.eventlog import QueryLog

    qlog = QueryLog(desk.settings)
    now = dt.datetime.now(dt.timezone.utc)
    for _ in range(3):
        qlog.record("犬の登録はどこでしますか", "none", now=now)
    qlog.record("ごみの日", "confident", "garbage", "ごみ", now=now)
    qlog.record("図書館", "confident", "lib", "施設", now=now - dt.timedelta(days=7))
    page = staff
    page.get_by_role("link", name="答えられなかった質問").click()
    table_text = page.locator("table").first.inner_text()
    assert "犬の登録はどこでしますか" in table_text and "3" in table_text
    chart = page.locator("svg[role=img]").first
    assert "ごみ 1 回" in chart.locator("desc").text_content()
    assert_accessible(page)


# ------------------------------------------------------------------------------- CLI


def test_set_password_from_the_command_line(tmp_path: Path, monkeypatch, capsys):
    from kiosk.cli import main

    cfg = write_config(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(cfg), "admin", "set-password", "--user", "sato",
                 "--password-stdin"]) == 2
    assert "パスワードが短すぎます" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["--config", str(cfg), "admin", "set-password", "--user", "sato",
                 "--password-stdin"]) == 0
    passwords = StaffPasswords(tmp_path / "var")
    assert passwords.check("sato", "a long enough password")
    assert not passwords.check("sato", "a wrong password")
    assert not passwords.check("nobody", "a long enough password")
    stored = (tmp_path / "var" / "staff-passwords.json").read_text()
    assert "a long enough password" not in stored and "scrypt" in stored
    assert (tmp_path / "var" / "staff-passwords.json").stat().st_mode & 0o077 == 0


def test_admin_refuses_to_start_without_any_password(tmp_path: Path, capsys):
    from kiosk.cli import main

    cfg = write_config(tmp_path)
    assert main(["--config", str(cfg), "admin"]) == 2
    assert "kiosk admin set-password" in capsys.readouterr().err


# --------------------------------------------------------------------------- zip uploads


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_uploads_are_limited_and_never_write_their_own_paths(tmp_path: Path):
    from kiosk.staff.uploads import Upload, UploadError, write_upload

    settings = load_settings(write_config(tmp_path, max_zip_files=2,
                                          max_unzipped_bytes=100_000))
    for sub in ("private", "p2", "p3", "p4"):
        (tmp_path / sub).mkdir()
    folder = tmp_path / "private"
    md = b"---\ntitle: t\n---\nbody\n"
    with pytest.raises(UploadError, match="2 個まで"):
        write_upload(Upload("a.zip", _zip({f"{i}.md": md for i in range(3)})), folder, settings)
    bomb = _zip({"big.md": b"a" * 200_000})  # compresses to a few hundred bytes
    with pytest.raises(UploadError, match="大きすぎます"):
        write_upload(Upload("a.zip", bomb), tmp_path / "p2", settings)
    with pytest.raises(UploadError, match="Markdown"):
        write_upload(Upload("a.zip", _zip({"run.sh": b"rm -rf /"})), tmp_path / "p3", settings)
    paths, names = write_upload(
        Upload("a.zip", _zip({"../../../../tmp/owned.md": md, "/etc/x.md": md})),
        tmp_path / "p4", settings)
    written = sorted(p.relative_to(tmp_path / "p4") for p in (tmp_path / "p4").rglob("*.md"))
    assert [str(p) for p in written] == ["markdown/00001/owned.md", "markdown/00002/x.md"]
    assert set(names.values()) == {"a.zip", "a.zip//etc/x.md", "a.zip/../../../../tmp/owned.md"}


# ------------------------------------------------------------------- sessions and limits


def test_sessions_end_after_the_idle_time_and_limits_wear_off():
    from kiosk.staff.accounts import Sessions, SignInLimiter

    now = [1000.0]
    sessions = Sessions(idle_seconds=60, clock=lambda: now[0])
    s = sessions.create("tanaka")
    now[0] += 59
    assert sessions.get(s.token) is s  # a request keeps it alive
    now[0] += 61
    assert sessions.get(s.token) is None
    limiter = SignInLimiter(2, 300, clock=lambda: now[0])
    waits = []
    for _ in range(12):  # a back-off that grows up to the limit, not a fixed lockout
        wait, attempt = limiter.reserve(user="tanaka", address="127.0.0.1")
        if wait:
            waits.append(wait)
            now[0] += wait
            wait, attempt = limiter.reserve(user="tanaka", address="127.0.0.1")
        assert wait == 0
        limiter.finish(attempt, ok=False)
    assert waits[:4] == [2, 4, 8, 16] and max(waits) == 300
    wait, other = limiter.reserve(user="suzuki", address="127.0.0.1")
    assert wait == 0  # the other name is not held up
    limiter.finish(other, ok=True)
    now[0] += 300
    wait, attempt = limiter.reserve(user="tanaka", address="127.0.0.1")
    assert wait == 0  # after the back-off the right password gets its check
    limiter.finish(attempt, ok=True)
    assert limiter.reserve(user="tanaka", address="127.0.0.1")[0] == 0


# ------------------------------------------------------------- attacked on loopback (#15)


def _login_form(d: Desk) -> tuple[str, str]:
    """A fresh sign-in form: (pre-session cookie, its token)."""
    _, headers, page = d.request("GET", "/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return headers["set-cookie"].split(";")[0], token


def _post_login(d: Desk, cookie: str, token: str, user: str, password: str,
                **headers: str) -> tuple[int, dict, str]:
    form = urllib.parse.urlencode({"csrf": token, "user": user, "password": password})
    return d.request("POST", "/login", form, {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, **headers})


def _checked(d: Desk) -> int:
    """Passwords the desk actually checked and found wrong (not refused by the limit)."""
    return sum(1 for r in AuditLog(d.settings.state_dir).read()
               if r["action"] == "signin_failed" and not r.get("reason"))


def test_parallel_wrong_passwords_cannot_slip_past_the_limit(tmp_path: Path):
    d = Desk(tmp_path / "parallel", False, max_failed_signins=3, lockout_seconds=60)
    try:
        forms = [_login_form(d) for _ in range(12)]
        start = threading.Barrier(len(forms))
        statuses: list[int] = []

        def guess(cookie: str, token: str, n: int) -> None:
            start.wait()
            statuses.append(_post_login(d, cookie, token, USER, f"guess number {n}")[0])

        threads = [threading.Thread(target=guess, args=(*f, n)) for n, f in enumerate(forms)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(statuses) == 12 and 303 not in statuses
        assert _checked(d) <= 3, "more guesses were checked than max_failed_signins"
        assert 429 in statuses
    finally:
        d.close()


def test_wrong_passwords_for_one_name_do_not_lock_out_another(tmp_path: Path):
    """Every local client is 127.0.0.1: a program guessing for one name must not stop the
    real staff member signing in."""
    d = Desk(tmp_path / "names", False, max_failed_signins=3, lockout_seconds=60)
    try:
        for n in range(3):
            assert _post_login(d, *_login_form(d), "someone", f"wrong {n}")[0] == 401
        assert _post_login(d, *_login_form(d), "someone", "wrong again")[0] == 429
        status, headers, _ = _post_login(d, *_login_form(d), USER, PASSWORD)
        assert status == 303 and "kiosk_staff=" in headers["set-cookie"]
    finally:
        d.close()


def _send_headers_only(d: Desk, path: str, length: int, cookie: str = "") -> bytes:
    """Send a POST's headers but not its body, and return the status line the desk
    answers (it must answer without waiting for the body)."""
    import socket

    with socket.create_connection(("127.0.0.1", d.port), timeout=15) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/x-www-form-urlencoded\r\n"
                      f"Content-Length: {length}\r\n" +
                      (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n").encode())
        try:
            return sock.recv(200).split(b"\r\n", 1)[0]
        except TimeoutError:
            return b"(no answer: the desk waited for the body)"


def test_unauthenticated_posts_are_refused_before_their_body_is_read(desk: Desk):
    ten_mb = 10_000_000
    assert b" 403 " in _send_headers_only(desk, "/login", ten_mb)  # no sign-in form
    assert b" 403 " in _send_headers_only(desk, "/login", ten_mb, "kiosk_signin=made-up")
    assert b" 403 " in _send_headers_only(desk, "/upload", ten_mb)  # no session
    cookie, _ = _login_form(desk)  # a real form: still, a sign-in is a few hundred bytes
    assert b" 413 " in _send_headers_only(desk, "/login", ten_mb, cookie)


def test_a_sign_in_form_token_works_once(desk: Desk):
    cookie, token = _login_form(desk)
    assert _post_login(desk, cookie, token, USER, "not the password")[0] == 401
    assert _post_login(desk, cookie, token, USER, PASSWORD)[0] == 403  # replayed


def test_a_session_ends_when_its_password_is_changed(tmp_path: Path):
    d = Desk(tmp_path / "changed", False)
    try:
        _, headers, _ = d.sign_in()
        cookie = {"Cookie": session_cookie(headers)}
        assert d.request("GET", "/", headers=cookie)[0] == 200
        StaffPasswords(d.settings.state_dir).set(USER, "a whole new passphrase")
        status, headers, _ = d.request("GET", "/", headers=cookie)
        assert status == 303 and headers["location"] == "/login"
    finally:
        d.close()


def test_the_cookie_is_secure_when_the_desk_is_served_over_https(desk: Desk):
    status, headers, _ = _post_login(desk, *_login_form(desk), USER, PASSWORD,
                                     **{"X-Forwarded-Proto": "https"})
    assert status == 303 and "; Secure" in headers["set-cookie"]
    status, headers, _ = desk.sign_in()
    assert status == 303 and "Secure" not in headers["set-cookie"]


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "tanakatanaka", "Tanaka-2026!",
                                      "1234567890", "abcdefghijkl", "password1234"])
def test_trivial_passwords_are_refused(tmp_path: Path, password: str):
    from kiosk import KioskError

    with pytest.raises(KioskError, match="推測されやすすぎます"):
        StaffPasswords(tmp_path).set(USER, password)
    StaffPasswords(tmp_path).set(USER, "kawa no nagare 7")  # a real passphrase is fine


def test_sign_in_and_pages_work_when_the_audit_log_cannot_be_written(tmp_path: Path):
    """A full (or read-only) state disk must not lock staff out; the page says the audit
    log is not being written."""
    d = Desk(tmp_path / "full")
    try:
        audit = d.settings.state_dir / "audit.jsonl"
        audit.unlink(missing_ok=True)
        audit.mkdir()  # any write to it now fails, as on a full disk
        status, headers, _ = d.sign_in()
        assert status == 303
        status, _, page = d.request("GET", "/", headers={"Cookie": session_cookie(headers)})
        assert status == 200 and "操作の記録" in page and "書き込めません" in page
        assert AuditLog(d.settings.state_dir).problem()
    finally:
        d.close()


def test_a_preview_embeds_only_the_entries_the_upload_adds_or_changes(
        tmp_path: Path, embedded_passages: list[str]):
    """The candidate index copies the live version's meaning vectors of unchanged entries,
    as a publish does: a city's 10,000 entries with one line changed are ready to try in
    seconds, not after minutes of embedding them all again."""
    from kiosk.staff.desk import ContentDesk
    from kiosk.staff.uploads import Upload

    settings = load_settings(write_config(tmp_path))
    ContentPublisher(settings).publish_entries(STARTING_CONTENT, who="install")
    embedded_passages.clear()  # the publish's own
    content = ContentDesk(settings)
    draft = content.prepare(Upload("更新.csv", content.export_csv() + new_row()))
    try:
        assert NEW_TITLE in str(draft.ask("市民プールは何時まで泳げますか"))
    finally:
        draft.close()
        content.close()
    assert len(embedded_passages) == 1 and embedded_passages[0].startswith(NEW_TITLE)
