"""The closed-set string settings are Literal types, and validation reads their values from the
annotations (written once): each value is accepted, anything else is one ConfigError line
listing them; the cache names come from the same kind of Literal."""

from __future__ import annotations

from typing import get_args

import pytest

from ragcli.core.config import (
    CACHE_NAMES,
    CacheName,
    PromptLayout,
    RetrievalMode,
    SearchMethod,
    load_settings,
)
from ragcli.core.errors import ConfigError

CHOICES = {"retrieval": RetrievalMode, "search": SearchMethod, "prompt_layout": PromptLayout}


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_value_of_a_literal_setting_is_accepted(name: str) -> None:
    for value in get_args(CHOICES[name]):
        assert getattr(load_settings({name: value}, environ={}), name) == value


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("retrieval", "unknown retrieval 'sideways': use 'dense', 'lexical' or 'hybrid'"),
        ("search", "unknown search 'sideways': use 'hnsw' or 'exact'"),
        ("prompt_layout", "unknown prompt_layout 'sideways': use 'auto', 'prefix' or 'ranked'"),
    ],
)
def test_anything_else_is_one_line_listing_the_values(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({name: "sideways"}, environ={})
    assert str(err.value) == message


def test_the_environment_is_checked_the_same_way() -> None:
    with pytest.raises(ConfigError, match="^unknown search 'annoy': use 'hnsw' or 'exact'$"):
        load_settings(environ={"RAGCLI_SEARCH": "annoy"})


def test_cache_names_come_from_the_literal() -> None:
    assert CACHE_NAMES == set(get_args(CacheName)) == {"embedding", "retrieval", "answer"}
    assert load_settings({"no_cache": "answer"}, environ={}).caches == {"embedding", "retrieval"}
    assert load_settings({"no_cache": "all"}, environ={}).caches == frozenset()
    with pytest.raises(ConfigError) as err:
        load_settings({"no_cache": "answer,vectors"}, environ={})
    assert str(err.value) == (
        "unknown cache 'vectors' in no_cache: use embedding, retrieval, answer or all"
    )
