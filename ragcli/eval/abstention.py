"""Abstention figures of an evaluation: a set whose queries include some with no relevant
document (BEIR-style unanswerable questions) is also asked whether `ask` would answer: the
unanswerable ones should be abstained on, the others answered (ragcli.retrieval.relevance)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder
    from ragcli.eval.relevance import RelevanceSet


async def abstention(
    settings: Settings, rset: RelevanceSet, k: int, embedder: Embedder | None = None
) -> dict[str, Any] | None:
    """abstained/N on the unanswerable queries, answered/M on the others, at the settings'
    `abstain_threshold`; None when the set has no unanswerable query."""
    if not rset.unanswerable:
        return None
    from ragcli.retrieval.events import Query
    from ragcli.retrieval.pipeline import Pipeline

    pipeline = Pipeline(settings, embedder)
    try:
        abstained = [not (await pipeline.answers(Query(q.text, k)))[0] for q in rset.unanswerable]
        answered = [(await pipeline.answers(Query(q.text, k)))[0] for q in rset.queries]
    finally:
        pipeline.close()
    return {
        "threshold": settings.abstain_threshold,
        "unanswerable": len(abstained),
        "abstained": sum(abstained),
        "answerable": len(answered),
        "answered": sum(answered),
    }
