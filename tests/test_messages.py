"""Issue 17: what staff and operators read is Japanese by default and English on request,
through gettext catalogs; long steps show progress; Ctrl+C says what was kept.

The rest of the suite reads messages in English (tests/conftest.py sets KIOSK_LANG=en);
these tests switch to Japanese explicitly."""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from kiosk import i18n
from kiosk.cli import build_parser, main
from kiosk.config import ConfigError, load_settings
from kiosk.content.entries import validate_content
from kiosk.progress import ProgressUpdate, TerminalReporter

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def language(monkeypatch):
    """Switch this process's messages to a language for one test, and back to English."""

    def use(lang: str | None) -> None:
        monkeypatch.delenv(i18n.LANGUAGE_ENV, raising=False)
        i18n.set_language(lang)

    yield use
    monkeypatch.setenv(i18n.LANGUAGE_ENV, "en")
    i18n.set_language()


def kiosk(*args: str, cwd: Path, lang: str | None = None, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != i18n.LANGUAGE_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if lang:
        env[i18n.LANGUAGE_ENV] = lang
    return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, **kw)


# ------------------------------------------------------------------------ the catalogs


def test_every_message_in_the_code_has_a_japanese_translation():
    """tools/catalogs.py --check: a message added without its Japanese fails here."""
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "catalogs.py"), "--check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_translations_keep_every_placeholder():
    from babel.messages.pofile import read_po

    _, po = i18n.catalog_files("ja")
    with open(po, "rb") as fh:
        catalog = read_po(fh, locale="ja")
    field = re.compile(r"\{[^{}]*\}|%\(\w+\)\w|%[sdr]")

    def placeholders(text: str) -> list[str]:
        return sorted(field.findall(text.replace("{{", "").replace("}}", "")))

    for message in catalog:
        if message.id and isinstance(message.id, str) and message.string:
            assert placeholders(message.id) == placeholders(message.string), message.id


def test_the_build_step_compiles_the_catalog(tmp_path):
    """setup.py's build_py writes kiosk.mo into the built package; gettext reads it."""
    import gettext

    run = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "-e", str(tmp_path),
                          "build_py", "-d", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    mo = tmp_path / "kiosk" / "locale" / "ja" / "LC_MESSAGES" / "kiosk.mo"
    with open(mo, "rb") as fh:
        ja = gettext.GNUTranslations(fh)
    assert ja.gettext("Sound devices:") == "音の機器:"
    assert ja.gettext("usage: ") == "使い方: "


# -------------------------------------------------------------------- both languages


def test_the_same_config_error_in_both_languages(tmp_path, language):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[voice]\nvolume = 3\n", encoding="utf-8")
    language("ja")
    with pytest.raises(ConfigError) as ja:
        load_settings(cfg)
    language("en")
    with pytest.raises(ConfigError) as en:
        load_settings(cfg)
    for exc in (ja.value, en.value):
        assert str(cfg) in str(exc) and "[voice]" in str(exc) and "'volume' = 3" in str(exc)
    assert "is out of range; it must be between 0 and 1" in str(en.value)
    assert "範囲外です。0 以上 1 以下にしてください" in str(ja.value)


def test_the_same_content_problem_in_both_languages(tmp_path, language):
    bad = tmp_path / "施設.csv"
    bad.write_text("id,title,body\nlib,,本文です。\n", encoding="utf-8")
    language("ja")
    (ja,) = validate_content([bad])[1]
    language("en")
    (en,) = validate_content([bad])[1]
    assert str(en) == f"{bad}:2: 'title' is empty"
    assert str(ja) == f"{bad}:2: 'title' が空です"  # same file, row and field


def test_language_comes_from_the_config_unless_kiosk_lang_says_otherwise(tmp_path):
    (tmp_path / "kiosk.toml").write_text('[ui]\nlanguage = "en"\n', encoding="utf-8")
    missing = str(tmp_path / "nope.csv")
    by_config = kiosk("content", "validate", missing, cwd=tmp_path)
    assert "does not exist; check the file name" in by_config.stdout
    by_env = kiosk("content", "validate", missing, cwd=tmp_path, lang="ja")
    assert "見つかりません。ファイル名とフォルダーを確かめてください" in by_env.stdout
    assert by_config.returncode == by_env.returncode == 1


def test_a_broken_config_is_reported_in_its_own_language(tmp_path):
    (tmp_path / "kiosk.toml").write_text('[ui]\nlanguage = "en"\n[voice]\nvolum = 1\n',
                                         encoding="utf-8")
    run = kiosk("doctor", cwd=tmp_path)
    assert run.returncode == 2
    assert "unknown key 'volum' (did you mean 'volume'?)" in run.stderr


def test_the_staff_desk_lists_problems_in_japanese_by_default(tmp_path, language):
    """The desk's preview table shows these messages; they were English on a Japanese page."""
    from kiosk.config import Settings
    from kiosk.content.publishing import ContentPublisher
    from kiosk.staff.desk import ContentDesk
    from kiosk.staff.uploads import Upload

    settings = Settings(base_dir=tmp_path)
    language("en")
    ContentPublisher(settings).import_files([_csv(tmp_path / "live.csv", 2)], who="install")
    language(settings.ui.language)  # as make_server does
    desk = ContentDesk(settings)
    try:
        draft = desk.prepare(Upload("施設.csv", "id,title,body\nlib,,本文です。\n".encode()))
        try:
            (problem,) = draft.problems
            assert (problem.line, problem.field, problem.message) == (2, "title", "が空です")
        finally:
            draft.close()
    finally:
        desk.close()


# ---------------------------------------------------------------------------- --help


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*prefix, name))


def test_every_command_help_is_japanese_by_default(language):
    language(None)  # no KIOSK_LANG, no config: the default
    assert i18n.language() == "ja"
    commands = list(_commands(build_parser()))
    assert len(commands) > 20
    english = re.compile(r"[A-Za-z]{3,}(?: [a-z]{2,}){3,}")  # four English words in a row
    for words, parser in commands:
        out = io.StringIO()
        with redirect_stdout(out), pytest.raises(SystemExit) as done:
            main([*words, "--help"])
        text = out.getvalue()
        assert done.value.code == 0
        assert text.startswith("使い方: kiosk"), words
        assert "オプション:" in text and "このヘルプを表示して終わります" in text, words
        assert not english.search(text), (words, english.findall(text))  # descriptions too
        for action in parser._actions:
            if action.help and action.help != argparse.SUPPRESS:
                assert not english.search(action.help), (words, action.help)


def test_kiosk_help_on_a_fresh_machine_is_japanese(tmp_path):
    run = kiosk("--help", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.startswith("使い方: kiosk")
    assert "KIOSK_LANG=en" in run.stdout  # says how to switch
    run = kiosk("--help", cwd=tmp_path, lang="en")
    assert run.stdout.startswith("usage: kiosk")


def test_argparse_errors_are_japanese_and_exit_2(tmp_path):
    run = kiosk("ask", "--limit", "ten", cwd=tmp_path)
    assert run.returncode == 2
    assert "kiosk ask: エラー: 引数 --limit" in run.stderr


def test_kiosk_doctor_speaks_japanese(tmp_path):
    run = kiosk("doctor", cwd=tmp_path)
    assert run.returncode in (0, 1)  # 1 = a device or model needs fixing on this machine
    assert "音の機器:" in run.stdout and "音声認識モデル:" in run.stdout
    assert "音声の前処理:" in run.stdout  # what the front end does, and what it lacks
    assert "Sound devices" not in run.stdout


# ---------------------------------------------------------------------------- progress


def _csv(path: Path, n: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "title", "body", "category"])
        for i in range(n):
            writer.writerow([f"hall-{i}", f"第{i}集会所の利用時間",
                             f"第{i}集会所は朝9時から夜9時まで使えます。予約は電話でできます。",
                             "施設"])
    return path


def _words_only(folder: Path) -> None:
    # vectors for thousands of entries take minutes; their progress is tested below
    (folder / "kiosk.toml").write_text("[search]\nsemantic = false\n", encoding="utf-8")


def test_an_import_of_thousands_of_entries_prints_progress_lines(tmp_path):
    _words_only(tmp_path)
    source = _csv(tmp_path / "集会所.csv", 3000)
    run = kiosk("content", "import", str(source), cwd=tmp_path, lang="en")
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    analysed = [line for line in lines if line.startswith("analysing entries: ")]
    # a line when the step starts, at every tenth, and when it is done — no bar, no \r
    assert len(analysed) == 11 and "\r" not in run.stderr
    assert analysed[0].startswith("analysing entries: 0/3,000 entries (0%)")
    assert any(re.search(r"1,500/3,000 entries \(50%\), \d+:\d\d elapsed, about \d+:\d\d left",
                         line) for line in analysed)
    assert analysed[-1].startswith("analysing entries: 3,000/3,000 entries (100%)")
    assert analysed[-1].endswith(", done")
    assert any(line.startswith("checking rows of 集会所.csv: 3,000/3,000 rows") for line in lines)
    assert any(line.startswith("writing the index") for line in lines)
    assert "Published version" in run.stdout


def test_japanese_progress_lines(tmp_path):
    _words_only(tmp_path)
    run = kiosk("content", "import", str(_csv(tmp_path / "a.csv", 50)), cwd=tmp_path)
    assert "項目を解析: 50/50 件 (100%)、経過 0:0" in run.stderr
    assert "を公開しました（50 件）" in run.stdout


def test_vector_progress_counts_every_entry():
    from kiosk.config import SearchSettings
    from kiosk.content.entries import Entry
    from kiosk.progress import reporting_to
    from kiosk.search.semantic import VECTOR_CHUNK, EntryVectors, get_encoder

    encoder = get_encoder(SearchSettings())
    if encoder is None:
        pytest.skip("the embedding model is not installed on this platform")
    entries = [Entry(id=f"e{i}", title=f"第{i}公園のトイレ", body="あります。")
               for i in range(VECTOR_CHUNK + 5)]
    seen: list[ProgressUpdate] = []
    with reporting_to(seen.append):
        vectors = EntryVectors.build(entries, encoder, SearchSettings())
    assert vectors.matrix.shape[0] == len(entries)
    steps = [u for u in seen if u.step == "computing meaning vectors"]
    assert [u.done for u in steps] == [0, VECTOR_CHUNK, len(entries), len(entries)]
    assert steps[-1].finished and steps[1].eta_seconds is not None


def test_a_terminal_gets_a_progress_bar():
    out = io.StringIO()
    report = TerminalReporter(out, tty=True)
    for done in (0, 50, 100):
        report(ProgressUpdate("analysing entries", done, 100, "entries", 1.0))
    report(ProgressUpdate("analysing entries", 100, 100, "entries", 2.0, finished=True))
    assert "\r" in out.getvalue() and "100/100" in out.getvalue()


def test_ctrl_c_during_an_import_says_nothing_changed(tmp_path):
    _words_only(tmp_path)
    first = kiosk("content", "import", str(_csv(tmp_path / "first.csv", 5)), cwd=tmp_path,
                  lang="en")
    live = re.search(r"Published version (\S+):", first.stdout).group(1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), i18n.LANGUAGE_ENV: "en"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "content", "import", str(_csv(tmp_path / "big.csv", 3000))],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # wait until the index is being built, then press Ctrl+C
        if line.startswith("analysing entries: 300/"):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=300) == 130
    assert (f"Import stopped with Ctrl+C: nothing was changed; the live content is still "
            f"version {live}") in rest
    assert "Traceback" not in rest
    listed = json.loads(kiosk("content", "list", "--json", cwd=tmp_path).stdout)
    assert [(v["id"], v["current"]) for v in listed] == [(live, True)]


# ------------------------------------------------------------ no message left unwrapped

_GETTEXT = {"_", "ngettext", "N_"}
_LOG_LEVELS = {"info", "warning", "error", "exception", "critical"}  # debug is for developers
#: Names that hold a message for a person until it is shown (`why = …`, `self.problem = …`).
_HELD = {"why", "problem", "reason", "message", "too_slow", "what"}
#: Calls that hand their text to a person: content problems, the desk's notices and pages.
_SINKS = {"warn", "ContentProblem", "notice", "error_page", "page", "login_form", "home",
          "ModelStatus"}
_WORDS = re.compile(r"[A-Za-z]{2,}[ ,]+[A-Za-z]{2,}|[\u3040-\u30ff\u4e00-\u9fff]")  # a phrase
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
#: Messages no person reads, so left in English on purpose: (file, start of the text) → why.
_NOT_FOR_PEOPLE = {
    ("kiosk/search/lexical.py", "the lexical matrix scores OR queries"):
        "a programming error (a query type the matrix cannot score), never input",
    ("kiosk/voice/openjtalk.py", "unknown property "):
        "pyttsx3's engine API misused by code, as pyttsx3 itself raises it",
    ("kiosk/voice/openjtalk.py", "speaker must have a play(clip, stop_event) method"):
        "pyttsx3's engine API misused by code",
    ("kiosk/i18n.py", "the %s message catalog could not be read"):
        "said when the catalog itself cannot be read, so it cannot be translated",
    ("kiosk/staff/accounts.py", "いろはにほへと"):
        "a run of kana a password must not be, not a message",
    ("kiosk/cli/query.py", "市のページで未確認。"):
        "the answer as the visitor's screen shows it, which is always Japanese",
    ("kiosk/speech/models.py", "whisper|not assembled yet"):
        "a model state key; `kiosk models list` shows it translated (MODEL_STATES)",
    ("kiosk/speech/simulated.py", "the simulated "):
        "the simulated devices stand in for hardware in tests; their faults are the tests'",
}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _unwrapped_text(node: ast.expr | None) -> str:
    """The literal text of a message that does not go through gettext: a string, an f-string,
    "…".format(), "…" % …, a concatenation, or the message given to a helper that builds the
    exception (`_refuse(f"…")`); "" when it is wrapped in `_()` or holds no literal."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _unwrapped_text(node.left) + _unwrapped_text(
            node.right if isinstance(node.op, ast.Add) else None)
    if isinstance(node, ast.IfExp):
        return _unwrapped_text(node.body) + _unwrapped_text(node.orelse)
    if isinstance(node, ast.Call):
        if _name(node.func) in _GETTEXT:
            return ""
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
            return _unwrapped_text(node.func.value)
        return "".join(_unwrapped_text(a) for a in node.args)
    return ""


def _messages(tree: ast.AST):
    """(line, what, text) of every raise, operator log line and printed line with text."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            yield node.lineno, f"raise {_name(node.exc.func)}", "".join(
                _unwrapped_text(a) for a in node.exc.args)
        elif isinstance(node, ast.Assign) and any(_name(t) in _HELD for t in node.targets):
            yield node.lineno, "message kept", _unwrapped_text(node.value)
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            if name in _SINKS or name == "append" and _name(node.func.value) == "problems" or name in _LOG_LEVELS and isinstance(node.func, ast.Attribute):
                texts = [_unwrapped_text(a) for a in [*node.args, *(k.value for k in node.keywords)]]
                yield node.lineno, name, "|".join(t for t in texts if t)  # no phrase across
            elif name in ("print", "write"):
                yield node.lineno, name, "".join(_unwrapped_text(a) for a in node.args)


def _gettext_in_fstrings(tree: ast.AST):
    """`f"{_('x')}"`: Babel does not look inside f-strings, so 'x' never reaches the catalog."""
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and _name(inner.func) in _GETTEXT and any(
                        isinstance(a, ast.Constant) for a in inner.args):
                    yield (inner.lineno, "_() inside an f-string is not extracted",
                           f"not in the catalog: {ast.unparse(inner)}")


def _staff_literals(tree: ast.AST):
    """Japanese text in the staff desk's code outside gettext (its pages are translated)."""
    wrapped = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call)
               and _name(n.func) in _GETTEXT for a in n.args}
    wrapped |= {id(n.body[0].value) for n in ast.walk(tree)  # docstrings
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                and isinstance(n.body[0], ast.Expr)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in wrapped and _JAPANESE.search(node.value)):
            yield node.lineno, "text", node.value


def test_no_message_a_person_reads_bypasses_gettext():
    """A raise, print or operator log line whose text is a plain literal, f-string or
    .format() (not `_()`) would stay English on a Japanese screen; this names each one."""
    found = []
    for file in sorted((ROOT / "kiosk").rglob("*.py")):
        rel = file.relative_to(ROOT).as_posix()
        tree = ast.parse(file.read_text(encoding="utf-8"))
        sites = list(_messages(tree)) + list(_gettext_in_fstrings(tree))
        if rel.startswith("kiosk/staff/"):
            sites += list(_staff_literals(tree))
        for line, what, text in sites:
            if not _WORDS.search(text.replace("{}", "")):
                continue  # no words: a layout like "  {}  {}" or "%s"
            if any(rel == f and text.startswith(start) for f, start in _NOT_FOR_PEOPLE):
                continue
            found.append(f"{rel}:{line}: {what}: {text[:70]!r}")
    assert not found, "wrap these in _() (kiosk/i18n.py):\n" + "\n".join(found)


def test_the_staff_desk_templates_have_no_untranslated_text():
    """Visible text in kiosk/staff/assets/*.html sits inside {{ … }} markers, which
    kiosk/staff/pages.py translates and tools/catalogs.py extracts."""
    from kiosk.staff.pages import WEB_DIR

    for file in sorted(WEB_DIR.glob("*.html")):
        outside = re.sub(r"\{\{.*?\}\}", "", file.read_text(encoding="utf-8"), flags=re.S)
        assert not _JAPANESE.search(outside), (file.name, _JAPANESE.findall(outside)[:10])


# ------------------------------------------------------------------ the staff desk


def _multipart(csrf: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "kiosk-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n").encode() + data + (
        f"\r\n--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"


_DESK_WORDS = {
    "ja": ["サインイン", "名前", "パスワード", "ホーム", "新しい内容を読み込む", "公開の履歴",
           "答えられなかった質問", "内容の見直し", "まちがい 1 件", "<td>title</td><td>が空です</td>",
           "エラーがあるため公開できません", "の行を確認", "公開しました（版", "2019年4月1日"],
    "en": ["Sign in", "Name", "Password", "Home", "Load new content", "Publishing history",
           "Unanswered questions", "Content review", "1 error", "<td>title</td><td>is empty</td>",
           "This cannot be published because of the errors", "checking rows of",
           "Published (version", "2019-04-01"],
}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_staff_desk_in_both_languages(tmp_path, language, lang):
    """Every page of the desk, served for real on loopback: Japanese by default, English with
    [ui] language = "en" — headings, forms, validation messages and publish progress."""
    from test_staff_desk import STARTING_CONTENT, Desk, session_cookie

    language(None)  # no KIOSK_LANG: the desk follows its config
    desk = Desk(tmp_path / "desk", language="en" if lang == "en" else None)
    try:
        _, _, login = desk.request("GET", "/login")
        _, headers, _ = desk.sign_in()
        cookie = {"Cookie": session_cookie(headers)}
        pages = [login] + [desk.request("GET", path, headers=cookie)[2]
                           for path in ("/", "/history", "/report", "/review")]
        csrf = re.search(r'name="csrf" value="([^"]+)"', pages[1]).group(1)
        for name, data in (("bad.csv", b"id,title,body\nlib,,body text\n"),
                           ("good.csv", "id,title,body,checked,status,source_url\nlib,図書館,"
                            "本文です。,2019-04-01,verified,https://example.jp/\n".encode())):
            body, ctype = _multipart(csrf, name, data)
            status, _, _ = desk.request("POST", "/upload", body,
                                        {**cookie, "Content-Type": ctype})
            assert status == 303
            pages.append(desk.request("GET", "/preview", headers=cookie)[2])
        progress = desk.request("GET", "/progress", headers=cookie)[2]
        draft = re.search(r'name="draft" value="([^"]+)"', pages[-1]).group(1)
        form = f"csrf={csrf}&draft={draft}"
        desk.request("POST", "/publish", form,
                     {**cookie, "Content-Type": "application/x-www-form-urlencoded"})
        pages.append(desk.request("GET", "/", headers=cookie)[2])
        pages.append(desk.request("GET", "/review", headers=cookie)[2])
        progress += desk.request("GET", "/progress", headers=cookie)[2]
    finally:
        desk.close()
    text = "\n".join(pages) + progress
    for words in _DESK_WORDS[lang]:
        assert words in text, words
    assert all(f'<html lang="{lang}">' in p for p in pages)
    if lang == "en":  # no Japanese but the content itself
        for entry in STARTING_CONTENT:
            for value in (entry.title, entry.body, entry.category, *entry.keywords):
                text = text.replace(value, "")
        text = text.replace("図書館", "").replace("本文です。", "")
        assert not _JAPANESE.search(text), _JAPANESE.findall(text)[:20]
