"""The caches on a real redis-server through real ragcli processes: answers shared by two
`ragcli serve` replicas, `cache stats|clear` and `status`, Redis missing or down, and what a
cached answer imports; the in-process Redis tests are in tests/unit/caches/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.cli import REPO, clean_env, run_ragcli
from tests.support.pipeline import PAGER
from tests.support.serve import Served
from tests.support.servers import free_port


def _metric(text: str, cache: str, event: str) -> float:
    found = re.search(
        rf'^ragcli_cache_events_total\{{[^}}]*cache="{cache}"[^}}]*event="{event}"[^}}]*\}} (\S+)',
        text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_two_serve_replicas_share_answers_through_redis(
    home: Path, corpus: Path, redis_url: str, chroma_server: Any
) -> None:
    env = {"RAGCLI_REDIS_URL": redis_url, "RAGCLI_CHROMA_URL": chroma_server.url}
    assert run_ragcli(home, "ingest", str(corpus), **env).returncode == 0
    replicas = [Served(home, **env), Served(home, **env)]
    try:
        body = {"model": "ragcli", "messages": [{"role": "user", "content": PAGER}]}
        answers = []
        for replica in replicas:
            r = httpx.post(replica.url + "/chat/completions", json=body, timeout=60)
            assert r.status_code == 200, r.text
            answers.append(r.json())
        assert answers[0]["ragcli"]["cached"] is False
        assert answers[1]["ragcli"]["cached"] == "exact"
        text = [a["choices"][0]["message"]["content"] for a in answers]
        assert text[0] == text[1] and "Hand Over" in text[0]
        metrics = httpx.get(replicas[1].root + "/metrics", timeout=10).text
        assert _metric(metrics, "answer", "hits") == 1
    finally:
        for replica in replicas:
            replica.stop()


def test_cache_stats_clear_and_status_on_redis(home: Path, corpus: Path, redis_url: str) -> None:
    env = {"RAGCLI_REDIS_URL": redis_url}
    assert run_ragcli(home, "ingest", str(corpus), **env).returncode == 0
    assert run_ragcli(home, "ask", PAGER, **env).returncode == 0
    stats = json.loads(run_ragcli(home, "cache", "stats", "--json", **env).stdout)
    assert stats["path"] == redis_url and stats["bytes"] > 0
    entries = {name: s["entries"] for name, s in stats["caches"].items()}
    assert entries["embedding"] >= 3 and entries["retrieval"] == 1 and entries["answer"] == 1
    status = json.loads(run_ragcli(home, "status", "--json", **env).stdout)
    assert status["cache"] == {"embeddings": entries["embedding"], "retrievals": 1, "answers": 1}
    cleared = run_ragcli(home, "cache", "clear", "--only", "answer,retrieval", "--json", **env)
    assert json.loads(cleared.stdout)["removed"] == {"answer": 1, "retrieval": 1}
    stats = json.loads(run_ragcli(home, "cache", "stats", "--json", **env).stdout)
    left = {name: s["entries"] for name, s in stats["caches"].items()}
    assert left == {**entries, "answer": 0, "retrieval": 0}
    proc = run_ragcli(home, "ask", PAGER, "--json", **env)
    assert json.loads(proc.stdout)["cached"] is False


def test_unreachable_redis_is_one_line(home: Path, corpus: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = run_ragcli(home, "--redis-url", url, "ingest", str(corpus))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ragcli: error: cannot reach Redis at {url}")
    status = run_ragcli(home, "status", "--json", RAGCLI_REDIS_URL=url)
    assert any("cannot reach Redis" in p for p in json.loads(status.stdout)["problems"])


def test_missing_redis_package_says_how_to_install(home: Path, tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "redis.py").write_text("raise ImportError('redis is not installed')\n")
    proc = run_ragcli(
        home, "cache", "stats", RAGCLI_REDIS_URL="redis://127.0.0.1:1", PYTHONPATH=str(shim)
    )
    assert proc.returncode == 3
    assert proc.stderr.strip() == (
        "ragcli: error: --redis-url needs the redis package: pip install 'ragcli[redis]' "
        "(or pip install 'redis>=5')"
    )


def _modules_after(home: Path, args: list[str], **env: str) -> tuple[str, list[str]]:
    """Run `ragcli ARGS` in a fresh interpreter; (stdout, heavy modules it imported)."""
    code = (
        f"import sys, runpy; sys.argv = ['ragcli', *{args!r}]\n"
        "try:\n    runpy.run_module('ragcli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY=' + ','.join(m for m in ('chromadb', 'openai', 'redis') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(home, **env),
        cwd=REPO,
        timeout=120,
    )
    heavy = proc.stdout.rsplit("HEAVY=", 1)[1].strip()
    return proc.stdout, [m for m in heavy.split(",") if m]


def test_a_redis_cached_answer_needs_neither_chromadb_nor_openai(
    home: Path, corpus: Path, redis_url: str
) -> None:
    env = {"RAGCLI_REDIS_URL": redis_url}
    assert run_ragcli(home, "ingest", str(corpus), **env).returncode == 0
    assert run_ragcli(home, "ask", PAGER, **env).returncode == 0
    # which modules an in-process ask imports: pinned off under RAGCLI_TEST_DAEMON=on
    out, heavy = _modules_after(home, ["ask", PAGER, "--json"], **env, RAGCLI_DAEMON="off")
    assert '"cached": "exact"' in out and heavy == ["redis"]
    _, heavy = _modules_after(home, ["--help"], **env)
    assert heavy == []
