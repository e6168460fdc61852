"""Where a data directory's daemon lives, who may use it, and which code it runs.

Standard library only: the fast-path client reads this before deciding anything.

- the socket: `daemon.sock` in the data directory (mode 0600). A Unix socket path holds at most
  107 bytes; a data directory too deep for that gets its socket in a private runtime directory
  instead (`$XDG_RUNTIME_DIR/ragcli/`, else `/tmp/ragcli-UID/`, mode 0700), named by a hash of
  the data directory.
- `daemon.json` (pid, version, code fingerprint, socket), `daemon.lock` (taken by whoever
  starts a daemon, so two `ask`s never start two), `daemon.log` (the daemon's stderr).
- who: the data directory (and the runtime directory) must belong to this user and be
  writable by no one else; the socket must be this user's, mode 0600. Otherwise no daemon.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import TYPE_CHECKING

from ragcli import __version__

if TYPE_CHECKING:
    from pathlib import Path

SOCKET_NAME = "daemon.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with its NUL; keep a margin


class NotPrivate(Exception):
    """A path the daemon must not use: another user owns it or can write to it."""


def socket_path(data_dir: str) -> str:
    """The socket of the daemon of `data_dir` (absolute), as a string: the fast path's form
    (no pathlib)."""
    inside = os.path.join(data_dir, SOCKET_NAME)
    if len(os.fsencode(inside)) <= MAX_SOCKET_PATH:
        return inside
    import hashlib

    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:24]
    return os.path.join(str(runtime_dir()), f"{digest}.sock")


class Location:
    """The daemon files of one data directory (an absolute Path)."""

    __slots__ = ("data_dir",)

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.data_dir == self.data_dir

    def __hash__(self) -> int:
        return hash(self.data_dir)

    def __repr__(self) -> str:
        return f"Location({self.data_dir!r})"

    @property
    def state(self) -> Path:
        return self.data_dir / "daemon.json"

    @property
    def lock(self) -> Path:
        return self.data_dir / "daemon.lock"

    @property
    def log(self) -> Path:
        return self.data_dir / "daemon.log"

    @property
    def socket(self) -> Path:
        return type(self.data_dir)(socket_path(str(self.data_dir)))


def runtime_dir() -> Path:
    """This user's private directory for sockets whose data directory is too deep."""
    from pathlib import Path

    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "ragcli"
    return Path("/tmp") / f"ragcli-{os.getuid()}"


def ensure_private_dir(path: str | Path) -> None:
    """Create `path` (mode 0700) if missing; refuse it if it is not this user's alone."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    check_private(path, directory=True)


def check_private(path: str | Path, directory: bool = False) -> None:
    """Raise NotPrivate unless `path` is this user's and writable by no one else (a socket:
    readable by no one else either)."""
    st = os.lstat(path)
    if st.st_uid != os.getuid():
        raise NotPrivate(f"{path} belongs to another user (uid {st.st_uid})")
    if directory and not stat.S_ISDIR(st.st_mode):
        raise NotPrivate(f"{path} is not a directory")
    if not directory and not stat.S_ISSOCK(st.st_mode):
        raise NotPrivate(f"{path} is not a socket")
    open_to_others = 0o022 if directory else 0o077
    if st.st_mode & open_to_others:
        mode = oct(stat.S_IMODE(st.st_mode))
        raise NotPrivate(f"{path} is open to other users (mode {mode})")


def check_data_dir(data_dir: Path) -> None:
    """The data directory a daemon may serve: this user's, writable by no one else."""
    check_private(data_dir, directory=True)
    sock_dir = os.path.dirname(socket_path(str(data_dir)))
    if sock_dir != str(data_dir):
        ensure_private_dir(sock_dir)


_FINGERPRINT: str | None = None


def fingerprint() -> str:
    """What identifies the code a process runs: ragcli's version, every module's size and
    mtime, the interpreter (its real path and prefix: `ragcli` and `python -m ragcli` run the
    same one through different links). A daemon whose fingerprint differs from the client's
    is replaced. Two CRCs of that description (64 bits): a change detector, not a signature."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import zlib

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        exe = os.path.realpath(sys.executable)
        parts = [f"{__version__}\0{exe}\0{sys.prefix}\0{sys.version}\0"]
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    full = os.path.join(dirpath, name)
                    st = os.stat(full)
                    parts.append(f"{full[len(root) :]}\0{st.st_size}\0{st.st_mtime_ns}\0")
        data = "".join(parts).encode()
        _FINGERPRINT = f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"
    return _FINGERPRINT
