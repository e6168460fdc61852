"""API keys of `ragcli serve`: where they come from, what each may do, and the check of a
presented token.

A key has a name (shown in /metrics and in messages; never the secret), the secret, and
optionally the partitions it may search and its own requests-per-minute limit.

The keys file (`--api-key-file FILE`, or RAGCLI_SERVE_API_KEY_FILE), TOML:

    [[keys]]
    name = "hr-bot"                 # letters, digits, then also - _ . (at most 64)
    key = "rk-7Hq2…"                # the secret; or key_sha256 = "<hex sha256 of it>"
    partitions = ["hr"]             # optional: only these partitions (default: all)
    rate_per_minute = 120           # optional: overrides --rate-limit; 0 = no limit

The file must not be writable by other users, nor belong to a user other than this one or
root. `key_sha256` lets the file hold no secret at all (`printf %s "$KEY" | sha256sum`).

RAGCLI_SERVE_API_KEYS holds the same in a compact form, entries separated by commas:

    NAME=SECRET[@PARTITION[+PARTITION…]][#RATE]
    e.g.  admin=rk-…,hr-bot=rk-…@hr#120,ops-bot=rk-…@runbooks+engineering

A secret is at least 16 characters of A-Z a-z 0-9 - . _ ~ + / then optional = padding (an
RFC 6750 bearer token), so `@`, `#` and `,` never occur in one. The file and the variable
may both be given; names and secrets must be unique across them.

Only the SHA-256 digest of each secret is kept after loading. A presented token is hashed and
compared with every key's digest by `hmac.compare_digest`, without stopping at a match.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.core.errors import ConfigError

ENV_KEYS = "RAGCLI_SERVE_API_KEYS"
ENV_KEY_FILE = "RAGCLI_SERVE_API_KEY_FILE"
FIELDS = ("name", "key", "key_sha256", "partitions", "rate_per_minute")
MIN_SECRET = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SECRET = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
NAME_RULE = "1-64 letters, digits, - _ . (a letter or digit first)"
SECRET_RULE = (
    f"at least {MIN_SECRET} characters of A-Z a-z 0-9 - . _ ~ + / (then optional = padding)"
)


@dataclass(frozen=True)
class ApiKey:
    """One key as kept in memory: its name, the digest of its secret, its scope and limit."""

    name: str
    digest: bytes = field(repr=False)
    partitions: tuple[str, ...] | None = None  # None: every partition
    rate_per_minute: int | None = None  # None: the server's --rate-limit; 0: none


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class Keyring:
    """The keys a server accepts."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = tuple(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def check(self, token: str) -> ApiKey | None:
        """The key whose secret `token` is, else None. Every key's digest is compared, in
        constant time each, whichever matches (or none)."""
        presented = digest(token)
        found: ApiKey | None = None
        for key in self.keys:
            if hmac.compare_digest(presented, key.digest):
                found = key
        return found


def load_keys(path: Path | None, env_value: str | None) -> Keyring | None:
    """The keys of the file and of RAGCLI_SERVE_API_KEYS' value, or None when neither is
    given. Any fault is one ConfigError line that never shows a secret."""
    keys: list[ApiKey] = []
    if path is not None:
        keys += keys_from_file(path)
    if env_value is not None and env_value.strip():
        keys += keys_from_env(env_value)
    if path is None and not keys:
        return None
    _check_unique(keys)
    return Keyring(keys)


def _check_unique(keys: Sequence[ApiKey]) -> None:
    names: set[str] = set()
    by_digest: dict[bytes, str] = {}
    for key in keys:
        if key.name in names:
            raise ConfigError(f"API keys: the name {key.name!r} is used twice")
        names.add(key.name)
        if key.digest in by_digest:
            raise ConfigError(
                f"API keys: {by_digest[key.digest]!r} and {key.name!r} have the same secret"
            )
        by_digest[key.digest] = key.name


def check_file_private(path: Path) -> None:
    """Refuse a keys file that another user could change (or that is missing)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"keys file {path}: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"keys file {path}: not a regular file")
    if st.st_uid not in (os.getuid(), 0):
        raise ConfigError(
            f"keys file {path} belongs to another user (uid {st.st_uid}): it could change it"
        )
    if st.st_mode & 0o022:
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(
            f"keys file {path} is writable by other users (mode {mode:04o}): chmod go-w {path}"
        )


def keys_from_file(path: Path) -> list[ApiKey]:
    """The `[[keys]]` of a TOML keys file."""
    check_file_private(path)
    where = f"keys file {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:  # its message names a line, never a value
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror or type(exc).__name__}") from None
    extra = sorted(set(data) - {"keys"})
    if extra:
        raise ConfigError(f"{where}: unknown setting {extra[0]!r} (expected [[keys]] tables)")
    tables = data.get("keys")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{where}: no [[keys]] table")
    return [_key_from_table(t, where, n) for n, t in enumerate(tables, 1)]


def _key_from_table(table: Any, file: str, n: int) -> ApiKey:
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: key {n}: expected a [[keys]] table")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{file}: key {n}: name must be {NAME_RULE}")
    where = f"{file}: key {name!r}"
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    if ("key" in table) == ("key_sha256" in table):
        raise ConfigError(f"{where}: give either key or key_sha256")
    if "key" in table:
        key_digest = digest(_secret(table["key"], where))
    else:
        hexed = table["key_sha256"]
        if not isinstance(hexed, str) or not _HEX_SHA256.fullmatch(hexed):
            raise ConfigError(f"{where}: key_sha256 must be 64 hexadecimal digits")
        key_digest = bytes.fromhex(hexed)
    return ApiKey(
        name,
        key_digest,
        _partitions(table.get("partitions"), where),
        _rate(table.get("rate_per_minute"), where),
    )


def _secret(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: the key is empty")
    if len(value) < MIN_SECRET or not _SECRET.fullmatch(value):
        raise ConfigError(f"{where}: the key must be {SECRET_RULE}")
    return value


def _partitions(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(p, str) and p.strip() for p in value)
    ):
        raise ConfigError(
            f"{where}: partitions must be a non-empty list of names (leave it out for all)"
        )
    return tuple(sorted(set(value)))


def _rate(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: rate_per_minute must be a whole number >= 0 (0: no limit)")
    return value


def keys_from_env(value: str) -> list[ApiKey]:
    """The keys of RAGCLI_SERVE_API_KEYS (format in this module's docstring)."""
    keys = []
    for n, entry in enumerate(value.split(","), 1):
        entry = entry.strip()
        if not entry:
            continue  # a trailing comma
        where = f"{ENV_KEYS}: entry {n}"
        name, sep, rest = entry.partition("=")
        if not sep or not _NAME.fullmatch(name.strip()):
            raise ConfigError(f"{where}: expected NAME=SECRET[@PARTITION[+PARTITION…]][#RATE]")
        name = name.strip()
        where = f"{ENV_KEYS}: key {name!r}"
        rest, _, rate = rest.partition("#")
        secret, at, parts = rest.partition("@")
        partitions = _partitions(parts.split("+"), where) if at else None
        if rate and not rate.isdigit():
            raise ConfigError(f"{where}: #RATE must be a whole number of requests per minute")
        keys.append(
            ApiKey(name, digest(_secret(secret, where)), partitions, int(rate) if rate else None)
        )
    return keys
