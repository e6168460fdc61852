"""`ragcli --version`: ragcli's version, the embedding model (and whether its weights are
installed), Chroma's version, Python's and the platform.

Fast: chromadb's version is read from its installed metadata (importing chromadb costs about
0.85 s), and the model's install state from the files on disk (no onnxruntime)."""

from __future__ import annotations

import platform
import sys
from importlib import metadata


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _embedder_line() -> str:
    from ragcli.embedders import model_files as mf

    dirs = mf.search_dirs()
    found = next((d / mf.WEIGHTS_FILE for d in dirs if (d / mf.WEIGHTS_FILE).is_file()), None)
    if found is None:
        state = "not installed (run `ragcli model install`)"
    elif found.stat().st_size != mf.WEIGHTS_SIZE:
        state = f"incomplete at {found.parent} (run `ragcli model install`)"
    else:
        state = f"installed in {found.parent}"
    return f"embedding model: {mf.MODEL_ID}, {state}"


def version_lines() -> list[str]:
    from ragcli import __version__

    impl = platform.python_implementation()
    return [
        f"ragcli {__version__}",
        _embedder_line(),
        f"chromadb: {_dist_version('chromadb')}",
        f"python: {impl} {platform.python_version()} ({sys.executable})",
        f"platform: {platform.platform()}",
    ]


__all__ = ["version_lines"]
