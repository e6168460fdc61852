"""Streaming from an OpenAI-compatible server: a real HTTP server on 127.0.0.1, the real client."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.cli import REPO, Run, clean_env
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig, wait_for

REPLY = "Open PageRelay and click Hand Over [1]."


def test_ask_streams_from_the_configured_server(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    cfg = ServerConfig(api_key="sk-test-key", reply=REPLY)
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


def test_first_token_is_written_when_it_arrives(
    ragcli: Run, home: Path, corpus: Path, tmp_path: Path
) -> None:
    """Judged by events: the server sends the first word and holds the rest; `ragcli ask`
    must print that word while the rest is still held, then the whole answer once released."""
    assert ragcli("ingest", str(corpus)).returncode == 0
    with OpenAICompatibleServer(ServerConfig(reply=REPLY)) as srv:
        srv.hold(after_words=1)
        errors = tmp_path / "stderr"
        env = clean_env(home, OPENAI_BASE_URL=srv.base_url, RAGCLI_LLM_MODEL="m")
        env.pop("PYTHONUNBUFFERED", None)  # a piped stdout is buffered: ragcli must flush
        with errors.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ragcli", "ask", "How do I rotate the on-call pager?"],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=REPO,
                env=env,
            )
        out = bytearray()  # all of stdout, read as it comes

        def read() -> None:
            assert proc.stdout is not None
            while chunk := os.read(proc.stdout.fileno(), 4096):
                out.extend(chunk)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            # the bounds only end a hang: starting ragcli on a loaded machine takes seconds
            wait_for(lambda: srv.waiting == 1 or proc.poll() is not None, 240, "the request")
            assert srv.waiting == 1, errors.read_text()
            wait_for(lambda: b"Open" in out, 60, "the first word on stdout")
            assert srv.waiting == 1  # written while the rest of the answer is still held
            assert b"PageRelay" not in out
        finally:
            srv.release()
            proc.wait(timeout=120)
            reader.join(timeout=60)
    assert proc.returncode == 0, errors.read_text()
    assert out.decode().startswith(REPLY)
    assert srv.counters.held == 1 and srv.counters.chat == 1


def test_profile_times_the_first_token_not_the_whole_stream(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    # After the first word the server takes 3 × 0.6 s for the rest. The first-token figure
    # must end where that tail begins. The checks allow half the tail (900 ms) for the time a
    # loaded machine may add to reading the first word: ms in practice, so load cannot flip
    # them; timing the whole stream as the first token (~0 ms of tail) fails them.
    cfg = ServerConfig(reply="one two three four", token_gap_s=0.6)
    with OpenAICompatibleServer(cfg) as srv:
        proc = ragcli(
            "profile",
            "pager rotation",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--json",
            "--no-cache",
            "answer",
            OPENAI_BASE_URL=srv.base_url,
            RAGCLI_LLM_MODEL="m",
        )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    stats = data["warm"]["stats"]
    assert stats["llm.stream"]["p50"] >= 900  # first token → last: the held tail
    assert stats["llm.first_token"]["p50"] < stats["llm.stream"]["p50"]
    # the TTFT figure is ragcli's own share before the request plus the first-token span
    last = {s["name"]: s for s in data["warm"]["last"]}
    pre_llm = last["llm.first_token"]["start_ms"]
    assert stats["pre_llm"]["p50"] == pytest.approx(pre_llm, abs=0.01)
    assert stats["ttft"]["p50"] == pytest.approx(pre_llm + last["llm.first_token"]["ms"], abs=0.01)
    assert last["llm.stream"]["start_ms"] == pytest.approx(
        pre_llm + last["llm.first_token"]["ms"], abs=0.01
    )
    assert srv.counters.chat >= 2  # the cold run and the warm one both asked the server


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
    # No clock: a retry loop that never gave up would hit run_ragcli's 300 s timeout and fail.
    proc = ragcli("ask", "pager", OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="k")
    assert proc.returncode == 1
    assert "cannot connect to the LLM provider at http://127.0.0.1:9/v1" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
