"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks the wire format the official `openai` client expects (JSON bodies, base64 or float
embeddings, SSE streams over chunked keep-alive connections, OpenAI's error shape) and counts
every request, so tests can assert on what crossed the wire.

    with OpenAICompatibleServer(ServerConfig(latency_s=0.15, max_in_flight=10)) as srv:
        ...  # point OPENAI_BASE_URL at srv.base_url; read srv.counters afterwards

Or as its own process (benchmarks, so that the server does not share the client's GIL):

    python -m tests.support.openai_server --latency 0.15 --max-in-flight 10
    # prints the base URL on its first line; GET /_stats returns the counters as JSON,
    # POST /_reset zeroes them (a JSON body may also change settings of ServerConfig);
    # embeddings_busy_s: the time with at least one embeddings request in flight

What it enforces, as the real API documents it: at most 2048 inputs per embeddings request,
8191 tokens per input and 300,000 tokens per request (cl100k_base, counted with providers.tokens),
answered with HTTP 400 and OpenAI's error JSON. Optional load behaviour: a latency per request
plus a cost per token, limits on requests in flight, requests per minute and tokens per minute
(HTTP 429 with `Retry-After` and `retry-after-ms`), injected 429s and 5xx answers, dropped
connections (closed without an answer), hung requests (no answer for `hang_s` seconds, then
closed: the client's timeout must fire), unknown model names (404 `model_not_found` when
`models` lists the known ones), a jittered TTFT (`ttft_jitter_s`) and a slow first token for a
fraction of chat requests (`slow_rate`, `slow_ttft_s`: a slow endpoint for hedging). A chat
client that goes away before its answer is complete (a hedge's loser) is noticed at once, even
while the server waits for the first token, and counted in `disconnects`.
Random faults come from one `random.Random(seed)` drawn in arrival order, so a sequential
client sees the same faults on every run.

A gate lets a test order events without racing a clock (in-process servers only):

    srv.hold()            # chat answers now wait before their first token (hold(after_words=2):
                          # after their second word) until srv.release(); srv.waiting counts
                          # those at the gate now, counters.held all that ever waited there
    wait_for(lambda: srv.waiting == 4)   # e.g. until four requests are held at once
    srv.release()

A client that goes away while its answer is held is noticed and counted in `disconnects`.

Why the standard library's ThreadingHTTPServer and not an asyncio server: measured here
(2 cores, server in its own process, the official `openai` client over keep-alive), it matched
uvicorn + httptools + uvloop serving the same handler: sequential round trip 1.14 vs 1.04 ms,
873 vs 986 requests/s with 32 connections (the client, ~1 ms per request, is the bottleneck in
both), and with 150 ms of latency 194 vs 187 requests/s at 32 in flight, p99 193 vs 199 ms.
Its threads spend the configured latency asleep, so 10–32 requests in flight cost nothing, and
the test server needs no extra dependency. The one default that mattered: the listen backlog
(`request_queue_size`, 5 in the standard library) is raised to 256: with 5, a burst of 128
new connections from one client got connection resets.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The documented limits of OpenAI's embeddings endpoint.
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8191
MAX_REQUEST_TOKENS = 300_000


@dataclass
class ServerConfig:
    api_key: str = ""  # when set, requests must carry "Authorization: Bearer <api_key>"
    # chat completions
    reply: str = "The pager is rotated in PageRelay [1]."
    ttft_s: float = 0.0  # delay before the first streamed token
    token_gap_s: float = 0.0  # delay between streamed tokens
    ttft_jitter_s: float = 0.0  # ttft_s varies uniformly by ± this much
    # A slow endpoint: this fraction of chat requests waits slow_ttft_s for its first token
    # (drawn from their own random.Random(seed + 1), so other faults stay as they were).
    slow_rate: float = 0.0
    slow_ttft_s: float = 3.0
    # Prefill model (chat): the first token also waits prefill_per_token_s for every prompt
    # token not found in the prefix cache. prefix_cache_block > 0 turns on a prefix cache
    # like vLLM's automatic prefix caching: the longest token prefix shared with an earlier
    # prompt, in whole blocks of that many tokens, is reused (reported as usage
    # prompt_tokens_details.cached_tokens when the request asks for stream usage).
    prefill_per_token_s: float = 0.0
    prefix_cache_block: int = 0
    # embeddings
    latency_s: float = 0.0  # per embeddings request
    per_token_s: float = 0.0  # added per input token of an embeddings request
    dimensions: int = 64  # when the request names none
    max_inputs: int = MAX_INPUTS
    max_input_tokens: int = MAX_INPUT_TOKENS
    max_request_tokens: int = MAX_REQUEST_TOKENS
    # rate limits, all endpoints (0: off). RPM and TPM are token buckets refilled at
    # limit/60 per second holding `rate_burst_s` seconds' worth (60: a full minute).
    max_in_flight: int = 0
    rpm: int = 0
    tpm: int = 0
    rate_burst_s: float = 60.0
    retry_after_s: float = 1.0  # Retry-After sent with in-flight and injected 429s
    # injected faults, all endpoints (probabilities per request)
    throttle_rate: float = 0.0  # 429 rate_limit_exceeded
    error_rate: float = 0.0  # 500 / 502 / 503
    drop_rate: float = 0.0  # connection closed without an answer
    hang_rate: float = 0.0  # no answer at all for `hang_s` seconds, then the connection closes
    hang_s: float = 30.0
    models: str = ""  # comma-separated known model names: others get 404 ("": any name)
    # broken 200 answers to embeddings requests: "" (off), "malformed" (not JSON),
    # "truncated" (JSON cut short), "fewer" (one vector missing), "dims" (wrong dimensions),
    # "nan" (a NaN and an inf in the first vector)
    bad_embeddings: str = ""
    cut_stream_after: int = 0  # chat streams: close the connection after N words (0: off)
    seed: int = 0
    record_bodies: bool = True  # keep every request body in counters.bodies
    record_texts: bool = True  # count every embedded text in counters.texts


@dataclass
class Counters:
    requests: int = 0  # every request on /v1/*
    chat: int = 0
    embeddings: int = 0
    connections: int = 0  # TCP connections accepted (keep-alive reuses them)
    ok: int = 0  # answered 200
    throttled: int = 0  # answered 429 (limits or injected)
    errors: int = 0  # injected 5xx
    dropped: int = 0  # connections closed without an answer
    hung: int = 0  # requests left unanswered for hang_s seconds
    slow: int = 0  # chat requests given slow_ttft_s (slow_rate)
    disconnects: int = 0  # chat streams the client closed before the answer was complete
    held: int = 0  # chat requests that waited at the gate (`OpenAICompatibleServer.hold`)
    rejected: int = 0  # answered 400 (limits, malformed)
    unauthorized: int = 0  # answered 401
    inputs: int = 0  # inputs embedded in 200 answers
    tokens: int = 0  # their tokens
    max_inputs_seen: int = 0  # in one embeddings request that passed validation
    max_request_tokens_seen: int = 0
    max_input_tokens_seen: int = 0
    max_in_flight_seen: int = 0
    # Time with at least one embeddings request in flight (the union of their intervals, from
    # the request's arrival to its answer, 429s included): what a client spent waiting on this
    # server. The stamps are time.monotonic(), one clock for every process of a Linux machine,
    # so a benchmark can place them on its own timeline (0.0: no embeddings request yet).
    embeddings_busy_s: float = 0.0
    first_embeddings_at: float = 0.0  # the first embeddings request arrived
    last_embeddings_at: float = 0.0  # the last one was answered (or given up)
    statuses: Counter = field(default_factory=Counter)
    texts: Counter = field(default_factory=Counter)  # text -> times embedded (200 only)
    paths: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        """Numbers only (no bodies or texts): what benchmarks read over GET /_stats."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("texts", "paths", "bodies", "statuses")
        }
        out["statuses"] = {str(k): v for k, v in sorted(self.statuses.items())}
        out["distinct_texts"] = len(self.texts)
        return out


def fake_vector(text: str, dims: int) -> list[float]:
    """Deterministic unit vector from the text (SHAKE-256 output as int32s, normalised). A
    shorter one is a renormalised prefix of a longer one, as with text-embedding-3's
    `dimensions`. numpy keeps it at a few µs: in pure Python it cost 150 µs per 256-d vector,
    enough server CPU to distort the throughput benchmark on 2 cores."""
    return _fake_array(text, dims).tolist()


def _fake_array(text: str, dims: int) -> Any:
    import numpy as np

    raw = np.frombuffer(hashlib.shake_256(text.encode()).digest(dims * 4), dtype="<i4")
    vals = raw.astype(np.float64) / 2**31
    norm = float(np.sqrt(vals @ vals)) or 1.0
    return (vals / norm).astype(np.float32)


_encoding: Any = None


def count_tokens(text: str) -> int:
    global _encoding
    if _encoding is None:
        from ragcli.providers.tokens import encoding

        _encoding = encoding("cl100k_base")
    return len(_encoding.encode(text, disallowed_special=()))


def _cl100k() -> Any:
    count_tokens("")
    return _encoding


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return bool(body.get("stream") and isinstance(options, dict) and options.get("include_usage"))


class _Bucket:
    """Token bucket: `limit` per minute, holding `burst_s` seconds' worth; may go into debt
    for a request larger than the bucket (it waits until the bucket is full)."""

    def __init__(self, limit: int, burst_s: float) -> None:
        self.rate = limit / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def take(self, cost: float) -> float:
        """0 when admitted (and charged), else seconds until it would be."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(cost, self.capacity)
        if self.level >= need:
            self.level -= cost
            return 0.0
        return (need - self.level) / self.rate


class _Reject(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers


def _error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _throttle(message: str, retry_after: float, type_: str = "requests") -> _Reject:
    retry_after = max(retry_after, 0.001)
    headers = {
        "Retry-After": str(max(1, math.ceil(retry_after))),  # HTTP wants whole seconds
        "retry-after-ms": str(max(1, round(retry_after * 1000))),
    }
    return _Reject(429, _error_body(message, type_, "rate_limit_exceeded"), headers)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        return

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.counters.connections += 1

    # -- plumbing ---------------------------------------------------------------------------
    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)  # counted only once delivered (a dead client gets nothing)
        with self.server.lock:
            self._counters.statuses[status] += 1
            if status == 200:
                self._counters.ok += 1

    def _drop(self) -> None:
        """Close the connection without a byte of answer, as a crashed proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:  # noqa: N802 — http.server's naming
        self._counters = self.server.counters
        if self.path == "/_stats":
            with self.server.lock:
                stats = self.server.counters.snapshot()
                stats["embeddings_busy_s"] += self.server.busy_open_s()
            self._json(200, stats)
        else:
            self._json(404, _error_body(f"Unknown path {self.path}", "invalid_request_error"))

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/v1/embeddings":
            self._post()
            return
        self.server.busy_enter()
        try:
            self._post()
        finally:
            self.server.busy_leave()

    def _post(self) -> None:
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/_reset":
            srv.reset(json.loads(raw) if raw else {})
            self._counters = srv.counters
            self._json(200, {"ok": True})
            return
        # A request counts in the counters current when it arrived, even if a test resets
        # them while it is in flight.
        cfg, counters = srv.config, srv.counters
        self._counters = counters
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(
                400, _error_body("We could not parse the JSON body.", "invalid_request_error")
            )
            return
        with srv.lock:
            counters.requests += 1
            counters.paths.append(self.path)
            if cfg.record_bodies:
                counters.bodies.append(body)
            if self.path == "/v1/chat/completions":
                counters.chat += 1
            elif self.path == "/v1/embeddings":
                counters.embeddings += 1
        if cfg.api_key and self.headers.get("Authorization") != f"Bearer {cfg.api_key}":
            with srv.lock:
                counters.unauthorized += 1
            self._json(
                401,
                _error_body(
                    "Incorrect API key provided. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )
            return
        if self.path not in ("/v1/chat/completions", "/v1/embeddings"):
            self._json(404, _error_body(f"Unknown path {self.path}", "invalid_request_error"))
            return
        known = [m.strip() for m in cfg.models.split(",") if m.strip()]
        if known and body.get("model") not in known:
            self._json(
                404,
                _error_body(
                    f"The model `{body.get('model')}` does not exist or you do not have access "
                    "to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
            return
        try:
            if self.path == "/v1/embeddings":
                inputs, tokens = self._validate_embeddings(body, cfg)
                cost = sum(tokens)
            else:
                inputs, tokens = [], []
                cost = sum(
                    count_tokens(str(m.get("content") or "")) for m in body.get("messages") or []
                )
            admitted = srv.admit(cost)
        except _Reject as r:
            with srv.lock:
                if r.status == 429:
                    counters.throttled += 1
                elif r.status == 400:
                    counters.rejected += 1
            self._json(r.status, r.body, r.headers)
            return
        if admitted == "drop":
            self._drop()
            return
        if admitted == "hang":  # a response that never comes (until the client gives up)
            time.sleep(cfg.hang_s)
            self._drop()
            return
        try:
            if self.path == "/v1/embeddings":
                self._embeddings(body, inputs, tokens, cfg)
            else:
                self._chat(body, cfg)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    # -- embeddings -------------------------------------------------------------------------
    def _validate_embeddings(
        self, body: dict[str, Any], cfg: ServerConfig
    ) -> tuple[list[str], list[int]]:
        raw: Any = body.get("input")
        inputs: list[str] = raw if isinstance(raw, list) else [raw]
        if not inputs or not all(isinstance(t, str) and t for t in inputs):
            raise _Reject(
                400,
                _error_body(
                    "'$.input' is invalid. Please check the API reference: "
                    "https://platform.openai.com/docs/api-reference.",
                    "invalid_request_error",
                ),
                {},
            )
        if len(inputs) > cfg.max_inputs:
            raise _Reject(
                400,
                _error_body(
                    f"'$.input' is invalid: at most {cfg.max_inputs} inputs per request, "
                    f"got {len(inputs)}.",
                    "invalid_request_error",
                    param="input",
                ),
                {},
            )
        tokens = [count_tokens(t) for t in inputs]
        longest = max(tokens)
        if longest > cfg.max_input_tokens:
            raise _Reject(
                400,
                _error_body(
                    f"This model's maximum context length is {cfg.max_input_tokens + 1} tokens, "
                    f"however you requested {longest} tokens ({longest} in your prompt; 0 for the "
                    "completion). Please reduce your prompt; or completion length.",
                    "invalid_request_error",
                ),
                {},
            )
        total = sum(tokens)
        if total > cfg.max_request_tokens:
            raise _Reject(
                400,
                _error_body(
                    f"Requested {total} tokens, max {cfg.max_request_tokens} tokens per request",
                    "max_tokens_per_request",
                    "max_tokens_per_request",
                ),
                {},
            )
        with self.server.lock:
            c = self._counters
            c.max_inputs_seen = max(c.max_inputs_seen, len(inputs))
            c.max_request_tokens_seen = max(c.max_request_tokens_seen, total)
            c.max_input_tokens_seen = max(c.max_input_tokens_seen, longest)
        return inputs, tokens

    def _embeddings(
        self, body: dict[str, Any], inputs: list[str], tokens: list[int], cfg: ServerConfig
    ) -> None:
        total = sum(tokens)
        delay = cfg.latency_s + cfg.per_token_s * total
        if delay > 0:
            time.sleep(delay)
        dims = int(body.get("dimensions") or cfg.dimensions)
        if cfg.bad_embeddings in ("malformed", "truncated"):
            raw = b"<html>502 Bad Gateway</html>" if cfg.bad_embeddings == "malformed" else b""
            if not raw:
                raw = json.dumps({"object": "list", "data": [{"embedding": [0.1]}]}).encode()
                raw = raw[: len(raw) // 2]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            with self.server.lock:
                self._counters.statuses[200] += 1
            return
        if cfg.bad_embeddings == "fewer" and len(inputs) > 1:
            inputs = inputs[:-1]
        elif cfg.bad_embeddings == "fewer":
            inputs = []
        if cfg.bad_embeddings == "dims":
            dims += 1
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vec = _fake_array(text, dims)
            if cfg.bad_embeddings == "nan" and i == 0:
                vec = vec.copy()
                vec[0], vec[-1] = float("nan"), float("inf")
            emb: Any = base64.b64encode(vec.tobytes()).decode() if as_base64 else vec.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        self._json(
            200,
            {
                "object": "list",
                "model": body.get("model", ""),
                "data": data,
                "usage": {"prompt_tokens": total, "total_tokens": total},
            },
        )
        with self.server.lock:  # delivered: now the inputs count as embedded
            c = self._counters
            c.inputs += len(inputs)
            c.tokens += total
            if cfg.record_texts:
                c.texts.update(inputs)

    # -- chat -------------------------------------------------------------------------------
    def _prefill(self, body: dict[str, Any], cfg: ServerConfig) -> tuple[int, int]:
        """The prompt's tokens and how many the prefix cache holds (then remembers it)."""
        if not (cfg.prefill_per_token_s or cfg.prefix_cache_block or _wants_usage(body)):
            return 0, 0
        enc = _cl100k()
        ids: list[int] = []
        for m in body.get("messages") or []:
            ids += enc.encode(f"<|{m.get('role')}|>{m.get('content') or ''}", disallowed_special=())
        cached = 0
        if cfg.prefix_cache_block:
            with self.server.lock:
                seen = self.server.prompts
                for old in seen:
                    n = 0
                    for a, b in zip(old, ids, strict=False):
                        if a != b:
                            break
                        n += 1
                    cached = max(cached, n)
                seen.append(ids)
                del seen[:-64]  # the most recent prompts only
            cached -= cached % cfg.prefix_cache_block
            cached = min(cached, len(ids) - 1) if ids else 0
        return len(ids), cached

    def _chat(self, body: dict[str, Any], cfg: ServerConfig) -> None:
        prompt_tokens, cached = self._prefill(body, cfg)
        prefill_s = cfg.prefill_per_token_s * (prompt_tokens - cached)
        words = [w + " " for w in cfg.reply.split(" ")]
        words[-1] = words[-1].rstrip()
        base = {"id": "chatcmpl-test", "created": int(time.time()), "model": body.get("model", "")}
        if not body.get("stream"):
            if not self._wait_gate(0):
                return
            time.sleep(cfg.ttft_s)
            self._json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": cfg.reply},
                        }
                    ],
                },
            )
            return
        # Chunked transfer encoding: the connection stays open for the next request.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with self.server.lock:
            self._counters.statuses[200] += 1
            self._counters.ok += 1

        def send(payload: str) -> None:
            data = payload.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        with self.server.lock:
            srv = self.server
            slow = bool(cfg.slow_rate) and srv.slow_rng.random() < cfg.slow_rate
            jitter = srv.slow_rng.uniform(-1, 1) * cfg.ttft_jitter_s if cfg.ttft_jitter_s else 0
            self._counters.slow += int(slow)
        ttft = cfg.slow_ttft_s if slow else max(0.0, cfg.ttft_s + jitter)
        try:
            if not self._wait_gate(0) or not self._wait_unless_gone(ttft + prefill_s):
                return
            self._stream_words(words, base, body, cfg, prompt_tokens, cached, send)
        except (BrokenPipeError, ConnectionResetError):
            with self.server.lock:
                self._counters.disconnects += 1
            self.close_connection = True

    def _client_gone(self) -> bool:
        """Whether the client has closed the connection (bytes of a next request are not
        ours to read: they leave it open)."""
        import select

        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _wait_gate(self, word: int) -> bool:
        """Wait while the server holds answers at `word` (see `OpenAICompatibleServer.hold`),
        noticing a client that goes away meanwhile (counted, closed: False)."""
        srv = self.server
        with srv.lock:
            if srv.gate.is_set() or srv.gate_word != word:
                return True
            self._counters.held += 1
            srv.waiting += 1
        try:
            while not srv.gate.wait(0.01):
                if self._client_gone():
                    with srv.lock:
                        self._counters.disconnects += 1
                    self._drop()
                    return False
            return True
        finally:
            with srv.lock:
                srv.waiting -= 1

    def _wait_unless_gone(self, seconds: float) -> bool:
        """Sleep, but notice a client that closes the connection meanwhile (a cancelled
        request): count it, close, and return False."""
        import select

        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    gone = not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    gone = True
                if gone:
                    with self.server.lock:
                        self._counters.disconnects += 1
                    self._drop()
                    return False
                time.sleep(min(left, 0.01))  # bytes of a next request: not ours to read
        return True

    def _stream_words(
        self,
        words: list[str],
        base: dict[str, Any],
        body: dict[str, Any],
        cfg: ServerConfig,
        prompt_tokens: int,
        cached: int,
        send: Any,
    ) -> None:
        for i, word in enumerate(words):
            if cfg.cut_stream_after and i >= cfg.cut_stream_after:
                self._drop()  # mid-answer: no finish_reason, no [DONE], no last chunk
                return
            if i and not self._wait_gate(i):
                return
            if i:
                time.sleep(cfg.token_gap_s)
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            send(f"data: {json.dumps(chunk)}\n\n")
        end = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        send(f"data: {json.dumps(end)}\n\n")
        if _wants_usage(body):
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
                "prompt_tokens_details": {"cached_tokens": cached},
            }
            last = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            send(f"data: {json.dumps(last)}\n\n")
        send("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the standard library's 5 stalls bursts of new connections

    def __init__(self, config: ServerConfig, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.config = config
        self.counters = Counters()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.gate = threading.Event()  # set: open; cleared by OpenAICompatibleServer.hold
        self.gate.set()
        self.gate_word = 0  # the word a held answer waits before
        self.waiting = 0  # requests waiting at the gate now
        self.prompts: list[list[int]] = []  # the prefix cache's memory (prefix_cache_block)
        self.busy = 0  # embeddings requests between arrival and answer (counters.embeddings_busy_s)
        self.busy_since = 0.0  # time.monotonic() when `busy` last went from 0 to 1
        self._configure()

    def _configure(self) -> None:
        cfg = self.config
        self.rng = random.Random(cfg.seed)
        self.slow_rng = random.Random(cfg.seed + 1)
        self.rpm = _Bucket(cfg.rpm, cfg.rate_burst_s) if cfg.rpm else None
        self.tpm = _Bucket(cfg.tpm, cfg.rate_burst_s) if cfg.tpm else None

    def reset(self, changes: dict[str, Any] | None = None) -> None:
        """Zero the counters; apply `changes` to the config (also re-seeds the faults)."""
        with self.lock:
            for k, v in (changes or {}).items():
                if not hasattr(self.config, k):
                    raise KeyError(k)
                setattr(self.config, k, v)
            self.counters = Counters()
            self.prompts = []
            self.busy_since = time.monotonic()  # new counters count only from now
            self._configure()

    def busy_enter(self) -> None:
        with self.lock:
            now = time.monotonic()
            if not self.busy:
                self.busy_since = now
            self.busy += 1
            if not self.counters.first_embeddings_at:
                self.counters.first_embeddings_at = now

    def busy_leave(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.busy -= 1
            if not self.busy:
                self.counters.embeddings_busy_s += now - self.busy_since
            self.counters.last_embeddings_at = now

    def busy_open_s(self) -> float:
        """The part of the busy time not yet added to the counters (call under the lock)."""
        return time.monotonic() - self.busy_since if self.busy else 0.0

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away
            super().handle_error(request, client_address)

    def admit(self, tokens: int) -> str:
        """Apply limits and faults in arrival order; raise _Reject, or count the request in
        flight and return "ok" (or "drop": close the connection without an answer; "hang":
        answer nothing for hang_s seconds first)."""
        cfg = self.config
        with self.lock:
            if cfg.max_in_flight and self.in_flight >= cfg.max_in_flight:
                raise _throttle(
                    f"Too many concurrent requests: limit {cfg.max_in_flight} in flight. "
                    f"Please try again in {cfg.retry_after_s:g}s.",
                    cfg.retry_after_s,
                )
            if self.rpm is not None:
                wait = self.rpm.take(1)
                if wait:
                    raise _throttle(
                        f"Rate limit reached on requests per min (RPM): Limit {cfg.rpm}. "
                        f"Please try again in {wait:.3f}s.",
                        wait,
                    )
            if self.tpm is not None:
                wait = self.tpm.take(tokens)
                if wait:
                    if self.rpm is not None:  # the request was not served: give its slot back
                        self.rpm.level = min(self.rpm.capacity, self.rpm.level + 1)
                    raise _throttle(
                        f"Rate limit reached on tokens per min (TPM): Limit {cfg.tpm}, "
                        f"Requested {tokens}. Please try again in {wait:.3f}s.",
                        wait,
                        "tokens",
                    )
            draw = self.rng.random()
            if draw < cfg.throttle_rate:
                raise _throttle(
                    f"Rate limit reached (injected). Please try again in {cfg.retry_after_s:g}s.",
                    cfg.retry_after_s,
                )
            draw -= cfg.throttle_rate
            if draw < cfg.error_rate:
                self.counters.errors += 1
                status = self.rng.choice((500, 502, 503))
                raise _Reject(
                    status,
                    _error_body(
                        "The server had an error while processing your request.", "server_error"
                    ),
                    {},
                )
            draw -= cfg.error_rate
            if draw < cfg.drop_rate:
                self.counters.dropped += 1
                return "drop"
            draw -= cfg.drop_rate
            if draw < cfg.hang_rate:
                self.counters.hung += 1
                return "hang"
            self.in_flight += 1
            self.counters.max_in_flight_seen = max(self.counters.max_in_flight_seen, self.in_flight)
            return "ok"


class OpenAICompatibleServer:
    """Start with `with OpenAICompatibleServer(ServerConfig(...)) as srv:`; `srv.base_url`."""

    def __init__(self, config: ServerConfig | None = None, port: int = 0) -> None:
        self._server = _Server(config or ServerConfig(), port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def counters(self) -> Counters:
        return self._server.counters

    @property
    def config(self) -> ServerConfig:
        return self._server.config

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet answered (a killed client's may still be here)."""
        return self._server.in_flight

    @property
    def waiting(self) -> int:
        """Chat requests waiting at the gate now (see `hold`)."""
        return self._server.waiting

    def hold(self, after_words: int = 0) -> None:
        """From now on, chat answers wait before word `after_words` (0: before the first
        token; a stream with fewer words is not held) until `release()`. Each one that waits
        is counted in counters.held, and in `waiting` while it waits; a client that goes away
        meanwhile is noticed and counted in counters.disconnects."""
        with self._server.lock:
            self._server.gate_word = after_words
            self._server.gate.clear()

    def release(self) -> None:
        """Let held answers go on, and stop holding new ones."""
        self._server.gate.set()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no request is in flight and every embeddings request's busy time is counted:
        a client has its answer a moment before the handler thread closes the interval."""
        deadline = time.monotonic() + timeout
        while (self._server.in_flight or self._server.busy) and time.monotonic() < deadline:
            time.sleep(0.01)

    def reset(self, **changes: Any) -> None:
        """Zero the counters, optionally changing settings (`srv.reset(throttle_rate=0)`)."""
        self._server.reset(changes)

    def __enter__(self) -> OpenAICompatibleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()  # nothing stays held behind a test
        self._server.shutdown()
        self._server.server_close()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Return once `condition()` is true; AssertionError if it is not within `timeout`
    seconds. The timeout only bounds a hang (an event that never comes): tests order events
    with it, they never judge speed by it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout:g} s for {what or condition}")
        time.sleep(0.005)


def main(argv: list[str] | None = None) -> None:
    import argparse
    import sys

    p = argparse.ArgumentParser(description="OpenAI-compatible test server on 127.0.0.1.")
    p.add_argument("--port", type=int, default=0)
    for f in fields(ServerConfig):
        flag = "--" + (f.name[:-2] if f.name.endswith("_s") else f.name).replace("_", "-")
        kind = {"float": float, "int": int, "str": str}.get(str(f.type))
        if f.type == "bool":
            p.add_argument(flag, dest=f.name, type=lambda v: v.lower() in ("1", "true", "yes"))
        elif kind is not None:
            p.add_argument(flag, dest=f.name, type=kind)
    args = vars(p.parse_args(argv))
    port = args.pop("port")
    config = ServerConfig(**{k: v for k, v in args.items() if v is not None})
    server = OpenAICompatibleServer(config, port)
    print(server.base_url, flush=True)
    print(json.dumps(asdict(config)), file=sys.stderr, flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()


if __name__ == "__main__":
    main()
