"""The environment of a ragcli process that embeds through an OpenAI-compatible server."""

from __future__ import annotations

from tests.support.openai_server import OpenAICompatibleServer

MODEL = "text-embedding-3-small"


def remote_env(srv: OpenAICompatibleServer, *, key: str, dims: int, **extra: str) -> dict[str, str]:
    """Small chunks and vectors keep remote ingests fast in tests."""
    return {
        "RAGCLI_EMBEDDER": f"openai:{MODEL}",
        "RAGCLI_EMBED_DIMENSIONS": str(dims),
        "RAGCLI_CHUNK_TOKENS": "40",
        "RAGCLI_CHUNK_OVERLAP": "8",
        "OPENAI_BASE_URL": srv.base_url,
        "OPENAI_API_KEY": key,
        "RAGCLI_ABSTAIN_THRESHOLD": "0",  # the fake server's vectors carry no meaning
        **extra,
    }
