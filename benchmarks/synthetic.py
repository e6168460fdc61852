"""A synthetic corpus at any size, and a real ragcli data directory built from it without
running the embedding model (tens of chunks per second on 2 cores — benchmarks/ingest_and_ask.py
measures it — so 100k chunks would take most of an hour).

    python benchmarks/synthetic.py --data-dir DIR [--n 100000] [--clusters 2000] [--seed 0]

SYNTHETIC DATA. The vectors are not embeddings of the texts; the texts are pseudo-words. Both
exist only to give Chroma, the catalogue and the pipeline realistic sizes and shapes.

Vectors: 384-d (all-MiniLM-L6-v2's size, so a real question embedded by the local model can
be searched against them), unit length, drawn as a mixture of Gaussian clusters:

    centre_j = normalise(0.4 * g + u_j)           g, u_j random unit vectors
    x        = normalise(centre_j + s_j * e)      e ~ N(0, I/384), s_j ~ U(0.8, 1.2)

with cluster sizes lognormal (a few big topics, many small ones), every cluster in one of
`partitions` partitions, and documents of up to 8 chunks from one cluster. Why not uniform
random vectors: in 384 dimensions they are all almost orthogonal to each other (cosines within
±0.15), so "nearest neighbours" are noise, HNSW has no neighbourhoods to exploit, and neither
recall nor latency resembles a real index. Real sentence embeddings are anisotropic (unrelated
passages are not orthogonal, hence the shared component g: centres meet at ~0.14, chunks of
different clusters at ~0.07, 5–95 %: -0.02 to 0.16) and topical (passages on one subject reach
0.4–0.7: members of a cluster meet at ~0.5, and sit at ~0.7 from their centre). Queries
(`queries_near`) are fresh points near a cluster centre, never corpus members: like a
question, they fall among a topic's passages, not on one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ragcli.core.datadir import DataDir  # noqa: E402
from ragcli.core.records import Chunk, Document, FileRef  # noqa: E402
from ragcli.index import indexing  # noqa: E402
from ragcli.index.catalog import Catalog, chunk_id, text_hash  # noqa: E402
from ragcli.index.store import HnswParams, Store  # noqa: E402

DIMS = 384  # the local embedder's (all-MiniLM-L6-v2)
ANISOTROPY = 0.4  # weight of the direction every centre shares
CHUNKS_PER_DOC = 8
TOPIC_WORDS = 6  # pseudo-words special to each cluster
GENERAL_WORDS = 3000
ROOT = Path("/synthetic/corpus")  # documents' paths: nothing is read from disk
EMBEDDER_ID = "local:all-MiniLM-L6-v2"  # the local embedder's cache_id (the pipeline checks)

Progress = Callable[[str], None]


@dataclass
class Corpus:
    vectors: np.ndarray  # (n, dims) float32, unit rows
    cluster: np.ndarray  # (n,) cluster of each chunk
    centres: np.ndarray  # (clusters, dims) float32, unit rows
    spread: np.ndarray  # (clusters,) noise scale s_j
    cluster_partition: np.ndarray  # (clusters,) partition number of each cluster
    texts: list[str]
    doc: np.ndarray  # (n,) document number of each chunk
    position: np.ndarray  # (n,) chunk position within its document
    general_words: list[str]
    seed: int

    @property
    def n(self) -> int:
        return len(self.vectors)

    @property
    def partitions(self) -> int:
        return int(self.cluster_partition.max()) + 1

    @property
    def partition(self) -> np.ndarray:
        """(n,) partition number of each chunk."""
        return self.cluster_partition[self.cluster]


def partition_name(p: int) -> str:
    return f"part-{p:02d}"


def _normalise(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


def _pseudo_words(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct pronounceable pseudo-words (deterministic for a given generator)."""
    onsets = [*"bcdfghklmnprstvz", "br", "cl", "dr", "fl", "gr", "kr", "pl", "st", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
    codas = ["", "", "n", "r", "s", "l", "x", "nd", "st"]
    seen: dict[str, None] = {}
    while len(seen) < count:
        syl = rng.integers(2, 4)
        word = (
            "".join(
                onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                for _ in range(syl)
            )
            + codas[rng.integers(len(codas))]
        )
        seen.setdefault(word, None)
    return list(seen)


def make_corpus(
    n: int,
    *,
    dims: int = DIMS,
    clusters: int = 2000,
    partitions: int = 10,
    words: int = 40,
    seed: int = 0,
) -> Corpus:
    """N chunks: vectors from a mixture of `clusters` Gaussian clusters, short pseudo-texts."""
    rng = np.random.default_rng(seed)
    clusters = max(1, min(clusters, n))
    g = _normalise(rng.standard_normal(dims))
    centres = _normalise(ANISOTROPY * g + _normalise(rng.standard_normal((clusters, dims))))
    spread = rng.uniform(0.8, 1.2, clusters).astype(np.float32)
    weights = rng.lognormal(0.0, 0.75, clusters)
    cluster = np.sort(rng.choice(clusters, size=n, p=weights / weights.sum()))
    # Each partition gets an equal share of clusters (so ~1/partitions of the chunks).
    cluster_partition = rng.permutation(np.arange(clusters) % partitions)
    vectors = np.empty((n, dims), dtype=np.float32)
    step = 20_000
    for i in range(0, n, step):
        c = cluster[i : i + step]
        noise = rng.standard_normal((len(c), dims), dtype=np.float32) / np.sqrt(dims)
        vectors[i : i + step] = _normalise(centres[c] + spread[c, None] * noise)

    # Documents: runs of up to CHUNKS_PER_DOC chunks of one cluster.
    doc = np.empty(n, dtype=np.int64)
    position = np.empty(n, dtype=np.int64)
    d, pos = -1, CHUNKS_PER_DOC
    for i in range(n):
        if pos == CHUNKS_PER_DOC or (i and cluster[i] != cluster[i - 1]):
            d, pos = d + 1, 0
        doc[i], position[i] = d, pos
        pos += 1

    vocab = _pseudo_words(rng, GENERAL_WORDS + clusters * TOPIC_WORDS)
    general, topical = vocab[:GENERAL_WORDS], vocab[GENERAL_WORDS:]
    zipf = 1.0 / (np.arange(GENERAL_WORDS) + 10.0)
    picks = rng.choice(GENERAL_WORDS, size=(n, words), p=zipf / zipf.sum())
    topic_pick = rng.integers(0, TOPIC_WORDS, size=(n, words))
    use_topic = rng.random((n, words)) < 0.3
    per_sentence = 10
    texts: list[str] = []
    for i in range(n):
        base = int(cluster[i]) * TOPIC_WORDS
        ws = [
            topical[base + int(t)] if u else general[int(p)]
            for p, t, u in zip(picks[i], topic_pick[i], use_topic[i], strict=True)
        ]
        sentences = [
            " ".join(ws[j : j + per_sentence]).capitalize() + "."
            for j in range(0, len(ws), per_sentence)
        ]
        texts.append(f"Synthetic passage {i}. " + " ".join(sentences))
    return Corpus(
        vectors, cluster, centres, spread, cluster_partition, texts, doc, position, general, seed
    )


def queries_near(
    corpus: Corpus,
    count: int,
    rng: np.random.Generator,
    partitions: Sequence[int] | None = None,
    scale: float = 0.8,
) -> np.ndarray:
    """`count` query vectors, each a fresh point near the centre of a cluster (drawn in
    proportion to cluster size; only clusters of `partitions` if given). Never corpus members."""
    eligible = np.arange(len(corpus.centres))
    if partitions is not None:
        eligible = eligible[np.isin(corpus.cluster_partition, list(partitions))]
    sizes = np.bincount(corpus.cluster, minlength=len(corpus.centres))[eligible].astype(float)
    chosen = rng.choice(eligible, size=count, p=sizes / sizes.sum())
    dims = corpus.vectors.shape[1]
    noise = rng.standard_normal((count, dims), dtype=np.float32) / np.sqrt(dims)
    return _normalise(corpus.centres[chosen] + scale * corpus.spread[chosen, None] * noise)


def question_text(corpus: Corpus) -> str:
    """A fixed question made of the corpus's common words (the extractive answerer then finds
    sentences to quote); the real local model embeds it."""
    w = corpus.general_words
    return f"How do I {w[0]} the {w[1]} {w[2]} before the {w[3]} {w[4]}?"


def documents(corpus: Corpus) -> list[tuple[Document, list[Chunk]]]:
    """The corpus as ragcli Documents and Chunks (what ingest would have produced)."""
    out: list[tuple[Document, list[Chunk]]] = []
    part = corpus.partition
    base_ts = 1_700_000_000  # 2023-11-14; documents spread over the two years after
    bounds = np.flatnonzero(np.diff(corpus.doc, prepend=-1)).tolist() + [corpus.n]
    for start, end in zip(bounds, bounds[1:], strict=False):
        d = int(corpus.doc[start])
        name = partition_name(int(part[start]))
        ref = FileRef(ROOT / name / f"doc-{d:06d}.md", ROOT, name)
        chunks = [
            Chunk(int(corpus.position[i]), corpus.texts[i], 0, len(corpus.texts[i]), 60)
            for i in range(start, end)
        ]
        body = "\n\n".join(c.text for c in chunks)
        ts = base_ts + (d * 7919 % 730) * 86_400
        date = time.strftime("%Y-%m-%d", time.gmtime(ts))
        doc = Document(
            ref=ref,
            text="",  # the catalogue keeps chunk texts only
            title=f"Synthetic document {d}",
            date=date,
            date_ts=ts,
            content_hash=hashlib.sha256(body.encode()).hexdigest(),
            mtime_ns=ts * 1_000_000_000,
            size=len(body),
        )
        out.append((doc, chunks))
    return out


def chunk_ids(corpus: Corpus, docs: Sequence[tuple[Document, Sequence[Chunk]]]) -> list[str]:
    """Row-aligned chunk ids, computed exactly as the catalogue computes them."""
    return [
        chunk_id(doc.ref.source, ch.position, text_hash(ch.text)) for doc, chs in docs for ch in chs
    ]


@dataclass
class BuiltDataDir:
    path: Path
    ids: list[str]  # row i of corpus.vectors is chunk ids[i]
    collection: str  # the global collection
    collections: int  # every collection `indexing.rebuild` made (global + per partition, if any)
    catalogue_s: float
    index_s: float


def build_data_dir(
    corpus: Corpus,
    path: Path,
    params: HnswParams | None = None,
    progress: Progress = print,
) -> BuiltDataDir:
    """A ragcli data directory over `corpus`: catalogue via `Catalog.apply`, index via
    `indexing.rebuild` with a VectorSource that returns the synthetic vectors."""
    dirs = DataDir(path)
    if dirs.exists():
        raise SystemExit(f"{path} already holds a ragcli data directory; choose an empty one")
    t0 = time.perf_counter()
    docs = documents(corpus)
    ids = chunk_ids(corpus, docs)
    if len(set(ids)) != corpus.n:
        raise SystemExit("synthetic chunk ids collide")  # cannot happen: texts are numbered
    row = {cid: i for i, cid in enumerate(ids)}
    catalog = Catalog(dirs.catalog)
    try:
        catalog.apply(docs, [], EMBEDDER_ID)
        catalogue_s = time.perf_counter() - t0
        progress(f"catalogue: {len(docs):,} documents, {corpus.n:,} chunks in {catalogue_s:.1f} s")
        done = 0
        t1 = time.perf_counter()

        async def vectors(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
            nonlocal done
            if done:  # called before each batch is upserted: report the one just finished
                rate = done / (time.perf_counter() - t1)
                progress(f"  index: {done:>7,} / {corpus.n:,} vectors ({rate:,.0f}/s)")
            done += len(pairs)
            return corpus.vectors[[row[cid] for cid, _ in pairs]]

        build = indexing.rebuild(catalog, Store(dirs.chroma), params or HnswParams(), vectors)
        report = asyncio.run(build)
        index_s = time.perf_counter() - t1
        info = indexing.current(catalog)
        assert info is not None
        collections = len(getattr(info, "partitions", {})) + 1
        progress(
            f"  index: {corpus.n:,} / {corpus.n:,} vectors in {index_s:.1f} s "
            f"({collections} collection{'s' * (collections > 1)})"
        )
    finally:
        catalog.close()
    (path / "synthetic.json").write_text(
        json.dumps(
            {
                "note": "SYNTHETIC data directory built by benchmarks/synthetic.py: the vectors "
                "are Gaussian-mixture draws, not embeddings of the (pseudo-word) texts.",
                "n": corpus.n,
                "clusters": len(corpus.centres),
                "partitions": [partition_name(p) for p in range(corpus.partitions)],
                "seed": corpus.seed,
                "question": question_text(corpus),
            },
            indent=2,
        )
    )
    return BuiltDataDir(path, ids, report.name, collections, catalogue_s, index_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t = time.perf_counter()
    corpus = make_corpus(args.n, clusters=args.clusters, partitions=args.partitions, seed=args.seed)
    print(f"corpus: {corpus.n:,} synthetic chunks in {time.perf_counter() - t:.1f} s")
    build_data_dir(corpus, args.data_dir)
    print(f'try: ragcli --data-dir {args.data_dir} profile "{question_text(corpus)}"')


if __name__ == "__main__":
    main()
