"""core/urls.py: the shared-backend URLs parsed without importing the index or the caches."""

from __future__ import annotations

import pytest

from ragcli.core.config import load_settings
from ragcli.core.errors import ConfigError
from ragcli.core.urls import check_redis_url, parse_chroma_url


def test_chroma_url_gives_host_port_and_tls() -> None:
    assert parse_chroma_url("http://chroma.internal") == ("chroma.internal", 8000, False)
    assert parse_chroma_url("https://10.0.0.5:9443") == ("10.0.0.5", 9443, True)


@pytest.mark.parametrize("url", ["chroma:8000", "ftp://h:1", "http://:8000", "http://h:port"])
def test_a_bad_chroma_url_is_one_line(url: str) -> None:
    with pytest.raises(ConfigError, match=r"use http://HOST:PORT \(a `chroma run` server\)$"):
        parse_chroma_url(url)
    with pytest.raises(ConfigError, match="^chroma_url "):
        load_settings({"chroma_url": url}, environ={})  # config validation uses it


def test_redis_url_schemes() -> None:
    for url in ("redis://h:6379/0", "rediss://h", "unix:///run/redis.sock"):
        assert check_redis_url(url) == url
        assert load_settings({"redis_url": url}, environ={}).redis_url == url
    with pytest.raises(ConfigError, match=r"^redis_url 'http://h': use redis://HOST:PORT\[/DB\]"):
        load_settings({"redis_url": "http://h"}, environ={})
