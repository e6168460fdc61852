"""API keys of `serve` (ragcli/serve/keys.py): the TOML file and RAGCLI_SERVE_API_KEYS, every
fault one line that never shows a secret, a file other users could change refused, and the
check of a presented token: every key compared whatever matches, only digests kept."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest

from ragcli.core.errors import ConfigError
from ragcli.serve import keys as keys_module
from ragcli.serve.keys import Keyring, keys_from_env, load_keys

HR = "rk-hr-0123456789abcdefgh"
ADMIN = "rk-admin-0123456789abcdef"
OPS = "rk-ops-0123456789abcdefgh"
SECRETS = (HR, ADMIN, OPS)


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


GOOD = f"""
[[keys]]
name = "admin"
key = "{ADMIN}"

[[keys]]
name = "hr-bot"
key = "{HR}"
partitions = ["hr", "policies", "hr"]
rate_per_minute = 120

[[keys]]
name = "ops.bot_2"
key_sha256 = "{hashlib.sha256(OPS.encode()).hexdigest()}"
rate_per_minute = 0
"""


def test_a_keys_file_and_the_variable_together(tmp_path: Path) -> None:
    ring = load_keys(write(tmp_path, GOOD), f" env-bot={'e' * 20}@runbooks+engineering#30 ,")
    assert ring is not None
    by_name = {k.name: k for k in ring.keys}
    assert list(by_name) == ["admin", "hr-bot", "ops.bot_2", "env-bot"]
    assert by_name["admin"].partitions is None and by_name["admin"].rate_per_minute is None
    assert by_name["hr-bot"].partitions == ("hr", "policies")
    assert by_name["hr-bot"].rate_per_minute == 120
    assert by_name["ops.bot_2"].rate_per_minute == 0
    assert by_name["env-bot"].partitions == ("engineering", "runbooks")
    assert by_name["env-bot"].rate_per_minute == 30
    named = ((ADMIN, "admin"), (HR, "hr-bot"), (OPS, "ops.bot_2"), ("e" * 20, "env-bot"))
    for secret, name in named:
        found = ring.check(secret)
        assert found is not None and found.name == name
    assert load_keys(None, None) is None and load_keys(None, "  ") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[keys]\nname=", "not valid TOML"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}" junk', "not valid TOML"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}\n', "not valid TOML"),
        ("", "no [[keys]] table"),
        ("keys = []", "no [[keys]] table"),
        (f'[server]\nx = 1\n[[keys]]\nname = "a"\nkey = "{HR}"', "unknown setting 'server'"),
        (f'[[keys]]\nkey = "{HR}"', "key 1: name must be"),
        (f'[[keys]]\nname = "-x"\nkey = "{HR}"', "key 1: name must be"),
        ('[[keys]]\nname = "a"\nkey = ""', "key 'a': the key is empty"),
        ('[[keys]]\nname = "a"', "give either key or key_sha256"),
        ('[[keys]]\nname = "a"\nkey = "short-secret"', "at least 16 characters"),
        (f'[[keys]]\nname = "a"\nkey = "{HR} x"', "at least 16 characters"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}@"', "at least 16 characters"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}"\nkey_sha256 = "{"0" * 64}"', "either key or"),
        ('[[keys]]\nname = "a"\nkey_sha256 = "abc"', "64 hexadecimal digits"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}"\npartition = ["hr"]', "unknown field 'partition'"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}"\npartitions = []', "non-empty list"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}"\npartitions = "hr"', "non-empty list"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}"\nrate_per_minute = -1', "whole number >= 0"),
        (f'[[keys]]\nname = "a"\nkey = "{HR}"\nrate_per_minute = true', "whole number >= 0"),
        (
            f'[[keys]]\nname = "a"\nkey = "{HR}"\n[[keys]]\nname = "a"\nkey = "{OPS}"',
            "the name 'a' is used twice",
        ),
        (
            f'[[keys]]\nname = "a"\nkey = "{HR}"\n[[keys]]\nname = "b"\nkey = "{HR}"',
            "'a' and 'b' have the same secret",
        ),
    ],
)
def test_a_bad_keys_file_is_one_line_without_the_secret(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_keys(write(tmp_path, text), None)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert not any(s in message for s in SECRETS), message


def test_a_secret_in_the_file_and_the_variable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'admin' and 'env' have the same secret") as info:
        load_keys(write(tmp_path, GOOD), f"env={ADMIN}")
    assert ADMIN not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{HR}", "entry 1: expected NAME=SECRET"),
        (f"a={HR},={OPS}", "entry 2: expected NAME=SECRET"),
        ("a=", "key 'a': the key is empty"),
        ("a=tooshort", "at least 16 characters"),
        (f"a={HR}@", "non-empty list"),
        (f"a={HR}@hr#fast", "#RATE must be a whole number"),
        (f"a={HR} b={OPS}", "at least 16 characters"),
        (f"a={HR},a={OPS}", "the name 'a' is used twice"),
    ],
)
def test_a_bad_variable_is_one_line_without_the_secret(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_keys(None, value)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert message.startswith(("RAGCLI_SERVE_API_KEYS: ", "API keys: "))
    assert not any(s in message for s in SECRETS), message


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_keys_file_other_users_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path, GOOD, mode)
    with pytest.raises(ConfigError, match=f"writable by other users \\(mode {mode:04o}\\)"):
        load_keys(path, None)
    path.chmod(0o644)  # readable by others is allowed (a mounted secret often is)
    assert load_keys(path, None) is not None


def test_a_keys_file_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GOOD)
    if os.getuid() == 0:
        os.chown(path, 4242, -1)  # root may give it away; root's own files are trusted
    else:
        monkeypatch.setattr(keys_module.os, "getuid", lambda: path.stat().st_uid + 1)
    with pytest.raises(ConfigError, match="belongs to another user \\(uid [0-9]+\\)"):
        load_keys(path, None)


def test_a_missing_keys_file_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keys file .*: No such file"):
        load_keys(tmp_path / "nope.toml", None)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_keys(tmp_path, None)


def test_every_key_is_compared_whichever_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    ring = keys_from_env(f"a={ADMIN},b={HR},c={OPS}")
    keyring = Keyring(ring)
    calls: list[int] = []
    real = keys_module.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", counting)
    for token, name in ((ADMIN, "a"), (HR, "b"), (OPS, "c"), ("x" * 20, None), ("", None)):
        calls.clear()
        found = keyring.check(token)
        assert (found.name if found else None) == name
        assert len(calls) == 3, token  # no early exit on a match, the same work on a miss
    for near in (ADMIN[:-1], ADMIN + "0", ADMIN.upper(), " " + ADMIN):
        assert keyring.check(near) is None


def test_only_digests_are_kept() -> None:
    keyring = Keyring(keys_from_env(f"a={ADMIN}@hr,b={HR}"))
    kept = pickle.dumps(keyring)
    assert ADMIN.encode() not in kept and HR.encode() not in kept
    assert ADMIN not in repr(keyring.keys) and "digest" not in repr(keyring.keys)
