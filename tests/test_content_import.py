"""Imports as staff and a running kiosk live them: all-or-nothing, atomic swaps that a
search running at the same time never notices, a killed import that changes nothing,
rollback, pruning, Excel CSV files through the real command, and the CSV round trip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kiosk import KioskError
from kiosk.config import ContentSettings, Settings
from kiosk.content.entries import ContentError
from kiosk.content.publishing import ContentPublisher, default_sources, ensure_index
from kiosk.search.semantic import VECTORS_FILE, EntryVectors, get_encoder
from kiosk.search.versions import (
    CURRENT,
    VERSION_SYNONYMS,
    IndexVersionError,
    IndexVersions,
    LiveIndex,
)

ROOT = Path(__file__).resolve().parents[1]


def library_entries(prefix: str, n: int = 5) -> list[dict]:
    """n entries that all answer 「図書館」, so one search shows which version answered."""
    return [{"id": f"{prefix}-{i}", "title": f"図書館の案内 {prefix} {i}",
             "body": f"中央図書館のお知らせです。番号 {i}。", "category": "図書館",
             "keywords": ["図書館", "本"]} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def settings_for(tmp: Path, **content) -> Settings:
    return Settings(base_dir=tmp, content=replace(ContentSettings(), **content))


def snapshot(root: Path) -> dict[str, object]:
    """Every file's bytes and every link's target under the index root."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file() and p.name != ".lock":
            out[rel] = p.read_bytes()
    return out


def kiosk(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KIOSK_HOME": str(cwd)}
    env.pop("KIOSK_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True,
                          text=True, encoding="utf-8", cwd=cwd, env=env, timeout=600)


@pytest.fixture
def published(tmp_path) -> tuple[ContentPublisher, Path]:
    """An index root with version A live."""
    settings = settings_for(tmp_path)
    publisher = ContentPublisher(settings, tmp_path / "index")
    publisher.import_files(write_jsonl(tmp_path / "a.jsonl", library_entries("a")), who="t")
    return publisher, tmp_path / "index"


# --------------------------------------------------------------------------- all or nothing


def test_bad_files_of_every_kind_leave_the_live_index_byte_for_byte(published, tmp_path):
    publisher, root = published
    before = snapshot(root)
    good = write_jsonl(tmp_path / "good.jsonl", library_entries("g"))
    bad_files = {
        "broken.jsonl": b'{"id": "x", "title": "t"\n',
        "dup.jsonl": ("\n".join(json.dumps(r, ensure_ascii=False)
                                for r in library_entries("a")[:1] * 2) + "\n").encode(),
        "excel.csv": b"PK\x03\x04" + b"\x00" * 64,
        "binary.jsonl": bytes(range(256)),
        "mixed.csv": "id,title,body\nx,図書館,本文\n".encode() + "y,公民館,本\n".encode("cp932"),
        "empty-title.csv": "id,title,body\nx,,本文\n".encode("cp932"),
        "oversize.jsonl": json.dumps({"id": "x", "title": "t" * 5000, "body": "b"}).encode(),
        "bad-date.csv": b"id,title,body,updated\nx,t,b,2026-02-30\n",
        "bad-lat.csv": b"id,title,body,lat,lon\nx,t,b,999,139\n",
        "no-front-matter-end.md": "---\nid: x\ntitle: t\n本文".encode(),
        "control.jsonl": b'{"id": "x", "title": "t", "body": "a\\u0000b"}\n',
    }
    for name, data in bad_files.items():
        bad = tmp_path / name
        bad.write_bytes(data)
        with pytest.raises(ContentError) as exc:
            publisher.import_files([good, bad], who="t")  # good + bad = nothing imported
        assert f"{bad}" in str(exc.value), name
        assert snapshot(root) == before, name
    assert [v.entries for v in publisher.versions_list()] == [5]


def test_messages_name_file_row_and_field(published, tmp_path):
    publisher, _ = published
    f = tmp_path / "staff.csv"
    f.write_text("id,title,body\n" + "".join(f"r{i},題{i},本文\n" for i in range(10))
                 + "r10,,本文\n", encoding="utf-8")
    with pytest.raises(ContentError) as exc:
        publisher.import_files([f])
    assert f"{f}:12: 'title' is empty" in str(exc.value)


# --------------------------------------------------------------------------- live swaps


def test_a_running_search_never_fails_or_sees_a_half_built_index(published, tmp_path):
    publisher, root = published
    live = LiveIndex(root, publisher.settings)
    complete = {"a": {f"a-{i}" for i in range(5)}, "b": {f"b-{i}" for i in range(7)}}
    files = {"a": write_jsonl(tmp_path / "a2.jsonl", library_entries("a")),
             "b": write_jsonl(tmp_path / "b.jsonl", library_entries("b", 7))}
    seen: set[str] = set()
    searches: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def search_loop() -> None:
        while not stop.is_set():
            try:
                ids = {h.entry.id for h in live.search("図書館", limit=20)}
            except Exception as exc:  # noqa: BLE001 — the point is that nothing is raised
                failures.append(repr(exc))
                continue
            prefix = next(iter(ids), "?")[0]
            if ids != complete.get(prefix):
                failures.append(f"incomplete result {sorted(ids)}")
            seen.add(prefix)
            searches.append(prefix)

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        for name in ["b", "a", "b", "a", "b"]:
            publisher.import_files([files[name]], who="t")
            deadline = time.monotonic() + 10
            while live.version != publisher.versions.current_id():
                assert time.monotonic() < deadline, "the live index never picked up the import"
                time.sleep(0.01)
        publisher.rollback()
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert not failures, failures[:5]
    assert seen == {"a", "b"}
    assert len(searches) > 50  # the loop really ran across the swaps
    assert {h.entry.id for h in live.search("図書館", limit=20)} == complete["a"]
    live.close()


def test_kill_9_mid_build_leaves_the_old_index_serving(published, tmp_path):
    _, root = published
    before = snapshot(root)
    big = write_jsonl(tmp_path / "big.jsonl", [
        {"id": f"big-{i}", "title": f"公民館の案内 その{i}",
         "body": "公民館は地域の学びの場です。部屋を借りるには予約が必要です。" * 6}
        for i in range(6000)])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KIOSK_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "content", "import", str(big),
                             "--index", str(root)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    versions = root / "versions"
    deadline = time.monotonic() + 60
    building: list[Path] = []
    while not building:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the import never started building"
        building = [p for p in versions.iterdir() if p.name.startswith(".building-")
                    and any(p.iterdir())]
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert building[0].exists()  # killed mid-build: the half-built folder is still there
    assert {k: v for k, v in snapshot(root).items() if ".building-" not in k} == before
    with LiveIndex(root, Settings(base_dir=tmp_path)) as live:
        assert {h.entry.id for h in live.search("図書館")} == {f"a-{i}" for i in range(5)}
    # The next import is not blocked by the dead one's lock and cleans its leftovers.
    run = kiosk("content", "import", str(write_jsonl(tmp_path / "b.jsonl", library_entries("b"))),
                "--index", str(root), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert not building[0].exists()
    assert not [p for p in versions.iterdir() if p.name.startswith(".")]


def test_the_live_index_looks_a_garbled_question_up_by_sound_in_the_new_version(published,
                                                                            tmp_path):
    """After a publish the kiosk's live index finds entries by their sound in the new
    version (kiosk.search.sound_alike), not in the one it replaced."""
    publisher, root = published
    with LiveIndex(root, publisher.settings) as live:
        heard = ("押して庁をもらいたいです",)
        assert live.sounds_like(heard, 3) == []
        pregnancy = {"id": "pregnancy", "title": "母子手帳をもらいたい", "body": "市役所の窓口です。",
                     "category": "子育て", "keywords": ["母子手帳", "妊娠"]}
        publisher.import_files([write_jsonl(tmp_path / "b.jsonl", [pregnancy])], who="t")
        assert [h.entry.id for h in live.sounds_like(heard, 3)] == ["pregnancy"]


def test_two_imports_do_not_race(published, tmp_path):
    publisher, root = published
    other = IndexVersions(root, lock_timeout=0.3)
    with publisher.versions.lock():
        with pytest.raises(IndexVersionError, match="another import or rollback is running"):
            with other.lock():
                pass
    with other.lock():  # free again once the first one is done
        pass


# --------------------------------------------------------------------- rollback and prune


def test_rollback_returns_to_the_previous_version(published, tmp_path):
    publisher, root = published
    first = publisher.versions.current_id()
    result = publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b")))
    assert result.previous == first
    with LiveIndex(root, publisher.settings) as live:
        assert live.search("図書館")[0].entry.id.startswith("b-")
        back = publisher.rollback()
        assert back.id == first and back.current
        assert live.search("図書館")[0].entry.id.startswith("a-")  # no restart needed
        with pytest.raises(IndexVersionError, match="no version older than the live one"):
            publisher.rollback()
        publisher.rollback(to=result.version.id)  # and forward again
        assert live.search("図書館")[0].entry.id.startswith("b-")
    with pytest.raises(IndexVersionError, match="there is no index version 'nope'"):
        publisher.rollback(to="nope")


def test_a_reimport_embeds_only_what_the_live_version_lacks(published, tmp_path, monkeypatch):
    """Publishing builds on the live version: the vectors of entries whose title did not
    change are copied from it, whatever the process embedded before."""
    publisher, _root = published
    encoder = get_encoder(publisher.settings.search)
    assert encoder is not None
    asked: list[str] = []
    encode = encoder.encode_passages
    monkeypatch.setattr(encoder, "encode_passages",
                        lambda texts, threads=None: asked.extend(texts) or encode(texts, threads))
    rows = library_entries("a", 6)
    rows[0]["title"] = "図書館の休館日"
    publisher.import_files(write_jsonl(tmp_path / "a2.jsonl", rows))
    assert sorted(asked) == sorted(["図書館の休館日", rows[5]["title"]])
    vectors = EntryVectors.read(publisher.versions.current_path())
    assert vectors.ids == tuple(r["id"] for r in rows)


def test_each_version_carries_its_own_entry_vectors_through_rollback(published, tmp_path):
    """The embeddings live in the version folder: a rollback brings back the vectors of
    the entries it brings back, and every version's vectors match its own entries."""
    publisher, root = published
    first = publisher.versions.current_path()
    publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b", 7)))
    second = publisher.versions.current_path()
    assert EntryVectors.read(first).ids == tuple(f"a-{i}" for i in range(5))
    assert EntryVectors.read(second).ids == tuple(f"b-{i}" for i in range(7))
    publisher.rollback()
    live = publisher.versions.current_path()
    assert live == first and (live / VECTORS_FILE).is_file()
    with LiveIndex(root, publisher.settings) as index:
        assert index.search("図書館")[0].entry.id.startswith("a-")


def test_old_versions_are_pruned_to_keep_versions(tmp_path):
    settings = settings_for(tmp_path, keep_versions=2)
    publisher = ContentPublisher(settings, tmp_path / "index")
    ids = []
    for n in range(5):
        f = write_jsonl(tmp_path / f"v{n}.jsonl", library_entries(f"v{n}", 2))
        ids.append(publisher.import_files([f], who=f"staff{n}").version.id)
    kept = publisher.versions_list()
    assert [v.id for v in kept] == ids[::-1][:3]
    assert [v.who for v in kept] == ["staff4", "staff3", "staff2"]
    assert [v.current for v in kept] == [True, False, False]
    assert all(v.entries == 2 and v.created for v in kept)
    assert sorted(p.name for p in (tmp_path / "index" / "versions").iterdir()) == sorted(ids[2:])


def test_a_version_carries_its_synonym_table(tmp_path):
    table = tmp_path / "synonyms.tsv"
    table.write_text("としょかん\t図書館\n", encoding="utf-8")
    settings = settings_for(tmp_path, synonyms_file="synonyms.tsv")
    publisher = ContentPublisher(settings, tmp_path / "index")
    v = publisher.import_files(write_jsonl(tmp_path / "a.jsonl", library_entries("a"))).version
    assert (v.path / VERSION_SYNONYMS).read_bytes() == table.read_bytes()
    table.write_text("broken line without a tab\n", encoding="utf-8")
    with pytest.raises(Exception, match="no tab found"):  # checked before anything is built
        publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b")))
    assert publisher.versions.current_id() == v.id


def test_live_index_needs_a_published_version(tmp_path):
    with pytest.raises(IndexVersionError, match="kiosk content import"):
        LiveIndex(tmp_path / "empty", Settings(base_dir=tmp_path))


def test_first_run_builds_the_configured_content_offline(tmp_path):
    src = write_jsonl(tmp_path / "city.jsonl", library_entries("c", 3))
    settings = settings_for(tmp_path, sources=("city.jsonl",))
    folder = ensure_index(settings)
    assert folder.parent == tmp_path / "index" / "versions"
    assert (tmp_path / "index" / CURRENT).resolve() == folder.resolve()
    assert ensure_index(settings) == folder  # second run: nothing rebuilt
    (v,) = ContentPublisher(settings).versions_list()
    assert (v.entries, v.who) == (3, "first run")
    assert [p.name for p in default_sources(Settings())] == ["atsugi_shelters.jsonl",
                                                             "city_services.jsonl",
                                                             "site_guide.jsonl"]
    assert src.exists()


# ----------------------------------------------------------------------- the real command


def test_cli_imports_shift_jis_and_bom_csv_and_lists_versions(tmp_path):
    sjis = tmp_path / "sjis.csv"
    sjis.write_bytes("id,タイトル,本文,キーワード\r\nlib,図書館の場所,駅の近くです。,図書館、としょかん\r\n"
                     .encode("shift_jis"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffid,title,body\r\nhall,公民館の予約,電話で予約できます。\r\n"
                    .encode("utf-8"))
    run = kiosk("content", "import", str(sjis), str(bom), "--who", "tanaka", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Published version" in run.stdout and "2 entries" in run.stdout
    ask = kiosk("ask", "図書館はどこですか", cwd=tmp_path)
    assert "【図書館の場所】" in ask.stdout, ask.stdout + ask.stderr
    listed = kiosk("content", "list", "--json", cwd=tmp_path)
    (v,) = json.loads(listed.stdout)
    assert (v["who"], v["entries"], v["current"]) == ("tanaka", 2, True)


def test_cli_validate_and_failed_import(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,body,memo\nx,,本文,メモ\n", encoding="utf-8")
    run = kiosk("content", "validate", str(bad), cwd=tmp_path)
    assert run.returncode == 1
    assert f"{bad}:2: 'title' is empty" in run.stdout
    assert f"{bad}:1: warning: 'memo' (column 4) is not a known column" in run.stdout
    run = kiosk("content", "import", str(bad), cwd=tmp_path)
    assert run.returncode == 1  # problems found, as `validate` says (README, "Exit codes")
    assert "nothing was changed" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "index" / CURRENT).exists()
    ok = tmp_path / "ok.jsonl"
    write_jsonl(ok, library_entries("a", 1))
    run = kiosk("content", "validate", str(ok), cwd=tmp_path)
    assert run.returncode == 0 and "OK: 1 entries" in run.stdout


def test_cli_export_round_trip_and_rollback(tmp_path):
    first = kiosk("content", "import", *map(str, default_sources(Settings())), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    export = tmp_path / "staff" / "content.csv"
    run = kiosk("content", "export", str(export), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    again = kiosk("content", "import", str(export), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    publisher = ContentPublisher(Settings(base_dir=tmp_path))
    newest, oldest = publisher.versions_list()
    from kiosk.search.versions import open_version

    with open_version(oldest.path, publisher.settings) as a, \
            open_version(newest.path, publisher.settings) as b:
        assert a.entries() == b.entries()
    run = kiosk("content", "rollback", cwd=tmp_path)
    assert run.returncode == 0 and oldest.id in run.stdout
    run = kiosk("content", "rollback", cwd=tmp_path)
    assert run.returncode == 2 and "no version older" in run.stderr


def test_a_failed_build_changes_nothing_and_says_what_to_do(published, tmp_path, monkeypatch):
    """Failure injected after the index files are written (a full disk at the last step)."""
    import kiosk.content.publishing

    publisher, root = published
    before = snapshot(root)
    real_build = kiosk.content.publishing.build_index

    def build_then_fail(entries, folder, settings, previous=None):
        real_build(entries, folder, settings, previous)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kiosk.content.publishing, "build_index", build_then_fail)
    with pytest.raises(KioskError, match="No space left on device.*live content was not "
                                         "changed"):
        publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b")))
    assert snapshot(root) == before
    assert [p.name for p in (root / "versions").iterdir()] == [publisher.versions.current_id()]


def test_rollback_recovers_from_a_deleted_live_version(published, tmp_path):
    import shutil

    publisher, root = published
    first = publisher.versions.current_id()
    second = publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b")))
    shutil.rmtree(second.version.path)  # someone deleted the live version by hand
    with pytest.raises(IndexVersionError, match="kiosk content rollback"):
        ensure_index(Settings(base_dir=tmp_path))
    assert publisher.rollback().id == first
    with LiveIndex(root, publisher.settings) as live:
        assert live.search("図書館")[0].entry.id.startswith("a-")


# ------------------------------------------------------- hostile or unlucky rollbacks (#15)


@pytest.mark.parametrize("bad_id", ["", ".", "..", "versions", "../versions", "current"])
def test_a_rollback_to_an_id_that_is_not_a_kept_version_touches_nothing(published, tmp_path,
                                                                        bad_id):
    publisher, root = published
    publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b")))
    before = snapshot(root)
    with pytest.raises(IndexVersionError, match="there is no index version"):
        publisher.rollback(to=bad_id)
    assert snapshot(root) == before
    with LiveIndex(root, publisher.settings) as live:  # a restart still finds its index
        assert live.search("図書館")[0].entry.id.startswith("b-")


def test_cli_rollback_to_an_empty_id_is_refused_and_the_index_still_opens(published, tmp_path):
    _, root = published
    before = snapshot(root)
    run = kiosk("content", "rollback", "--to", "", "--index", str(root), cwd=tmp_path)
    assert run.returncode == 2 and "there is no index version ''" in run.stderr
    assert snapshot(root) == before
    from kiosk.content.audit import AuditLog

    audit = AuditLog(Settings(base_dir=tmp_path).state_dir)
    assert not [r for r in audit.read() if r["action"] == "rollback"]  # nothing changed
    run = kiosk("content", "rollback", "--index", str(root), cwd=tmp_path)
    assert run.returncode == 2  # only one version: nothing to go back to
    b = write_jsonl(tmp_path / "b.jsonl", library_entries("b"))
    assert kiosk("content", "import", str(b), "--index", str(root), cwd=tmp_path).returncode == 0
    run = kiosk("content", "rollback", "--index", str(root), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [r["action"] for r in audit.read()][-2:] == ["publish", "rollback"]


def test_a_version_that_cannot_be_opened_never_goes_live(published, tmp_path):
    publisher, root = published
    old = publisher.versions.current()
    publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b")))
    for toc in old.path.glob("*.toc"):
        toc.write_bytes(b"damaged by a disk error")
    before = snapshot(root)
    with pytest.raises(IndexVersionError, match=f"{old.id} .*cannot be opened"):
        publisher.rollback()
    with pytest.raises(IndexVersionError, match="cannot be opened"):
        publisher.rollback(to=old.id)
    assert snapshot(root) == before


def test_a_version_that_never_went_live_is_not_listed_nor_kept(tmp_path):
    """An import killed -9 right after its build's rename, before the swap, leaves a complete
    version folder that was never live: it is not shown as published and does not take a
    kept place."""
    from kiosk.content.entries import Entry
    from kiosk.search.index import build_index

    settings = settings_for(tmp_path, keep_versions=1)
    publisher = ContentPublisher(settings, tmp_path / "index")
    a = publisher.import_files(write_jsonl(tmp_path / "a.jsonl", library_entries("a"))).version
    b = publisher.import_files(write_jsonl(tmp_path / "b.jsonl", library_entries("b"))).version
    with publisher.versions.build(who="killed", note="never published") as build:
        build_index([Entry(id="c-0", title="図書館 c", body="本文")], build.folder, settings)
        build.entries = 1
    orphan = build.info.id
    assert (tmp_path / "index" / "versions" / orphan).is_dir()  # the state kill -9 leaves
    assert [v.id for v in publisher.versions_list()] == [b.id, a.id]
    assert publisher.rollback().id == a.id  # back to a real predecessor, not the orphan
    publisher.rollback(to=b.id)
    with pytest.raises(IndexVersionError, match="there is no index version"):
        publisher.rollback(to=orphan)
    d = publisher.import_files(write_jsonl(tmp_path / "d.jsonl", library_entries("d"))).version
    assert [v.id for v in publisher.versions_list()] == [d.id, b.id]
    assert sorted(p.name for p in (tmp_path / "index" / "versions").iterdir()) == \
        sorted([b.id, d.id])
