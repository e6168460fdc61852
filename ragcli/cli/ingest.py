"""`ragcli ingest`: read, chunk, embed and index documents; a progress bar on a terminal."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragcli.cli.common import (
    JsonFlag,
    WaitOpt,
    is_quiet,
    print_json,
    run,
    settings_from,
    stderr,
)
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
    prune: bool = False


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
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also remove documents ingested from elsewhere whose file is missing on disk "
            "(as `ragcli prune` does).",
        ),
    ] = False,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Read documents, chunk them by tokens, embed them (cached) and index them."""
    from ragcli.cli.common import lock_notice
    from ragcli.core.locking import writer_lock
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
    request = IngestRequest(paths, partition, follow_symlinks, max_file_size, prune)
    model = open_embedder(settings)
    with writer_lock(settings.data_dir, wait, "ingest", lock_notice):
        show_progress = not as_json and not is_quiet() and sys.stderr.isatty()
        report = _ingest(request, settings, model, show_progress)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_report(report, settings, model.max_tokens)


def _ingest(
    request: IngestRequest, settings: Settings, model: Embedder, show_progress: bool
) -> IngestReport:
    """The ingest run, with a live line per phase on stderr when `show_progress`."""
    from ragcli.ingest.run import ingest as run_ingest

    args = (request.paths, settings, model, request.partition)
    walk = (request.follow_symlinks, request.max_file_size)
    if not show_progress:
        return run(run_ingest(*args, *walk, prune=request.prune))
    with _PhaseBars() as bars:
        return run(run_ingest(*args, *walk, progress=bars.update, prune=request.prune))


# What each phase counts, for its rate column.
_UNITS = {"read": "files", "embed": "chunks", "index": "chunks"}


class _PhaseBars:
    """One rich progress line per phase (read, embed, index): a bar, done/total and the rate
    (files/s; chunks/s, and tokens/s while embedding). Terminal only: never in a pipe."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        columns = (
            TextColumn("{task.description:>6}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
        )
        self.bar = Progress(*columns, console=stderr(), transient=True)
        self.tasks: dict[str, Any] = {}
        self.tokens_per_chunk = 0.0

    def __enter__(self) -> _PhaseBars:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def update(self, phase: str, done: int, total: int) -> None:
        if phase == "tokens":  # (tokens read, chunks read): the run's tokens per chunk
            self.tokens_per_chunk = done / total if total else 0.0
            return
        if phase not in self.tasks:
            self.tasks[phase] = self.bar.add_task(phase, total=total, rate="")
        task = self.tasks[phase]
        self.bar.update(task, completed=done, total=total)
        speed = self.bar.tasks[task].speed if task < len(self.bar.tasks) else None
        self.bar.update(task, rate=self._rate(phase, speed))

    def _rate(self, phase: str, speed: float | None) -> str:
        if not speed:
            return ""
        text = f"{speed:,.0f} {_UNITS.get(phase, 'items')}/s"
        if phase == "embed" and self.tokens_per_chunk:
            text += f" · {speed * self.tokens_per_chunk:,.0f} tokens/s"
        return text


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
    pruned = f", {r.pruned} pruned (missing on disk)" if r.pruned else ""
    print(
        f"{r.files} files: {r.new} new, {r.changed} changed, {r.unchanged} unchanged, "
        f"{r.removed} removed, {len(r.skipped)} skipped{pruned}"
    )
    print(
        f"{r.chunks} chunks in the index (+{r.chunks_added} -{r.chunks_deleted}); "
        f"{r.embedded} chunks embedded, {r.cache_hits} from cache; "
        f"index version {r.index_version}; {r.seconds:.2f} s"
    )
    if r.phases:
        spent = ", ".join(f"{name} {s:.2f}" for name, s in r.phases.items())
        print(f"seconds by phase (they overlap): {spent}; peak memory {r.peak_rss_mb:.0f} MiB")
    if r.missing:
        print(
            f"{r.missing} documents are missing on disk (e.g. {r.missing_example}); "
            "`ragcli prune` removes them"
        )
    print(f"data directory: {settings.data_dir}")
