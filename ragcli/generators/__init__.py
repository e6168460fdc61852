"""Answer generators: the offline extractive default and OpenAI-compatible servers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcli.config import Settings
    from ragcli.generators.base import Generator


def open_generator(settings: Settings) -> Generator:
    if settings.generator == "openai":
        from ragcli.generators.openai_compat import OpenAIGenerator

        return OpenAIGenerator(
            settings.llm_model,
            settings.openai_base_url,
            settings.openai_api_key,
            reuse_connections=settings.connection_reuse,
        )
    from ragcli.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator()
