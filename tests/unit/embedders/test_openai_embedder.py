"""The OpenAI embedder against a real OpenAI-compatible server on 127.0.0.1, through the real
`openai` client, real SQLite and real Chroma: limits, 429 storms, faults, pacing. Through
`ragcli` processes (CLI, kills, import cost): tests/e2e/test_embedders.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli.caches.sqlite import SqliteEmbeddingCache
from ragcli.core.errors import ProviderError
from ragcli.embedders.cached import VectorFetcher
from ragcli.embedders.openai_embedder import OpenAIEmbedder
from ragcli.ingest.chunking import chunk_text
from ragcli.providers.batching import (
    API_MAX_INPUT_TOKENS,
    API_MAX_INPUTS,
    API_MAX_REQUEST_TOKENS,
    plan_batches,
)
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig, fake_vector

MODEL = "text-embedding-3-small"
DIMS = 32
KEY = "sk-test-5f3a9c1e"


def embedder(srv: OpenAICompatibleServer, **kw) -> OpenAIEmbedder:
    kw.setdefault("dimensions", DIMS)
    kw.setdefault("seed", 7)
    return OpenAIEmbedder(MODEL, base_url=srv.base_url, api_key=KEY, **kw)


def expected(texts: list[str]) -> np.ndarray:
    return np.array([fake_vector(t, DIMS) for t in texts], dtype=np.float32)


def texts_of(n: int, words: int = 12, tag: str = "t") -> list[str]:
    return [f"{tag}{i} " + " ".join(f"w{(i * 7 + j) % 97}" for j in range(words)) for i in range(n)]


# -- planning ---------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tokens=st.lists(st.integers(1, API_MAX_INPUT_TOKENS), min_size=0, max_size=3000),
    concurrency=st.integers(1, 32),
    batch_size=st.integers(1, 2048),
    tpm=st.one_of(st.just(0), st.integers(1, 2_000_000)),
)
def test_plan_covers_every_input_once_and_no_request_exceeds_a_limit(
    tokens: list[int], concurrency: int, batch_size: int, tpm: int
) -> None:
    batches = plan_batches(tokens, concurrency, batch_size, tpm)
    assert [i for b in batches for i in b] == list(range(len(tokens)))  # once each, in order
    for b in batches:
        weight = sum(tokens[i] for i in b)
        assert b and len(b) <= min(batch_size, API_MAX_INPUTS)
        assert weight <= API_MAX_REQUEST_TOKENS
        if tpm and len(b) > 1:
            assert weight <= tpm  # a single input larger than the TPM goes alone
    if len(set(tokens)) == 1 and len(tokens) >= concurrency:
        assert len(batches) >= concurrency  # even work fills every worker


def test_plan_spreads_work_over_full_waves() -> None:
    batches = plan_batches([200] * 5000, concurrency=8, batch_size=512)
    assert len(batches) == 16  # 10 needed by size, rounded up to two full waves of 8
    assert max(len(b) for b in batches) - min(len(b) for b in batches) <= 2


# -- token spans for chunking -----------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1, max_size=400), size=st.integers(2, 30))
def test_token_spans_chunk_any_text(text: str, size: int) -> None:
    e = OpenAIEmbedder(MODEL)
    spans = e.token_spans(text)
    assert len(spans) == e.count_tokens(text)
    for (s0, e0), (s1, _) in zip(spans, spans[1:], strict=False):
        assert 0 <= s0 <= e0 <= len(text) and s0 <= s1
    for chunk in chunk_text(text, spans, size, size // 2):
        assert text[chunk.start : chunk.end] == chunk.text


def test_token_spans_skip_the_whitespace_tokens_carry() -> None:
    e = OpenAIEmbedder(MODEL)
    text = "Rotate the pager.\n\nThen call Ana."
    pieces = [text[s:t] for s, t in e.token_spans(text)]
    assert pieces[:4] == ["Rotate", "the", "pager", "."]  # ".\n\n" is one token, trimmed
    spans = e.token_spans("pager\n\nThen")  # here "\n\n" is a token of its own
    assert spans == [(0, 5), (7, 7), (7, 11)]  # an empty span where the whitespace ends
    chunks = chunk_text(text, e.token_spans(text), 6, 0)
    assert chunks[0].text == "Rotate the pager."  # cut at the paragraph, not mid-sentence


# -- requests against the server ---------------------------------------------------------------
def test_requests_stay_within_every_api_limit() -> None:
    short = texts_of(2300, words=3, tag="s")  # more inputs than one request may carry
    long = [f"L{i} " + "word " * 6000 for i in range(60)]  # 360k tokens: over one request
    huge = "H " + "lorem " * 9000  # over the per-input limit: truncated, reported
    texts = short + long + [huge]
    with OpenAICompatibleServer(ServerConfig(record_bodies=False)) as srv:
        e = embedder(srv, concurrency=1, batch_size=2048)
        vecs = asyncio.run(e.aembed(texts))
        c = srv.counters
    assert c.rejected == 0 and c.throttled == 0
    assert c.max_inputs_seen <= API_MAX_INPUTS
    assert c.max_request_tokens_seen <= API_MAX_REQUEST_TOKENS
    assert c.max_input_tokens_seen <= API_MAX_INPUT_TOKENS
    assert c.max_inputs_seen > 1000 and c.max_request_tokens_seen > 150_000  # packed, not timid
    assert c.inputs == len(texts) and e.stats.truncated == 1 and e.truncated == 1
    assert np.allclose(vecs[:-1], expected(texts[:-1]), atol=1e-6)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_429_storm_adapts_concurrency_and_loses_nothing() -> None:
    texts = texts_of(240)
    cfg = ServerConfig(max_in_flight=3, throttle_rate=0.15, retry_after_s=0.05, latency_s=0.02)
    with OpenAICompatibleServer(cfg) as srv:
        e = embedder(srv, concurrency=8, batch_size=5)
        vecs = asyncio.run(e.aembed(texts))
        assert srv.counters.throttled > 0 and e.stats.throttled == srv.counters.throttled
        assert e.stats.lowest_limit <= 3  # halved below the server's in-flight limit
        assert np.allclose(vecs, expected(texts), atol=1e-6)
        assert set(srv.counters.texts) == set(texts)
        low = e.limit.limit
        srv.reset(max_in_flight=0, throttle_rate=0.0)  # the storm is over
        asyncio.run(e.aembed(texts_of(240, tag="calm")))
        assert srv.counters.throttled == 0
    assert e.limit.limit > low  # and the limit crept back up


def test_retry_after_is_honoured_by_every_worker() -> None:
    cfg = ServerConfig(max_in_flight=1, retry_after_s=0.6, latency_s=0.05)
    with OpenAICompatibleServer(cfg) as srv:
        e = embedder(srv, concurrency=2, batch_size=1)
        started = time.monotonic()
        asyncio.run(e.aembed(texts_of(4)))
        elapsed = time.monotonic() - started
        assert srv.counters.throttled == 1  # one 429, then the limit is 1: no second one
    assert elapsed >= 0.6


def test_transient_errors_and_dropped_connections_are_retried() -> None:
    texts = texts_of(120)
    cfg = ServerConfig(error_rate=0.2, drop_rate=0.1, seed=3)
    with OpenAICompatibleServer(cfg) as srv:
        e = embedder(srv, concurrency=4, batch_size=4)
        vecs = asyncio.run(e.aembed(texts))
        assert srv.counters.errors > 0 and srv.counters.dropped > 0
    assert e.stats.errors == srv.counters.errors + srv.counters.dropped
    assert e.stats.retries >= e.stats.errors
    assert np.allclose(vecs, expected(texts), atol=1e-6)


def test_client_paces_requests_and_tokens() -> None:
    # The server allows 600 RPM in bursts of 0.2 s, then 60k TPM in bursts of 1 s (1,000
    # tokens): unpaced, either run would meet 429s.
    cfg = ServerConfig(rpm=600, rate_burst_s=0.2)
    with OpenAICompatibleServer(cfg) as srv:
        e = embedder(srv, concurrency=4, batch_size=1, rpm=600)
        started = time.monotonic()
        asyncio.run(e.aembed(texts_of(8)))
        by_requests = time.monotonic() - started
        assert srv.counters.throttled == 0
        srv.reset(rpm=0, tpm=60_000, rate_burst_s=1.0)
        e = embedder(srv, concurrency=4, batch_size=4, tpm=60_000)
        texts = texts_of(16, words=60)  # ~16 × 100 tokens at 1,000 tokens/s
        started = time.monotonic()
        asyncio.run(e.aembed(texts))
        by_tokens = time.monotonic() - started
        assert srv.counters.throttled == 0
        tokens = srv.counters.tokens
    assert by_requests >= 0.65  # 8 requests, one per 0.1 s
    last_batch = tokens / 4
    assert by_tokens >= (tokens - last_batch) / 1000 * 0.9


def test_fatal_error_keeps_finished_batches_and_a_rerun_embeds_only_the_rest(
    tmp_path: Path,
) -> None:
    texts = texts_of(60)
    cache = SqliteEmbeddingCache(tmp_path / "cache.sqlite")
    try:
        with OpenAICompatibleServer(ServerConfig(error_rate=0.4, seed=11)) as srv:
            e = embedder(srv, concurrency=3, batch_size=3, max_retries=0)
            fetch = VectorFetcher(e, cache, None)
            with pytest.raises(ProviderError) as info:
                asyncio.run(fetch.vectors(texts))
            message = str(info.value)
            assert "\n" not in message and KEY not in message
            assert "run the same command again to resume" in message
            kept = cache.count()
            assert 0 < kept < len(texts) and kept == fetch.embedded
            srv.reset(error_rate=0.0)
            again = VectorFetcher(embedder(srv), cache, None)
            vecs = asyncio.run(again.vectors(texts))
            assert srv.counters.inputs == len(texts) - kept  # exactly what was missing
            assert again.hits == kept
        assert np.allclose(vecs, expected(texts), atol=1e-6)
    finally:
        cache.close()
