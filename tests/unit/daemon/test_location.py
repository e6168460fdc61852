"""Where a data directory's daemon lives and who may use it (ragcli.daemon.location)."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragcli.daemon.location import (
    MAX_SOCKET_PATH,
    Location,
    NotPrivate,
    check_data_dir,
    check_private,
    runtime_dir,
)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short path (pytest's tmp_path may already be too deep for a socket)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rd-", dir="/tmp") as d:
        yield Path(d)


def _listening(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


def test_the_socket_lives_in_the_data_dir_when_its_path_fits(short_tmp: Path) -> None:
    data = short_tmp / "home"
    assert Location(data).socket == data / "daemon.sock"


def test_a_deep_data_dir_gets_its_socket_in_the_private_runtime_dir(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    deep = short_tmp / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True, mode=0o700)
    assert len(os.fsencode(deep / "daemon.sock")) > MAX_SOCKET_PATH
    sock_path = Location(deep).socket
    assert sock_path.parent == short_tmp / "ragcli" == runtime_dir()
    assert len(os.fsencode(sock_path)) <= MAX_SOCKET_PATH
    # one socket per data directory, the same one every time
    assert Location(deep).socket == sock_path
    assert Location(short_tmp / ("d" * 60) / ("f" * 60)).socket != sock_path
    check_data_dir(deep)  # creates the runtime directory, owner only
    st = os.stat(sock_path.parent)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    # and the path really works for a socket
    _listening(sock_path).close()


def test_without_xdg_runtime_dir_the_runtime_dir_is_per_user_in_tmp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert runtime_dir() == Path("/tmp") / f"ragcli-{os.getuid()}"


def test_a_private_socket_passes(short_tmp: Path) -> None:
    path = short_tmp / "s.sock"
    sock = _listening(path)
    try:
        os.chmod(path, 0o600)
        check_private(path)
        for mode in (0o666, 0o660, 0o604, 0o640):
            os.chmod(path, mode)
            with pytest.raises(NotPrivate, match="open to other users"):
                check_private(path)
    finally:
        sock.close()


def test_a_regular_file_is_not_a_socket(short_tmp: Path) -> None:
    path = short_tmp / "daemon.sock"
    path.write_text("")
    os.chmod(path, 0o600)
    with pytest.raises(NotPrivate, match="not a socket"):
        check_private(path)


def test_a_missing_socket_is_not_found(short_tmp: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_private(short_tmp / "none.sock")


def test_directories_others_can_write_are_refused(short_tmp: Path) -> None:
    data = short_tmp / "home"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    check_data_dir(data)  # readable by others is fine; writable is not
    for mode in (0o777, 0o775, 0o757):
        os.chmod(data, mode)
        with pytest.raises(NotPrivate, match="open to other users"):
            check_data_dir(data)
    os.chmod(data, 0o700)
    (short_tmp / "file").write_text("")
    with pytest.raises(NotPrivate, match="not a directory"):
        check_private(short_tmp / "file", directory=True)


def test_another_users_path_is_refused(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = short_tmp / "home"
    data.mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: os.stat(data).st_uid + 1)
    with pytest.raises(NotPrivate, match="belongs to another user"):
        check_private(data, directory=True)
