"""Several LLM and embedding endpoints through real ragcli processes: a bad endpoint list at the
command line, an ingest failing over to a healthy endpoint, and `ragcli serve` spreading
streamed answers over two endpoints. In-process routing, failover and hedging:
tests/unit/providers/test_endpoints.py."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import httpx
import openai

from tests.support.cli import Run
from tests.support.endpoints import REPLY, release_when, server
from tests.support.serve import Served


def test_bad_endpoint_list_is_one_line_and_exit_2(ragcli: Run) -> None:
    proc = ragcli("ask", "anything", RAGCLI_LLM_ENDPOINTS="localhost:8000")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "http://" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- through the commands ---------------------------------------------------------------------
def test_ingest_fails_embeddings_over_to_a_healthy_endpoint(ragcli: Run, corpus: Path) -> None:
    with server(drop_rate=1.0) as down, server() as up:
        proc = ragcli(
            "ingest",
            str(corpus),
            "--json",
            "--embedder",
            "openai:text-embedding-3-small",
            RAGCLI_EMBED_DIMENSIONS="32",
            RAGCLI_EMBED_BATCH_SIZE="4",
            RAGCLI_EMBED_ENDPOINTS=f"{down.base_url},{up.base_url}",
            RAGCLI_EMBED_MAX_RETRIES="2",
        )
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert down.counters.embeddings >= 1 and down.counters.dropped >= 1
        assert down.counters.ok == 0
        assert report["embedded"] == report["chunks"] == len(up.counters.texts) > 0


def test_openai_client_streams_from_serve_with_two_endpoints(
    ragcli: Run, home: Path, corpus: Path
) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    with server() as a, server() as b:
        # All four first tokens are held until the four requests are at the servers at once.
        # Hedging is set to 10 minutes so that holding them can never fire a hedge.
        a.hold()
        b.hold()
        release_when(lambda: a.waiting + b.waiting == 4, a, b)
        served = Served(
            home,
            RAGCLI_LLM_ENDPOINTS=f"{a.base_url},{b.base_url}",
            RAGCLI_LLM_MODEL="m",
            RAGCLI_NO_CACHE="answer",
            RAGCLI_HEDGE_DELAY_MS="600000",
        )
        try:
            client = openai.OpenAI(base_url=served.url, api_key="unused")
            texts: list[str] = []
            spans: list[list[dict]] = []

            def one() -> None:
                stream = client.chat.completions.create(
                    model="ragcli",
                    messages=[{"role": "user", "content": "How do I rotate the on-call pager?"}],
                    stream=True,
                )
                text = ""
                for event in stream:
                    if event.choices and event.choices[0].delta.content:
                        text += event.choices[0].delta.content
                    extra = (event.model_extra or {}).get("ragcli")
                    if extra:
                        spans.append(extra["spans"])
                texts.append(text)

            threads = [threading.Thread(target=one) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            metrics = httpx.get(served.root + "/metrics").text
            health = httpx.get(served.root + "/healthz").json()
        finally:
            assert served.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM
    assert texts == [REPLY] * 4
    assert a.counters.held + b.counters.held == 4
    assert a.counters.chat >= 1 and b.counters.chat >= 1 and a.counters.chat + b.counters.chat == 4
    firsts = [next(s for s in run if s["name"] == "llm.first_token") for run in spans]
    assert {f["attrs"]["endpoint"] for f in firsts} == {a.base_url, b.base_url}
    for url in (a.base_url, b.base_url):
        line = f'ragcli_provider_requests_total{{endpoint="{url}",event="ok",role="llm"}}'
        assert line in metrics
    assert 'ragcli_provider_hedges_total{endpoint="' in metrics
    assert [e["url"] for e in health["llm_endpoints"]] == [a.base_url, b.base_url]
    assert sum(e["ok"] for e in health["llm_endpoints"]) == 4
