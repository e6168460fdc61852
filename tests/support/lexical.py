"""A small corpus for the catalogue's lexical search and the old JOIN query it replaced, kept as
the oracle (tests/unit/index/test_lexical.py, tests/unit/retrieval/test_search_concurrency.py)."""

from __future__ import annotations

import random
from pathlib import Path

from ragcli.core.records import Chunk, Document, FileRef
from ragcli.index.catalog import Catalog, LexicalFilter, fts_query

ROOT = Path("/corpus/docs")
WORDS = [
    "pager", "rotation", "deploy", "rollback", "database", "replica", "cache", "session",
    "cookie", "token", "migration", "schema", "index", "query", "latency", "timeout",
    "retry", "queue", "worker", "signal", "template", "middleware", "static", "upload",
    "storage", "backup", "restore", "cluster", "shard", "lock", "foo_bar", "résumé",
]  # fmt: skip
FILLER = ["the", "a", "of", "to", "and", "is", "it", "what", "how", "in"]


def oracle(
    catalog: Catalog, question: str, k: int, where: LexicalFilter | None = None
) -> list[tuple[str, float]]:
    """The lexical search as it was: one statement joining every match to its chunk and
    document, filters, ORDER BY bm25, LIMIT."""
    where = where or LexicalFilter()
    match = fts_query(question)
    if not match:
        return []
    sql = [
        "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts",
        "JOIN chunks c ON c.rowid = chunks_fts.rowid",
        "JOIN documents d ON d.path = c.doc_path WHERE chunks_fts MATCH ?",
    ]
    args: list[object] = [match]
    if where.partitions:
        sql.append(f"AND d.partition IN ({','.join('?' * len(where.partitions))})")
        args += where.partitions
    if where.since_ts is not None:
        sql.append("AND d.date_ts >= ?")
        args.append(where.since_ts)
    if where.sources:
        sql.append(f"AND d.source IN ({','.join('?' * len(where.sources))})")
        args += where.sources
    sql.append("ORDER BY bm25(chunks_fts) LIMIT ?")
    args.append(k)
    return [(cid, float(score)) for cid, score in catalog.conn.execute(" ".join(sql), args)]


def document(n: int, partition: str, date_ts: int) -> Document:
    return Document(
        ref=FileRef(ROOT / partition / f"d{n:03d}.md", ROOT, partition),
        text="",
        title=f"D{n}",
        date="1970-01-01",
        date_ts=date_ts,
        content_hash=f"hash-{n}",
        mtime_ns=1,
        size=10,
    )


def corpus(seed: int = 7) -> list[tuple[Document, list[Chunk]]]:
    """40 documents of 8 chunks in 4 partitions: Zipf-ish word use (common words match most
    chunks), and many texts repeated word for word in other documents (equal scores: ties)."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]
    repeated = [" ".join(rng.choices(WORDS, weights, k=12)) for _ in range(6)]
    docs = []
    for n in range(40):
        texts = []
        for _ in range(8):
            if rng.random() < 0.3:
                texts.append(rng.choice(repeated))
            else:
                words = rng.choices(WORDS + FILLER, k=rng.randint(3, 30))
                texts.append(" ".join(words))
        chunks = [Chunk(i, t, 0, len(t), len(t.split())) for i, t in enumerate(texts)]
        docs.append((document(n, f"p{n % 4}", 1000 + 10 * n), chunks))
    return docs


QUESTIONS = [
    "pager",
    "How do I roll back a deploy after a failed migration?",
    "database replica latency timeout",
    "cache session cookie token",
    "what is it",  # stop words only: kept when there is nothing else
    "foo_bar résumé",  # a two-token phrase; a non-ASCII word
    "the lock",
    "nothing matches xyzzy",
    "pager pager rotation",
    "",
]
