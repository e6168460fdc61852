"""`ragcli index`: build or tune the HNSW index and report its size, build time and recall."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ragcli.cli.common import JsonFlag, WaitOpt, print_json, run, settings_from


def index(
    ctx: typer.Context,
    m: Annotated[int | None, typer.Option("--m", help="HNSW M: links per node [16].")] = None,
    ef_construction: Annotated[
        int | None, typer.Option(help="HNSW build beam width [128].")
    ] = None,
    ef_search: Annotated[int | None, typer.Option(help="HNSW query beam width [64].")] = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
    recall_queries: Annotated[
        int, typer.Option(help="Queries for the recall@10 check (0: skip).")
    ] = 50,
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Build or tune the HNSW index; report its size, build time and recall@10 vs exact search."""
    from ragcli.cli.common import lock_notice
    from ragcli.core.locking import writer_lock
    from ragcli.index.tuning import tune_index

    settings = settings_from(
        ctx, hnsw_m=m, hnsw_ef_construction=ef_construction, hnsw_ef_search=ef_search
    )
    flags = {"m": m, "ef_construction": ef_construction, "ef_search": ef_search}
    chosen = {k: v for k, v in flags.items() if v is not None}
    with writer_lock(settings.data_dir, wait, "index", lock_notice):
        result = run(tune_index(settings, chosen, rebuild, recall_queries))
    if as_json:
        print_json(result)
    else:
        _print_result(result)


def _print_result(r: dict[str, Any]) -> None:
    """The index's parameters, size, build time and recall, as text."""
    p = r["params"]
    action = "rebuilt" if r["rebuilt"] else "kept"
    print(
        f"index {action}: {r['vectors']} vectors, M={p['m']} "
        f"ef_construction={p['ef_construction']} ef_search={p['ef_search']}"
    )
    size = "on the Chroma server" if r["disk_bytes"] is None else f"{r['disk_bytes'] / 1e6:.1f} MB"
    print(f"size on disk: {size}; build time: {r['build_seconds']:.2f} s")
    if r["recall_at_10"] is not None:
        print(f"recall@10 vs exact search: {r['recall_at_10']:.3f} ({r['recall_queries']} queries)")
