"""Cache keys: stable digests that every backend (SQLite, Redis) and every process shares."""

from __future__ import annotations

import hashlib
import json


def digest_key(*parts: object) -> str:
    """A cache key over any JSON-able parts (order matters)."""
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def embedding_key(model_id: str, dimensions: int, text: str) -> str:
    """Stable across processes and machines; differs for another model or dimension count."""
    return hashlib.sha256(f"{model_id}\0{dimensions}\0{text}".encode()).hexdigest()
