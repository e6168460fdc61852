"""Embedders: the embedded local ONNX model (default) and remote providers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragcli.core.errors import UsageError

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder


def open_embedder(settings: Settings) -> Embedder:
    """The embedder named by settings; its model loads lazily, on first use."""
    if settings.embedder == "local":
        from ragcli.embedders.local import LocalEmbedder

        return LocalEmbedder()
    if settings.embedder.startswith("openai:"):
        from ragcli.embedders.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder.from_settings(settings)
    raise UsageError(f"unknown embedder {settings.embedder!r}")


def settings_for_index(settings: Settings, cache_id: str) -> Settings:
    """Settings whose embedder is the one an index was built with (`Embedder.cache_id`):
    queries must be embedded into the index's own vector space, whatever is configured."""
    import dataclasses

    kind, _, rest = cache_id.partition(":")
    if kind == "local":
        return dataclasses.replace(settings, embedder="local")
    if kind == "openai":
        model, _, dims = rest.rpartition(":")
        if model and dims.isdigit():
            return dataclasses.replace(
                settings, embedder=f"openai:{model}", embed_dimensions=int(dims)
            )
    raise UsageError(f"the index was built with an unknown embedder {cache_id!r}")
