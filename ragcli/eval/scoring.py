"""`ragcli eval --run`: a TREC run file (another system's, or an earlier ragcli's) scored
against a relevance set's judgements: document level only, ids as they are, no index and no
timing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragcli.eval import metrics
from ragcli.eval.relevance import read_trec_run
from ragcli.eval.runner import SCHEMA, cuts, rounded, set_info

if TYPE_CHECKING:
    from ragcli.eval.minimums import Minimum
    from ragcli.eval.relevance import RelevanceSet


def score_run(
    rset: RelevanceSet, run_file: Path, k: int, minimums: Sequence[Minimum] = ()
) -> dict[str, Any]:
    """The report (schema `ragcli.eval/1`) of one run file: one configuration, no latency."""
    run = read_trec_run(run_file)
    at = cuts(k, minimums)
    rows, per_query = [], []
    for q in rset.queries:
        ranked = run.get(q.id, [])[:k]
        row = metrics.query_metrics(ranked, rset.qrels[q.id], at)
        rows.append(row)
        per_query.append({"id": q.id, "doc_first_relevant": row["first_relevant"]})
    return {
        "schema": SCHEMA,
        "set": set_info(rset),
        "run": str(run_file),
        "configurations": [
            {
                "label": f"run {run_file.name} k={k}",
                "config": {"run": str(run_file), "k": k},
                "document": rounded(metrics.mean(rows)),
                "chunk": None,
                "latency_ms": None,
                "queries": len(rows),
                "per_query": per_query,
            }
        ],
        "embed_miss_ms": None,
    }
