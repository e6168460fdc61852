"""Embedders: the embedded local ONNX model (default) and remote providers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragcli.errors import UsageError

if TYPE_CHECKING:
    from ragcli.config import Settings
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
