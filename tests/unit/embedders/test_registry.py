"""The embedder registry (EMBEDDERS in ragcli/core/registry.py, opened by
ragcli/embedders/registry.py): config validation and the CLI help read it, and an entry
registered at run time is found and opened without any change to config.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ragcli.core.config import Settings, load_settings
from ragcli.core.errors import ConfigError, UsageError
from ragcli.core.registry import EMBEDDERS, Entry, resolve
from ragcli.embedders import open_embedder, settings_for_index
from ragcli.embedders.registry import help_text


class FakeEmbedder:
    """Stands in for a new embedder module."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_id = settings.embedder.partition(":")[2] or "fake"

    @classmethod
    def from_settings(cls, settings: Settings) -> FakeEmbedder:
        return cls(settings)


@pytest.fixture
def fake() -> Iterator[Entry]:
    entry = EMBEDDERS.register(
        Entry(
            "fake",
            "a test double",
            f"{__name__}:FakeEmbedder.from_settings",
            arg="SIZE",
            example="fake:8",
            note="tests only",
        )
    )
    try:
        yield entry
    finally:
        EMBEDDERS.unregister("fake")


def test_unknown_embedder_is_one_line_listing_the_registered_names() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"embedder": "word2vec"}, environ={})
    assert (
        str(err.value) == "unknown embedder 'word2vec': use 'local', 'local-int8' or 'openai:MODEL'"
    )
    with pytest.raises(ConfigError, match=r"^embedder 'openai:' needs a model, e.g. openai:text"):
        load_settings({"embedder": "openai:"}, environ={})


def test_a_registered_embedder_is_validated_listed_and_opened(fake: Entry) -> None:
    settings = load_settings({"embedder": "fake:8"}, environ={})  # valid now: no config.py change
    opened: Any = open_embedder(settings)
    assert isinstance(opened, FakeEmbedder) and opened.model_id == "8"
    with pytest.raises(
        ConfigError, match=r"use 'local', 'local-int8', 'openai:MODEL' or 'fake:SIZE'$"
    ):
        load_settings({"embedder": "word2vec"}, environ={})
    with pytest.raises(ConfigError, match=r"^embedder 'fake:' needs a size, e.g. fake:8$"):
        load_settings({"embedder": "fake:"}, environ={})
    assert help_text().endswith(
        ", openai:MODEL (e.g. openai:text-embedding-3-small) or fake:SIZE (tests only)."
    )


def test_an_unregistered_embedder_is_refused_again(fake: Entry) -> None:
    EMBEDDERS.unregister("fake")
    try:
        with pytest.raises(ConfigError, match="unknown embedder 'fake:8'"):
            load_settings({"embedder": "fake:8"}, environ={})
        with pytest.raises(UsageError, match="unknown embedder 'fake:8'"):
            open_embedder(Settings(embedder="fake:8"))  # not validated: open refuses it too
    finally:
        EMBEDDERS.register(fake)


def test_a_name_is_registered_once(fake: Entry) -> None:
    with pytest.raises(ValueError, match="registered already"):
        EMBEDDERS.register(fake)


def test_the_cli_help_wording_is_the_registry() -> None:
    assert help_text() == "local, local-int8 or openai:MODEL (e.g. openai:text-embedding-3-small)."


def test_every_builtin_target_resolves_to_a_factory() -> None:
    for entry in EMBEDDERS.entries:
        assert callable(resolve(entry.target)), entry


def test_the_builtin_embedders_open_from_settings() -> None:
    local = open_embedder(load_settings({"embedder": "local"}, environ={}))
    assert type(local).__name__ == "LocalEmbedder" and local.cache_id.startswith("local:")
    remote = open_embedder(
        load_settings(
            {"embedder": "openai:text-embedding-3-small", "embed_dimensions": 256},
            environ={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
        )
    )
    assert remote.cache_id == "openai:text-embedding-3-small:256"


def test_an_index_names_its_embedder_through_the_registry(fake: Entry) -> None:
    base = load_settings(environ={})
    assert settings_for_index(base, "local:all-MiniLM-L6-v2").embedder == "local"
    remote = settings_for_index(base, "openai:text-embedding-3-small:256")
    assert (remote.embedder, remote.embed_dimensions) == ("openai:text-embedding-3-small", 256)
    assert settings_for_index(base, "fake:8").embedder == "fake:8"  # registered: found
    for unknown in ("word2vec:1", "openai:no-dimensions", "fake"):
        with pytest.raises(UsageError, match="the index was built with an unknown embedder"):
            settings_for_index(base, unknown)
