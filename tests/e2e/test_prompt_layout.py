"""The prompt layout through real ragcli processes and a real OpenAI-compatible server: the
layout flag and cached prompt tokens from the provider's usage block, and --max-context-tokens
bounding the prompt that reaches the LLM. In-process: tests/unit/retrieval/test_prompt_layout.py."""

from __future__ import annotations

import json
from pathlib import Path

from ragcli.providers.tokens import encoding
from tests.support.cli import Run, run_ragcli
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig


def _ask_json(ragcli: Run, *args: str, **env: str) -> dict:
    proc = ragcli("ask", *args, "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_layout_flag_and_cached_tokens_from_the_provider(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    cfg = ServerConfig(reply="Open PageRelay [2].", prefix_cache_block=16)
    with OpenAICompatibleServer(cfg) as srv:
        env = {"OPENAI_BASE_URL": srv.base_url, "RAGCLI_LLM_MODEL": "m"}
        first = _ask_json(ragcli, "How do I rotate the pager?", "-k", "3", **env)
        nums = [s["number"] for s in first["sources"]]
        assert nums == [1, 2, 3]
        paths = [s["source"] for s in first["sources"]]
        assert paths == sorted(paths)  # prefix layout: sources in document order
        body = srv.counters.bodies[-1]
        assert body["stream_options"] == {"include_usage": True}
        # a follow-up over the same sources: the whole prefix is a cache hit on the server
        prof = ragcli(
            "profile", "How do I rotate the pager quickly?", "-k", "3", "--runs", "1",
            "--warmup", "0", "--no-cache", "answer,retrieval", "--json", **env,
        )  # fmt: skip
        assert prof.returncode == 0, prof.stderr
        warm = json.loads(prof.stdout)["warm"]
        prefill = warm["prefill"]
        assert prefill["prompt_tokens_reported_by"] == "provider"
        stream = {s["name"]: s for s in warm["last"]}["llm.stream"]["attrs"]
        assert stream["cached_tokens"] >= stream["prompt_tokens"] - 40
        assert prefill["cached_tokens"]["p50"] == stream["cached_tokens"]
        # the ablation: ranked layout numbers best-first and is a separate answer-cache entry
        ranked_ans = _ask_json(
            ragcli, "How do I rotate the pager?", "-k", "3", "--prompt-layout", "ranked", **env
        )
        assert ranked_ans["cached"] is False
        assert [s["rank"] for s in ranked_ans["sources"]] == [1, 2, 3]
        assert {s["chunk_id"] for s in ranked_ans["sources"]} == {
            s["chunk_id"] for s in first["sources"]
        }
    bad = ragcli("ask", "q", "--prompt-layout", "sideways")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown prompt_layout 'sideways'" in bad.stderr


def test_max_context_tokens_bounds_the_prompt_sent_to_the_llm(sample_home: Path) -> None:
    """What crosses the wire: the system and user messages of each chat request, counted with
    the model's tokenizer (cl100k_base for gpt-4, ragcli's own copy), stay within the budget;
    a larger budget sends more sources, up to all k."""
    cl100k = encoding("cl100k_base")
    question = "How do I rotate the on-call pager?"
    sent: dict[int, tuple[int, int]] = {}  # budget -> (prompt tokens, sources in the prompt)
    with OpenAICompatibleServer(ServerConfig(reply="Open PageRelay [1].")) as srv:
        env = {"OPENAI_BASE_URL": srv.base_url, "RAGCLI_LLM_MODEL": "gpt-4"}
        for budget in (200, 700, 4000):
            proc = run_ragcli(
                sample_home, "ask", question, "-k", "8", "--max-context-tokens", str(budget),
                "--no-cache", "all", "--json", **env,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            messages = srv.counters.bodies[-1]["messages"]
            assert [m["role"] for m in messages] == ["system", "user"]
            tokens = sum(len(cl100k.encode(m["content"])) for m in messages)
            blocks = messages[1]["content"].count("<source id=")
            assert blocks == len(json.loads(proc.stdout)["sources"])
            sent[budget] = (tokens, blocks)
        assert srv.counters.chat == 3
    assert all(tokens <= budget for budget, (tokens, _) in sent.items()), sent
    sources = [blocks for _, blocks in sent.values()]
    assert sources == sorted(sources) and sources[0] == 1 and sources[-1] == 8, sent
    assert sent[200][0] > 150  # the best source, cut to fit, fills the small budget
