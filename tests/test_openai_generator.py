"""Streaming from an OpenAI-compatible server: a real HTTP server on 127.0.0.1, the real client."""

import json
import time
from pathlib import Path

from tests.conftest import Run
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig


def test_ask_streams_from_the_configured_server(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    cfg = ServerConfig(api_key="sk-test-key", reply="Open PageRelay and click Hand Over [1].")
    with OpenAICompatibleServer(cfg) as srv:
        proc = ragcli(
            "ask",
            "How do I rotate the on-call pager?",
            "--json",
            OPENAI_BASE_URL=srv.base_url,
            OPENAI_API_KEY="sk-test-key",
            RAGCLI_LLM_MODEL="test-model",
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["answer"] == cfg.reply
        assert out["generator"] == "openai:test-model"
        assert srv.counters.chat == 1
        body = srv.counters.bodies[-1]
        assert body["stream"] is True and body["model"] == "test-model"
        user = body["messages"][1]["content"]
        assert '<source id="1"' in user and "Question: How do I rotate the on-call pager?" in user
        assert "sk-test-key" not in proc.stdout + proc.stderr


def test_first_token_is_written_when_it_arrives(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    cfg = ServerConfig(reply="one two three four", ttft_s=0.3, token_gap_s=0.2)
    with OpenAICompatibleServer(cfg) as srv:
        proc = ragcli(
            "profile",
            "pager rotation",
            "--runs",
            "2",
            "--json",
            "--no-cache",
            "answer",
            OPENAI_BASE_URL=srv.base_url,
            RAGCLI_LLM_MODEL="m",
        )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    stats = data["warm"]["stats"]
    # first token after the server's TTFT, not after the whole stream (0.3 + 3 × 0.2 s)
    assert 300 <= stats["llm.first_token"]["p50"] < 600
    assert stats["llm.stream"]["p50"] >= 550
    # TTFT = ragcli's own share before the request + the server's 300 ms (+ the client's bit)
    last = {s["name"]: s for s in data["warm"]["last"]}
    pre_llm = last["llm.first_token"]["start_ms"]
    ttft = pre_llm + last["llm.first_token"]["ms"]
    assert 300 + pre_llm <= ttft < 300 + pre_llm + 100
    assert stats["pre_llm"]["p50"] < 50  # ragcli's overhead, shown as its own figure


def test_wrong_api_key_is_one_line_error(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    with OpenAICompatibleServer(ServerConfig(api_key="right")) as srv:
        proc = ragcli("ask", "pager", OPENAI_BASE_URL=srv.base_url, OPENAI_API_KEY="sk-wrong-999")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("ragcli: error: the LLM provider")
    assert "rejected the API key" in proc.stderr
    assert "sk-wrong-999" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_unreachable_server_is_one_line_error(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    started = time.monotonic()
    proc = ragcli("ask", "pager", OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="k")
    assert proc.returncode == 1
    assert "cannot connect to the LLM provider at http://127.0.0.1:9/v1" in proc.stderr
    assert time.monotonic() - started < 60
