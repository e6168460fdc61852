"""Opening the embedder the settings name, through the `embedder` registry
(ragcli/core/registry.py: EMBEDDERS, where each embedder's entry lives).

Importing this module is cheap: an embedder's module (and its onnxruntime, numpy or openai)
is imported only when it is opened, and its model loads on first use after that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from ragcli.core.registry import EMBEDDERS

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder

__all__ = ["EMBEDDERS", "help_text", "open_embedder"]


def open_embedder(settings: Settings) -> Embedder:
    """The embedder `settings.embedder` names; its model loads lazily, on first use."""
    return cast("Embedder", EMBEDDERS.open(settings.embedder, settings))


def help_text() -> str:
    """The `--embedder` option's help: every registered embedder."""
    return EMBEDDERS.help_text()
