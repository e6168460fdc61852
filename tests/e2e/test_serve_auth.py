"""`ragcli serve` with API keys, as a real process on 127.0.0.1 over a copy of the ingested
sample corpus, through the official `openai` client (max_retries=0: it retries 429 and 5xx by
itself) and raw HTTP: no key, a wrong key and the right one; a key's partitions (403 outside,
its whole scope when none is asked); two tenants asking the same questions with the answer
cache and semantic reuse on, over SQLite and over a real redis-server; a body over --max-body
(Content-Length and chunked); a key over its rate; `ask --server` with RAGCLI_API_KEY; a
non-loopback address without keys; /healthz open, /metrics keyed, no secret in /metrics or on
serve's stderr."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.cli import REPO, clean_env, copy_home, run_ragcli
from tests.support.serve import Served

ADMIN = "rk-admin-5mXq2VfT9wLp0Zc8"
HR = "rk-hr-Qw3Er5Ty7Ui9Op1As2"
OPS = "rk-ops-Df4Gh6Jk8Lz0Xc2Vb3"
LIMITED = "rk-limited-Nm5Bv7Cx9Za1Sd"
GHOST = "rk-ghost-Pl0Ok9Ij8Uh7Yg6"
POLICIES = "rk-env-Tf5Rd4Es3Wa2Qz1Xx"
SECRETS = (ADMIN, HR, OPS, LIMITED, GHOST, POLICIES)
KEYS = f"""
[[keys]]
name = "admin"
key = "{ADMIN}"

[[keys]]
name = "hr-bot"
key = "{HR}"
partitions = ["hr"]

[[keys]]
name = "ops-bot"
key = "{OPS}"
partitions = ["runbooks"]

[[keys]]
name = "limited"
key = "{LIMITED}"
partitions = ["hr"]
rate_per_minute = 2

[[keys]]
name = "ghost"
key = "{GHOST}"
partitions = ["finance"]
"""
ENV_KEYS = f"policies-bot={POLICIES}@policies"
LEAVE = "How many days of annual leave do I get?"
LEAVE_AGAIN = "how many days of annual leave do i get per year"
PAGER = "How do I rotate the on-call pager?"
NO_SOURCES = "No ingested text matches this question."


@dataclass(frozen=True)
class Tenants:
    home: Path
    keys: Path


@pytest.fixture(scope="module")
def tenants(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    root = tmp_path_factory.mktemp("serve-auth")
    home = copy_home(sample_home, root / "home")  # its caches fill up here
    keys = root / "keys.toml"
    keys.write_text(KEYS)
    keys.chmod(0o600)
    return Tenants(home, keys)


def serve(tenants: Tenants, *args: str, **env: str) -> Served:
    return Served(
        tenants.home,
        "--api-key-file",
        str(tenants.keys),
        *args,
        RAGCLI_SERVE_API_KEYS=ENV_KEYS,
        RAGCLI_SEMANTIC_THRESHOLD="0.8",
        # the tenants ask each other's questions on purpose: an abstention is never cached, so
        # abstaining is off here and the caches' scoping is what is tested (test_abstention.py)
        RAGCLI_ABSTAIN_THRESHOLD="0",
        **env,
    )


@pytest.fixture(scope="module")
def keyed(tenants: Tenants) -> Iterator[Served]:
    """One keyed server for the module, SQLite caches, semantic reuse on, 4 KiB bodies."""
    served = serve(tenants, "--max-body", "4096")
    yield served
    served.stop()


def client(served: Served, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url, api_key=key, max_retries=0)


def ask(served: Served, key: str, question: str, **extra: Any) -> dict[str, Any]:
    """A whole chat completion's JSON (its `sources` and `ragcli` extra fields included)."""
    whole = client(served, key).chat.completions.create(
        model="ragcli", messages=[{"role": "user", "content": question}], extra_body=extra
    )
    return whole.model_dump()


def test_no_key_wrong_key_right_key(keyed: Served) -> None:
    messages = [{"role": "user", "content": PAGER}]
    with pytest.raises(openai.AuthenticationError) as no_key:
        client(keyed, "unused").chat.completions.create(
            model="ragcli", messages=messages, extra_headers={"Authorization": openai.Omit()}
        )
    with pytest.raises(openai.AuthenticationError) as wrong:
        client(keyed, ADMIN[:-1] + "x").chat.completions.create(model="ragcli", messages=messages)
    for refused, message in ((no_key, "missing API key"), (wrong, "invalid API key")):
        error = refused.value
        assert error.status_code == 401 and error.code == "invalid_api_key"
        assert error.type == "invalid_request_error"
        assert str(error.message).startswith(f"Error code: 401 - {message}")
        assert error.response.headers["www-authenticate"].startswith("Bearer")
    sources = streamed_sources(keyed, ADMIN, PAGER)  # every partition
    assert sources[0]["path"] == "runbooks/rotate-on-call-pager.md"


def streamed_sources(served: Served, key: str, question: str) -> list[dict[str, Any]]:
    stream = client(served, key).chat.completions.create(
        model="ragcli", messages=[{"role": "user", "content": question}], stream=True
    )
    sources: list[dict[str, Any]] = []
    for event in stream:
        sources = (event.model_extra or {}).get("sources", sources)
    return sources


def test_a_key_searches_only_its_partitions(keyed: Served) -> None:
    hr = ask(keyed, HR, PAGER)  # the pager runbook is outside hr's scope
    assert hr["sources"] and {s["partition"] for s in hr["sources"]} == {"hr"}
    streamed = streamed_sources(keyed, HR, "How do I hand over the pager?")
    assert streamed and {s["partition"] for s in streamed} == {"hr"}
    for stream in (False, True):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client(keyed, HR).chat.completions.create(
                model="ragcli",
                messages=[{"role": "user", "content": PAGER}],
                stream=stream,
                extra_body={"partition": ["hr", "runbooks"]},
            )
        assert refused.value.status_code == 403 and refused.value.code == "partition_not_allowed"
        body: Any = refused.value.body
        assert body["message"] == "this API key may not search partition 'runbooks'"
        assert body["type"] == "permission_error"
    headers = {"Authorization": f"Bearer {HR}"}
    r = httpx.post(keyed.url + "/retrieve", json={"query": PAGER, "partition": "policies"},
                   headers=headers)  # fmt: skip
    assert r.status_code == 403 and "'policies'" in r.text and "hr" not in r.text
    for asked in ({"partition": "hr"}, {}):
        r = httpx.post(keyed.url + "/retrieve", json={"query": PAGER, **asked}, headers=headers)
        assert r.status_code == 200 and {d["partition"] for d in r.json()["data"]} == {"hr"}
    env_key = ask(keyed, POLICIES, "How do I file an expense report?")  # from the variable
    assert env_key["sources"] and {s["partition"] for s in env_key["sources"]} == {"policies"}
    ghost = ask(keyed, GHOST, LEAVE)  # its one partition is not in the index
    assert ghost["sources"] == [] and ghost["choices"][0]["message"]["content"] == NO_SOURCES
    r = httpx.post(keyed.url + "/retrieve", json={"query": LEAVE},
                   headers={"Authorization": f"Bearer {GHOST}"})  # fmt: skip
    assert r.status_code == 200 and r.json()["data"] == []


def without_relevance(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k != "relevance"} for s in sources]


def two_tenants(served: Served) -> None:
    """hr-bot and ops-bot ask the same questions: each gets its own sources, answered, then
    from the answer cache, then a paraphrase from the semantic cache, never the other's."""
    partitions = {HR: "hr", OPS: "runbooks"}
    first: dict[str, dict[str, Any]] = {}
    for key, partition in partitions.items():
        got = ask(served, key, LEAVE)
        assert got["ragcli"]["cached"] is False
        assert got["sources"] and {s["partition"] for s in got["sources"]} == {partition}
        first[key] = got
    hr_text = first[HR]["choices"][0]["message"]["content"]
    assert "25 days" in hr_text and hr_text != first[OPS]["choices"][0]["message"]["content"]
    for key, cached, question in (
        (OPS, "exact", LEAVE),
        (HR, "exact", LEAVE),
        (OPS, "semantic", LEAVE_AGAIN),
        (HR, "semantic", LEAVE_AGAIN),
    ):
        got = ask(served, key, question)
        assert got["ragcli"]["cached"] == cached, (key, question)
        # the same sources; their relevance is to the question asked (a paraphrase's differs)
        assert without_relevance(got["sources"]) == without_relevance(first[key]["sources"])
        assert (
            got["choices"][0]["message"]["content"]
            == first[key]["choices"][0]["message"]["content"]
        )
    metrics = httpx.get(served.root + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    hits = re.search(r'^ragcli_cache_events_total\{cache="answer",event="hits"\} (\S+)$',
                     metrics.text, re.M)  # fmt: skip
    assert hits and float(hits.group(1)) >= 2  # the exact ones (semantic: ragcli.cached)


def test_two_tenants_same_questions_sqlite_caches(keyed: Served) -> None:
    two_tenants(keyed)


def test_two_tenants_same_questions_redis_caches(tenants: Tenants, redis_url: str) -> None:
    served = serve(tenants, RAGCLI_REDIS_URL=redis_url)
    try:
        two_tenants(served)
    finally:
        served.stop()


def raw(served: Served, head: str, *chunks: bytes) -> tuple[int, dict[str, Any]]:
    """Send a request's head and body chunks over a socket; the status and JSON answered."""
    port = int(served.root.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for chunk in chunks:
            sock.sendall(chunk)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def test_a_body_over_max_body_is_refused_before_it_is_read(keyed: Served) -> None:
    head = f"POST /v1/retrieve HTTP/1.1\nHost: x\nAuthorization: Bearer {ADMIN}\n"
    status, body = raw(keyed, head + "Content-Length: 100000000\n")  # and no body at all
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert "4096 bytes" in body["error"]["message"]
    chunk = b"%x\r\n%s\r\n" % (3000, b" " * 3000)  # two of them pass 4 KiB; no last chunk
    status, body = raw(keyed, head + "Transfer-Encoding: chunked\n", chunk, chunk)
    assert status == 413 and body["error"]["type"] == "invalid_request_error"
    small = json.dumps({"query": PAGER, "k": 1}).encode()
    status, body = raw(keyed, head + f"Content-Length: {len(small)}\n", small)
    assert status == 200 and len(body["data"]) == 1


def test_a_key_over_its_rate_gets_429_with_retry_after(keyed: Served, tenants: Tenants) -> None:
    limited = client(keyed, LIMITED)
    messages = [{"role": "user", "content": LEAVE}]
    for _ in range(2):
        limited.chat.completions.create(model="ragcli", messages=messages)
    with pytest.raises(openai.RateLimitError) as refused:
        limited.chat.completions.create(model="ragcli", messages=messages)
    assert refused.value.status_code == 429 and refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    assert "'limited': 2 requests per minute" in str(refused.value.message)
    assert ask(keyed, HR, LEAVE)["sources"]  # another key is not limited
    proc = run_ragcli(tenants.home, "ask", LEAVE, "--server", keyed.url, RAGCLI_API_KEY=LIMITED)
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert "HTTP 429: rate limit reached for API key 'limited'" in line and LIMITED not in line


def test_ask_server_sends_ragcli_api_key(keyed: Served, tenants: Tenants) -> None:
    home = tenants.home
    proc = run_ragcli(home, "ask", LEAVE, "--server", keyed.url, "--json", RAGCLI_API_KEY=HR)
    assert proc.returncode == 0, proc.stderr
    assert {s["partition"] for s in json.loads(proc.stdout)["sources"]} == {"hr"}
    for env, args, code, says in (
        ({}, (), 2, "HTTP 401: missing API key: send it as 'Authorization: Bearer KEY' (set "),
        ({"RAGCLI_API_KEY": "rk-wrong-0123456789abc"}, (), 2, "invalid API key (check "),
        ({"RAGCLI_API_KEY": HR}, ("-p", "runbooks"), 2, "may not search partition 'runbooks'"),
    ):
        proc = run_ragcli(home, "ask", LEAVE, "--server", keyed.url, *args, **env)
        assert proc.returncode == code, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"ragcli: error: ragcli server at {keyed.url}: ") and says in line
        assert not any(s in line for s in SECRETS)


def refused_serve(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ragcli serve ARGS` expected to refuse before it loads anything (one that starts
    instead fails the test at the timeout rather than serving for ever)."""
    return subprocess.run(
        [sys.executable, "-m", "ragcli", "serve", "--port", "0", *args],
        capture_output=True, text=True, cwd=REPO, env=clean_env(home), timeout=60,
    )  # fmt: skip


def test_non_loopback_needs_keys_or_insecure(tenants: Tenants, tmp_path: Path) -> None:
    home = tenants.home
    proc = refused_serve(home, "--host", "0.0.0.0")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("ragcli: error: refusing to serve on 0.0.0.0 without API keys: ")
    assert "--insecure" in line
    writable = tmp_path / "keys.toml"
    writable.write_text(KEYS)
    writable.chmod(0o664)
    for args, says in (
        (("--api-key-file", str(writable)), "writable by other users (mode 0664)"),
        (("--rate-limit", "60"), "--rate-limit counts requests per API key"),
    ):
        proc = refused_serve(home, *args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert says in proc.stderr and not any(s in proc.stderr for s in SECRETS)
    server = subprocess.Popen(
        [sys.executable, "-m", "ragcli", "serve", "--host", "0.0.0.0", "--port", "0",
         "--insecure"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO,
        env=clean_env(home),
    )  # fmt: skip
    try:
        assert server.stderr is not None
        listening = server.stderr.readline()
        port = re.search(r"listening on http://0\.0\.0\.0:(\d+)/v1", listening)
        assert port, listening + server.stderr.read()
        warning = server.stderr.readline()
        assert "warning: no API keys on 0.0.0.0 (--insecure)" in warning
        r = httpx.post(f"http://127.0.0.1:{port.group(1)}/v1/retrieve", json={"query": PAGER})
        assert r.status_code == 200 and r.json()["data"]
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_healthz_open_metrics_keyed_and_no_secret_anywhere(keyed: Served) -> None:
    """Last in the module: it stops the module's server to read all of its stderr. Under
    pytest-xdist the module's other tests may run on another worker (another server), so it
    first makes each request whose series it looks for."""
    chat = keyed.url + "/chat/completions"
    body = {"model": "ragcli", "messages": [{"role": "user", "content": LEAVE}]}
    for key, extra, statuses in (
        (HR, {}, {200}),
        (HR, {"partition": "runbooks"}, {403}),
        *[(LIMITED, {}, {200, 429})] * 3,  # a rate of 2 a minute: the third is refused
        ("rk-not-a-key-0123456789", {}, {401}),
    ):
        r = httpx.post(chat, json={**body, **extra}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code in statuses, (key, r.status_code, r.text)
    head = f"POST /v1/retrieve HTTP/1.1\nHost: x\nAuthorization: Bearer {ADMIN}\n"
    assert raw(keyed, head + "Content-Length: 100000000\n")[0] == 413
    assert httpx.get(keyed.root + "/healthz").json() == {"status": "ok"}  # no details
    health = httpx.get(keyed.root + "/healthz", headers={"Authorization": f"Bearer {OPS}"})
    assert health.json()["status"] == "ok" and health.json()["generator"] == "extractive"
    assert httpx.get(keyed.root + "/metrics").status_code == 401
    metrics = httpx.get(keyed.root + "/metrics", headers={"Authorization": f"Bearer {OPS}"})
    assert metrics.status_code == 200
    text = metrics.text
    for series in (
        'ragcli_requests_total{endpoint="/v1/chat/completions",key="hr-bot",status="200"}',
        'ragcli_requests_total{endpoint="/v1/chat/completions",key="hr-bot",status="403"}',
        'ragcli_requests_total{endpoint="/v1/chat/completions",key="limited",status="429"}',
        'ragcli_requests_total{endpoint="/v1/chat/completions",key="",status="401"}',
        'ragcli_requests_total{endpoint="/v1/retrieve",key="admin",status="413"}',
        'ragcli_requests_total{endpoint="/metrics",key="",status="401"}',
    ):
        assert series in text, series
    keyed.stop()
    assert keyed.proc.stderr is not None
    stderr = keyed.proc.stderr.read()
    assert "ragcli serve: warning: API key 'ghost': no partition 'finance' in the index" in stderr
    for secret in SECRETS:
        assert secret not in text and secret not in stderr
