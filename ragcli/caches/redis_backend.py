"""The three caches on Redis (`--redis-url`), shared by every replica and host.

The Protocols of caches.protocols, as the SQLite classes (the default), with Redis doing what
SQLite did by hand: answers expire with native TTLs, and each cache keeps a sorted set of its
keys by creation time, for first-in-first-out eviction and `cache stats`. Keys are the same
digests as on SQLite, so the index version invalidates entries the same way: a retrieval key
names the index and its version, and semantic answer lookups are grouped by index version.
One Redis database serves one corpus (its replicas); give another corpus another database
(`redis://HOST:6379/1`). `redis` is imported only here, on first use.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from ragcli.caches.keys import digest_key
from ragcli.caches.protocols import CachedAnswer, Counters
from ragcli.core.errors import ConfigError, NotReadyError, RagcliError

if TYPE_CHECKING:
    import redis
    from redis.typing import EncodableT, FieldT

T = TypeVar("T")
PREFIX = "ragcli:"
_KINDS = {"embedding": "emb", "retrieval": "ret", "answer": "ans"}
_GROUP = PREFIX + "ansg:"  # semantic lookup groups: answer keys by scope, generator, version


class CacheBackendError(RagcliError):
    """Redis cannot be reached, or went away mid-operation."""


def _entries(kind: str) -> str:
    return f"{PREFIX}{_KINDS[kind]}:"


def _created(kind: str) -> str:
    """The sorted set of a cache's keys, scored by creation time."""
    return f"{PREFIX}created:{_KINDS[kind]}"


def display_url(url: str) -> str:
    """The URL without its secrets (the password, a `password` or `ssl_password` query option),
    for messages and reports."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not even a URL (a stray bracket): show nothing of it
        return url.split("://", 1)[0] + "://(unreadable URL)"
    netloc = parts.netloc
    if password is not None:
        user = f"{parts.username}:***@" if parts.username else ":***@"
        netloc = user + netloc.rsplit("@", 1)[1]
    options = [
        f"{o.split('=', 1)[0]}=***" if "password" in o.split("=", 1)[0].lower() else o
        for o in parts.query.split("&")
    ]
    return urlunsplit(parts._replace(netloc=netloc, query="&".join(options)))


def scrub(text: str, url: str) -> str:
    """`text` with every secret of `url` (as written and percent-decoded) masked: a last
    guard, for messages of libraries that might echo what they were given."""
    try:
        parts = urlsplit(url)
        secrets = [parts.password or "", unquote(parts.password or "")]
        secrets += [v for k, v in parse_qsl(parts.query) if "password" in k.lower()]
    except ValueError:
        return text
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 3:  # shorter is no secret, and masking it would mangle the text
            text = text.replace(secret, "***")
    return text


_FILE_OPTIONS = ("ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile")


def _check_files(url: str) -> None:
    """The files a `rediss://` URL names (CA, client certificate and key) exist."""
    for name, value in parse_qsl(urlsplit(url).query):
        if name in _FILE_OPTIONS and not os.path.exists(value):
            raise ConfigError(f"redis_url {display_url(url)}: {name} {value}: no such file")


def connect(url: str) -> redis.Redis:
    """A client for `url`, checked with one PING; one clear line if it cannot be had. A
    `rediss://` server's certificate is checked, its host name too, unless the URL says
    otherwise (`ssl_cert_reqs=none`, `ssl_check_hostname=false`)."""
    try:
        import redis
    except ImportError:
        raise NotReadyError(
            "--redis-url needs the redis package: pip install 'ragcli[redis]' "
            "(or pip install 'redis>=5')"
        ) from None
    tls: dict[str, Any] = {"ssl_check_hostname": True} if url.startswith("rediss://") else {}
    try:
        _check_files(url)
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, **tls)
        client.ping()
    except TypeError as exc:  # an option redis-py does not know, passed on from the query
        name = re.search(r"argument '(\w+)'", str(exc))
        option = repr(name.group(1)) if name else "in it"
        raise ConfigError(
            f"redis_url {display_url(url)}: unknown option {option} (the query takes redis-py's "
            "connection options: ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs…)"
        ) from None
    except (redis.exceptions.RedisError, ValueError, OSError) as exc:
        raise CacheBackendError(explain(exc, url)) from None
    return client


def explain(exc: BaseException, url: str) -> str:
    """One line for a failure to use the Redis of `url`: what went wrong and what to do,
    never a secret of the URL."""
    from redis.exceptions import (
        AuthenticationError,
        ConnectionError,
        NoPermissionError,
        TimeoutError,
    )

    shown, text = display_url(url), str(exc).strip().rstrip(".")
    if isinstance(exc, AuthenticationError):
        if not _has_password(url):
            line = (
                f"Redis at {shown} wants a password (NOAUTH): give it in the URL, "
                "redis://:PASSWORD@HOST:PORT/DB, or redis://USER:PASSWORD@HOST:PORT/DB"
            )
        else:
            what = "user name or password" if urlsplit(url).username else "password"
            line = f"Redis at {shown} refused the {what} ({text})"
    elif isinstance(exc, NoPermissionError):
        line = (
            f"Redis at {shown} refused a command to this user (NOPERM {text}): "
            "give it the ACL of docs/deployment.md"
        )
    elif "CERTIFICATE_VERIFY_FAILED" in text:
        found = re.search(r"certificate verify failed: ([^(]+)", text)
        reason = found.group(1).strip() if found else "certificate verify failed"
        line = (
            f"cannot reach Redis at {shown}: its TLS certificate is not trusted ({reason}): "
            "name the CA that signed it, rediss://HOST:PORT/DB?ssl_ca_certs=/path/ca.pem"
        )
    elif isinstance(exc, (ConnectionError, TimeoutError, OSError, ValueError)):
        line = f"cannot reach Redis at {shown}: {text}{_tls_hint(exc, url)}"
    else:
        line = f"Redis at {shown}: {text}"
    return scrub(" ".join(line.split()), url)


def _has_password(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.password is not None or "password=" in parts.query
    except ValueError:
        return False


def _tls_hint(exc: BaseException, url: str) -> str:
    """A plain client at a TLS port is hung up on; a TLS client at a plain port waits."""
    from redis.exceptions import TimeoutError

    text = str(exc)  # (a ConnectionError: "Error while reading …" or "Connection closed …")
    if url.startswith("redis://") and ("reset by peer" in text or "closed by server" in text):
        return " (if the server speaks TLS, use rediss://)"
    if url.startswith("rediss://") and (isinstance(exc, TimeoutError) or "WRONG_VERSION" in text):
        return " (if the server does not speak TLS, use redis://)"
    return ""


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Redis going away mid-operation, or refusing a command: one clear line, never a
    traceback."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> T:
        import redis

        try:
            return method(self, *args, **kwargs)
        except redis.exceptions.RedisError as exc:
            raise CacheBackendError(explain(exc, self.url)) from None

    return call


class _Base:
    def __init__(self, client: redis.Redis, url: str) -> None:
        self.client, self.url = client, url
        self.counters = Counters()

    def _evict(self, kind: str, keep: int) -> None:
        """Drop the oldest entries beyond `keep` (first in, first out: reads never write)."""
        excess = self.client.zcard(_created(kind)) - keep
        if excess > 0:
            popped = cast("list[tuple[bytes, float]]", self.client.zpopmin(_created(kind), excess))
            if popped:
                self.client.delete(*[_entries(kind).encode() + k for k, _ in popped])


class RedisEmbeddingCache(_Base):
    """Vectors (float32 bytes) by `embedding_key`."""

    def close(self) -> None:
        self.client.close()

    @_guarded
    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 1000):
            part = unique[i : i + 1000]
            values = cast(
                "list[bytes | None]", self.client.mget([_entries("embedding") + k for k in part])
            )
            found.update((k, v) for k, v in zip(part, values, strict=True) if v is not None)
        self.counters.hits += len(found)
        self.counters.misses += len(unique) - len(found)
        return found

    @_guarded
    def put_many(self, model_id: str, dimensions: int, items: Iterable[tuple[str, bytes]]) -> None:
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        stamps: dict[str, float] = {}
        for key, vector in items:
            pipe.set(_entries("embedding") + key, vector)
            stamps[key] = now
        if stamps:
            pipe.zadd(_created("embedding"), stamps)
            pipe.execute()

    @_guarded
    def count(self) -> int:
        return int(self.client.zcard(_created("embedding")))


class RedisRetrievalCache(_Base):
    """(query, k, scope, index identity) → ranked (chunk id, score) pairs."""

    def __init__(self, client: redis.Redis, url: str, max_entries: int) -> None:
        super().__init__(client, url)
        self.max_entries = max_entries

    @_guarded
    def get(self, key: str) -> list[tuple[str, float]] | None:
        raw = self.client.get(_entries("retrieval") + key)
        if raw is None:
            self.counters.misses += 1
            return None
        self.counters.hits += 1
        return [(cid, score) for cid, score in json.loads(raw)]

    @_guarded
    def put(self, key: str, hits: Sequence[tuple[str, float]], index_version: int) -> None:
        value = json.dumps([[cid, round(s, 6)] for cid, s in hits])
        pipe = self.client.pipeline(transaction=False)
        pipe.set(_entries("retrieval") + key, value)
        pipe.zadd(_created("retrieval"), {key: time.time()})
        pipe.execute()
        self._evict("retrieval", self.max_entries)


class RedisAnswerCache(_Base):
    """Finished answers in hashes that expire after `ttl` seconds (0: never). Semantic lookup
    reads one group: the answers of the same scope, generator and index version."""

    _FIELDS = ("answer", "sources", "created")
    enabled = True

    def __init__(self, client: redis.Redis, url: str, max_entries: int, ttl: float) -> None:
        super().__init__(client, url)
        self.max_entries = max_entries
        self.ttl = ttl
        self.semantic_hits = 0

    def _fresh(self, created: float) -> bool:
        return self.ttl <= 0 or time.time() - created < self.ttl

    @staticmethod
    def _group(scope: str, generator: str, index_version: int) -> str:
        return _GROUP + digest_key(scope, generator, index_version)

    @staticmethod
    def _decode(
        answer: bytes, sources: bytes, created: bytes
    ) -> tuple[str, list[tuple[str, float]], float]:
        pairs = [(cid, score) for cid, score in json.loads(sources)]
        return answer.decode(), pairs, float(created)

    @_guarded
    def get(self, key: str) -> CachedAnswer | None:
        answer, sources, created = cast(
            "list[bytes]", self.client.hmget(_entries("answer") + key, self._FIELDS)
        )
        if answer is None or not self._fresh(float(created)):
            self.counters.misses += 1
            return None
        self.counters.hits += 1
        return CachedAnswer(*self._decode(answer, sources, created))

    @_guarded
    def nearest(
        self, scope: str, generator: str, index_version: int, vector: bytes, threshold: float
    ) -> CachedAnswer | None:
        import numpy as np

        group = cast(
            "set[bytes]", self.client.smembers(self._group(scope, generator, index_version))
        )
        if not group:
            return None
        pipe = self.client.pipeline(transaction=False)
        for k in sorted(group):
            pipe.hmget(_entries("answer").encode() + k, (*self._FIELDS, "vector"))
        rows: list[list[bytes]] = [
            r for r in pipe.execute() if r[0] is not None and r[3] and self._fresh(float(r[2]))
        ]
        if not rows:
            return None
        q = np.frombuffer(vector, dtype=np.float32)
        sims = np.stack([np.frombuffer(r[3], dtype=np.float32) for r in rows]) @ q
        best = int(np.argmax(sims))
        if sims[best] < threshold:
            return None
        self.semantic_hits += 1
        return CachedAnswer(*self._decode(*rows[best][:3]), float(sims[best]))

    @_guarded
    def put(
        self,
        key: str,
        *,
        scope: str,
        question: str,
        vector: bytes | None,
        answer: str,
        sources: Sequence[tuple[str, float]],
        generator: str,
        index_version: int,
    ) -> None:
        now = time.time()
        name = _entries("answer") + key
        fields: dict[FieldT, EncodableT] = {
            "answer": answer,
            "sources": json.dumps([[cid, round(s, 6)] for cid, s in sources]),
            "created": repr(now),
            "question": question,
            "scope": scope,
            "generator": generator,
            "index_version": index_version,
        }
        if vector is not None:
            fields["vector"] = vector
        ttl = int(self.ttl) if self.ttl > 0 else None
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(name)
        pipe.hset(name, mapping=fields)
        if ttl:
            pipe.expire(name, ttl)
        pipe.zadd(_created("answer"), {key: now})
        if ttl:  # entries past their TTL leave the eviction order too
            pipe.zremrangebyscore(_created("answer"), "-inf", now - ttl)
        if vector is not None:
            group = self._group(scope, generator, index_version)
            pipe.sadd(group, key)
            if ttl:
                pipe.expire(group, ttl)
        pipe.execute()
        self._evict("answer", self.max_entries)


@_guarded
def _stats(self: Any) -> dict[str, dict[str, int | float | None]]:
    out: dict[str, dict[str, int | float | None]] = {}
    for name in _KINDS:
        count = int(self.client.zcard(_created(name)))
        first = self.client.zrange(_created(name), 0, 0, withscores=True)
        out[name] = {"entries": count, "oldest": first[0][1] if first else None}
    return out


def _unlink_matching(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching `pattern`, in batches; returns how many went."""
    count, batch = 0, []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            count += client.unlink(*batch)
            batch = []
    return count + (client.unlink(*batch) if batch else 0)


@_guarded
def _clear(self: Any, names: Iterable[str]) -> dict[str, int]:
    removed: dict[str, int] = {}
    for name in names:
        removed[name] = _unlink_matching(self.client, _entries(name) + "*")
        if name == "answer":
            _unlink_matching(self.client, _GROUP + "*")
        self.client.unlink(_created(name))
    return removed


class RedisCaches:
    """One Redis connection serving all three caches, plus `cache stats|clear`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = connect(url)

    def embedding(self) -> RedisEmbeddingCache:
        return RedisEmbeddingCache(self.client, self.url)

    def retrieval(self, max_entries: int) -> RedisRetrievalCache:
        return RedisRetrievalCache(self.client, self.url, max_entries)

    def answer(self, max_entries: int, ttl: float) -> RedisAnswerCache:
        return RedisAnswerCache(self.client, self.url, max_entries, ttl)

    def stats(self) -> dict[str, dict[str, int | float | None]]:
        """Entries and oldest creation time per cache, as `caches.cache_stats` has them."""
        return _stats(self)

    def clear(self, names: Iterable[str]) -> dict[str, int]:
        """Delete every entry of the named caches; returns how many each had."""
        return _clear(self, names)

    def close(self) -> None:
        self.client.close()
