"""The shared-backend URLs as written by the user, parsed and checked: `chroma_url` (a Chroma
server) and `redis_url` (the shared caches).

Pure parsing, standard library only: `core.config` validates settings with it, and the index
(ragcli/index/store.py, ragcli/index/chroma_http.py) connects with what it returns, without
core importing the index.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ragcli.core.errors import ConfigError

CHROMA_DEFAULT_PORT = 8000  # `chroma run`'s
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """(host, port, ssl) of `http[s]://HOST[:PORT]`; port 8000 (Chroma's) when omitted."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ConfigError(f"chroma_url {url!r}: use http://HOST:PORT (a `chroma run` server)")
    return parts.hostname, port or CHROMA_DEFAULT_PORT, parts.scheme == "https"


def check_redis_url(url: str) -> str:
    """`url` if it names a Redis server ragcli can use, else one ConfigError line."""
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigError(f"redis_url {url!r}: use redis://HOST:PORT[/DB] (or rediss://, unix://)")
    return url
