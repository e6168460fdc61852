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

import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ragcli import __version__

SOCKET_NAME = "daemon.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with its NUL; keep a margin


class NotPrivate(Exception):
    """A path the daemon must not use: another user owns it or can write to it."""


@dataclass(frozen=True)
class Location:
    """The daemon files of one data directory."""

    data_dir: Path  # absolute

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
        inside = self.data_dir / SOCKET_NAME
        if len(os.fsencode(inside)) <= MAX_SOCKET_PATH:
            return inside
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:24]
        return runtime_dir() / f"{digest}.sock"


def runtime_dir() -> Path:
    """This user's private directory for sockets whose data directory is too deep."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "ragcli" if base and os.path.isdir(base) else None
    if path is None:
        path = Path("/tmp") / f"ragcli-{os.getuid()}"
    return path


def ensure_private_dir(path: Path) -> None:
    """Create `path` (mode 0700) if missing; refuse it if it is not this user's alone."""
    try:
        path.mkdir(mode=0o700, parents=False, exist_ok=True)
    except FileNotFoundError:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private(path, directory=True)


def check_private(path: Path, directory: bool = False) -> None:
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
    sock_dir = Location(data_dir).socket.parent
    if sock_dir != data_dir:
        ensure_private_dir(sock_dir)


_FINGERPRINT: str | None = None


def fingerprint() -> str:
    """What identifies the code a process runs: ragcli's version, every module's size and
    mtime, the interpreter. A daemon whose fingerprint differs from the client's is replaced."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256(f"{__version__}\0{sys.executable}\0{sys.version}".encode())
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, name))
                    rel = os.path.relpath(os.path.join(dirpath, name), root)
                    h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT
