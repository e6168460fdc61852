"""`ragcli status`: what is ingested and indexed, the digest, and any problem found."""

from __future__ import annotations

from typing import Any

import typer

from ragcli.cli.common import JsonFlag, print_json, settings_from


def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """What is ingested and indexed: documents, chunks, partitions, index, digest."""
    from ragcli.status.report import collect_status

    info = collect_status(settings_from(ctx))
    if as_json:
        print_json(info)
    else:
        _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    """The status as lines of text, problems last."""
    from ragcli.status.missing import missing_line

    print(f"data directory: {info['data_dir']}")
    print(f"documents: {info['documents']}  chunks: {info['chunks']}  embedder: {info['embedder']}")
    parts = ", ".join(f"{p} ({n})" for p, n in info["partitions"].items()) or "none"
    print(f"partitions: {parts}")
    idx = info["index"]
    if idx:
        p = idx["params"]
        state = "in step" if idx["in_step"] else "not usable: see the problem below"
        print(
            f"index version: {info['index_version']} ({state}); M={p['m']} "
            f"ef_construction={p['ef_construction']} ef_search={p['ef_search']}"
        )
    c = info["cache"]
    print(
        f"caches: {c['embeddings']} embeddings, {c['retrievals']} retrievals, "
        f"{c['answers']} answers"
    )
    print(f"digest: {info['digest']}")
    line = missing_line(info["missing"])
    if line:
        print(line)
    for problem in info["problems"]:
        print(f"problem: {problem}")
