"""The caches on a real redis-server (127.0.0.1, started by tests/conftest.py), in-process: the
same behaviour as on SQLite, native TTLs, the index version invalidating entries. Through real
ragcli processes (serve replicas, `cache stats|clear`, Redis missing or down):
tests/e2e/test_redis_caches.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragcli.caches.backends import Caches, open_caches
from ragcli.caches.redis_backend import RedisAnswerCache, RedisCaches, display_url
from ragcli.core.config import load_settings
from ragcli.core.db import transaction
from ragcli.embedders.local import LocalEmbedder
from ragcli.ingest.run import ingest
from ragcli.retrieval.events import DoneEvent, Query, Span
from ragcli.retrieval.pipeline import Pipeline
from tests.support.pipeline import ask_query

EMB = LocalEmbedder()
PAGER = "How do I rotate the on-call pager?"
# An hour: longer than any test here runs, however loaded the machine, so an entry just
# written is always fresh; expiry is tested by writing creation times into the past.
TTL = 3600


def _settings(home: Path, redis_url: str, **kw: Any):
    return load_settings({"data_dir": home, "redis_url": redis_url, **kw}, environ={})


@pytest.fixture(params=["sqlite", "redis"])
def caches(request: pytest.FixtureRequest, home: Path) -> Caches:
    """Both backends through the one chooser, with small limits."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    opened = open_caches(
        _settings(home, url, retrieval_cache_size=3, answer_cache_size=3, answer_ttl=TTL)
    )
    yield opened
    opened.close()


def _vec(*xs: float) -> bytes:
    v = np.asarray(xs, dtype=np.float32)
    return (v / np.linalg.norm(v)).tobytes()


def _put_answer(c: Caches, key: str, vector: bytes | None, version: int = 1) -> None:
    c.answer.put(
        key,
        scope="{}",
        question=key,
        vector=vector,
        answer=f"answer {key}",
        sources=[("c1", 0.9)],
        generator="extractive",
        index_version=version,
    )


def test_embedding_cache_round_trip(caches: Caches) -> None:
    caches.embedding.put_many("m", 2, [("a", b"\x01\x02"), ("b", b"\x03")])
    assert caches.embedding.get_many(["a", "b", "x"]) == {"a": b"\x01\x02", "b": b"\x03"}
    assert (caches.embedding.counters.hits, caches.embedding.counters.misses) == (2, 1)
    assert caches.embedding.count() == 2


def test_retrieval_cache_evicts_oldest_first(caches: Caches) -> None:
    for i in range(5):
        caches.retrieval.put(f"k{i}", [(f"c{i}", 0.5)], 1)
    assert caches.retrieval.get("k0") is None and caches.retrieval.get("k1") is None
    assert caches.retrieval.get("k4") == [("c4", 0.5)]


def test_answer_cache_exact_and_semantic_scoped_by_version(caches: Caches) -> None:
    _put_answer(caches, "q1", _vec(1, 0, 0))
    _put_answer(caches, "q2", _vec(0, 1, 0))
    hit = caches.answer.get("q1")
    assert hit is not None and hit.answer == "answer q1" and hit.sources == [("c1", 0.9)]
    near = caches.answer.nearest("{}", "extractive", 1, _vec(0.1, 1, 0), 0.9)
    assert near is not None and near.answer == "answer q2" and 0.9 < near.similarity < 1
    assert caches.answer.nearest("{}", "extractive", 2, _vec(0.1, 1, 0), 0.9) is None
    assert caches.answer.nearest("{}", "other", 1, _vec(0.1, 1, 0), 0.9) is None
    assert caches.answer.nearest("{}", "extractive", 1, _vec(0, 0, 1), 0.9) is None


def _backdate(c: Caches, key: str, seconds: float) -> None:
    """Make an answer `seconds` old, as each backend stores its creation time."""
    created = time.time() - seconds
    if isinstance(c.answer, RedisAnswerCache):
        assert c.answer.client.hset("ragcli:ans:" + key, "created", repr(created)) == 0
    else:
        with transaction(c.answer.conn) as conn:
            update = "UPDATE answers SET created = ? WHERE key = ?"
            assert conn.execute(update, (created, key)).rowcount == 1


def test_answers_expire_by_their_age(caches: Caches) -> None:
    """Both backends judge an answer's age when reading it (Redis also expires the key
    natively, tested below): within the TTL a hit, past it a miss, exactly and semantically."""
    _put_answer(caches, "q", _vec(1, 0, 0))
    assert caches.answer.get("q") is not None
    _backdate(caches, "q", TTL / 2)
    assert caches.answer.get("q") is not None
    assert caches.answer.nearest("{}", "extractive", 1, _vec(1, 0.1, 0), 0.9) is not None
    _backdate(caches, "q", TTL + 60)
    assert caches.answer.get("q") is None
    assert caches.answer.nearest("{}", "extractive", 1, _vec(1, 0.1, 0), 0.9) is None
    assert (caches.answer.counters.hits, caches.answer.counters.misses) == (2, 1)
    _put_answer(caches, "q", _vec(1, 0, 0))  # written again: fresh again
    assert caches.answer.get("q") is not None


def test_redis_answers_carry_native_ttls(redis_url: str, home: Path) -> None:
    redis = RedisCaches(redis_url)
    answers = redis.answer(max_entries=10, ttl=TTL)
    _put_answer(Caches(redis.embedding(), redis.retrieval(10), answers), "q", _vec(1, 0))
    ttl = redis.client.ttl("ragcli:ans:q")
    assert TTL - 600 < ttl <= TTL  # set on write (read back within ten minutes)
    forever = redis.answer(max_entries=10, ttl=0)
    _put_answer(Caches(redis.embedding(), redis.retrieval(10), forever), "p", None)
    assert redis.client.ttl("ragcli:ans:p") == -1  # exists, no expiry
    redis.close()


def _ask(pipeline: Pipeline, question: str) -> tuple[DoneEvent, dict[str, Span]]:
    return ask_query(pipeline, Query(question))


def _pipeline(home: Path, redis_url: str, **kw: Any) -> Pipeline:
    return Pipeline(_settings(home, redis_url, **kw), EMB)


def test_index_version_bump_invalidates_redis_entries(
    home: Path, corpus: Path, redis_url: str
) -> None:
    asyncio.run(ingest([corpus], _settings(home, redis_url), EMB))
    first, _ = _ask(_pipeline(home, redis_url), PAGER)
    again, spans = _ask(_pipeline(home, redis_url), PAGER)  # a fresh process, same Redis
    assert not first.cached and again.cached == "exact"
    assert spans["retrieve"].attrs["cache"] == "hit"
    assert not (home / "cache.db").exists()  # nothing went to SQLite
    pager = corpus / "ops" / "pager.md"
    pager.write_text(pager.read_text().replace("before 10:00 UTC on Monday", "after lunch"))
    asyncio.run(ingest([corpus], _settings(home, redis_url), EMB))
    after, spans = _ask(_pipeline(home, redis_url), PAGER)
    assert spans["retrieve"].attrs["cache"] == "miss" and not after.cached
    assert "after lunch" in after.answer and "10:00 UTC" in first.answer
    # semantic lookups are scoped by index version too: the old answer is not offered
    semantic = _pipeline(home, redis_url, semantic_threshold=0.5, no_cache="retrieval")
    near, _ = _ask(semantic, "How do I rotate the on-call pager quickly?")
    assert "10:00 UTC" not in near.answer


def test_display_url_hides_the_password() -> None:
    assert display_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert display_url("redis://user:s3cret@host/1") == "redis://user:***@host/1"
    assert display_url("redis://host:6379") == "redis://host:6379"
