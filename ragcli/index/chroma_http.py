"""Cheap questions to a Chroma server over its REST API, stdlib only (for `ragcli status`,
which must not pay chromadb's import): is it up, and which of these collections does it have."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable
from urllib.parse import quote

from ragcli.core.urls import parse_chroma_url

_COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections/"


def missing_collections(url: str, names: Iterable[str], timeout: float = 3.0) -> set[str]:
    """The names the server lacks. Raises OSError (or ValueError) if it cannot be asked."""
    host, port, ssl = parse_chroma_url(url)
    kind = http.client.HTTPSConnection if ssl else http.client.HTTPConnection
    conn = kind(host, port, timeout=timeout)
    try:
        conn.request("GET", "/api/v2/heartbeat")
        beat = conn.getresponse()
        body = beat.read()
        if beat.status != 200 or "nanosecond heartbeat" not in json.loads(body or b"{}"):
            raise ValueError(f"not a Chroma server (heartbeat answered HTTP {beat.status})")
        missing: set[str] = set()
        for name in names:
            conn.request("GET", _COLLECTIONS + quote(name, safe=""))
            resp = conn.getresponse()
            resp.read()
            if resp.status == 404:
                missing.add(name)
            elif resp.status != 200:
                raise ValueError(f"collection lookup answered HTTP {resp.status}")
        return missing
    finally:
        conn.close()
