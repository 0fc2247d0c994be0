"""`kiosk ask` and `kiosk search` run as a user runs them: the real command in a subprocess,
against a real index of the bundled content."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_answers import bundled_entries

from kiosk.config import Settings
from kiosk.search.index import build_index

ROOT = Path(__file__).resolve().parents[1]


def kiosk(*args: str, stdin: str | None = None, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("KIOSK_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kiosk", *args], input=stdin,
                          capture_output=True, text=True, encoding="utf-8", cwd=cwd or ROOT,
                          env=full_env, timeout=600)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "index"
    build_index(bundled_entries(), folder, Settings())
    return folder


def test_ask_prints_the_answer_with_title_and_source(index_dir):
    run = kiosk("ask", "--index", str(index_dir), "粗大ごみを出したいです")
    assert run.returncode == 0, run.stderr
    assert "【粗大ごみを出したい】" in run.stdout
    assert "046-225-2790" in run.stdout
    assert "出典：" in run.stdout


def test_ask_shelter_shows_the_required_attribution(index_dir):
    run = kiosk("ask", "--index", str(index_dir), "東名中学校は避難所ですか")
    assert run.returncode == 0, run.stderr
    assert "東名中学校（指定避難所・指定緊急避難場所）" in run.stdout
    assert "（出典：国土地理院 指定緊急避難場所データ）" in run.stdout


def test_ask_json_lists_ranked_candidates_with_scores(index_dir):
    run = kiosk("ask", "--index", str(index_dir), "--json", "じゅうみんひょうほしい")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["kind"] in ("confident", "unsure")
    assert data["answer"]["id"] == "juminhyo" == data["candidates"][0]["id"]
    scores = [c["score"] for c in data["candidates"]]
    assert len(scores) > 1 and all(isinstance(s, float) for s in scores)
    assert all(0 <= c["confidence"] <= 1 for c in data["candidates"])


def test_ask_when_unsure_asks_back_with_candidates(index_dir):
    run = kiosk("ask", "--index", str(index_dir), "印鑑登録したい")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("印鑑登録についてですか？")
    assert "[inkan-toroku]" in run.stdout and "[inkan-lost]" in run.stdout


def test_ask_nothing_fits_says_so_and_suggests_categories(index_dir):
    run = kiosk("ask", "--index", str(index_dir), "おすすめの映画")
    assert run.returncode == 1, run.stderr
    assert "見つかりませんでした" in run.stdout
    assert "・ごみ・リサイクル" in run.stdout or "・防災" in run.stdout
    data = json.loads(kiosk("ask", "--index", str(index_dir), "--json", "おすすめの映画").stdout)
    assert data["kind"] == "none" and data["answer"] is None and data["suggestions"]


def test_search_json_is_a_ranked_list_of_id_title_score(index_dir):
    run = kiosk("search", "--index", str(index_dir), "--limit", "5", "--json", "ごみの収集日")
    assert run.returncode == 0, run.stderr
    hits = json.loads(run.stdout)
    assert 1 <= len(hits) <= 5
    assert all(set(h) == {"id", "title", "score"} for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert hits[0]["id"] == "garbage-schedule"


def test_search_batch_answers_each_line_in_order(index_dir):
    queries = ["粗大ごみを出したい", "", "としょかん", "東名中学校は避難所ですか"]
    run = kiosk("search", "--index", str(index_dir), "--limit", "3", "--batch",
                stdin="\n".join(queries) + "\n")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == len(queries)
    results = [json.loads(line) for line in lines]
    assert results[1] == []
    assert results[0][0]["id"] == "garbage-oversized"
    assert results[3][0]["id"] == "shelter-E14212000021"
    assert all(len(r) <= 3 for r in results)
    single = json.loads(kiosk("search", "--index", str(index_dir), "--limit", "3", "--json",
                              queries[2]).stdout)
    assert results[2] == single


def test_missing_index_is_a_plain_message(tmp_path):
    run = kiosk("ask", "--index", str(tmp_path / "nowhere"), "住民票")
    assert run.returncode == 2
    assert run.stderr.startswith("kiosk: ") and "nowhere" in run.stderr
    assert "Traceback" not in run.stderr
    run = kiosk("search", "--index", str(tmp_path), "--json", "住民票")  # a folder, no index
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_corrupt_index_is_a_plain_message(index_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    for toc in broken.glob("_MAIN_*.toc"):
        toc.write_bytes(b"\x00garbage" * 10)
    run = kiosk("search", "--index", str(broken), "--json", "住民票")
    assert run.returncode == 2
    assert run.stderr.startswith("kiosk: ") and "Traceback" not in run.stderr


def test_bad_arguments_are_plain_messages(index_dir):
    run = kiosk("search", "--index", str(index_dir))
    assert run.returncode == 2 and "no query given" in run.stderr
    run = kiosk("ask", "--index", str(index_dir), "   ")
    assert run.returncode == 2 and "empty" in run.stderr
    run = kiosk("search", "--index", str(index_dir), "--limit", "0", "ごみ")
    assert run.returncode == 2 and "--limit" in run.stderr


def test_batch_rejects_non_utf8_input(index_dir):
    run = subprocess.run([sys.executable, "-m", "kiosk", "search", "--index", str(index_dir),
                          "--batch"], input="ごみ\n".encode("shift_jis"), capture_output=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert run.returncode == 2
    assert b"UTF-8" in run.stderr and b"Traceback" not in run.stderr


def test_first_run_builds_the_default_index(tmp_path):
    env = {"KIOSK_HOME": str(tmp_path)}
    run = kiosk("ask", "--json", "粗大ごみを出したい", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["answer"]["id"] == "garbage-oversized"
    assert (tmp_path / "index").is_dir()
    run = kiosk("search", "--json", "避難所", cwd=tmp_path, env=env)  # reuses it
    assert run.returncode == 0 and json.loads(run.stdout)
    # --index also accepts an index root with published versions
    run = kiosk("search", "--index", str(tmp_path / "index"), "--json", "粗大ごみ")
    assert run.returncode == 0 and json.loads(run.stdout)[0]["id"] == "garbage-oversized"
