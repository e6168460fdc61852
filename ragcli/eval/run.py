"""The whole `ragcli eval`: parse the sweeps and the --min gate, load the relevance set, then
either score a run file (ragcli.eval.scoring) or, under the data directory's writer lock when
it writes, ingest the set's corpus (ragcli.eval.corpus) and measure every configuration
(ragcli.eval.runner)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import UsageError
from ragcli.eval.corpus import ingest_set
from ragcli.eval.ef_search import RESTORE_FILE
from ragcli.eval.minimums import Minimum, check_minimums, parse_minimums
from ragcli.eval.relevance import RelevanceSet, load_set
from ragcli.eval.runner import evaluate
from ragcli.eval.scoring import score_run
from ragcli.eval.sweeps import parse_sweeps

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder


def run_eval(
    settings: Settings,
    set_path: Path,
    *,
    fmt: str = "auto",
    queries: Path | None = None,
    run_file: Path | None = None,
    ingest: bool = False,
    k: int = 10,
    sweeps: Sequence[str] = (),
    minimums: str | None = None,
    repeats: int = 1,
    wait: float = 5.0,
    notify: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The whole `ragcli eval`: returns the report and the --min verdicts."""
    import asyncio

    if k < 1 or repeats < 1:
        raise UsageError("--k and --repeats must be at least 1")
    mins = parse_minimums(minimums) if minimums is not None else []
    sweep = parse_sweeps(sweeps)
    rset = load_set(set_path, fmt, queries, with_corpus=ingest)
    if run_file is not None:
        if ingest or sweep:
            raise UsageError("--run scores a run file as it is: no --ingest or --sweep with it")
        report = score_run(rset, run_file, k, mins)
    else:
        report = asyncio.run(
            _evaluate_locked(settings, rset, sweep, k, repeats, mins, ingest, wait, notify)
        )
    verdicts = check_minimums(mins, report) if mins else []
    if verdicts:
        report["minimums"] = [{k_: v for k_, v in x.items() if k_ != "line"} for x in verdicts]
    return report, verdicts


async def _evaluate_locked(
    settings: Settings,
    rset: RelevanceSet,
    sweep: dict[str, list[Any]],
    k: int,
    repeats: int,
    mins: Sequence[Minimum],
    ingest: bool,
    wait: float,
    notify: Callable[[str], None] | None,
) -> dict[str, Any]:
    """Ingesting and changing ef_search write to the data directory: hold its writer lock."""
    from ragcli.core.locking import writer_lock

    writes = ingest or "ef_search" in sweep or (settings.data_dir / RESTORE_FILE).exists()
    lock = writer_lock(settings.data_dir, wait, "eval", notify) if writes else None
    with lock or contextlib.nullcontext():
        embedder: Embedder | None = None
        ingested = None
        if ingest:
            from ragcli.embedders import open_embedder

            embedder = open_embedder(settings)
            started = time.perf_counter()
            ingested = await ingest_set(rset, settings, embedder)
            ingested["seconds"] = round(time.perf_counter() - started, 3)
        report = await evaluate(settings, rset, sweep, k, repeats, mins, embedder)
    report["ingest"] = ingested
    return report
