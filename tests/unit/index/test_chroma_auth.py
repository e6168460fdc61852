"""The store and status's stdlib REST checks against a Chroma server behind an authenticating
proxy and TLS (tests/support/auth_proxy.py in front of the session's real `chroma run`, a
throwaway CA): the token goes on every request in the header chosen, https is checked against
chroma_ca_file, and a missing or wrong token is one line that never holds it. Through ragcli
processes (ingest, ask, status, index, the daemon): tests/e2e/test_chroma_auth.py."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.core.urls import ChromaAccess
from ragcli.index.chroma_http import TokenRefused, missing_collections, warn_cleartext
from ragcli.index.store import HnswParams, Store, StoreError
from tests.support.auth_proxy import X_CHROMA_TOKEN, SecuredChroma, secured_chroma


@pytest.fixture(scope="module")
def secured(
    chroma_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredChroma]:
    yield from secured_chroma(chroma_server.port, tmp_path_factory.mktemp("chroma-auth"))


def _access(
    s: SecuredChroma, token: str | None = None, header: str = "Authorization"
) -> ChromaAccess:
    return ChromaAccess(s.url, s.token if token is None else token, header, s.ca_file)


def test_the_store_sends_the_token_on_every_request(secured: SecuredChroma) -> None:
    secured.proxy.reset()
    name = f"auth-{uuid.uuid4().hex[:8]}"
    store = Store(url=_access(secured))
    store.create(name, HnswParams())
    assert name in store.names()
    store.drop(name)
    proxy = secured.proxy
    assert proxy.refused == 0 and proxy.allowed >= 4
    assert proxy.forms == {"Authorization": proxy.allowed}
    assert any(p.startswith("POST ") and p.endswith("/collections") for p in proxy.paths)
    assert secured.tls.accepted >= 1  # it came over TLS, checked against the CA file


def test_the_raw_header_form(secured: SecuredChroma) -> None:
    secured.proxy.reset()
    secured.proxy.accept = (X_CHROMA_TOKEN,)
    try:
        Store(url=_access(secured, header=X_CHROMA_TOKEN)).names()
        assert secured.proxy.forms == {X_CHROMA_TOKEN: secured.proxy.allowed}
        assert secured.proxy.refused == 0
        with pytest.raises(StoreError, match=r"refused the token \(HTTP 401\)"):
            Store(url=_access(secured)).names()  # Bearer, where the proxy wants X-Chroma-Token
    finally:
        secured.proxy.accept = ("Authorization", X_CHROMA_TOKEN)


@pytest.mark.parametrize(
    ("token", "line"),
    [
        ("", "asks for a token (HTTP 401): set chroma_token (or RAGCLI_CHROMA_TOKEN)"),
        ("tok-wrong-0123456789", "refused the token (HTTP 401): check chroma_token"),
    ],
)
def test_a_missing_or_wrong_token_is_one_line(
    secured: SecuredChroma, token: str, line: str
) -> None:
    secured.proxy.reset()
    with pytest.raises(StoreError) as err:
        Store(url=_access(secured, token)).names()
    assert str(err.value) == f"the Chroma server at {secured.url} {line}" + (
        " / RAGCLI_CHROMA_TOKEN (and chroma_token_header)" if token else ""
    )
    assert secured.proxy.refused >= 1 and secured.proxy.allowed == 0
    with pytest.raises(TokenRefused) as refused:
        missing_collections(_access(secured, token), ["any"])
    assert str(refused.value) == str(err.value)
    for text in (str(err.value), repr(err.value)):
        assert secured.token not in text and (not token or token not in text)


def test_status_checks_send_the_token(secured: SecuredChroma) -> None:
    name = f"auth-{uuid.uuid4().hex[:8]}"
    Store(url=_access(secured)).create(name, HnswParams())
    secured.proxy.reset()
    assert missing_collections(_access(secured), [name, "not-there"]) == {"not-there"}
    assert secured.proxy.refused == 0 and secured.proxy.allowed >= 3  # heartbeat + 2 lookups
    Store(url=_access(secured)).drop(name)


def test_a_proxy_that_leaves_the_heartbeat_open_still_refuses(secured: SecuredChroma) -> None:
    """Load balancers' health checks often reach the heartbeat without a token: a wrong token
    is refused all the same, by the store and by status's checks (even with no collection to
    look up)."""
    secured.proxy.reset()
    secured.proxy.open_paths = ("/api/v2/heartbeat",)
    wrong = _access(secured, "tok-wrong-0123456789")
    with pytest.raises(TokenRefused, match=r"refused the token \(HTTP 401\)"):
        missing_collections(wrong, [])
    with pytest.raises(StoreError, match=r"refused the token \(HTTP 401\)"):
        Store(url=wrong).names()
    assert secured.proxy.unchecked >= 1 and secured.proxy.allowed == 0
    secured.proxy.reset()


def test_https_checks_the_certificate(secured: SecuredChroma) -> None:
    """Without the CA file the test CA is unknown: refused, with the setting to use."""
    no_ca = ChromaAccess(secured.url, secured.token)
    with pytest.raises(StoreError) as err:
        Store(url=no_ca).names()
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
    assert "chroma_ca_file / RAGCLI_CHROMA_CA_FILE" in str(err.value)
    with pytest.raises(ssl.SSLCertVerificationError):
        missing_collections(no_ca, ["any"])


def test_a_token_over_plain_http_to_another_machine_is_warned_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    far = ChromaAccess("http://chroma.internal:8000", "tok-abc")
    warn_cleartext(far)
    warn_cleartext(far)
    warn_cleartext(ChromaAccess("http://127.0.0.1:8000", "tok-abc"))  # loopback: no warning
    warn_cleartext(ChromaAccess("https://chroma.internal", "tok-abc"))
    err = capsys.readouterr().err
    assert err == (
        "ragcli: warning: chroma_token goes in clear text to http://chroma.internal:8000 "
        "(plain http to another machine): use an https:// URL\n"
    )


def test_the_plain_proxy_without_tls(secured: SecuredChroma, tmp_path: Path) -> None:
    """http:// to the proxy on loopback: the same token, no warning, no CA needed."""
    secured.proxy.reset()
    Store(url=ChromaAccess(secured.proxy.url, secured.token)).names()
    assert secured.proxy.refused == 0 and secured.proxy.allowed >= 1
