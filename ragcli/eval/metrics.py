"""Ranking quality: recall@k, hit@k, MRR@k and nDCG@k, the way trec_eval and BEIR count them.

Pure functions over a ranking (ids, best first) and the query's judgements (id → grade):

* relevant = grade > 0; a judged grade of 0 is simply not relevant;
* recall@k = relevant ids in the top k / all relevant ids of the query (retrieved or not);
* hit@k = 1 if any relevant id is in the top k, else 0 (a.k.a. success@k);
* MRR@k = 1 / rank of the first relevant id within the top k, 0 if none;
* nDCG@k = DCG@k / ideal DCG@k, with DCG = sum of grade / log2(rank + 1) (trec_eval's linear
  gain: grades are used as they are) and the ideal ranking = all judged grades, best first.

`collapse` turns a chunk ranking into a document ranking, each document at the rank of its
first chunk.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)
DEFAULT_CUTS = (1, 3, 5, 10)
KINDS = ("recall", "hit", "mrr", "ndcg")


def collapse(ranked: Iterable[T]) -> list[T]:
    """Keep the first occurrence of each id, in order: [a, a, b, a, c] → [a, b, c]."""
    return list(dict.fromkeys(ranked))


def _relevant(grades: Mapping[str, int]) -> set[str]:
    return {d for d, g in grades.items() if g > 0}


def recall_at(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    relevant = _relevant(grades)
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def hit_at(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    relevant = _relevant(grades)
    return 1.0 if any(d in relevant for d in ranked[:k]) else 0.0


def mrr_at(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    relevant = _relevant(grades)
    for rank, d in enumerate(ranked[:k], 1):
        if d in relevant:
            return 1.0 / rank
    return 0.0


def dcg(gains: Iterable[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, 1))


def ndcg_at(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    ideal = dcg(sorted((g for g in grades.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg(max(grades.get(d, 0), 0) for d in ranked[:k]) / ideal


_FUNCS = {"recall": recall_at, "hit": hit_at, "mrr": mrr_at, "ndcg": ndcg_at}


def query_metrics(
    ranked: Sequence[str], grades: Mapping[str, int], cuts: Iterable[int] = DEFAULT_CUTS
) -> dict[str, float]:
    """Every kind at every cut, named like `ndcg@10`, plus the rank of the first relevant id
    (`first_relevant`, 0 when none was retrieved)."""
    out = {
        f"{kind}@{c}": _FUNCS[kind](ranked, grades, c) for kind in KINDS for c in sorted(set(cuts))
    }
    relevant = _relevant(grades)
    out["first_relevant"] = next((r for r, d in enumerate(ranked, 1) if d in relevant), 0)
    return out


def mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Metric by metric mean over queries (`first_relevant` is left out: it is per query)."""
    if not rows:
        return {}
    keys = [k for k in rows[0] if k != "first_relevant"]
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}
