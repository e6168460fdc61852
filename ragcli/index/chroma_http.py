"""Cheap questions to a Chroma server over its REST API, stdlib only (for `ragcli status`,
which must not pay chromadb's import): is it up, does it take our token, and which of these
collections does it have. Every request carries the token header of `ChromaAccess`, and https
checks the certificate against `chroma_ca_file` (else the trust store chromadb's client uses:
SSL_CERT_FILE, SSL_CERT_DIR, else certifi's, else the system's), so status and the store trust
the same servers."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import sys
from collections.abc import Iterable
from urllib.parse import quote

from ragcli.core.urls import ChromaAccess

_COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections/"
# What chromadb's client asks first; behind a proxy that leaves the heartbeat open (for load
# balancers), this one still needs the token.
IDENTITY = "/api/v2/auth/identity"
REFUSED = (401, 403)
_warned: set[str] = set()


class TokenRefused(ValueError):
    """The server, or the proxy in front of it, refused the request (401/403): the message
    says whether a token is missing or wrong, never what it is."""


def ssl_context(ca_file: str) -> ssl.SSLContext:
    """The certificate check for https: the CA file, else httpx's default trust."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def warn_cleartext(access: ChromaAccess) -> None:
    """Once per process and server: a token about to cross the network unencrypted."""
    if access.cleartext() and access.url not in _warned:
        _warned.add(access.url)
        print(
            f"ragcli: warning: chroma_token goes in clear text to {access.url} (plain http to "
            "another machine): use an https:// URL",
            file=sys.stderr,
            flush=True,
        )


def explain(exc: BaseException) -> str:
    """A connection failure as text, with what to do about a certificate that did not check."""
    text = str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        text += (
            " (point chroma_ca_file / RAGCLI_CHROMA_CA_FILE at the CA that signed the server's "
            "certificate)"
        )
    return text


def connect(access: ChromaAccess, timeout: float) -> http.client.HTTPConnection:
    host, port, tls = access.address
    warn_cleartext(access)
    if tls:
        return http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl_context(access.ca_file)
        )
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _get(conn: http.client.HTTPConnection, access: ChromaAccess, path: str) -> tuple[int, bytes]:
    """(status, body) of GET `path` with the token; TokenRefused on 401/403."""
    conn.request("GET", path, headers=access.headers())
    resp = conn.getresponse()
    body = resp.read()
    if resp.status in REFUSED:
        raise TokenRefused(access.refusal(resp.status))
    return resp.status, body


def refusal(access: ChromaAccess, timeout: float = 3.0) -> str | None:
    """The one line saying the server refuses our token, if it does; None if it takes it
    or cannot be asked (the caller's own error then stands)."""
    conn = connect(access, timeout)
    try:
        _get(conn, access, IDENTITY)
    except TokenRefused as exc:
        return str(exc)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
    return None


def missing_collections(
    access: ChromaAccess, names: Iterable[str], timeout: float = 3.0
) -> set[str]:
    """The names the server lacks. Raises TokenRefused when it refuses the token, OSError (or
    ValueError) if it cannot be asked."""
    conn = connect(access, timeout)
    try:
        status, body = _get(conn, access, "/api/v2/heartbeat")
        if status != 200 or "nanosecond heartbeat" not in json.loads(body or b"{}"):
            raise ValueError(f"not a Chroma server (heartbeat answered HTTP {status})")
        _get(conn, access, IDENTITY)  # a proxy may leave the heartbeat open to anyone
        missing: set[str] = set()
        for name in names:
            status, _ = _get(conn, access, _COLLECTIONS + quote(name, safe=""))
            if status == 404:
                missing.add(name)
            elif status != 200:
                raise ValueError(f"collection lookup answered HTTP {status}")
        return missing
    finally:
        conn.close()
