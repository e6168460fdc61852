"""ragcli as a real process, for the tests that need one (tests/e2e/) and for the session
fixtures that set up a data directory: the repository's paths, a clean environment, and
`python -m ragcli ARGS` run in a fresh interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_corpus"
QUESTIONS = REPO / "tests" / "fixtures" / "sample_questions.jsonl"

Run = Callable[..., subprocess.CompletedProcess]


# The warm daemon (ragcli/daemon/) is off in the tests' ragcli processes unless a run asks for
# it: RAGCLI_TEST_DAEMON=on (`make test-daemon`) runs the same tests with every `ask` going
# through a daemon; tests/e2e/test_daemon.py switches it on for its own. Each data directory
# that may have one is remembered, and its daemon stopped when the session ends.
DAEMON_MODE = os.environ.get("RAGCLI_TEST_DAEMON", "off")
DAEMON_HOMES: set[Path] = set()


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with no API key and no ragcli settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    env.update({"RAGCLI_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "120"})
    env["RAGCLI_DAEMON"] = DAEMON_MODE
    env.update(extra)
    if env["RAGCLI_DAEMON"] != "off":
        DAEMON_HOMES.add(Path(env["RAGCLI_HOME"]))
    return env


def stop_daemons() -> None:
    """Stop the daemon of every data directory a test's ragcli may have started one in."""
    from ragcli.daemon.location import Location
    from ragcli.daemon.spawn import stop

    for home in sorted(DAEMON_HOMES):
        if home.is_dir():
            stop(Location(home.resolve()))
    DAEMON_HOMES.clear()


def run_ragcli(
    home: Path, *args: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args],
        capture_output=True,
        text=True,
        env=clean_env(home, **extra),
        cwd=cwd or REPO,
        timeout=300,
    )


def copy_home(src: Path, dest: Path) -> Path:
    """A private copy of a data directory; its daemon's files (a socket cannot be copied) stay
    behind."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("daemon.*"))
    return dest


def copy_sample(dest: Path) -> Path:
    shutil.copytree(SAMPLE, dest)
    return dest


# -- what a process imported, seen from inside it --------------------------------------------
_RUN_AND_LIST_MODULES = (
    "import runpy, sys\n"
    "out = sys.argv[1]\n"
    "sys.argv = ['ragcli', *sys.argv[2:]]\n"
    "code = 0\n"
    "try:\n"
    "    runpy.run_module('ragcli', run_name='__main__', alter_sys=True)\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "with open(out, 'w') as f:\n"
    "    f.write('\\n'.join(sorted(sys.modules)))\n"
    "sys.exit(code)\n"
)


def ragcli_and_modules(
    home: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`python -m ragcli ARGS` in a fresh interpreter (cwd: the repository, as the `ragcli`
    fixture runs it); also every module that process had imported when it finished."""
    fd, name = tempfile.mkstemp(prefix="modules-", suffix=".txt", dir=home.parent)
    os.close(fd)
    out = Path(name)
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, str(out), *args],
        capture_output=True,
        text=True,
        env=clean_env(home, **env),
        cwd=REPO,
        timeout=300,
    )
    modules = out.read_text().split()
    out.unlink()
    return proc, {m.split(".")[0] for m in modules}


def read_terminal(master: int) -> bytes:
    """Everything a process wrote to its pseudo-terminal, read from `master` until the process
    closed its end (EIO); `master` is closed after."""
    seen = bytearray()
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not data:
            break
        seen += data
    os.close(master)
    return bytes(seen)
