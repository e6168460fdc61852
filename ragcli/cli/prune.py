"""`ragcli prune`: remove the documents whose file is missing on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ragcli.cli.common import JsonFlag, WaitOpt, print_json, run, settings_from

if TYPE_CHECKING:
    from ragcli.ingest.prune import PruneReport


def prune(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Remove documents whose file is missing on disk (a moved or deleted folder) from the
    catalogue and the index. A document whose file exists is never removed."""
    from ragcli.ingest.prune import prune as run_prune

    settings = settings_from(ctx)
    if dry_run:  # writes nothing: no writer lock
        report = run(run_prune(settings, dry_run=True))
    else:
        from ragcli.cli.common import lock_notice
        from ragcli.core.locking import writer_lock

        with writer_lock(settings.data_dir, wait, "prune", lock_notice):
            report = run(run_prune(settings))
    if as_json:
        print_json(report.as_dict())
    else:
        print(summary(report))


def summary(r: PruneReport) -> str:
    """The run in one line."""
    if not r.missing:
        return f"nothing to prune: the files of all {r.checked} documents are on disk"
    what = f"{r.missing} of {r.checked} documents missing on disk (e.g. {r.paths[0]})"
    if r.dry_run:
        return f"would remove {what}, {r.chunks} chunks; nothing removed (--dry-run)"
    return (
        f"removed {what}, {r.chunks_deleted} chunks; {r.documents_left} documents, "
        f"{r.chunks_left} chunks left; index version {r.index_version}"
    )
