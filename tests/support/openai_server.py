"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks the wire format the official `openai` client expects (JSON bodies, SSE streams,
OpenAI's error shape) and counts every request, so tests can assert on what crossed the wire.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ServerConfig:
    api_key: str = ""  # when set, requests must carry "Authorization: Bearer <api_key>"
    reply: str = "The pager is rotated in PageRelay [1]."
    ttft_s: float = 0.0  # delay before the first streamed token
    token_gap_s: float = 0.0  # delay between streamed tokens
    embedding_latency_s: float = 0.0
    dimensions: int = 64


@dataclass
class Counters:
    requests: int = 0
    chat: int = 0
    embeddings: int = 0
    paths: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)


def fake_vector(text: str, dims: int) -> list[float]:
    """Deterministic unit vector from the text's hash."""
    raw = b""
    counter = 0
    while len(raw) < dims * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    vals = [v / 2**31 for v in struct.unpack(f"<{dims}i", raw[: dims * 4])]
    norm = math.sqrt(sum(v * v for v in vals)) or 1.0
    return [v / norm for v in vals]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        return

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, type_: str, code: str | None = None) -> None:
        self._json(
            status, {"error": {"message": message, "type": type_, "param": None, "code": code}}
        )

    def do_POST(self) -> None:  # noqa: N802 — http.server's naming
        cfg, counters = self.server.config, self.server.counters
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with self.server.lock:
            counters.requests += 1
            counters.paths.append(self.path)
            counters.bodies.append(body)
        if cfg.api_key and self.headers.get("Authorization") != f"Bearer {cfg.api_key}":
            self._error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
            return
        if self.path == "/v1/chat/completions":
            with self.server.lock:
                counters.chat += 1
            self._chat(body, cfg)
        elif self.path == "/v1/embeddings":
            with self.server.lock:
                counters.embeddings += 1
            time.sleep(cfg.embedding_latency_s)
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            dims = body.get("dimensions") or cfg.dimensions
            self._json(
                200,
                {
                    "object": "list",
                    "model": body.get("model", ""),
                    "data": [
                        {"object": "embedding", "index": i, "embedding": fake_vector(t, dims)}
                        for i, t in enumerate(inputs)
                    ],
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                },
            )
        else:
            self._error(404, f"Unknown path {self.path}", "invalid_request_error")

    def _chat(self, body: dict[str, Any], cfg: ServerConfig) -> None:
        words = [w + " " for w in cfg.reply.split(" ")]
        words[-1] = words[-1].rstrip()
        base = {"id": "chatcmpl-test", "created": int(time.time()), "model": body.get("model", "")}
        if not body.get("stream"):
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
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        time.sleep(cfg.ttft_s)
        for i, word in enumerate(words):
            if i:
                time.sleep(cfg.token_gap_s)
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        end = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.config = config
        self.counters = Counters()
        self.lock = threading.Lock()


class OpenAICompatibleServer:
    """Start with `with OpenAICompatibleServer(ServerConfig(...)) as srv:`; `srv.base_url`."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self._server = _Server(config or ServerConfig())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def counters(self) -> Counters:
        return self._server.counters

    @property
    def config(self) -> ServerConfig:
        return self._server.config

    def __enter__(self) -> OpenAICompatibleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
