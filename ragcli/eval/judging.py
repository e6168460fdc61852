"""Judged ids → the index's documents and chunks.

A judged document id matches an ingested document by its path relative to the folder that was
ingested (`runbooks/x.md`), its source (`sample_corpus/…`) or its absolute path; a corpus
ingested by `eval --ingest` also maps BEIR `_id`s that are not paths (its manifest). At chunk
level, every chunk of a judged document carries that document's grade."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragcli.core.errors import NotReadyError
from ragcli.eval.corpus import CORPORA_DIR, MANIFEST

if TYPE_CHECKING:
    from pathlib import Path

    from ragcli.eval.relevance import RelevanceSet
    from ragcli.index.catalog import Catalog


@dataclass
class Judged:
    """One query's judgements in the index's terms."""

    doc_grades: dict[str, int]  # source → grade; missing relevant docs as "missing:<id>"
    chunk_grades: dict[str, int]  # chunk id → grade
    partitions: tuple[str, ...]  # the partitions of its relevant documents


def _identifiers(catalog: Catalog, data_dir: Path) -> dict[str, set[str]]:
    """Every name a judged id may use for a document → the documents' sources."""
    out: dict[str, set[str]] = {}
    for path, source, relpath in catalog.document_names():
        for key in (path, source, relpath):
            out.setdefault(key, set()).add(source)
    for manifest in sorted((data_dir / CORPORA_DIR).glob(f"*/{MANIFEST}")):
        with contextlib.suppress(OSError, ValueError):
            for rel, doc_id in json.loads(manifest.read_text("utf-8")).items():
                source = f"{manifest.parent.name}/{rel}"
                if source in out:
                    out.setdefault(doc_id, set()).add(source)
    return out


def judge(
    catalog: Catalog, rset: RelevanceSet, data_dir: Path
) -> tuple[dict[str, Judged], list[str]]:
    """Each query's judgements in the index's terms, and the relevant ids the index lacks."""
    names = _identifiers(catalog, data_dir)
    judged: dict[str, Judged] = {}
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
        judged[q.id] = Judged(grades, {}, ())
        wanted.update(s for s in grades if not s.startswith("missing:"))
    if not wanted:
        raise NotReadyError(
            f"none of the documents {rset.name!r} judges is in the index "
            f"(e.g. {sorted(missing)[0]!r}): ingest its corpus (`eval --ingest` for a BEIR "
            "set, or `ragcli ingest FOLDER` so that paths match the set's)"
        )
    chunks_of: dict[str, list[str]] = {}
    partition_of: dict[str, str] = {}
    for cid, source, partition in catalog.chunks_of_sources(sorted(wanted)):
        chunks_of.setdefault(source, []).append(cid)
        partition_of[source] = partition
    for j in judged.values():
        for source, grade in j.doc_grades.items():
            for cid in chunks_of.get(source, ()):
                j.chunk_grades[cid] = max(grade, j.chunk_grades.get(cid, grade))
        relevant = [s for s, g in j.doc_grades.items() if g > 0 and s in partition_of]
        j.partitions = tuple(sorted({partition_of[s] for s in relevant}))
    return judged, sorted(missing)
