"""Embeddings from OpenAI or any OpenAI-compatible server: batched, concurrent, paced, and
robust to rate limits — a 429 slows an ingest down, it never aborts it or loses a chunk.

One set of knobs, one layer of control (all in ragcli settings; see README "Remote
embeddings"):

* ``embed_batch_size`` — most inputs in one request (default 512; never over the API's 2048).
  Requests are also planned by tokens (tiktoken, offline): never over 300,000 tokens per
  request, nor over ``embed_tpm``; inputs over 8,191 tokens are truncated to 8,191 and counted
  in ``stats.truncated`` and the ingest report (a warning is logged). Within those caps the
  work is cut into whole waves — ``ceil(batches needed / concurrency) * concurrency`` equal
  batches (equal in inputs when the input cap binds, else in tokens) — so that every worker
  has work and the last wave is no straggler.
* ``embed_concurrency`` — most requests in flight (default 8). It is the *ceiling* of an
  adaptive limit (AIMD, as TCP does): a 429 halves the limit (once per cohort: requests that
  were already in flight when it was cut do not cut it again) and remembers the level that
  failed; every success adds 1/limit, so the limit creeps back up by one per round of
  successes, and 8 times slower for the last step to the level that failed (each probe of a
  hard limit costs a 429, so it is made rarely). Once past that level, the ceiling is forgotten.
* ``embed_rpm`` / ``embed_tpm`` — client-side pacing (0: off). Requests are scheduled on a
  virtual clock (GCRA with no burst): one request per 60/rpm seconds, and a request of k
  tokens pushes the next one k*60/tpm seconds later. Providers meter tokens, so both matter.
* ``embed_max_retries`` — per batch, for transient failures (5xx, 408/409, timeouts, dropped
  connections), with jittered exponential backoff (0.5 s doubling to 30 s, times a random 0.5–1).
  A 429 is waited out, not counted, as long as the run makes progress: a batch gives up on
  429s only after ``embed_max_retries`` of them in a row with no successful request anywhere
  in between (the provider refuses everything). ``insufficient_quota`` 429s fail at once.
* ``Retry-After`` (and OpenAI's ``retry-after-ms``) is honoured by every worker, not only the
  one that got it: the pacer holds all new requests until then (plus up to 10 % jitter, so the
  workers do not return in lock-step).

The ``openai`` client's own retries are switched off (``max_retries=0``): they would retry
inside a concurrency slot, invisible to the adaptive limit and the pacer, and multiply with
ragcli's retries into hidden layers (3 × 7 attempts). ragcli owns every retry, so a 429 is
seen once, halves the limit, and pauses every worker. One ``AsyncOpenAI`` client per process
(per event loop) keeps its connections alive between requests.

Failure never loses work: each finished batch is yielded at once (``VectorFetcher`` commits
it to the SQLite cache), and after a fatal error the batches already in flight are still
awaited and yielded before the one-line ``ProviderError`` (never containing the API key) is
raised. A re-run embeds exactly what is missing.

The parts shared with other OpenAI-compatible users live in ragcli/providers/: the batch
planner (batching.py), the adaptive limit (flow.py), the pacer and backoff (pacer.py), the
client factory (openai_client.py), the error mapping (errors.py) and the endpoints (endpoints.py).
This module is the embedder that drives them.

Importing this module is cheap: ``openai``, ``numpy`` and ``tiktoken`` load on first use.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.core.endpoint_spec import parse_endpoints
from ragcli.core.errors import ConfigError, ProviderError
from ragcli.providers.batching import (
    API_MAX_INPUT_TOKENS,
    API_MAX_INPUTS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    plan_batches,
)
from ragcli.providers.endpoints import Endpoint, EndpointPool
from ragcli.providers.errors import EndpointError, classify, describe
from ragcli.providers.flow import AdaptiveLimit
from ragcli.providers.openai_client import ClientSet, ClientSpec
from ragcli.providers.pacer import Pacer, backoff_delay

if TYPE_CHECKING:
    import numpy as np

    from ragcli.core.config import Settings

log = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 6
REQUEST_TIMEOUT_S = 120.0  # a 300k-token request can take a while on a busy API
CONNECT_TIMEOUT_S = 10.0

# Output size of the models tiktoken and OpenAI document; others need `embed_dimensions`.
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
NO_DIMENSIONS_PARAM = frozenset({"text-embedding-ada-002"})


# -- the embedder ----------------------------------------------------------------------------
@dataclass
class EmbedStats:
    requests: int = 0  # HTTP attempts
    batches: int = 0  # batches embedded
    inputs: int = 0
    tokens: int = 0  # as counted by tiktoken (after truncation)
    retries: int = 0  # attempts after the first, any reason
    throttled: int = 0  # 429 answers
    errors: int = 0  # 5xx, 408/409, timeouts, dropped connections
    truncated: int = 0  # inputs cut to 8,191 tokens
    lowest_limit: int = 0  # lowest adaptive concurrency reached
    failovers: int = 0  # retries moved at once to another endpoint (`embed_endpoints`)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Run:
    """One `embed_batches` call: which workers have a request on the wire, and whether a
    fatal error means no more attempts."""

    busy: set[int] = field(default_factory=set)
    stopping: bool = False


class _Retry(Exception):
    def __init__(self, kind: str, retry_after: float | None, what: str) -> None:
        self.kind, self.retry_after, self.what = kind, retry_after, what


class OpenAIEmbedder:
    """`openai:MODEL` — see the module docstring for batching, concurrency and retries."""

    max_tokens = API_MAX_INPUT_TOKENS
    in_process = False  # every call is a request to the API

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "",
        api_key: str = "",
        dimensions: int = 0,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        rpm: int = 0,
        tpm: int = 0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout_s: float = REQUEST_TIMEOUT_S,
        seed: int | None = None,
        endpoints: Sequence[str] = (),  # several base URLs used as one (else `base_url`)
    ) -> None:
        if not model:
            raise ConfigError(
                "embedder 'openai:' needs a model name, e.g. openai:text-embedding-3-small"
            )
        native = KNOWN_DIMENSIONS.get(model)
        if dimensions <= 0 and native is None:
            raise ConfigError(
                f"unknown embedding model {model!r}: set embed_dimensions "
                "(RAGCLI_EMBED_DIMENSIONS) to its vector size"
            )
        if model in NO_DIMENSIONS_PARAM and dimensions > 0 and dimensions != native:
            raise ConfigError(f"{model} does not support embed_dimensions (it returns {native})")
        self.model_id = model
        self.dimensions = dimensions if dimensions > 0 else int(native or 0)
        # `dimensions` goes to the API only for text-embedding-3 models (the ones that take
        # it); for a model ragcli does not know, embed_dimensions declares its output size.
        self._send_dimensions = dimensions > 0 and model.startswith("text-embedding-3")
        # Several endpoints: each batch goes to the best one (fewest in flight, then fastest),
        # and a retryable failure moves it to another at once (ragcli/providers/endpoints.py). The
        # adaptive limit and the pacer stay shared: they bound what ragcli sends in all.
        self.pool = EndpointPool(list(endpoints) or [base_url])
        self.base_url = self.pool.endpoints[0].url
        self._api_key = api_key
        self.concurrency = max(1, concurrency)
        self.batch_size = max(1, min(batch_size, API_MAX_INPUTS))
        self.max_retries = max(0, max_retries)
        self.timeout_s = timeout_s
        self.limit = AdaptiveLimit(self.concurrency)
        self.pacer = Pacer(rpm, tpm, seed)
        self.stats = EmbedStats(lowest_limit=self.concurrency)
        self._rng = random.Random(seed)
        self._clients = ClientSet(
            ClientSpec(
                api_key,
                timeout_s,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                max_retries=0,  # ragcli owns retries: see the module docstring
                missing_key="no API key for the embedding provider: set OPENAI_API_KEY "
                "(or OPENAI_BASE_URL for a server that needs none)",
            ),
            per_loop=True,  # a client's connection pool belongs to the loop that opened it
        )
        self._encoding: Any = None
        self._successes = 0  # successful requests, to tell a 429 storm from a dead provider

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        return cls(
            settings.embedder.split(":", 1)[1],
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            endpoints=parse_endpoints(settings.embed_endpoints, settings.openai_base_url),
            dimensions=settings.embed_dimensions,
            concurrency=settings.embed_concurrency,
            batch_size=settings.embed_batch_size,
            rpm=settings.embed_rpm,
            tpm=settings.embed_tpm,
            max_retries=settings.embed_max_retries,
            timeout_s=settings.provider_timeout,
        )

    @property
    def cache_id(self) -> str:
        return f"openai:{self.model_id}:{self.dimensions}"

    @property
    def truncated(self) -> int:
        return self.stats.truncated

    @property
    def where(self) -> str:
        return self.base_url or "api.openai.com"

    # -- tokens ------------------------------------------------------------------------------
    def _enc(self) -> Any:
        if self._encoding is None:
            from ragcli.providers.tokens import encoding_for_model

            self._encoding = encoding_for_model(self.model_id)
        return self._encoding

    def count_tokens(self, text: str) -> int:
        return len(self._enc().encode_ordinary(text))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each tiktoken token, trimmed of the whitespace BPE tokens
        carry (" word", ".\\n\\n"), so that the chunker sees word gaps and paragraph breaks
        between tokens. A whitespace-only token is an empty span where its whitespace ends.
        A character split over several tokens belongs to each of them."""
        return self.token_spans_batch([text])[0]

    def token_spans_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """`token_spans` of each text: encoded on every core, offsets computed with numpy
        over all the texts' tokens at once (ragcli/providers/tokens.py)."""
        from ragcli.providers.tokens import token_spans_batch

        return token_spans_batch(self._enc(), texts)

    def _prepare(self, texts: Sequence[str]) -> tuple[list[str], list[int], int]:
        """Texts as they will be sent (truncated to 8,191 tokens), their token counts, and how
        many were truncated. Runs on a worker thread (tiktoken releases the GIL)."""
        enc = self._enc()
        # The API refuses empty inputs; a lone space embeds "nothing" just as well.
        prepared = [t if t else " " for t in texts]
        # Token ids only for a slice at a time (~36 bytes a token as Python ints: a 50 MB
        # corpus kept whole would hold ~700 MB), and kept only for inputs over the limit.
        counts: list[int] = []
        over: dict[int, list[int]] = {}
        for lo in range(0, len(prepared), 1024):
            batch = enc.encode_ordinary_batch(prepared[lo : lo + 1024], num_threads=2)
            for i, x in enumerate(batch, lo):
                counts.append(len(x))
                if len(x) > API_MAX_INPUT_TOKENS:
                    over[i] = x
        cut = 0
        for i, ids_i in over.items():
            keep = API_MAX_INPUT_TOKENS
            while True:  # a decoded prefix can re-tokenise a little longer: trim until it fits
                text = enc.decode(ids_i[:keep])
                again = len(enc.encode_ordinary(text))
                if again <= API_MAX_INPUT_TOKENS:
                    break
                keep -= again - API_MAX_INPUT_TOKENS
            prepared[i], counts[i] = text, again
            cut += 1
        return prepared, counts, cut

    # -- the client --------------------------------------------------------------------------
    def _get_client(self, base_url: str | None = None) -> Any:
        """One client per endpoint and event loop (its connection pool belongs to the loop
        that opened it)."""
        return self._clients.get(self.base_url if base_url is None else base_url)

    async def aclose(self) -> None:
        """Close the clients' connections (on the loop that opened them)."""
        await self._clients.aclose()

    async def warm(self) -> None:
        """Import `openai` (~0.8 s) and load the tokenizer off the event loop. No request is
        made: a query whose vector is cached must cost no round trip (and needs no key)."""

        def work() -> None:
            import openai  # noqa: F401

            self._enc()

        await asyncio.to_thread(work)

    # -- embedding ---------------------------------------------------------------------------
    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape (len(texts), dimensions), in input order."""
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("aembed() takes a sequence of strings; wrap a single text in a list")
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        async for rows, vecs in self.embed_batches(texts):
            out[rows] = vecs
        return out

    async def embed_batches(
        self, texts: Sequence[str]
    ) -> AsyncIterator[tuple[list[int], np.ndarray]]:
        """Plan requests, run them on `concurrency` workers under the adaptive limit and the
        pacer, and yield each finished batch at once, in completion order."""
        if not texts:
            return
        client = self._get_client()
        prepared, counts, cut = await asyncio.to_thread(self._prepare, texts)
        if cut:
            self.stats.truncated += cut
            log.warning(
                "%d input(s) over %d tokens were truncated to fit %s",
                cut,
                API_MAX_INPUT_TOKENS,
                self.model_id,
            )
        todo = deque(plan_batches(counts, self.concurrency, self.batch_size, self.pacer.tpm))
        results: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        run = _Run()

        async def worker(wid: int) -> None:
            while todo:
                rows = todo.popleft()
                vecs = await self._embed_rows(
                    client, [prepared[i] for i in rows], sum(counts[i] for i in rows), wid, run
                )
                results.put_nowait(("batch", (rows, vecs)))

        workers = [asyncio.create_task(worker(w)) for w in range(min(self.concurrency, len(todo)))]
        for task in workers:
            task.add_done_callback(lambda t: results.put_nowait(("done", t)))
        failure: BaseException | None = None
        try:
            finished = 0
            while finished < len(workers):
                kind, item = await results.get()
                if kind == "batch":
                    yield item
                    continue
                finished += 1
                if item.cancelled() or item.exception() is None:
                    continue
                if failure is None:
                    failure = item.exception()
                    run.stopping = True
                    todo.clear()  # start nothing new; let the requests on the wire finish
                    for wid, task in enumerate(workers):
                        if wid not in run.busy:
                            task.cancel()
            if failure is not None:
                raise failure
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _embed_rows(
        self, client: Any, batch: list[str], tokens: int, wid: int, run: _Run
    ) -> np.ndarray:
        """One batch, retried until it succeeds or its retries run out (ProviderError)."""
        errors = 0  # transient failures of this batch
        throttled = 0  # 429s in a row with no successful request anywhere in between
        seen = self._successes
        several = len(self.pool) > 1
        avoid: Endpoint | None = None  # the endpoint this batch just failed on
        while True:
            granted = await self.limit.acquire()
            outcome = "error"
            retry: _Retry | None = None
            ep = self.pool.choose(avoid) if several else self.pool.endpoints[0]
            try:
                await self.pacer.wait(tokens)
                run.busy.add(wid)
                ep.requests += 1
                ep.in_flight += 1
                try:
                    vecs = await self._request(
                        self._get_client(ep.url) if several else client, batch
                    )
                finally:
                    run.busy.discard(wid)
                    ep.in_flight -= 1
                outcome = "ok"
                ep.ok += 1
            except _Retry as r:
                retry = r
                outcome = "throttled" if r.kind == "throttled" else "error"
            finally:  # the slot is free before any backoff sleep
                self.limit.release(granted, outcome)
                self.stats.lowest_limit = min(self.stats.lowest_limit, self.limit.lowest)
            if retry is None:
                self._successes += 1
                self.stats.batches += 1
                self.stats.inputs += len(batch)
                self.stats.tokens += tokens
                return vecs
            if retry.kind == "throttled":
                self.stats.throttled += 1
                if self._successes != seen:  # others got through: a storm, not a dead end
                    throttled, seen = 0, self._successes
                throttled += 1
                attempt = throttled
            else:
                self.stats.errors += 1
                errors += 1
                attempt = errors
            if attempt > self.max_retries or run.stopping:
                raise ProviderError(
                    f"{retry.what}; gave up on a batch of {len(batch)} inputs after "
                    f"{errors + throttled} failed attempts"
                )
            if several:  # rest that endpoint (its Retry-After), and fail over at once if we can
                self.pool.failed(ep, EndpointError(retry.what, True, retry.retry_after))
                avoid = ep
                if self.pool.pick([ep]) is not None:
                    ep.failovers += 1
                    self.stats.failovers += 1
                    self.stats.retries += 1
                    continue
            delay = backoff_delay(attempt, retry.retry_after, self._rng)
            if retry.retry_after is not None:
                self.pacer.hold(retry.retry_after)  # every worker waits, not only this one
            self.stats.retries += 1
            await asyncio.sleep(delay)

    async def _request(self, client: Any, batch: list[str]) -> np.ndarray:
        import numpy as np
        import openai

        self.stats.requests += 1
        extra = {"dimensions": self.dimensions} if self._send_dimensions else {}
        try:
            # The raw response, parsed here: the client's typed models cost ~75 µs per vector
            # (0.4 s of CPU for 5,000 chunks, measured), for objects thrown away at once.
            raw = await client.embeddings.with_raw_response.create(
                model=self.model_id, input=batch, encoding_format="base64", **extra
            )
            payload = json.loads(raw.http_response.content)
        except (openai.APIStatusError, openai.APIConnectionError) as exc:  # timeouts too
            raise self._failure(exc) from None
        except ValueError:  # not JSON: a proxy's error page, a truncated body
            raise _Retry(
                "error", None, f"the embedding provider at {self.where} sent a malformed answer"
            ) from None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != len(batch):
            raise ProviderError(
                f"the embedding provider at {self.where} returned "
                f"{len(data) if isinstance(data, list) else 'no'} vectors for {len(batch)} inputs"
            )
        data.sort(key=lambda d: d.get("index", 0))
        out = np.empty((len(batch), self.dimensions), dtype=np.float32)
        for row, item in enumerate(data):
            emb = item.get("embedding")
            if isinstance(emb, str):  # base64 float32, little-endian (as requested)
                vec = np.frombuffer(base64.b64decode(emb), dtype="<f4")
            else:  # a server that ignores encoding_format sends floats
                vec = np.asarray(emb, dtype=np.float32)
            if vec.shape != (self.dimensions,):
                raise ProviderError(
                    f"{self.model_id} at {self.where} returned {vec.shape[0]}-dimensional "
                    f"vectors, expected {self.dimensions}: set embed_dimensions to match"
                )
            out[row] = vec
        if not np.isfinite(out).all():  # NaN/inf would poison the cache and the index
            raise ProviderError(
                f"{self.model_id} at {self.where} returned vectors with NaN or infinite values"
            )
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _failure(self, exc: BaseException) -> Exception:
        """An ``openai`` error as a `_Retry` (429, 408/409, 5xx, timeouts, lost connections)
        or a one-line ProviderError (the rest; never echoes the API key)."""
        where = self.where
        failure = classify(exc)
        if failure is None or not failure.retryable:
            who = f"the embedding provider at {where}"
            return ProviderError(describe(exc, who, self.model_id, self._api_key))
        if failure.quota:
            return ProviderError(
                f"the embedding provider at {where} answered 429 insufficient_quota: "
                "the account is out of credit"
            )
        if failure.throttled:
            what = f"the embedding provider at {where} kept answering 429 (rate limited)"
            return _Retry("throttled", failure.retry_after, what)
        if failure.status is not None:
            what = f"the embedding provider at {where} answered HTTP {failure.status}"
        elif failure.timeout:
            what = f"the embedding provider at {where} timed out"
        else:
            what = f"lost the connection to the embedding provider at {where}"
        return _Retry("error", failure.retry_after, what)

    def __repr__(self) -> str:
        return (
            f"OpenAIEmbedder({self.model_id!r}, dimensions={self.dimensions}, "
            f"concurrency={self.concurrency}, base_url={self.where!r})"
        )
