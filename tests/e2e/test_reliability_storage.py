"""Storage faults (issue 7): a read-only data directory and a full disk.

Both are real: the read-only case runs ragcli as an unprivileged user (`setpriv` to uid
65534 when the tests run as root, since root ignores file permissions), the full disk is a
tiny tmpfs mounted for the test (root only) or a file-size limit (`RLIMIT_FSIZE`, with
SIGXFSZ ignored so that writes fail with EFBIG, as on a full disk) that any user can set.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import REPO, clean_env
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig
from tests.support.reliability import (
    SECRET,
    assert_stores_agree,
    remote_env,
    run_home,
    status_of,
    write_corpus,
)

# An unprivileged user that may still read (and traverse) everything: the interpreter lives
# under /root here, and the test's tmp dirs are private. Writes follow the permissions.
_NOBODY = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=+dac_read_search",
    "--ambient-caps=+dac_read_search",
]


def _unprivileged_prefix() -> list[str] | None:
    """The command prefix that runs ragcli without write privileges, or None if impossible."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run([*_NOBODY, "/bin/sh", "-c", "test ! -w /"], capture_output=True)
    return _NOBODY if probe.returncode == 0 else None


def _lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip()]


def test_a_read_only_data_dir_is_one_line_and_status_says_why(
    tmp_path: Path, request: pytest.FixtureRequest
):
    prefix = _unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv ambient capabilities: cannot drop privileges")
    # pytest's tmp dirs are private (0700): the reader gets one it may read, but not write
    base = Path(tempfile.mkdtemp(prefix="ragcli-ro-", dir=tmp_path.anchor + "tmp"))
    base.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    corpus = write_corpus(base / "docs", docs=1)
    home = base / "home"
    env = {"RAGCLI_LLM": "extractive"}
    assert run_home(home, "ingest", str(corpus), **env).returncode == 0
    clean = status_of(home, **env)
    (corpus / "ops" / "doc0.md").write_text("changed text about the pager\n")
    if not prefix:  # a plain user: take the write bit away (root's files stay root's)
        home.chmod(0o500)

    def as_reader(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "ragcli", *args],
            capture_output=True,
            text=True,
            env=clean_env(home, HOME=str(base), **env),
            cwd=REPO,
            timeout=120,
        )

    try:
        runs = {
            "ingest": as_reader("ingest", str(corpus)),
            "ask": as_reader("ask", "How is the procedure explained?"),
            "status": as_reader("status"),
        }
    finally:
        home.chmod(0o755)
    for name in ("ingest", "ask"):
        proc = runs[name]
        assert proc.returncode == 1, (name, proc.stderr)  # EXIT_ERROR, documented
        assert len(_lines(proc.stderr)) == 1, (name, proc.stderr)
        assert "read-only for this user" in proc.stderr and "Traceback" not in proc.stderr
    assert runs["status"].returncode == 0, runs["status"].stderr
    assert "problem: the data directory" in runs["status"].stdout
    assert "read-only for this user" in runs["status"].stdout
    # nothing was changed, and the owner (who may write) carries on where it was
    assert status_of(home, **env)["digest"] == clean["digest"]
    again = run_home(home, "ingest", str(corpus), **env)
    assert again.returncode == 0 and "1 changed" in again.stdout, again.stdout + again.stderr


# -- full disk ----------------------------------------------------------------------------------
@contextlib.contextmanager
def tiny_tmpfs(where: Path, size_kb: int) -> Iterator[Path]:
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _tmpfs_available(tmp: Path) -> str | None:
    """None when a tmpfs can be mounted here, else why not."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting a tmpfs needs root"
    probe = tmp / "probe"
    try:
        with tiny_tmpfs(probe, 64):
            pass
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot mount a tmpfs here ({exc})"
    return None


def _file_size_limit(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _full_then_freed(
    tmp_path: Path, home: Path, fill: dict, free: callable, repaired_home: Path | None = None
) -> None:
    """Ingest until the disk is full (one line, exit 1), free it, re-run: the clean digest."""
    corpus = write_corpus(tmp_path / "docs", docs=8)
    with OpenAICompatibleServer(ServerConfig(api_key=SECRET)) as srv:
        env = remote_env(srv)
        clean_home = tmp_path / "clean"
        assert run_home(clean_home, "ingest", str(corpus), **env).returncode == 0
        clean = status_of(clean_home, **env)
        srv.reset()
        full = subprocess.run(
            [sys.executable, "-m", "ragcli", "ingest", str(corpus)],
            capture_output=True,
            text=True,
            env=clean_env(home, **env),
            cwd=REPO,
            timeout=120,
            **fill,
        )
        assert full.returncode == 1, full.stdout + full.stderr
        assert _lines(full.stderr) == [full.stderr.strip()], full.stderr
        assert "storage:" in full.stderr and "is full" in full.stderr, full.stderr
        free()
        again = run_home(home, "ingest", str(corpus), **env)
        assert again.returncode == 0, again.stderr
        st = status_of(home, **env)
        repaid = sum(n - 1 for n in srv.counters.texts.values() if n > 1)
    assert st["problems"] == [], st["problems"]
    assert st["digest"] == clean["digest"] and st["chunks"] == clean["chunks"]
    assert assert_stores_agree(home) == clean["chunks"]  # nothing lost, nothing twice
    print("full-disk", fill.get("preexec_fn") and "rlimit" or "tmpfs", "re-paid", repaid)


# Sizes that make different writers hit the wall: the embedding cache (SQLite), and Chroma.
@pytest.mark.parametrize("size_kb", [300, 900])
def test_a_full_disk_is_one_line_and_a_rerun_converges(size_kb: int, tmp_path: Path):
    why = _tmpfs_available(tmp_path)
    if why:
        pytest.skip(why)
    with tiny_tmpfs(tmp_path / "mnt", size_kb) as mnt:
        home = mnt / "home"
        proc_status: list[dict] = []

        def free() -> None:
            with OpenAICompatibleServer(ServerConfig(api_key=SECRET)) as srv:
                proc_status.append(status_of(home, **remote_env(srv)))
            subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)

        _full_then_freed(tmp_path, home, {}, free)
    assert any("is full" in p for p in proc_status[0]["problems"]), proc_status


@pytest.mark.parametrize("limit_kb", [200, 350])  # Chroma's SQLite file is ~410 KB here
def test_a_file_size_limit_is_one_line_and_a_rerun_converges(limit_kb: int, tmp_path: Path):
    home = tmp_path / "home"
    fill = {"preexec_fn": _file_size_limit(limit_kb * 1024)}
    _full_then_freed(tmp_path, home, fill, lambda: None)


def test_a_file_size_limit_during_index_rebuild_is_one_line(tmp_path: Path):
    """A rebuild that cannot write its new collection keeps the old index and says so."""
    home = tmp_path / "home"
    env = {"RAGCLI_LLM": "extractive"}
    corpus = write_corpus(tmp_path / "docs", docs=4)
    assert run_home(home, "ingest", str(corpus), **env).returncode == 0
    clean = status_of(home, **env)
    full = subprocess.run(
        [sys.executable, "-m", "ragcli", "index", "--rebuild"],
        capture_output=True,
        text=True,
        env=clean_env(home, **env),
        cwd=REPO,
        timeout=120,
        preexec_fn=_file_size_limit(64 * 1024),
    )
    assert full.returncode == 1, full.stdout + full.stderr
    assert _lines(full.stderr) == [full.stderr.strip()], full.stderr
    assert "storage:" in full.stderr and "file-size limit" in full.stderr, full.stderr
    st = status_of(home, **env)
    assert st["problems"] == [] and st["digest"] == clean["digest"], st
    assert run_home(home, "index", "--rebuild", **env).returncode == 0
    assert status_of(home, **env)["digest"] == clean["digest"]
    assert assert_stores_agree(home) == clean["chunks"]
