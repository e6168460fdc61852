"""The `--server` client (ragcli/serve/remote.py) over a Unix socket: how `unix:PATH` and
`PATH.sock` are read, and an answer streamed from a real HTTP server listening on a socket
(a stdlib stand-in for the daemon's /v1/chat/completions; the real daemon:
tests/e2e/test_profile_daemon.py)."""

from __future__ import annotations

import json
import os
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from ragcli.core.errors import ProviderError, UsageError
from ragcli.retrieval.events import Query
from ragcli.serve.remote import ask_remote, base_url, socket_path


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("unix:/run/ragcli/daemon.sock", "unix:/run/ragcli/daemon.sock"),
        ("unix:///run/ragcli/daemon.sock", "unix:/run/ragcli/daemon.sock"),
        ("unix:/run/ragcli/any-name", "unix:/run/ragcli/any-name"),
        ("/run/ragcli/daemon.sock", "unix:/run/ragcli/daemon.sock"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("https://rag.example/prefix", "https://rag.example/prefix/v1"),
    ],
)
def test_base_url_reads_sockets_and_urls(given: str, expected: str) -> None:
    assert base_url(given) == expected


def test_a_relative_socket_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert socket_path("data/daemon.sock") == str(tmp_path / "data" / "daemon.sock")
    assert base_url("unix:data/daemon.sock") == f"unix:{tmp_path / 'data' / 'daemon.sock'}"
    assert socket_path("http://proxy/daemon.sock") is None  # a URL stays a URL
    assert base_url("http://proxy/daemon.sock") == "http://proxy/daemon.sock/v1"


@pytest.mark.parametrize("given", ["unix:", "ftp://example", "127.0.0.1:8000", "daemon"])
def test_base_url_refuses_what_is_neither(given: str) -> None:
    with pytest.raises(UsageError, match="expected http://HOST:PORT or unix:/PATH.sock"):
        base_url(given)


class _Handler(BaseHTTPRequestHandler):
    """/v1/chat/completions as serve streams it: two content chunks, then sources and spans."""

    seen: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body))
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        chunks = [
            {"choices": [{"delta": {"content": "Hand "}}]},
            {"choices": [{"delta": {"content": "Over."}}]},
            {
                "choices": [{"delta": {}}],
                "model": "extractive",
                "sources": [{"number": 1, "source": "pager.md"}],
                "ragcli": {"cached": False, "ttft_ms": 1.5, "spans": [{"name": "embed", "ms": 1}]},
            },
        ]
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: Any) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[Any, Any]:
        conn, _ = self.socket.accept()
        return conn, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port) address


@pytest.fixture
def unix_server(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "daemon.sock"
    _Handler.seen = []
    server = _UnixHTTPServer(str(path), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("form", ["unix:{}", "{}"])
def test_ask_remote_streams_over_the_socket(unix_server: Path, form: str) -> None:
    tokens: list[str] = []
    query = Query("How do I rotate the pager?", k=3, partitions=("ops",), source="pager.md")
    result = ask_remote(form.format(unix_server), query, tokens.append)
    assert tokens == ["Hand ", "Over."]
    assert result["answer"] == "Hand Over."
    assert result["sources"] == [{"number": 1, "source": "pager.md"}]
    assert result["server"]["url"] == f"unix:{unix_server}"
    assert result["server"]["ttft_ms"] == 1.5 and result["server"]["spans"]
    assert result["ttft_ms"] > 0
    path, body = _Handler.seen[-1]
    assert path == "/v1/chat/completions"
    assert body["messages"][-1]["content"] == "How do I rotate the pager?"
    assert (body["k"], body["partition"], body["source"]) == (3, ["ops"], "pager.md")


def test_a_missing_socket_says_to_start_the_daemon(tmp_path: Path) -> None:
    missing = tmp_path / "daemon.sock"
    with pytest.raises(ProviderError, match=r"cannot connect .*`ragcli daemon start`"):
        ask_remote(f"unix:{missing}", Query("q"), lambda _t: None)
    assert not os.path.exists(missing)
