"""Provider faults that a dropped connection does not cover (issue 7): a request whose answer
never comes (the client's timeout must end it) and model names the provider does not know."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.openai_server import OpenAICompatibleServer, ServerConfig
from tests.support.reliability import SECRET, remote_env, run_home, status_of, write_corpus

HANG_S = 60.0  # the server's silence: far longer than the client may wait
TIMEOUT = "1"  # RAGCLI_PROVIDER_TIMEOUT, seconds


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ragcli: error:"), stderr
    assert "Traceback" not in stderr and SECRET not in stderr
    return lines[0]


def test_embeddings_that_never_answer_time_out_in_one_line(tmp_path: Path):
    corpus = write_corpus(tmp_path / "docs", docs=1)
    home = tmp_path / "home"
    cfg = ServerConfig(api_key=SECRET, hang_rate=1.0, hang_s=HANG_S)
    with OpenAICompatibleServer(cfg) as srv:
        env = remote_env(srv, RAGCLI_EMBED_MAX_RETRIES="1", RAGCLI_PROVIDER_TIMEOUT=TIMEOUT)
        started = time.monotonic()
        proc = run_home(home, "ingest", str(corpus), timeout=HANG_S, **env)
        took = time.monotonic() - started
        hung = srv.counters.hung
        st = status_of(home, **env)
    print("embeddings-timeout", f"{took:.1f} s", hung, "hung requests:", proc.stderr.strip())
    assert proc.returncode == 1, proc.stderr
    assert "timed out" in _one_error_line(proc.stderr)
    assert hung >= 2  # the first try and its retry, each given up after the timeout
    assert took < HANG_S / 2  # the client gave up; it did not wait for the server to close
    assert st["cache"]["embeddings"] == 0 and st["chunks"] == 0
    with OpenAICompatibleServer(ServerConfig(api_key=SECRET)) as srv:  # a healthy provider
        env = remote_env(srv, RAGCLI_PROVIDER_TIMEOUT=TIMEOUT)
        assert run_home(home, "ingest", str(corpus), **env).returncode == 0
        st = status_of(home, **env)
    assert st["problems"] == [] and st["chunks"] > 0


def test_a_chat_answer_that_never_comes_times_out_and_is_not_cached(tmp_path: Path):
    corpus = write_corpus(tmp_path / "docs", docs=1)
    home = tmp_path / "home"
    question = "What does step 3 explain?"
    with OpenAICompatibleServer(ServerConfig(api_key=SECRET)) as srv:
        env = remote_env(srv, RAGCLI_LLM_MODEL="test-model", RAGCLI_PROVIDER_TIMEOUT=TIMEOUT)
        assert run_home(home, "ingest", str(corpus), **env).returncode == 0
        # ask once so the question's vector is cached: then only the chat request goes out
        assert run_home(home, "ask", question, **env).returncode == 0
        assert run_home(home, "cache", "clear", "--only", "answer", **env).returncode == 0
        srv.reset(hang_rate=1.0, hang_s=HANG_S)
        started = time.monotonic()
        proc = run_home(home, "ask", question, timeout=HANG_S, **env)
        took = time.monotonic() - started
        hung, embedded = srv.counters.hung, srv.counters.embeddings
        assert status_of(home, **env)["cache"]["answers"] == 0  # nothing half-answered stored
        srv.reset(hang_rate=0.0)
        again = run_home(home, "ask", question, **env)
        chats = srv.counters.chat
        answers = status_of(home, **env)["cache"]["answers"]
    print("chat-timeout", f"{took:.1f} s", hung, "hung requests:", proc.stderr.strip())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "timed out" in _one_error_line(proc.stderr)
    assert hung >= 1 and embedded == 0
    assert took < HANG_S / 2
    assert again.returncode == 0, again.stderr
    assert chats == 1 and answers == 1  # asked again for real, and cached this time


def test_unknown_model_names_are_one_line(tmp_path: Path):
    corpus = write_corpus(tmp_path / "docs", docs=1)
    home = tmp_path / "home"
    known = "text-embedding-3-small,test-model"
    with OpenAICompatibleServer(ServerConfig(api_key=SECRET, models=known)) as srv:
        env = remote_env(srv, RAGCLI_LLM_MODEL="no-such-llm")
        bad_embedder = {**env, "RAGCLI_EMBEDDER": "openai:text-embedding-3-large"}
        ingest = run_home(home, "ingest", str(corpus), **bad_embedder)
        assert run_home(home, "ingest", str(corpus), **env).returncode == 0
        ask = run_home(home, "ask", "What does step 3 explain?", **env)
        answers = status_of(home, **env)["cache"]["answers"]
    print("unknown-models:", ingest.stderr.strip(), "|", ask.stderr.strip())
    assert ingest.returncode == 1, ingest.stderr
    line = _one_error_line(ingest.stderr)
    assert "404" in line and "text-embedding-3-large" in line, line
    assert ask.returncode == 1, ask.stdout + ask.stderr
    assert "404" in _one_error_line(ask.stderr)
    assert answers == 0
