"""Exact (brute-force) nearest-neighbour search with numpy: the baseline HNSW is measured
against (`profile --ablate`, `index` recall) and a fallback for tiny indexes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragcli.index.store import Hit

if TYPE_CHECKING:
    import numpy as np

    from ragcli.index.store import Store


def _matches(meta: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Evaluate the subset of Chroma's `where` language that ragcli generates."""
    if not where:
        return True
    if "$and" in where:
        return all(_matches(meta, w) for w in where["$and"])
    for field, cond in where.items():
        value = meta.get(field)
        if isinstance(cond, dict):
            for op, arg in cond.items():
                ok = {
                    "$in": lambda v, a: v in a,
                    "$eq": lambda v, a: v == a,
                    "$gte": lambda v, a: v is not None and v >= a,
                    "$lte": lambda v, a: v is not None and v <= a,
                }[op](value, arg)
                if not ok:
                    return False
        elif value != cond:
            return False
    return True


class ExactIndex:
    """Every vector of one collection in memory; a query is one matrix product."""

    def __init__(self, store: Store, name: str) -> None:
        import numpy as np

        ids, vectors, metas = store.dump(name)
        self.ids = ids
        self.metas = metas
        self.matrix: np.ndarray = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)

    def query(self, vectors: np.ndarray, k: int, where: dict | None = None) -> list[list[Hit]]:
        import numpy as np

        rows = None
        if where:
            rows = np.array([i for i, m in enumerate(self.metas) if _matches(m, where)], dtype=int)
        matrix = self.matrix if rows is None else self.matrix[rows]
        out: list[list[Hit]] = []
        if len(matrix) == 0:
            return [[] for _ in range(len(vectors))]
        scores = np.asarray(vectors, dtype=np.float32) @ matrix.T
        k = min(k, matrix.shape[0])
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.argsort(-row[top])]
            ids = top if rows is None else rows[top]
            out.append(
                [Hit(self.ids[int(i)], float(row[j])) for i, j in zip(ids, top, strict=True)]
            )
        return out
