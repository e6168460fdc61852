"""`ragcli eval`: retrieval quality and retrieval latency, side by side, per configuration.

A relevance set (ragcli.eval.relevance) is run through `Pipeline.retrieve`, the path `ask` takes,
with the retrieval and answer caches off (a cached ranking would time nothing). For every
configuration of the sweep it reports recall@k, hit@k, MRR@10 and nDCG@10 at chunk level and
at document level (ragcli.eval.metrics) and the latency of question → ranked chunks (the `embed`
and `retrieve` spans: query embedding, HNSW/FTS5 search, fusion), p50/p95.

How the pieces meet:

* **Judged ids → documents.** A judged document id matches an ingested document by its path
  relative to the folder that was ingested (`runbooks/x.md`), its source (`sample_corpus/…`)
  or its absolute path; a corpus ingested by `eval --ingest` also maps BEIR `_id`s that are
  not paths. Documents are ranked at their first chunk (metrics.collapse). At chunk level,
  every chunk of a judged document carries that document's grade.
* **Sweeps** form the product of their values; settings that cannot change a result are
  folded (ef_search for lexical retrieval or exact search). `ef_search` is changed on the
  index's collections (Chroma reads it when it loads an index, so each value gets fresh
  pipelines) and restored afterwards; `eval-restore.json` in the data directory remembers the
  value to restore should the process die in between, and the next `eval` restores it.
* **partitions=on** scopes each question to its partition (the set's own, or else the
  partitions of its relevant documents: what a user who knows where to look would type).
* **Latency**: one excluded warm-up pass per configuration (it loads the index and fills the
  embedding cache with the questions' vectors), then `repeats` measured passes. A question
  never seen before also pays for its embedding: the warm-up's model calls are reported as
  `embed_miss_ms`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ragcli.core.datadir import DataDir
from ragcli.core.errors import NotReadyError, UsageError
from ragcli.eval import metrics
from ragcli.eval.relevance import RelevanceSet, load_set, read_trec_run
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.ingest.documents import TEXT_SUFFIXES
from ragcli.profile.profiling import summarize

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder
    from ragcli.retrieval.pipeline import Pipeline, Span

SCHEMA = "ragcli.eval/1"
NO_CACHE = "retrieval,answer"  # a cached ranking would time nothing
RESTORE_FILE = "eval-restore.json"
CORPORA_DIR = "eval-corpora"
MANIFEST = ".ids.json"  # relpath → BEIR _id, for ids that are not paths (dot-files are not read)
RETRIEVALS = ("dense", "lexical", "hybrid")
SEARCHES = ("hnsw", "exact")
_ON = {"on": True, "yes": True, "true": True, "1": True}
_OFF = {"off": False, "no": False, "false": False, "0": False}


# -- configurations ------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    retrieval: str
    search: str
    ef_search: int
    k: int
    partitions: bool = False
    hybrid_weight: float = 1.0

    @property
    def uses_hnsw(self) -> bool:
        return self.retrieval != "lexical" and self.search == "hnsw"

    def canonical(self) -> Config:
        """The same configuration with the settings that cannot change its results zeroed."""
        return dataclasses.replace(
            self,
            ef_search=self.ef_search if self.uses_hnsw else 0,
            search=self.search if self.retrieval != "lexical" else "-",
            hybrid_weight=self.hybrid_weight if self.retrieval == "hybrid" else 0.0,
        )

    @property
    def label(self) -> str:
        parts = [self.retrieval]
        if self.retrieval == "hybrid" and self.hybrid_weight != 1.0:
            parts.append(f"w={self.hybrid_weight:g}")
        if self.retrieval != "lexical":
            parts.append(f"ef={self.ef_search}" if self.search == "hnsw" else "exact")
        parts.append(f"k={self.k}")
        if self.partitions:
            parts.append("scoped")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not self.uses_hnsw:
            d["ef_search"] = None
        return d


def _parse_value(name: str, raw: str) -> Any:
    text = raw.strip().lower()
    if name in ("ef_search", "k"):
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"--sweep {name}: {raw!r} is not a positive integer")
        return int(text)
    if name == "hybrid_weight":
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if value < 0:
            raise UsageError(f"--sweep hybrid_weight: {raw!r} is not a number >= 0")
        return value
    if name == "partitions":
        if text not in _ON and text not in _OFF:
            raise UsageError(f"--sweep partitions: {raw!r}: use on or off")
        return {**_ON, **_OFF}[text]
    choices = RETRIEVALS if name == "retrieval" else SEARCHES
    if text not in choices:
        raise UsageError(f"--sweep {name}: {raw!r}: use {', '.join(choices)}")
    return text


SWEEPABLE = ("retrieval", "ef_search", "k", "partitions", "search", "hybrid_weight")


def parse_sweeps(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`["ef_search=16,64", "retrieval=dense,hybrid"]` → {"ef_search": [16, 64], ...}."""
    out: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SWEEPABLE:
            raise UsageError(
                f"--sweep {spec!r}: expected NAME=V1,V2,… with NAME one of {', '.join(SWEEPABLE)}"
            )
        if name in out:
            raise UsageError(f"--sweep {name} is given twice: list every value in one")
        parsed = [_parse_value(name, v) for v in values.split(",") if v.strip()]
        if not parsed:
            raise UsageError(f"--sweep {spec!r}: no values")
        out[name] = list(dict.fromkeys(parsed))
    return out


def configurations(base: Config, sweeps: dict[str, list[Any]]) -> list[Config]:
    """The product of the sweeps (in the order given), folding equivalent configurations."""
    names = list(sweeps)
    seen: set[Config] = set()
    out: list[Config] = []
    for values in itertools.product(*(sweeps[n] for n in names)):
        config = dataclasses.replace(base, **dict(zip(names, values, strict=True)))
        if config.canonical() not in seen:
            seen.add(config.canonical())
            out.append(config)
    return out


# -- the --min gate --------------------------------------------------------------------------
_MIN = re.compile(
    r"^(?:(?P<level>doc|document|chunk)\.)?(?P<kind>recall|hit|mrr|ndcg)@(?P<cut>[1-9]\d*)$"
)


@dataclass(frozen=True)
class Minimum:
    level: str  # "document" or "chunk"
    metric: str  # e.g. "ndcg@10"
    value: float
    text: str

    @property
    def cut(self) -> int:
        return int(self.metric.split("@")[1])


def parse_minimums(spec: str) -> list[Minimum]:
    """`ndcg@10=0.6,chunk.recall@5=0.8` (document level unless `chunk.` is written)."""
    out: list[Minimum] = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, sep, value = item.partition("=")
        m = _MIN.match(key.strip().lower())
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not sep or not m or not 0.0 <= number <= 1.0:
            raise UsageError(
                f"--min {item!r}: expected [doc.|chunk.]METRIC@K=VALUE with METRIC one of "
                "recall, hit, mrr, ndcg and VALUE between 0 and 1, e.g. ndcg@10=0.6"
            )
        level = "chunk" if m.group("level") == "chunk" else "document"
        out.append(Minimum(level, f"{m.group('kind')}@{m.group('cut')}", number, item))
    if not out:
        raise UsageError("--min is empty")
    return out


def check_minimums(minimums: Sequence[Minimum], report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every minimum against every configuration; a missing figure fails."""
    verdicts = []
    for config in report["configurations"]:
        for m in minimums:
            actual = (config.get(m.level) or {}).get(m.metric)
            prefix = "" if m.level == "document" else "chunk "
            ok = actual is not None and actual >= m.value
            shown = "n/a" if actual is None else f"{actual:.4f}"
            verdicts.append(
                {
                    "configuration": config["label"],
                    "minimum": m.text,
                    "actual": actual,
                    "ok": ok,
                    "line": f"{prefix}{m.metric} {shown} {'>=' if ok else '<'} {m.value:g} "
                    f"({config['label']})",
                }
            )
    return verdicts


# -- the corpus of a BEIR set, as files ragcli ingests ---------------------------------------------
def _file_name(doc_id: str) -> str:
    """A BEIR `_id` as a relative path: kept when it already is a safe path to a text file."""
    p = PurePosixPath(doc_id)
    if (
        not p.is_absolute()
        and p.suffix.lower() in TEXT_SUFFIXES
        and all(part not in ("", ".", "..") and not part.startswith(".") for part in p.parts)
        and re.fullmatch(r"[\w./ -]+", doc_id)
    ):
        return doc_id
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", doc_id)[:80].strip("_") or "doc"
    return f"{slug}-{hashlib.sha1(doc_id.encode()).hexdigest()[:8]}.txt"


def materialise_corpus(rset: RelevanceSet, data_dir: Path) -> Path:
    """Write the set's corpus under the data directory, in `eval-corpora/eval-NAME/` (a file
    is rewritten only when its content changed, so a second `--ingest` embeds nothing); files
    no longer in the corpus are removed, so the ingest that follows drops them."""
    assert rset.corpus is not None
    # "eval-NAME", not NAME: chunk ids derive from the folder's name and the file's path, so
    # a user's own ingest of a folder called NAME must not share them.
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", rset.name).strip("-.") or "set"
    folder = data_dir / CORPORA_DIR / f"eval-{slug}"
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str] = {}
    for doc in rset.corpus:
        rel = _file_name(doc.id)
        if rel in manifest:
            raise UsageError(f"corpus.jsonl: documents {manifest[rel]!r} and {doc.id!r} collide")
        manifest[rel] = doc.id
        text = doc.text
        if rel != doc.id and doc.title and not doc.text.lstrip().startswith(doc.title):
            text = f"{doc.title}\n\n{doc.text}"  # BEIR keeps titles apart; ragcli reads files
        target = folder / rel
        data = text.encode("utf-8")
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for path in sorted(folder.rglob("*"), reverse=True):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MANIFEST and rel not in manifest:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    (folder / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=0), "utf-8")
    return folder


async def ingest_set(rset: RelevanceSet, settings: Settings, embedder: Embedder) -> dict[str, Any]:
    from ragcli.ingest.run import ingest

    if rset.corpus is None:
        raise UsageError(
            "--ingest needs a BEIR set (its corpus.jsonl); for other formats run "
            "`ragcli ingest FOLDER` first, then `ragcli eval` without --ingest"
        )
    folder = materialise_corpus(rset, settings.data_dir)
    report = await ingest([folder], settings, embedder)
    return {"folder": str(folder), **report.as_dict()}


# -- judged ids → the index's documents and chunks -------------------------------------------
@dataclass
class _Judged:
    """One query's judgements in the index's terms."""

    doc_grades: dict[str, int]  # source → grade; missing relevant docs as "missing:<id>"
    chunk_grades: dict[str, int]  # chunk id → grade
    partitions: tuple[str, ...]  # the partitions of its relevant documents


def _identifiers(catalog: Catalog, data_dir: Path) -> dict[str, set[str]]:
    """Every name a judged id may use for a document → the documents' sources."""
    out: dict[str, set[str]] = {}
    for path, source, relpath in catalog.conn.execute(
        "SELECT path, source, relpath FROM documents"
    ):
        for key in (path, source, relpath):
            out.setdefault(key, set()).add(source)
    for manifest in sorted((data_dir / CORPORA_DIR).glob(f"*/{MANIFEST}")):
        with contextlib.suppress(OSError, ValueError):
            for rel, doc_id in json.loads(manifest.read_text("utf-8")).items():
                source = f"{manifest.parent.name}/{rel}"
                if source in out:
                    out.setdefault(doc_id, set()).add(source)
    return out


def _judge(catalog: Catalog, rset: RelevanceSet, data_dir: Path) -> tuple[dict, list[str]]:
    names = _identifiers(catalog, data_dir)
    judged: dict[str, _Judged] = {}
    missing: set[str] = set()
    wanted: set[str] = set()
    for q in rset.queries:
        grades: dict[str, int] = {}
        for doc_id, grade in rset.qrels[q.id].items():
            sources = names.get(doc_id)
            if not sources:
                if grade > 0:
                    missing.add(doc_id)
                    grades[f"missing:{doc_id}"] = grade
                continue
            for s in sources:
                grades[s] = max(grade, grades.get(s, grade))
        judged[q.id] = _Judged(grades, {}, ())
        wanted.update(s for s in grades if not s.startswith("missing:"))
    if not wanted:
        raise NotReadyError(
            f"none of the documents {rset.name!r} judges is in the index "
            f"(e.g. {sorted(missing)[0]!r}): ingest its corpus (`eval --ingest` for a BEIR "
            "set, or `ragcli ingest FOLDER` so that paths match the set's)"
        )
    chunks_of: dict[str, list[str]] = {}
    partition_of: dict[str, str] = {}
    items = sorted(wanted)
    for i in range(0, len(items), 500):
        part = items[i : i + 500]
        marks = ",".join("?" * len(part))
        for cid, source, partition in catalog.conn.execute(
            "SELECT c.id, d.source, d.partition FROM chunks c JOIN documents d "
            f"ON d.path = c.doc_path WHERE d.source IN ({marks})",
            part,
        ):
            chunks_of.setdefault(source, []).append(cid)
            partition_of[source] = partition
    for j in judged.values():
        for source, grade in j.doc_grades.items():
            for cid in chunks_of.get(source, ()):
                j.chunk_grades[cid] = max(grade, j.chunk_grades.get(cid, grade))
        relevant = [s for s, g in j.doc_grades.items() if g > 0 and s in partition_of]
        j.partitions = tuple(sorted({partition_of[s] for s in relevant}))
    return judged, sorted(missing)


# -- running -------------------------------------------------------------------------------
@dataclass
class _Measured:
    config: Config
    rows_doc: list[dict[str, float]] = field(default_factory=list)
    rows_chunk: list[dict[str, float]] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    embed_ms: list[float] = field(default_factory=list)
    retrieve_ms: list[float] = field(default_factory=list)
    per_query: list[dict[str, Any]] = field(default_factory=list)
    scoped: int = 0


def _cuts(k: int, minimums: Sequence[Minimum]) -> list[int]:
    return sorted({*metrics.DEFAULT_CUTS, k, *(m.cut for m in minimums)})


@contextlib.contextmanager
def _ef_search_control(
    data_dir: Path, catalog: Catalog, chroma_url: str = ""
) -> Iterator[Callable[[int], None]]:
    """Yields set(ef): puts ef_search on every collection of the index, for fresh pipelines
    to load. Restores the recorded value on the way out (or at the next eval after a crash).
    The index is the data dir's embedded one, or on the Chroma server at `chroma_url`."""
    from ragcli.index.store import Store

    info = indexing.current(catalog)
    assert info is not None
    restore_file = data_dir / RESTORE_FILE
    state = {"ef": info.params.ef_search}

    def apply(ef: int, collections: Sequence[str]) -> None:
        from chromadb.api.client import SharedSystemClient

        store = Store(url=chroma_url) if chroma_url else Store(DataDir(data_dir).chroma)
        existing = set(store.names())
        for name in collections:
            if name in existing:
                store.set_ef_search(name, ef)
        # Chroma keeps loaded indexes per process: drop them so the next load reads the new ef.
        SharedSystemClient.clear_system_cache()

    if restore_file.is_file():  # a previous eval died before restoring
        with contextlib.suppress(OSError, ValueError, KeyError):
            left = json.loads(restore_file.read_text("utf-8"))
            apply(int(left["ef_search"]), left["collections"])
        restore_file.unlink(missing_ok=True)

    def set_ef(ef: int) -> None:
        if ef == state["ef"]:
            return
        if not restore_file.exists():
            restore_file.write_text(
                json.dumps({"ef_search": info.params.ef_search, "collections": info.collections()}),
                "utf-8",
            )
        apply(ef, info.collections())
        state["ef"] = ef

    try:
        yield set_ef
    finally:
        if state["ef"] != info.params.ef_search:
            apply(info.params.ef_search, info.collections())
        restore_file.unlink(missing_ok=True)


def _latency(spans: Sequence[Span]) -> tuple[float, float, float, bool]:
    """(total, embed, retrieve) ms of one retrieval, loads excluded; and whether the query
    vector came from the model."""
    embed = sum(s.ms for s in spans if s.name == "embed")
    retrieve = sum(s.ms for s in spans if s.name == "retrieve")
    missed = any(s.name == "embed" and s.attrs.get("cache") == "miss" for s in spans)
    return embed + retrieve, embed, retrieve, missed


async def _measure(
    pipeline: Pipeline,
    config: Config,
    rset: RelevanceSet,
    judged: dict[str, _Judged],
    repeats: int,
    cuts: Sequence[int],
    embed_miss_ms: list[float],
) -> _Measured:
    from ragcli.retrieval.pipeline import Query

    out = _Measured(config)
    for n in range(repeats + 1):
        measured = n > 0
        for q in rset.queries:
            j = judged[q.id]
            parts = (q.partitions or j.partitions) if config.partitions else ()
            ranked, spans = await pipeline.retrieve(Query(q.text, config.k, parts))
            total, embed, retrieve, missed = _latency(spans)
            if not measured:
                if missed:
                    embed_miss_ms.append(embed)
                continue
            out.total_ms.append(total)
            out.embed_ms.append(embed)
            out.retrieve_ms.append(retrieve)
            if n > 1:
                continue  # quality is the same on every pass: score the first
            out.scoped += bool(parts)
            chunk_ids = [c.id for c, _ in ranked]
            docs = metrics.collapse(c.source for c, _ in ranked)
            d = metrics.query_metrics(docs, j.doc_grades, cuts)
            c = metrics.query_metrics(chunk_ids, j.chunk_grades, cuts)
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


def _round(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in values.items()}


def _config_row(m: _Measured) -> dict[str, Any]:
    return {
        "label": m.config.label,
        "config": m.config.as_dict(),
        "document": _round(metrics.mean(m.rows_doc)),
        "chunk": _round(metrics.mean(m.rows_chunk)),
        "latency_ms": {
            "total": summarize(m.total_ms),
            "embed": summarize(m.embed_ms),
            "retrieve": summarize(m.retrieve_ms),
        },
        "queries": len(m.rows_doc),
        "scoped_queries": m.scoped,
        "per_query": m.per_query,
    }


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
    from ragcli.retrieval.pipeline import Pipeline

    settings = dataclasses.replace(settings, no_cache=NO_CACHE).validate()
    dirs = DataDir(settings.data_dir)
    if not dirs.exists():
        raise NotReadyError(f"nothing ingested in {dirs.root}: run `ragcli ingest PATH` first")
    catalog = Catalog(dirs.catalog)
    try:
        info = indexing.current(catalog)
        if info is None:
            raise NotReadyError("there is no index yet: run `ragcli ingest PATH` first")
        judged, missing = _judge(catalog, rset, settings.data_dir)
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
        cuts = _cuts(max(c.k for c in configs), minimums)
        results: dict[Config, _Measured] = {}
        embed_miss: list[float] = []
        shared = embedder
        # Group by ef_search (each change reloads the index), then by pipeline settings.
        order = sorted(
            configs,
            key=lambda c: (c.canonical().ef_search != base.ef_search, c.canonical().ef_search),
        )
        with _ef_search_control(settings.data_dir, catalog, settings.chroma_url) as set_ef:
            for ef, group in itertools.groupby(order, key=lambda c: c.canonical().ef_search):
                if ef:
                    set_ef(ef)
                by_pipeline: dict[tuple, list[Config]] = {}
                for c in group:
                    by_pipeline.setdefault((c.retrieval, c.search, c.hybrid_weight), []).append(c)
                for (retrieval, search, weight), members in by_pipeline.items():
                    s = dataclasses.replace(
                        settings, retrieval=retrieval, search=search, hybrid_weight=weight
                    ).validate()
                    pipeline = Pipeline(s)
                    if shared is not None:
                        pipeline.embedder = shared  # the model is loaded once for every run
                    try:
                        await pipeline.open()
                        shared = pipeline.embedder
                        for c in members:
                            results[c] = await _measure(
                                pipeline, c, rset, judged, repeats, cuts, embed_miss
                            )
                    finally:
                        pipeline.close()
    finally:
        catalog.close()
    return {
        "schema": SCHEMA,
        "set": {
            **_set_info(rset),
            "judged_documents": len({d for g in rset.qrels.values() for d in g}),
            "missing_documents": len(missing),
            "missing_examples": missing[:10],
        },
        "index": index,
        "settings": {"no_cache": NO_CACHE, "warmup_passes": 1, "repeats": repeats},
        "configurations": [_config_row(results[c]) for c in configs],
        "embed_miss_ms": summarize(embed_miss) if embed_miss else None,
    }


def _set_info(rset: RelevanceSet) -> dict[str, Any]:
    return {
        "name": rset.name,
        "format": rset.format,
        "path": str(rset.path),
        "queries": len(rset.queries),
        "skipped_queries": len(rset.skipped),
    }


def score_run(
    rset: RelevanceSet, run_file: Path, k: int, minimums: Sequence[Minimum] = ()
) -> dict[str, Any]:
    """Score a TREC run file (another system's, or an earlier ragcli's) against the set's
    judgements: document level only, ids as they are, no index and no timing."""
    run = read_trec_run(run_file)
    cuts = _cuts(k, minimums)
    rows, per_query = [], []
    for q in rset.queries:
        ranked = run.get(q.id, [])[:k]
        row = metrics.query_metrics(ranked, rset.qrels[q.id], cuts)
        rows.append(row)
        per_query.append({"id": q.id, "doc_first_relevant": row["first_relevant"]})
    return {
        "schema": SCHEMA,
        "set": _set_info(rset),
        "run": str(run_file),
        "configurations": [
            {
                "label": f"run {run_file.name} k={k}",
                "config": {"run": str(run_file), "k": k},
                "document": _round(metrics.mean(rows)),
                "chunk": None,
                "latency_ms": None,
                "queries": len(rows),
                "per_query": per_query,
            }
        ],
        "embed_miss_ms": None,
    }


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
        embedder = None
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
