"""An authenticating reverse proxy for the tests, as a deployment puts one (Caddy, nginx,
Envoy) in front of `chroma run`, which checks no one: a real HTTP/1.1 server on 127.0.0.1 that
forwards every method, path, body and header to the upstream server only when the request
carries the expected token, and answers 401 (plain text, as proxies do) otherwise. It counts
what it let through and what it refused, and in which header the token came, so a test can
show that every request carried the token. Put tests/support/tls.py's TlsForwarder in front of
it for https://."""

from __future__ import annotations

import hmac
import http.client
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BEARER, X_CHROMA_TOKEN = "Authorization", "X-Chroma-Token"
# Headers that describe one connection, never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class AuthProxy:
    """Listens on a free 127.0.0.1 port; forwards to 127.0.0.1:`upstream_port` the requests
    whose token (in one of the `accept`ed header forms) is `token`. `allowed`, `refused` and
    `forms` (header form → requests let through with it) count what happened."""

    def __init__(
        self, upstream_port: int, token: str, accept: tuple[str, ...] = (BEARER, X_CHROMA_TOKEN)
    ) -> None:
        self.upstream_port = upstream_port
        self.token = token
        self.accept = accept
        # Paths let through without a token, as deployments leave the heartbeat open to load
        # balancers' health checks (counted in `unchecked`, not in allowed or refused).
        self.open_paths: tuple[str, ...] = ()
        self.unchecked = 0
        self.allowed = 0
        self.refused = 0
        self.forms: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()  # "METHOD /path" let through
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def form_of(self, headers: dict[str, str]) -> str | None:
        """The accepted header form carrying the right token, if any (constant-time compare)."""
        expected = {BEARER: f"Bearer {self.token}", X_CHROMA_TOKEN: self.token}
        for form in self.accept:
            given = headers.get(form.lower())
            if given is not None and hmac.compare_digest(given.encode(), expected[form].encode()):
                return form
        return None

    def count(self, form: str | None, what: str) -> None:
        with self._lock:
            if form is None:
                self.refused += 1
            else:
                self.allowed += 1
                self.forms[form] += 1
                self.paths[what] += 1

    def reset(self) -> None:
        with self._lock:
            self.allowed = self.refused = self.unchecked = 0
            self.open_paths = ()
            self.forms.clear()
            self.paths.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(proxy: AuthProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet: pytest shows stderr of failing tests

        def _any(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            if "chunked" in headers.get("transfer-encoding", ""):
                self._reply(501, b"chunked request bodies are not supported by this test proxy")
                return
            body = self.rfile.read(int(headers.get("content-length") or 0))
            if self.path.split("?")[0] in proxy.open_paths:
                proxy.unchecked += 1
                self._forward(headers, body)
                return
            form = proxy.form_of(headers)
            proxy.count(form, f"{self.command} {self.path.split('?')[0]}")
            if form is None:
                self._reply(401, b"Unauthorized\n", {"WWW-Authenticate": 'Bearer realm="chroma"'})
                return
            self._forward(headers, body)

        def _forward(self, headers: dict[str, str], body: bytes) -> None:
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
            try:
                sent = {
                    k: v
                    for k, v in headers.items()
                    if k not in HOP_BY_HOP and k not in ("authorization", "x-chroma-token")
                }
                upstream.request(self.command, self.path, body=body or None, headers=sent)
                resp = upstream.getresponse()
                data = resp.read()
                kept = {
                    k: v
                    for k, v in resp.getheaders()
                    if k.lower() not in HOP_BY_HOP | {"date", "server"}
                }
                self._reply(resp.status, data, kept)
            except OSError as exc:
                self._reply(502, f"upstream: {exc}\n".encode())
            finally:
                upstream.close()

        def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if not headers or not any(k.lower() == "content-type" for k in headers):
                self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any  # noqa: N815

    return Handler


class SecuredChroma:
    """`chroma run` as a deployment exposes it: the token proxy, and TLS in front of that
    with a throwaway CA. `url` is https://127.0.0.1:PORT, `ca_file` the CA's PEM, `token` a
    fresh random token (so a test can look for it in any output)."""

    def __init__(self, chroma_port: int, directory: Path) -> None:
        from tests.support.tls import TestCA, TlsForwarder

        self.token = "tok-" + secrets.token_urlsafe(18)
        self.proxy = AuthProxy(chroma_port, self.token)
        self.ca = TestCA(directory)
        self.ca_file = str(self.ca.ca_file)
        self.tls = TlsForwarder(self.proxy.port, self.ca)
        self.url = f"https://127.0.0.1:{self.tls.port}"

    def env(self, token: str | None = None, **extra: str) -> dict[str, str]:
        """RAGCLI_* of a client of this server: its URL, the CA, `token` (default: the right
        one; "" for none)."""
        env = {"RAGCLI_CHROMA_URL": self.url, "RAGCLI_CHROMA_CA_FILE": self.ca_file}
        token = self.token if token is None else token
        if token:
            env["RAGCLI_CHROMA_TOKEN"] = token
        return {**env, **extra}

    def stop(self) -> None:
        self.tls.stop()
        self.proxy.stop()


def secured_chroma(chroma_port: int, directory: Path) -> Iterator[SecuredChroma]:
    """A module fixture's body: a SecuredChroma for the module, stopped after it."""
    server = SecuredChroma(chroma_port, directory)
    yield server
    server.stop()
