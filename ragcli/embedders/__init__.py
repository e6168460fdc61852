"""Embedders: the embedded local ONNX model (default) and remote providers. Which one a setting
names, and how to add one: ragcli/core/registry.py (EMBEDDERS) and ragcli/embedders/registry.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragcli.core.errors import UsageError
from ragcli.core.registry import EMBEDDERS
from ragcli.embedders.registry import open_embedder

__all__ = ["open_embedder", "settings_for_index"]

if TYPE_CHECKING:
    from ragcli.core.config import Settings


def settings_for_index(settings: Settings, cache_id: str) -> Settings:
    """Settings whose embedder is the one an index was built with (`Embedder.cache_id`):
    queries must be embedded into the index's own vector space, whatever is configured.

    A registered embedder without an argument is named by its cache id's first part
    (`local:all-MiniLM-L6-v2` -> local); one with an argument by the whole cache id
    (`NAME:ARG`), except `openai:MODEL:DIMENSIONS`, which also sets the dimensions."""
    import dataclasses

    kind, _, rest = cache_id.partition(":")
    entry = EMBEDDERS.get(kind)
    if entry is not None and not entry.arg:
        return dataclasses.replace(settings, embedder=entry.name)
    if kind == "openai":
        model, _, dims = rest.rpartition(":")
        if model and dims.isdigit():
            return dataclasses.replace(
                settings, embedder=f"openai:{model}", embed_dimensions=int(dims)
            )
    elif entry is not None and rest:
        return dataclasses.replace(settings, embedder=cache_id)
    raise UsageError(f"the index was built with an unknown embedder {cache_id!r}")
