"""Damage a data directory the ways users report, and check the way back:
`ragcli status` names the problem, and the command it names repairs it."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import Run


def _status(ragcli: Run) -> dict:
    out = ragcli("status", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_corrupted_cache_file(ragcli: Run, home: Path, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    digest = _status(ragcli)["digest"]
    (home / "cache.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (home / f"cache.db{suffix}").unlink(missing_ok=True)
    ask = ragcli("ask", "pager")
    assert ask.returncode == 1 and "Traceback" not in ask.stderr
    assert (
        ask.stderr.startswith("ragcli: error: cache database") and len(ask.stderr.splitlines()) == 1
    )
    assert any("ragcli cache clear" in p for p in _status(ragcli)["problems"])
    cleared = ragcli("cache", "clear")
    assert cleared.returncode == 0 and "unreadable file set aside" in cleared.stdout
    assert ragcli("ask", "pager").returncode == 0
    status = _status(ragcli)
    assert status["problems"] == [] and status["digest"] == digest


def test_missing_or_corrupted_index(ragcli: Run, home: Path, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    digest = _status(ragcli)["digest"]
    shutil.rmtree(home / "chroma")
    assert any("index --rebuild" in p for p in _status(ragcli)["problems"])
    ask = ragcli("ask", "pager", "--no-cache", "all")
    assert ask.returncode != 0 and "Traceback" not in ask.stderr
    assert len(ask.stderr.strip().splitlines()) == 1
    rebuilt = ragcli("index", "--rebuild", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["embedded"] == 0  # vectors came from the cache
    status = _status(ragcli)
    assert status["problems"] == [] and status["digest"] == digest
    # garbage instead of Chroma's database: set aside and rebuilt
    (home / "chroma" / "chroma.sqlite3").write_bytes(b"garbage" * 1000)
    assert any("index --rebuild" in p for p in _status(ragcli)["problems"])
    assert ragcli("index", "--rebuild").returncode == 0
    assert ragcli("ask", "pager", "--no-cache", "all").returncode == 0
    assert _status(ragcli)["problems"] == []


def test_overlong_and_empty_questions(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    long = ragcli("ask", "why " * 25_000)
    assert long.returncode == 2 and "the question is too long (" in long.stderr
    assert ragcli("ask", "").returncode == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_data_dir(ragcli: Run, home: Path, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    for p in [home, *home.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        out = ragcli("ingest", str(corpus))
        assert out.returncode != 0 and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_status_on_nothing(ragcli: Run) -> None:
    status = _status(ragcli)
    assert status["documents"] == 0 and status["problems"][0].startswith("nothing ingested")
