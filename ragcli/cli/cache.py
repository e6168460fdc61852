"""`ragcli cache stats|clear`: inspect or empty the embedding, retrieval and answer caches."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ragcli.cli.common import JsonFlag, WaitOpt, print_json, settings_from

cache_app = typer.Typer(help="Inspect or clear the embedding, retrieval and answer caches.")

OnlyOpt = Annotated[
    str, typer.Option("--only", help="Comma list: embedding,retrieval,answer (default: all).")
]


@cache_app.command("stats")
def cache_stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Entries in each cache and the age of the oldest."""
    from ragcli.caches.admin import stats

    info = stats(settings_from(ctx))
    if as_json:
        print_json(info)
    else:
        _print_stats(info)


def _print_stats(info: dict[str, Any]) -> None:
    """A line per cache, then where the caches live and their size."""
    for name, s in info["caches"].items():
        age = (
            f", oldest {s['oldest_age_s'] / 3600:.1f} h old"
            if s["oldest_age_s"] is not None
            else ""
        )
        print(f"{name:<10} {s['entries']:>8} entries{age}")
    where = "redis" if info["path"].startswith(("redis", "unix")) else "file"
    print(f"{where}: {info['path']} ({info['bytes'] / 1e6:.1f} MB)")


@cache_app.command("clear")
def cache_clear(
    ctx: typer.Context,
    which: OnlyOpt = "embedding,retrieval,answer",
    wait: WaitOpt = 5.0,
    as_json: JsonFlag = False,
) -> None:
    """Empty caches. Embeddings are the expensive one: a later ingest or index rebuild re-embeds."""
    from ragcli.caches.admin import clear
    from ragcli.cli.common import lock_notice
    from ragcli.core.locking import writer_lock

    settings = settings_from(ctx)
    with writer_lock(settings.data_dir, wait, "cache clear", lock_notice):
        removed = clear(settings, which)
    if as_json:
        print_json({"removed": removed})
        return
    for name, n in removed.items():
        print(f"{name}: {'unreadable file set aside' if n < 0 else f'{n} entries removed'}")
