"""Keep the HNSW index (Chroma collections) in step with the catalogue.

The index is one global collection (whole-corpus questions) plus a collection of its own for
each partition that is a small share of the corpus (scoped questions): measured at 100k
chunks, a small partition's own collection answers in ≈1.6 ms where a `where` filter on the
global one takes ≈64 ms, while a partition that is (nearly) the whole corpus is searched in
the global collection and not indexed twice (partition_rule.py has the rule and its
measurements; `sync_partitions` applies it). Which collections are current, with which HNSW
parameters and for which catalogue version, is recorded in the catalogue. A rebuild fills
*new* collections and then switches that record in one transaction, so a reader sees the old
index or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.core.db import transaction
from ragcli.index.store import HnswParams, Store

if TYPE_CHECKING:
    import numpy as np

    from ragcli.core.records import Chunk, Document
    from ragcli.index.catalog import Catalog

# Given (chunk id, text) pairs, return their vectors (cache first, embedding what is missing).
VectorSource = Callable[[Sequence[tuple[str, str]]], Awaitable["np.ndarray"]]
_PREFIX = "ragcli-chunks-"
_BATCH = 5000
PENDING = "index.pending"  # set while an ingest is between "new chunks in" and "old out"
NAMESPACE = "store.namespace"  # this data dir's id among others on one Chroma server


@dataclass(frozen=True)
class IndexInfo:
    name: str  # the global collection
    params: HnswParams
    version: int  # the catalogue version this index reflects
    partitions: dict[str, str] = field(default_factory=dict)  # partition → its collection

    def collections(self) -> list[str]:
        return [self.name, *self.partitions.values()]


@dataclass(frozen=True)
class BuildReport:
    name: str
    params: HnswParams
    vectors: int
    seconds: float
    rebuilt: bool


def partition_collection(base: str, partition: str) -> str:
    """A valid Chroma name (3–512 of [a-zA-Z0-9._-], alphanumeric at both ends), unique per
    partition whatever characters its name has."""
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", partition)[:40].strip("-._") or "p"
    digest = hashlib.sha1(partition.encode()).hexdigest()[:8]
    return f"{base}-p-{slug}-{digest}"


def collection_prefix(catalog: Catalog, store: Store) -> str:
    """The name prefix of this data dir's collections. On a Chroma server that other data dirs
    share, it carries a short id kept in the catalogue (made on first use), so that two data
    dirs never take, or clean up, each other's collections; copies of a data dir (replicas)
    keep the id and so read the same collections."""
    if not store.url:
        return _PREFIX
    namespace = catalog.get_meta(NAMESPACE)
    if not namespace:
        namespace = secrets.token_hex(4)
        catalog.set_meta(NAMESPACE, namespace)
    return f"ragcli-{namespace}-chunks-"


def current(catalog: Catalog) -> IndexInfo | None:
    name = catalog.get_meta("index.name")
    if not name:
        return None
    params = HnswParams(**json.loads(catalog.get_meta("index.params", "{}")))
    partitions = json.loads(catalog.get_meta("index.partitions", "{}"))
    return IndexInfo(name, params, int(catalog.get_meta("index.version", "-1")), partitions)


def _record(catalog: Catalog, info: IndexInfo) -> None:
    with transaction(catalog.conn):
        catalog.set_meta("index.name", info.name)
        catalog.set_meta("index.params", json.dumps(asdict(info.params)))
        catalog.set_meta("index.partitions", json.dumps(info.partitions, sort_keys=True))
        catalog.set_meta("index.version", str(info.version))


def record_params(catalog: Catalog, params: HnswParams) -> None:
    catalog.set_meta("index.params", json.dumps(asdict(params)))


async def _fill(
    catalog: Catalog,
    store: Store,
    info: IndexInfo,
    pairs: Sequence[tuple[str, str]],
    vectors: VectorSource,
) -> None:
    """Upsert chunks (vectors from `vectors`) into the global collection and the collections
    their partitions already have, `_BATCH` at a time."""
    for i in range(0, len(pairs), _BATCH):
        part = pairs[i : i + _BATCH]
        ids = [cid for cid, _ in part]
        upsert(store, info, ids, await vectors(part), catalog.chunk_metadata(ids))


def upsert(
    store: Store,
    info: IndexInfo,
    ids: Sequence[str],
    vecs: np.ndarray,
    meta: Sequence[dict[str, Any]],
) -> None:
    """Chunks into the global collection, and into their partitions' own collections."""
    store.upsert(info.name, ids, vecs, meta)
    rows: dict[str, list[int]] = {}
    for row, m in enumerate(meta):
        if str(m["partition"]) in info.partitions:
            rows.setdefault(str(m["partition"]), []).append(row)
    for partition, idx in rows.items():
        store.upsert(
            info.partitions[partition], [ids[j] for j in idx], vecs[idx], [meta[j] for j in idx]
        )


async def sync_partitions(
    catalog: Catalog, store: Store, info: IndexInfo, vectors: VectorSource, record: bool = True
) -> IndexInfo:
    """Give each partition its own collection if, and only if, the rule of
    `partition_rule.wants_own_collection` says so for the catalogue's counts now: a partition
    that holds (nearly) the whole corpus is searched in the global collection instead of being
    indexed twice. A new collection is filled first and recorded after (`record`: at once; or
    by the caller's switch, for a rebuild), so readers see it whole or not at all; one no longer
    wanted is unrecorded first, then dropped. Leftovers of an interrupted fill are dropped."""
    from ragcli.index.partition_rule import wants_own_collection

    counts = catalog.partitions()
    total = sum(counts.values())
    has = set(info.partitions)
    want = {p for p, n in counts.items() if wants_own_collection(n, total, p in has)}
    keep = {p: name for p, name in info.partitions.items() if p in want}
    if keep != info.partitions:
        info = IndexInfo(info.name, info.params, info.version, keep)
        if record:
            catalog.set_meta("index.partitions", json.dumps(keep, sort_keys=True))
    names = set(store.names())
    for stale in sorted(names):  # unrecorded partition collections: dropped, or half filled
        if stale.startswith(f"{info.name}-p-") and stale not in keep.values():
            store.drop(stale)
    for partition in sorted(want - set(keep)):
        name = partition_collection(info.name, partition)
        store.create(name, info.params)
        pairs = catalog.chunk_texts(partition)
        for i in range(0, len(pairs), _BATCH):
            ids = [cid for cid, _ in pairs[i : i + _BATCH]]
            vecs = await vectors(pairs[i : i + _BATCH])
            store.upsert(name, ids, vecs, catalog.chunk_metadata(ids))
        info = IndexInfo(info.name, info.params, info.version, {**info.partitions, partition: name})
        if record:
            catalog.set_meta("index.partitions", json.dumps(info.partitions, sort_keys=True))
    return info


def delete(store: Store, info: IndexInfo, ids: Sequence[str], partitions: dict[str, str]) -> None:
    store.delete(info.name, list(ids))
    by_partition: dict[str, list[str]] = {}
    for cid in ids:
        if cid in partitions and partitions[cid] in info.partitions:
            by_partition.setdefault(partitions[cid], []).append(cid)
    for partition, part_ids in by_partition.items():
        store.delete(info.partitions[partition], part_ids)


async def rebuild(
    catalog: Catalog, store: Store, params: HnswParams, vectors: VectorSource
) -> BuildReport:
    """Build fresh collections from the catalogue, then switch to them atomically."""
    started = time.perf_counter()
    version = catalog.version
    prefix = collection_prefix(catalog, store)
    name = f"{prefix}{version}-{time.time_ns()}"
    store.create(name, params)
    pairs = catalog.chunk_texts()
    info = IndexInfo(name, params, version)
    await _fill(catalog, store, info, pairs, vectors)
    info = await sync_partitions(catalog, store, info, vectors, record=False)
    _record(catalog, info)  # the switch: global and partition collections go live together
    keep = set(info.collections())
    # Collections left behind by this one's predecessor or by an interrupted build.
    for stale in store.names():
        if stale.startswith(prefix) and stale not in keep:
            store.drop(stale)
    return BuildReport(name, params, len(pairs), time.perf_counter() - started, True)


async def reconcile(
    catalog: Catalog, store: Store, info: IndexInfo, vectors: VectorSource
) -> BuildReport:
    """Make every collection hold exactly the catalogue's chunks (after a crash mid-update)."""
    started = time.perf_counter()
    want = dict(catalog.chunk_texts())
    missing = sorted(set(want) - store.ids(info.name))
    extra = sorted(store.ids(info.name) - set(want))
    if extra:
        store.delete(info.name, extra)
    partition_of = catalog.chunk_partitions(list(want))
    names = set(store.names())
    for partition, collection in info.partitions.items():
        if collection not in names:
            store.create(collection, info.params)
        have = store.ids(collection)
        mine = {cid for cid, p in partition_of.items() if p == partition}
        missing += sorted(mine - have)
        if have - mine:
            store.delete(collection, sorted(have - mine))
    todo = sorted(set(missing))
    if todo:
        await _fill(catalog, store, info, [(cid, want[cid]) for cid in todo], vectors)
    info = await sync_partitions(catalog, store, info, vectors)
    info = IndexInfo(info.name, info.params, catalog.version, info.partitions)
    _record(catalog, info)
    catalog.set_meta(PENDING, "")
    return BuildReport(info.name, info.params, len(todo), time.perf_counter() - started, False)


def metadata(doc: Document, chunk: Chunk) -> tuple[str, dict[str, Any]]:
    """(chunk id, what the index stores beside its vector), as `Catalog.chunk_metadata` has it."""
    from ragcli.index.catalog import chunk_id, text_hash

    cid = chunk_id(doc.ref.source, chunk.position, text_hash(chunk.text))
    return cid, {"partition": doc.ref.partition, "source": doc.ref.source, "date_ts": doc.date_ts}


async def recall_at_k(
    catalog: Catalog, store: Store, name: str, vectors: VectorSource, k: int = 10, queries: int = 50
) -> float:
    """Recall@k of the HNSW index against exact search, on `queries` synthetic queries.

    Each query is the normalised midpoint of two chunk vectors (chosen with a fixed seed), so
    it lies between documents, as a real question does, rather than exactly on one.
    """
    import numpy as np

    pairs = catalog.chunk_texts()
    if not pairs:
        return 1.0
    matrix = await vectors(pairs)
    ids = [cid for cid, _ in pairs]
    rng = np.random.default_rng(0)
    a = rng.integers(0, len(ids), queries)
    b = rng.integers(0, len(ids), queries)
    q = matrix[a] + matrix[b]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    k = min(k, len(ids))
    exact = np.argsort(-(q @ matrix.T), axis=1)[:, :k]
    found = store.query(name, q, k)
    hits = sum(
        len({ids[j] for j in row} & {h.id for h in got})
        for row, got in zip(exact, found, strict=True)
    )
    return hits / (k * queries)
