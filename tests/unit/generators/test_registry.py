"""The answer-generator registry (ragcli/core/registry.py GENERATORS, opened by
ragcli/generators/registry.py): config validation and the CLI help read it, and an entry
registered at run time is found and opened without any change to config.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ragcli.core.config import Settings, load_settings
from ragcli.core.errors import ConfigError
from ragcli.core.registry import GENERATORS, Entry, resolve
from ragcli.generators import open_generator
from ragcli.generators.prompt_types import Prompt
from ragcli.generators.registry import help_text


class EchoGenerator:
    """Stands in for a new generator module."""

    prompt_layout = "ranked"
    label = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_settings(cls, settings: Settings) -> EchoGenerator:
        return cls(f"echo:{settings.llm_model}")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def warm(self) -> None:
        return None

    async def stream(self, question: str, prompt: Prompt) -> AsyncIterator[str]:
        yield question


@pytest.fixture
def echo() -> Iterator[Entry]:
    entry = GENERATORS.register(
        Entry("echo", "repeats the question", f"{__name__}:EchoGenerator.from_settings")
    )
    try:
        yield entry
    finally:
        GENERATORS.unregister("echo")


def test_unknown_llm_is_one_line_listing_the_registered_names() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"llm": "gpt"}, environ={})
    assert str(err.value) == "unknown llm 'gpt': use 'extractive', 'openai' or 'local'"


def test_a_registered_generator_is_validated_listed_and_opened(echo: Entry) -> None:
    settings = load_settings({"llm": "echo", "llm_model": "m1"}, environ={})
    generator = open_generator(settings)
    assert isinstance(generator, EchoGenerator) and generator.name == "echo:m1"
    with pytest.raises(ConfigError, match=r"use 'extractive', 'openai', 'local' or 'echo'$"):
        load_settings({"llm": "gpt"}, environ={})
    assert help_text().endswith(", local (llama.cpp in-process) or echo.")


def test_an_unregistered_generator_is_refused_again(echo: Entry) -> None:
    GENERATORS.unregister("echo")
    try:
        with pytest.raises(ConfigError, match="unknown llm 'echo'"):
            load_settings({"llm": "echo"}, environ={})
    finally:
        GENERATORS.register(echo)


def test_the_cli_help_wording_is_the_registry() -> None:
    assert (
        help_text() == "extractive, openai (OPENAI_BASE_URL/KEY) or local (llama.cpp in-process)."
    )


def test_every_builtin_target_resolves_to_a_factory() -> None:
    for entry in GENERATORS.entries:
        assert callable(resolve(entry.target)), entry


def test_the_builtin_generators_open_from_settings() -> None:
    assert open_generator(load_settings(environ={})).name == "extractive"
    settings = load_settings(
        {"llm_model": "m2", "llm_endpoints": "http://127.0.0.1:9/v1,http://127.0.0.1:10/v1"},
        environ={"OPENAI_API_KEY": "sk-test"},
    )
    generator = open_generator(settings)  # openai: selected by the configured key
    assert generator.name == "openai:m2"
    assert [e.url for e in generator.pool.endpoints] == [  # type: ignore[attr-defined]
        "http://127.0.0.1:9/v1",
        "http://127.0.0.1:10/v1",
    ]
