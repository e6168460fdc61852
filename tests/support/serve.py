"""`ragcli serve` as a real process on 127.0.0.1 and a free port, for the e2e tests that talk
to it over HTTP (tests/e2e/test_serve.py, test_endpoints.py, test_redis_caches.py)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.cli import REPO, clean_env


class Served:
    def __init__(self, home: Path, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ragcli", "serve", "--port", "0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            env=clean_env(home, **env),
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/v1", line)
        assert match, line + self.proc.stderr.read()
        self.root = match.group(1)
        self.url = self.root + "/v1"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def listening(self) -> bool:
        """Whether the server still accepts connections (uvicorn stops at once on SIGTERM,
        before it waits for the requests in flight)."""
        port = int(self.root.rsplit(":", 1)[1])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            return False
        return True
