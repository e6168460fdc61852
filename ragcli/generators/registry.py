"""Opening the answer generator the settings name, through the `llm` registry
(ragcli/core/registry.py: GENERATORS, where each generator's entry lives).

Importing this module is cheap: a generator's module is imported only when it is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from ragcli.core.registry import GENERATORS

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.generators.base import Generator
    from ragcli.generators.openai_compat import OpenAIGenerator

__all__ = ["GENERATORS", "help_text", "open_generator", "open_openai_generator"]


def open_generator(settings: Settings) -> Generator:
    """The generator `settings.generator` names (explicit `llm`, else openai or extractive)."""
    return cast("Generator", GENERATORS.open(settings.generator, settings))


def help_text() -> str:
    """The `--llm` option's help: every registered generator."""
    return GENERATORS.help_text()


def open_openai_generator(settings: Settings) -> OpenAIGenerator:
    """`llm = openai`: an OpenAI-compatible chat API, on one endpoint or several."""
    from ragcli.core.endpoint_spec import parse_endpoints, parse_hedge_delay
    from ragcli.generators.openai_compat import OpenAIGenerator

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
