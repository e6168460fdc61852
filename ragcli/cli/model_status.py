"""What `ragcli model status` reports for each model: where it is looked up, where it was
found, its size and (with ``--verify``) whether its sha256 matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _entry(
    model: str, role: str, dirs: list[Path], file: str, size: int, sha: str, verify: bool
) -> dict[str, Any]:
    from ragcli.providers.model_install import sha256_file

    found = next((d / file for d in dirs if (d / file).is_file()), None)
    actual = found.stat().st_size if found is not None else None
    sha_ok = None
    if verify and found is not None:
        sha_ok = sha256_file(found) == sha
    return {
        "model": model,
        "role": role,
        "file": file,
        "search_dirs": [str(d) for d in dirs],
        "found": found is not None,
        "path": str(found) if found is not None else None,
        "size": actual,
        "expected_size": size,
        "size_ok": actual == size,
        "sha256_ok": sha_ok,
        "install": "ragcli model install" + (" --llm" if role == "local LLM" else ""),
    }


def collect(verify: bool) -> list[dict[str, Any]]:
    """One entry per model: the embedder (required), then the local LLM (optional)."""
    from ragcli.embedders import model_files as mf
    from ragcli.generators import local_model as lm

    return [
        _entry(
            mf.MODEL_ID,
            "embedder",
            mf.search_dirs(),
            mf.WEIGHTS_FILE,
            mf.WEIGHTS_SIZE,
            mf.WEIGHTS_SHA256,
            verify,
        ),
        _entry(
            lm.MODEL_ID,
            "local LLM",
            lm.search_dirs(),
            lm.GGUF_FILE,
            lm.GGUF_SIZE,
            lm.GGUF_SHA256,
            verify,
        ),
    ]
