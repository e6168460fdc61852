"""What a Redis URL shows of itself in messages (ragcli/caches/redis_backend.py): never its
password, its `password` or `ssl_password` query option; and the one line each failure
becomes. The failures against a real redis-server are in tests/e2e/test_redis_auth.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoPermissionError,
    ResponseError,
    TimeoutError,
)

from ragcli.caches.redis_backend import connect, display_url, explain, scrub
from ragcli.core.errors import ConfigError
from ragcli.core.urls import check_redis_url

SECRET = "Pw-9f3-DO-NOT-PRINT"


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"redis://:{SECRET}@h:6379/0", "redis://:***@h:6379/0"),
        (f"redis://app:{SECRET}@h/1", "redis://app:***@h/1"),
        (f"redis://app:p@{SECRET}@h/1", "redis://app:***@h/1"),  # an unescaped @ in it
        (f"rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_password={SECRET}",
         "rediss://h:6380/0?ssl_ca_certs=/ca.pem&ssl_password=***"),
        (f"redis://h/0?password={SECRET}", "redis://h/0?password=***"),
        (f"unix://:{SECRET}@/run/redis.sock?db=2", "unix://:***@/run/redis.sock?db=2"),
        (f"redis://:{SECRET}@[::1/0", "redis://(unreadable URL)"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)  # fmt: skip
def test_display_url_shows_no_secret(url: str, shown: str) -> None:
    assert display_url(url) == shown


def test_scrub_masks_the_password_as_written_and_decoded() -> None:
    url = "redis://app:a%40b-secret@h/0?ssl_password=key-pass"
    text = "said a@b-secret and a%40b-secret and key-pass"
    assert scrub(text, url) == "said *** and *** and ***"
    assert scrub("nothing here", "redis://h/0") == "nothing here"


@pytest.mark.parametrize(
    "exc, url, line",
    [
        (AuthenticationError("HELLO must be called with the client already authenticated"),
         "redis://h:1/0", "Redis at redis://h:1/0 wants a password (NOAUTH): give it in the URL"),
        (AuthenticationError("Authentication required."),  # RESP2: the PING's NOAUTH
         "redis://h:1/0", "Redis at redis://h:1/0 wants a password (NOAUTH)"),
        (AuthenticationError("invalid username-password pair or user is disabled."),
         f"redis://:{SECRET}@h:1/0", "Redis at redis://:***@h:1/0 refused the password (invalid"),
        (AuthenticationError("invalid username-password pair or user is disabled."),
         f"redis://u:{SECRET}@h:1/0", "Redis at redis://u:***@h:1/0 refused the user name or"),
        (NoPermissionError("this user has no permissions to run the 'info' command"),
         "redis://h:1/0", "Redis at redis://h:1/0 refused a command to this user (NOPERM this "
         "user has no permissions to run the 'info' command): give it the ACL of"),
        (ConnectionError("Error 1 connecting to h:1. [SSL: CERTIFICATE_VERIFY_FAILED] "
                         "certificate verify failed: self-signed certificate (_ssl.c:1006)."),
         "rediss://h:1/0", "cannot reach Redis at rediss://h:1/0: its TLS certificate is not "
         "trusted (self-signed certificate): name the CA that signed it, rediss://HOST:PORT/DB"
         "?ssl_ca_certs=/path/ca.pem"),
        (ConnectionError("Error while reading from h:1 : (104, 'Connection reset by peer')"),
         "redis://h:1/0", "cannot reach Redis at redis://h:1/0: Error while reading from h:1 : "
         "(104, 'Connection reset by peer') (if the server speaks TLS, use rediss://)"),
        (TimeoutError("Timeout connecting to server"), "rediss://h:1/0",
         "cannot reach Redis at rediss://h:1/0: Timeout connecting to server (if the server "
         "does not speak TLS, use redis://)"),
        (TimeoutError("Timeout reading from h:1"), "redis://h:1/0",
         "cannot reach Redis at redis://h:1/0: Timeout reading from h:1"),
        (ResponseError(f"echoed {SECRET}"), f"redis://:{SECRET}@h:1/0",
         "Redis at redis://:***@h:1/0: echoed ***"),
    ],
)  # fmt: skip
def test_each_failure_is_one_line_that_says_what_to_do(exc: Exception, url: str, line: str) -> None:
    got = explain(exc, url)
    assert got.startswith(line) and "\n" not in got and SECRET not in got


def test_a_url_of_another_scheme_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        check_redis_url(f"http://app:{SECRET}@h:6379/0?ssl_password={SECRET}")
    assert str(caught.value).startswith("redis_url 'http://***@h:6379/0': use redis://")
    with pytest.raises(ConfigError) as caught:
        check_redis_url(f"app:{SECRET}@h:6379")
    assert SECRET not in str(caught.value)


def test_a_missing_tls_file_or_an_unknown_option_is_a_config_error(tmp_path: Path) -> None:
    """Both found before any connection is tried (port 1: nothing listens there)."""
    missing = tmp_path / "ca.pem"
    with pytest.raises(ConfigError) as caught:
        connect(f"rediss://:{SECRET}@127.0.0.1:1/0?ssl_ca_certs={missing}")
    assert str(caught.value) == (
        f"redis_url rediss://:***@127.0.0.1:1/0?ssl_ca_certs={missing}: "
        f"ssl_ca_certs {missing}: no such file"
    )
    with pytest.raises(ConfigError) as caught:
        connect(f"redis://:{SECRET}@127.0.0.1:1/0?ssl_ca_cert=/ca.pem")
    assert str(caught.value).startswith(
        "redis_url redis://:***@127.0.0.1:1/0?ssl_ca_cert=/ca.pem: unknown option 'ssl_ca_cert'"
    )
