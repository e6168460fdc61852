"""`ragcli ingest`: read, chunk, embed and index documents; a progress bar on a terminal."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragcli.cli.common import JsonFlag, WaitOpt, print_json, run, settings_from, stderr
from ragcli.embedders.registry import help_text as embedder_help

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder
    from ragcli.ingest.run import IngestReport

DEFAULT_MAX_FILE_SIZE = 20 * 1024 * 1024

PathsArg = Annotated[
    list[Path], typer.Argument(help="Files or folders to ingest.", show_default=False)
]
PartitionOpt = Annotated[
    str | None,
    typer.Option(help="Put every file in this partition (default: top folder name)."),
]
EmbedderOpt = Annotated[
    str | None,
    typer.Option("--embedder", help=embedder_help()),
]


@dataclass(frozen=True)
class IngestRequest:
    """What to ingest, and how to walk it."""

    paths: list[Path]
    partition: str | None
    follow_symlinks: bool
    max_file_size: int


def ingest(
    ctx: typer.Context,
    paths: PathsArg,
    partition: PartitionOpt = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="Tokens per chunk [200].")] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(help="Tokens shared by neighbours [40].")
    ] = None,
    follow_symlinks: Annotated[bool, typer.Option(help="Follow symbolic links.")] = False,
    max_file_size: Annotated[
        int, typer.Option(help="Skip files larger than this (bytes).")
    ] = DEFAULT_MAX_FILE_SIZE,
    embedder: EmbedderOpt = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Remote embedder: most requests in flight [8].")
    ] = None,
    rpm: Annotated[
        int | None, typer.Option(help="Remote embedder: requests per minute, 0 = unpaced [0].")
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(help="Remote embedder: tokens per minute, 0 = unpaced [0].")
    ] = None,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Read documents, chunk them by tokens, embed them (cached) and index them."""
    from ragcli.core.locking import stderr_notice, writer_lock
    from ragcli.embedders import open_embedder

    settings = settings_from(
        ctx,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        embedder=embedder,
        embed_concurrency=concurrency,
        embed_rpm=rpm,
        embed_tpm=tpm,
    )
    request = IngestRequest(paths, partition, follow_symlinks, max_file_size)
    model = open_embedder(settings)
    with writer_lock(settings.data_dir, wait, "ingest", stderr_notice):
        show_progress = not as_json and sys.stderr.isatty()
        report = _ingest(request, settings, model, show_progress)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_report(report, settings, model.max_tokens)


def _ingest(
    request: IngestRequest, settings: Settings, model: Embedder, show_progress: bool
) -> IngestReport:
    """The ingest run, with a progress bar per phase on stderr when `show_progress`."""
    from ragcli.ingest.run import ingest as run_ingest

    args = (request.paths, settings, model, request.partition)
    walk = (request.follow_symlinks, request.max_file_size)
    if not show_progress:
        return run(run_ingest(*args, *walk))

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr(), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        return run(run_ingest(*args, *walk, progress=progress))


def _print_report(r: IngestReport, settings: Settings, max_tokens: int) -> None:
    """Skipped files and truncated chunks on stderr, then the summary on stdout."""
    err = stderr()
    for skipped in r.skipped:
        err.print(f"[yellow]skipped[/] {skipped.path}: {skipped.reason}", markup=True)
    if r.truncated:
        err.print(
            f"[yellow]truncated[/] {r.truncated} chunks over the embedder's "
            f"{max_tokens}-token input limit",
            markup=True,
        )
    print(
        f"{r.files} files: {r.new} new, {r.changed} changed, {r.unchanged} unchanged, "
        f"{r.removed} removed, {len(r.skipped)} skipped"
    )
    print(
        f"{r.chunks} chunks in the index (+{r.chunks_added} -{r.chunks_deleted}); "
        f"{r.embedded} chunks embedded, {r.cache_hits} from cache; "
        f"index version {r.index_version}; {r.seconds:.2f} s"
    )
    print(f"data directory: {settings.data_dir}")
