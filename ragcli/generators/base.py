"""What every answer generator offers. Generators see text, never the index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ragcli.generators.prompt_types import Prompt


class Generator(Protocol):
    name: str  # e.g. "extractive" or "openai:gpt-4o-mini"; part of the answer-cache key

    def count_tokens(self, text: str) -> int: ...

    async def warm(self) -> None:
        """Do any slow set-up (imports, clients, connections) before the first question."""
        ...

    def stream(self, question: str, prompt: Prompt) -> AsyncIterator[str]:
        """Yield the answer in pieces as soon as each is available."""
        ...
