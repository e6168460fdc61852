"""Which `ask` requests a daemon refuses (ragcli.daemon.routes.refusal), and the settings it
builds for the ones it answers: the client's, never its own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ragcli import __version__
from ragcli.daemon.fastpath import PROCESS_ENV
from ragcli.daemon.location import fingerprint
from ragcli.daemon.routes import refusal, request_settings


def _body(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": __version__,
        "fingerprint": fingerprint(),
        "cwd": str(tmp_path),
        "config": None,
        "env": {},
        "process_env": {name: os.environ.get(name) for name in PROCESS_ENV},
        "overrides": {"data_dir": str(tmp_path)},
    }
    body.update(changes)
    return body


def test_a_request_from_the_same_code_and_environment_is_answered(tmp_path: Path) -> None:
    assert refusal(_body(tmp_path)) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"version": __version__ + ".dev1"},
        {"version": None},
        {"fingerprint": "0" * 16},
        {"fingerprint": None},
    ],
)
def test_other_code_is_refused_as_version(tmp_path: Path, changes: dict[str, Any]) -> None:
    refused = refusal(_body(tmp_path, **changes))
    assert refused is not None and refused[0] == "version"


@pytest.mark.parametrize("name", ["RAGCLI_MODEL_DIR", "HTTPS_PROXY", "SSL_CERT_FILE"])
def test_another_process_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delenv(name, raising=False)
    body = _body(tmp_path)
    body["process_env"][name] = "/somewhere/else"
    refused = refusal(body)
    assert refused is not None and refused[0] == "env" and name in refused[1]
    # the daemon started with it: answered when the client has the same, refused without it
    monkeypatch.setenv(name, "/somewhere/else")
    assert refusal(body) is None
    body["process_env"][name] = None
    refused = refusal(body)
    assert refused is not None and refused[0] == "env" and name in refused[1]


def test_settings_come_from_the_clients_environment_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGCLI_K", "9")  # the daemon's own environment does not count
    settings = request_settings(_body(tmp_path, env={"RAGCLI_K": "3"}))
    assert settings.k == 3 and settings.data_dir == tmp_path
    flags = _body(tmp_path, env={"RAGCLI_K": "3", "RAGCLI_RETRIEVAL": "dense"})
    flags["overrides"].update({"k": 2, "no_cache": "all"})
    settings = request_settings(flags)
    assert (settings.k, settings.retrieval, settings.no_cache) == (2, "dense", "all")
    assert request_settings(_body(tmp_path)).k == 5  # the default, not the daemon's RAGCLI_K


def test_the_clients_config_file_and_cwd_count(tmp_path: Path) -> None:
    config = tmp_path / "ragcli.toml"
    config.write_text('k = 4\nretrieval = "lexical"\n')
    settings = request_settings(_body(tmp_path, config=str(config)))
    assert (settings.k, settings.retrieval) == (4, "lexical")
