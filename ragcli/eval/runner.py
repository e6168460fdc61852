"""`ragcli eval`'s measuring: a relevance set run through `Pipeline.retrieve` per configuration.

A relevance set (ragcli.eval.relevance) is run through `Pipeline.retrieve`, the path `ask` takes,
with the retrieval and answer caches off (a cached ranking would time nothing). For every
configuration of the sweep (ragcli.eval.sweeps) it reports recall@k, hit@k, MRR@10 and nDCG@10
at chunk level and at document level (ragcli.eval.metrics; judged ids matched to the index by
ragcli.eval.judging) and the latency of question → ranked chunks (the `embed` and `retrieve`
spans: query embedding, HNSW/FTS5 search, fusion), p50/p95.

* Documents are ranked at their first chunk (metrics.collapse).
* Configurations are grouped by ef_search (each change reloads the index: ragcli.eval.ef_search),
  then by pipeline settings, so each pipeline is opened once and the model loaded once.
* **partitions=on** scopes each question to its partition (the set's own, or else the
  partitions of its relevant documents: what a user who knows where to look would type).
* **Latency**: one excluded warm-up pass per configuration (it loads the index and fills the
  embedding cache with the questions' vectors), then `repeats` measured passes. A question
  never seen before also pays for its embedding: the warm-up's model calls are reported as
  `embed_miss_ms`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragcli.core.datadir import DataDir
from ragcli.core.errors import NotReadyError
from ragcli.eval import metrics
from ragcli.eval.abstention import abstention
from ragcli.eval.ef_search import ef_search_control
from ragcli.eval.judging import Judged, judge
from ragcli.eval.sweeps import Config, configurations
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.profile.stats import summarize

if TYPE_CHECKING:
    from ragcli.core.config import RetrievalMode, SearchMethod, Settings
    from ragcli.embedders.base import Embedder
    from ragcli.eval.minimums import Minimum
    from ragcli.eval.relevance import RelevanceSet
    from ragcli.retrieval.events import Span
    from ragcli.retrieval.pipeline import Pipeline

SCHEMA = "ragcli.eval/1"
NO_CACHE = "retrieval,answer"  # a cached ranking would time nothing


@dataclass
class Measured:
    """What one configuration's passes over the set measured."""

    config: Config
    rows_doc: list[dict[str, float]] = field(default_factory=list)
    rows_chunk: list[dict[str, float]] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    embed_ms: list[float] = field(default_factory=list)
    retrieve_ms: list[float] = field(default_factory=list)
    per_query: list[dict[str, Any]] = field(default_factory=list)
    scoped: int = 0


@dataclass
class _Run:
    """What every configuration of one evaluation shares."""

    rset: RelevanceSet
    judged: dict[str, Judged]
    repeats: int
    cuts: Sequence[int]
    embed_miss_ms: list[float] = field(default_factory=list)  # warm-up passes' model calls


def cuts(k: int, minimums: Sequence[Minimum]) -> list[int]:
    """The metric cut-offs a report shows: the defaults, k, and those the --min gate needs."""
    return sorted({*metrics.DEFAULT_CUTS, k, *(m.cut for m in minimums)})


def rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in values.items()}


def set_info(rset: RelevanceSet) -> dict[str, Any]:
    return {
        "name": rset.name,
        "format": rset.format,
        "path": str(rset.path),
        "queries": len(rset.queries),
        "skipped_queries": len(rset.skipped),
    }


def _latency(spans: Sequence[Span]) -> tuple[float, float, float, bool]:
    """(total, embed, retrieve) ms of one retrieval, loads excluded; and whether the query
    vector came from the model."""
    embed = sum(s.ms for s in spans if s.name == "embed")
    retrieve = sum(s.ms for s in spans if s.name == "retrieve")
    missed = any(s.name == "embed" and s.attrs.get("cache") == "miss" for s in spans)
    return embed + retrieve, embed, retrieve, missed


async def _measure(pipeline: Pipeline, config: Config, run: _Run) -> Measured:
    from ragcli.retrieval.events import Query

    out = Measured(config)
    for n in range(run.repeats + 1):
        measured = n > 0
        for q in run.rset.queries:
            j = run.judged[q.id]
            parts = (q.partitions or j.partitions) if config.partitions else ()
            ranked, spans = await pipeline.retrieve(Query(q.text, config.k, parts))
            total, embed, retrieve, missed = _latency(spans)
            if not measured:
                if missed:
                    run.embed_miss_ms.append(embed)
                continue
            out.total_ms.append(total)
            out.embed_ms.append(embed)
            out.retrieve_ms.append(retrieve)
            if n > 1:
                continue  # quality is the same on every pass: score the first
            out.scoped += bool(parts)
            chunk_ids = [c.id for c, _ in ranked]
            docs = metrics.collapse(c.source for c, _ in ranked)
            d = metrics.query_metrics(docs, j.doc_grades, run.cuts)
            c = metrics.query_metrics(chunk_ids, j.chunk_grades, run.cuts)
            out.rows_doc.append(d)
            out.rows_chunk.append(c)
            out.per_query.append(
                {
                    "id": q.id,
                    "doc_first_relevant": d["first_relevant"],
                    "chunk_first_relevant": c["first_relevant"],
                    "top": docs[:3],
                }
            )
    return out


def _config_row(m: Measured) -> dict[str, Any]:
    return {
        "label": m.config.label,
        "config": m.config.as_dict(),
        "document": rounded(metrics.mean(m.rows_doc)),
        "chunk": rounded(metrics.mean(m.rows_chunk)),
        "latency_ms": {
            "total": summarize(m.total_ms),
            "embed": summarize(m.embed_ms),
            "retrieve": summarize(m.retrieve_ms),
        },
        "queries": len(m.rows_doc),
        "scoped_queries": m.scoped,
        "per_query": m.per_query,
    }


async def _run_pipeline(
    settings: Settings,
    members: Sequence[Config],
    run: _Run,
    embedder: Embedder | None,
    results: dict[Config, Measured],
) -> Embedder:
    """Measure `members` (configurations that share these pipeline settings) on one pipeline;
    returns its embedder, for the next pipeline to reuse (the model is loaded once)."""
    from ragcli.retrieval.pipeline import Pipeline

    pipeline = Pipeline(settings, embedder)
    try:
        await pipeline.open()
        embedder = pipeline.embedder
        for c in members:
            results[c] = await _measure(pipeline, c, run)
    finally:
        pipeline.close()
    return embedder


async def _run_all(
    settings: Settings,
    base: Config,
    configs: Sequence[Config],
    run: _Run,
    set_ef: Callable[[int], None],
    embedder: Embedder | None,
) -> dict[Config, Measured]:
    """Every configuration, grouped by ef_search (each change reloads the index), then by
    pipeline settings."""
    results: dict[Config, Measured] = {}
    order = sorted(
        configs,
        key=lambda c: (c.canonical().ef_search != base.ef_search, c.canonical().ef_search),
    )
    for ef, group in itertools.groupby(order, key=lambda c: c.canonical().ef_search):
        if ef:
            set_ef(ef)
        by_pipeline: dict[tuple[RetrievalMode, SearchMethod, float], list[Config]] = {}
        for c in group:
            by_pipeline.setdefault((c.retrieval, c.search, c.hybrid_weight), []).append(c)
        for (retrieval, search, weight), members in by_pipeline.items():
            s = dataclasses.replace(
                settings, retrieval=retrieval, search=search, hybrid_weight=weight
            ).validate()
            embedder = await _run_pipeline(s, members, run, embedder, results)
    return results


async def evaluate(
    settings: Settings,
    rset: RelevanceSet,
    sweeps: dict[str, list[Any]],
    k: int,
    repeats: int = 1,
    minimums: Sequence[Minimum] = (),
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Run every configuration of the sweep; return the report (schema `ragcli.eval/1`)."""
    settings = dataclasses.replace(settings, no_cache=NO_CACHE).validate()
    dirs = DataDir(settings.data_dir)
    if not dirs.exists():
        raise NotReadyError(f"nothing ingested in {dirs.root}: run `ragcli ingest PATH` first")
    catalog = Catalog(dirs.catalog)
    try:
        info = indexing.current(catalog)
        if info is None:
            raise NotReadyError("there is no index yet: run `ragcli ingest PATH` first")
        judged, missing = judge(catalog, rset, settings.data_dir)
        index = {
            **catalog.counts(),
            "version": catalog.version,
            "ef_search": info.params.ef_search,
            "m": info.params.m,
            "embedder": catalog.get_meta("embedder"),
        }
        base = Config(
            settings.retrieval,
            settings.search,
            info.params.ef_search,
            k,
            False,
            settings.hybrid_weight,
        )
        configs = configurations(base, sweeps)
        run = _Run(rset, judged, repeats, cuts(max(c.k for c in configs), minimums))
        with ef_search_control(settings.data_dir, catalog, settings.chroma) as set_ef:
            results = await _run_all(settings, base, configs, run, set_ef, embedder)
        abstained = await abstention(settings, rset, settings.k, embedder)  # as `ask` asks
    finally:
        catalog.close()
    return {
        "schema": SCHEMA,
        "set": {
            **set_info(rset),
            "judged_documents": len({d for g in rset.qrels.values() for d in g}),
            "missing_documents": len(missing),
            "missing_examples": missing[:10],
        },
        "index": index,
        "settings": {"no_cache": NO_CACHE, "warmup_passes": 1, "repeats": repeats},
        "configurations": [_config_row(results[c]) for c in configs],
        "embed_miss_ms": summarize(run.embed_miss_ms) if run.embed_miss_ms else None,
        "abstention": abstained,
    }
