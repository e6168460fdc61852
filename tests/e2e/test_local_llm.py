"""`--llm local` through real ragcli processes: the one-line message for a missing extra (a
shim on PYTHONPATH makes `import llama_cpp` fail), and ask and a profile sweep on the local
model (skipped without `make install-local`). In-process: tests/unit/generators/."""

from __future__ import annotations

import json
from pathlib import Path

from ragcli.core.errors import EXIT_NOT_READY
from tests.support.cli import Run
from tests.support.local_llm import needs_model


def test_missing_extra_is_one_line(ragcli: Run, corpus: Path, tmp_path: Path) -> None:
    """Even where the extra is installed: a shim on PYTHONPATH makes `import llama_cpp` fail."""
    assert ragcli("ingest", str(corpus)).returncode == 0
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "llama_cpp.py").write_text("raise ImportError('no llama_cpp here')\n")
    gguf = tmp_path / "any.gguf"
    gguf.write_bytes(b"GGUF")  # the model check passes; the import is what fails
    proc = ragcli(
        "ask",
        "How do I rotate the pager?",
        "--llm",
        "local",
        PYTHONPATH=str(shim),
        RAGCLI_LOCAL_MODEL=str(gguf),
    )
    assert proc.returncode == EXIT_NOT_READY, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "pip install 'ragcli[local]'" in proc.stderr and "make" not in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@needs_model
def test_ask_and_profile_sweep_on_the_local_model(ragcli: Run, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    proc = ragcli("ask", "How do I rotate the pager?", "--llm", "local", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["generator"] == "local:SmolLM2-135M-Instruct.Q4_1" and out["answer"].strip()
    prof = ragcli(
        "profile", "How do I rotate the pager?", "--llm", "local", "--runs", "1",
        "--prewarm", "--sweep", "k=1,3", "--json",
    )  # fmt: skip
    assert prof.returncode == 0, prof.stderr
    data = json.loads(prof.stdout)
    assert "instruction prefix" in data["prewarm"]
    cold = [s["name"] for s in data["cold"]["spans"]]
    assert cold[:2] == ["startup", "prewarm"]  # the prewarm is its own span, not start-up
    sweep = data["sweep"]
    assert sweep["knob"] == "k" and sweep["prompt_tokens_reported_by"] == "provider"
    one, three = sweep["rows"]
    assert (one["k"], one["sources"], three["k"], three["sources"]) == (1, 1, 3, 3)
    assert three["prompt_tokens"] > one["prompt_tokens"] > 0
    assert one["cached_tokens"] is not None and one["ttft"]["n"] == 1
    bad = ragcli("profile", "q", "--sweep", "k=0,2")
    assert bad.returncode == 2 and "positive integers" in bad.stderr
