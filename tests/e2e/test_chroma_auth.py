"""A Chroma server behind an authenticating proxy, over https, through real ragcli processes:
the session's `chroma run`, the token-checking reverse proxy of tests/support/auth_proxy.py in
front of it, TLS in front of that with a throwaway CA (chroma_ca_file). One ingest of the
sample corpus per module; then ask, status and index succeed, both header forms work, a
missing or wrong token is one line and exit 1 (the daemon's too), and no output, daemon
command line or daemon log holds the token. The proxy's counters show that every request
carried the token. In-process cases: tests/unit/index/test_chroma_auth.py."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.auth_proxy import BEARER, X_CHROMA_TOKEN, SecuredChroma, secured_chroma
from tests.support.cli import run_ragcli

Q = "How do I rotate the on-call pager?"
WRONG = "tok-wrong-" + "x" * 20
NO_CACHE = ("--no-cache", "all")  # every ask reaches the Chroma server


@pytest.fixture(scope="module")
def secured(
    chroma_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredChroma]:
    yield from secured_chroma(chroma_server.port, tmp_path_factory.mktemp("chroma-auth"))


# Four partitions of one chunk each: each gets a collection of its own (partition_rule), so
# the server holds five, all made and checked through the proxy; cheaper than the sample.
DOCS = {
    "ops/pager.md": "# Rotating the pager\n\nTo rotate the on-call pager, open PageRelay and "
    "click Hand Over before 10:00 UTC on Monday.\n",
    "hr/leave.md": "# Annual leave\n\nEmployees get 25 days of annual leave per year.\n",
    "finance/payroll.md": "# Payroll\n\nPayroll runs on the 25th of every month.\n",
    "it/vpn.md": "# VPN\n\nConnect to the VPN with the company client before using Jira.\n",
}


@pytest.fixture(scope="module")
def home(secured: SecuredChroma, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small corpus ingested once into the server over https with the token."""
    root = tmp_path_factory.mktemp("auth-home")
    for name, text in DOCS.items():
        (root / "corpus" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / name).write_text(text)
    secured.proxy.reset()
    proc = run_ragcli(root / "data", "ingest", str(root / "corpus"), **secured.env())
    assert proc.returncode == 0, proc.stderr
    assert secured.proxy.refused == 0 and secured.proxy.allowed > 0
    assert secured.tls.accepted > 0
    return root / "data"


def _clean(secured: SecuredChroma, *procs: subprocess.CompletedProcess[str]) -> None:
    """No output of these processes holds the token (or the wrong one tried)."""
    for proc in procs:
        for text in (proc.stdout, proc.stderr):
            assert secured.token not in text and WRONG not in text


def test_ask_status_and_index_go_through_the_proxy_with_the_token(
    home: Path, secured: SecuredChroma
) -> None:
    secured.proxy.reset()
    ask = run_ragcli(home, "ask", Q, *NO_CACHE, "--json", **secured.env())
    assert ask.returncode == 0, ask.stderr
    assert json.loads(ask.stdout)["sources"][0]["source"].endswith("ops/pager.md")
    status = run_ragcli(home, "status", "--json", **secured.env())
    report = json.loads(status.stdout)
    assert report["problems"] == [] and report["index"]["in_step"]
    assert len(report["partitions"]) == 4
    assert report["chroma_url"] == secured.url
    index = run_ragcli(home, "index", **secured.env())
    assert index.returncode == 0, index.stderr
    proxy = secured.proxy
    assert proxy.refused == 0 and proxy.forms == {BEARER: proxy.allowed}
    assert any(p.endswith("/query") for p in proxy.paths)  # ask's search went through it
    _clean(secured, ask, status, index)


def test_the_x_chroma_token_header(home: Path, secured: SecuredChroma) -> None:
    """A proxy that checks X-Chroma-Token: that form works, Bearer is refused."""
    secured.proxy.reset()
    secured.proxy.accept = (X_CHROMA_TOKEN,)
    try:
        raw = secured.env(RAGCLI_CHROMA_TOKEN_HEADER=X_CHROMA_TOKEN)
        ok = run_ragcli(home, "ask", Q, *NO_CACHE, **raw)
        assert ok.returncode == 0, ok.stderr
        assert secured.proxy.forms == {X_CHROMA_TOKEN: secured.proxy.allowed} and not (
            secured.proxy.refused
        )
        bearer = run_ragcli(home, "ask", Q, *NO_CACHE, **secured.env())
        assert bearer.returncode == 1
        assert bearer.stderr.splitlines() == [
            f"ragcli: error: the Chroma server at {secured.url} refused the token (HTTP 401): "
            "check chroma_token / RAGCLI_CHROMA_TOKEN (and chroma_token_header)"
        ]
        _clean(secured, ok, bearer)
    finally:
        secured.proxy.accept = (BEARER, X_CHROMA_TOKEN)


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "asks for a token (HTTP 401): set chroma_token (or RAGCLI_CHROMA_TOKEN)"),
        (WRONG, "refused the token (HTTP 401): check chroma_token / RAGCLI_CHROMA_TOKEN"),
    ],
    ids=["missing", "wrong"],
)
def test_a_missing_or_wrong_token_is_one_line_and_exit_1(
    home: Path, secured: SecuredChroma, token: str, why: str
) -> None:
    secured.proxy.reset()
    line = f"ragcli: error: the Chroma server at {secured.url} {why}"
    env = secured.env(token)
    second = ("index", "--rebuild") if token else ("ask", Q, *NO_CACHE, "--json")
    procs = [run_ragcli(home, "ask", Q, *NO_CACHE, **env), run_ragcli(home, *second, **env)]
    for proc in procs:
        assert proc.returncode == 1
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(line), proc.stderr
    status = run_ragcli(home, "status", "--json", **env)  # status reports, exit 0
    assert any(p.startswith(line.removeprefix("ragcli: error: ")) for p in
               json.loads(status.stdout)["problems"])  # fmt: skip
    assert secured.proxy.allowed == 0 and secured.proxy.refused >= 3
    _clean(secured, *procs, status)


def test_the_daemon_gets_the_token_from_its_client_never_on_its_command_line(
    home: Path, secured: SecuredChroma
) -> None:
    """A daemon a wrong-token ask started answers a right-token ask, and a right-token ask's
    warm pipeline is never used for a wrong or missing token."""
    on = {"RAGCLI_DAEMON": "on"}
    first = run_ragcli(home, "ask", Q, *NO_CACHE, "-v", **secured.env(WRONG, **on))
    assert first.returncode == 1 and "refused the token" in first.stderr
    right = run_ragcli(home, "ask", Q, *NO_CACHE, "-v", **secured.env(**on))
    assert right.returncode == 0, right.stderr
    assert "ragcli: daemon: answered by pid" in right.stderr  # the daemon, not in-process
    again = [
        run_ragcli(home, "ask", Q, *NO_CACHE, "-v", **secured.env(token, **on))
        for token in (WRONG, "")
    ]
    assert [p.returncode for p in again] == [1, 1]
    assert "refused the token" in again[0].stderr and "asks for a token" in again[1].stderr
    assert all("answered by pid" in p.stderr for p in again)  # the daemon said no, not a fallback
    pid = json.loads((home / "daemon.json").read_text())["pid"]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    log = (home / "daemon.log").read_text(errors="replace")
    for secret in (secured.token, WRONG):
        assert secret.encode() not in cmdline and secret not in log
    _clean(secured, first, right, *again)
    assert os.environ.get("RAGCLI_CHROMA_TOKEN") is None  # nothing leaked into the test's env
