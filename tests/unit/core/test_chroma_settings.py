"""The Chroma server's settings: chroma_token (config or environment, never shown),
chroma_token_header, chroma_ca_file, and the URL forms (core/config.py, core/urls.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.core.config import load_settings
from ragcli.core.errors import ConfigError
from ragcli.core.urls import ChromaAccess, parse_chroma_url

TOKEN = "tok-S3cret.value_42"


def test_the_token_header_forms() -> None:
    assert ChromaAccess("https://h", TOKEN).headers() == {"Authorization": f"Bearer {TOKEN}"}
    raw = ChromaAccess("https://h", TOKEN, "X-Chroma-Token")
    assert raw.headers() == {"X-Chroma-Token": TOKEN}
    assert ChromaAccess("https://h").headers() == {}


def test_settings_take_the_token_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    env = {"RAGCLI_CHROMA_URL": "https://chroma.internal", "RAGCLI_CHROMA_TOKEN": TOKEN}
    access = load_settings(environ=env).chroma
    assert access == ChromaAccess("https://chroma.internal", TOKEN, "Authorization", "")
    config = tmp_path / "ragcli.toml"
    config.write_text(
        f'chroma_url = "https://c:9443"\nchroma_token = "{TOKEN}"\n'
        'chroma_token_header = "X-Chroma-Token"\n'
    )
    access = load_settings(config_file=config, environ={}).chroma
    assert access is not None and access.headers() == {"X-Chroma-Token": TOKEN}
    assert load_settings(environ={}).chroma is None  # no URL: the embedded index


def test_the_token_is_never_shown(tmp_path: Path) -> None:
    settings = load_settings({"chroma_url": "https://h"}, environ={"RAGCLI_CHROMA_TOKEN": TOKEN})
    assert TOKEN not in repr(settings) and TOKEN not in repr(settings.chroma)
    for bad in (f"{TOKEN} x", f"{TOKEN}\r\nX-Evil: 1", f"{TOKEN}é"):
        with pytest.raises(ConfigError, match="^chroma_token must be printable ASCII") as err:
            load_settings(environ={"RAGCLI_CHROMA_TOKEN": bad})
        assert TOKEN not in str(err.value)
    config = tmp_path / "ragcli.toml"
    config.write_text(f'chroma_token = ["{TOKEN}"]\n')  # a list where a string belongs
    with pytest.raises(ConfigError, match=r"chroma_token has an invalid value \(not shown") as err:
        load_settings(config_file=config, environ={})
    assert TOKEN not in str(err.value)


def test_a_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="^chroma_url must not carry a user or password") as err:
        load_settings({"chroma_url": "https://admin:hunter2@chroma:8000"}, environ={})
    assert "hunter2" not in str(err.value)
    # https is a TLS proxy's: 443 unless given; http is `chroma run`'s 8000
    assert parse_chroma_url("https://chroma.example.com") == ("chroma.example.com", 443, True)
    assert parse_chroma_url("http://chroma.example.com") == ("chroma.example.com", 8000, False)
    with pytest.raises(ConfigError, match="use http://HOST:PORT"):
        parse_chroma_url("http://[::1")  # not a traceback


@pytest.mark.parametrize(
    "url", ["https://h:443/chroma", "https://h/?token=abc", "http://h:8000/api/v2#x"]
)
def test_a_url_with_a_path_or_query_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="must be at the root of HOST:PORT") as err:
        parse_chroma_url(url)
    assert "abc" not in str(err.value)
    assert parse_chroma_url("http://h:8000/") == ("h", 8000, False)


def test_an_unknown_token_header_is_one_line() -> None:
    with pytest.raises(ConfigError, match="^unknown chroma_token_header 'Bearer'"):
        load_settings(environ={"RAGCLI_CHROMA_TOKEN_HEADER": "Bearer"})


def test_the_ca_file_is_checked_and_taken_from_the_working_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^chroma_ca_file .*missing.pem: no such file$"):
        load_settings(environ={"RAGCLI_CHROMA_CA_FILE": str(tmp_path / "missing.pem")})
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="junk.pem: not a PEM CA file TLS can load"):
        load_settings(environ={"RAGCLI_CHROMA_CA_FILE": str(junk)})
    trustme = pytest.importorskip("trustme")
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    # relative: from the process's directory (the daemon passes its client's)
    got = load_settings(environ={"RAGCLI_CHROMA_CA_FILE": "ca.pem"}, cwd=tmp_path)
    assert got.chroma_ca_file == str(tmp_path / "ca.pem")


@pytest.mark.parametrize(
    ("url", "token", "clear"),
    [
        ("http://chroma.internal:8000", TOKEN, True),
        ("http://10.0.0.5:8000", TOKEN, True),
        ("https://chroma.internal", TOKEN, False),
        ("http://127.0.0.1:8000", TOKEN, False),
        ("http://localhost:8000", TOKEN, False),
        ("http://[::1]:8000", TOKEN, False),
        ("http://chroma.internal:8000", "", False),
    ],
)
def test_cleartext_is_a_token_over_plain_http_to_another_machine(
    url: str, token: str, clear: bool
) -> None:
    assert ChromaAccess(url, token).cleartext() is clear


def test_refusal_lines_say_missing_or_wrong_never_the_token() -> None:
    missing = ChromaAccess("https://h:1").refusal(401)
    assert missing == (
        "the Chroma server at https://h:1 asks for a token (HTTP 401): "
        "set chroma_token (or RAGCLI_CHROMA_TOKEN)"
    )
    wrong = ChromaAccess("https://h:1", TOKEN).refusal(403)
    assert wrong.startswith("the Chroma server at https://h:1 refused the token (HTTP 403)")
    assert TOKEN not in wrong
    assert ChromaAccess("https://h:1", TOKEN).redact(f"echo {TOKEN}!") == "echo ***!"
