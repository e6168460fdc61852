"""Answer generators: the offline extractive default, OpenAI-compatible servers and a local
llama.cpp model (the optional `local` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.generators.base import Generator


def open_generator(settings: Settings) -> Generator:
    if settings.generator == "openai":
        from ragcli.generators.openai_compat import OpenAIGenerator
        from ragcli.core.endpoint_spec import parse_endpoints, parse_hedge_delay

        return OpenAIGenerator(
            settings.llm_model,
            settings.openai_base_url,
            settings.openai_api_key,
            reuse_connections=settings.connection_reuse,
            timeout_s=settings.provider_timeout,
            endpoints=parse_endpoints(settings.llm_endpoints, settings.openai_base_url),
            hedge_delay=parse_hedge_delay(settings.hedge_delay_ms),
            attempts=settings.llm_attempts,
        )
    if settings.generator == "local":
        from ragcli.generators.local import LocalGenerator

        return LocalGenerator(settings.local_model)
    from ragcli.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator()
