"""tests/unit/ runs in-process: a test here may start real servers (the OpenAI-compatible test
server, redis-server, `chroma run`) and use real SQLite and Chroma, but never ragcli itself as
a process. This guard fails a unit test that asks for the `ragcli` fixture, or that starts
`python -m ragcli…` (run_ragcli, run_home, Served, a `-c` program running ragcli's CLI) while it
runs; such a test belongs in tests/e2e/. Session fixtures set up before the test (sample_home
ingests the sample corpus through a subprocess once) are not the test's own and are allowed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

E2E = "a unit test runs in-process; a test that runs ragcli as a process belongs in tests/e2e/"


def runs_ragcli(args: str | bytes | Sequence[Any]) -> bool:
    """Whether a Popen argv starts ragcli: `-m ragcli[.…]`, the `ragcli` script, or a `-c`
    program that runs ragcli's command line."""
    argv = [args] if isinstance(args, (str, bytes)) else list(args)
    words = [a.decode() if isinstance(a, bytes) else str(a) for a in argv]
    if words and Path(words[0]).name == "ragcli":
        return True
    for flag, value in zip(words, words[1:], strict=False):
        if flag == "-m" and (value == "ragcli" or value.startswith("ragcli.")):
            return True
        if flag == "-c" and ("run_module('ragcli'" in value or "ragcli.cli" in value):
            return True
    return False


@pytest.fixture(autouse=True)
def _in_process_only(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if "ragcli" in request.fixturenames:
        pytest.fail(f"{request.node.nodeid} uses the `ragcli` fixture: {E2E}", pytrace=False)

    class InProcessOnly(subprocess.Popen):
        def __init__(self, args: Any, *rest: Any, **kw: Any) -> None:
            if runs_ragcli(args):
                pytest.fail(f"{request.node.nodeid} started {args!r}: {E2E}", pytrace=False)
            super().__init__(args, *rest, **kw)

    monkeypatch.setattr(subprocess, "Popen", InProcessOnly)
    yield
