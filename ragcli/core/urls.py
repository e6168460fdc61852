"""The shared-backend URLs as written by the user, parsed and checked: `chroma_url` (a Chroma
server) and `redis_url` (the shared caches); how ragcli reaches and authenticates to a Chroma
server (`ChromaAccess`: URL, token, the token's header, a CA file for https).

Pure parsing, standard library only: `core.config` validates settings with it, and the index
(ragcli/index/store.py, ragcli/index/chroma_http.py) connects with what it returns, without
core importing the index.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ragcli.core.errors import ConfigError

CHROMA_DEFAULT_PORT = 8000  # `chroma run`'s
# https:// is always a proxy (`chroma run` serves plain HTTP): its port is HTTPS's own
HTTPS_DEFAULT_PORT = 443
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# The headers a Chroma token travels in: `Authorization: Bearer TOKEN` (what reverse proxies and
# Chroma's own token auth check), or the token as is in `X-Chroma-Token`.
BEARER, X_CHROMA_TOKEN = "Authorization", "X-Chroma-Token"


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """(host, port, ssl) of `http[s]://HOST[:PORT]`; when omitted, the port is 8000 for
    http (`chroma run`'s) and 443 for https (a TLS proxy's). A URL carrying a user or password
    is refused without echoing it: the token goes in chroma_token."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1"
        parts = urlsplit("")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "chroma_url must not carry a user or password: put the token in chroma_token "
            "(or RAGCLI_CHROMA_TOKEN)"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ConfigError(f"chroma_url {url!r}: use http://HOST:PORT (a `chroma run` server)")
    if parts.path.strip("/") or parts.query or parts.fragment:  # never echoed: may hold a key
        raise ConfigError(
            f"chroma_url {parts.scheme}://{parts.netloc}/…: Chroma's API must be at the root of "
            "HOST:PORT (chromadb's client cannot use a path prefix; give the proxy a port of "
            "its own)"
        )
    tls = parts.scheme == "https"
    return parts.hostname, port or (HTTPS_DEFAULT_PORT if tls else CHROMA_DEFAULT_PORT), tls


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ChromaAccess:
    """How to reach a Chroma server: its URL, the token to send (never shown: repr hides it,
    and no message carries it), the header it travels in, and a CA file for https ("" = the
    default trust store)."""

    url: str
    token: str = field(default="", repr=False)
    token_header: str = BEARER
    ca_file: str = ""

    @property
    def address(self) -> tuple[str, int, bool]:
        """(host, port, ssl)."""
        return parse_chroma_url(self.url)

    def headers(self) -> dict[str, str]:
        """The request headers that carry the token (none without one)."""
        if not self.token:
            return {}
        if self.token_header == X_CHROMA_TOKEN:
            return {X_CHROMA_TOKEN: self.token}
        return {BEARER: f"Bearer {self.token}"}

    def cleartext(self) -> bool:
        """A token sent over plain http to another machine: readable on the network."""
        host, _, ssl = self.address
        return bool(self.token) and not ssl and not is_loopback(host)

    def refusal(self, status: int) -> str:
        """The one line for a server (or its proxy) that answered 401 or 403."""
        if not self.token:
            return (
                f"the Chroma server at {self.url} asks for a token (HTTP {status}): "
                "set chroma_token (or RAGCLI_CHROMA_TOKEN)"
            )
        return (
            f"the Chroma server at {self.url} refused the token (HTTP {status}): check "
            "chroma_token / RAGCLI_CHROMA_TOKEN (and chroma_token_header)"
        )

    def redact(self, text: str) -> str:
        """`text` with the token, should a server have echoed it, blanked out."""
        return text.replace(self.token, "***") if self.token else text


def check_redis_url(url: str) -> str:
    """`url` if it names a Redis server ragcli can use, else one ConfigError line (which
    shows the URL without its user, password and query: they may hold secrets)."""
    if not url.startswith(REDIS_SCHEMES):
        shown = url.split("?", 1)[0]
        if "@" in shown:
            scheme, sep, _ = shown.partition("://")
            shown = (scheme + sep if sep else "") + "***@" + shown.rsplit("@", 1)[1]
        raise ConfigError(
            f"redis_url {shown!r}: use redis://HOST:PORT[/DB] "
            "(or redis://USER:PASSWORD@HOST:PORT/DB, rediss://, unix://)"
        )
    return url
