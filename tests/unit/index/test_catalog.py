"""The catalogue's plan and apply, in-process on a real SQLite file: what an ingest of new,
unchanged, changed and removed documents plans and applies (chunk ids and texts added, ids
deleted, document and chunk counts, the version and the index version), and the batched
read queries past one batch of ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ragcli.core.records import Chunk, Document, FileRef
from ragcli.index import catalog as catalog_module
from ragcli.index.catalog import Catalog, LexicalFilter, chunk_id, text_hash

ROOT = Path("/corpus/docs")


def doc(name: str, partition: str = "ops", content: str = "v1", date_ts: int = 100) -> Document:
    return Document(
        ref=FileRef(ROOT / name, ROOT, partition),
        text="",  # the catalogue stores chunks, not the whole text
        title=name.upper(),
        date="1970-01-01",
        date_ts=date_ts,
        content_hash=f"hash-{name}-{content}",
        mtime_ns=1,
        size=10,
    )


def chunks(*texts: str) -> list[Chunk]:
    return [Chunk(i, t, 10 * i, 10 * i + len(t), 3) for i, t in enumerate(texts)]


def ids(d: Document, cs: Sequence[Chunk]) -> list[str]:
    return [chunk_id(d.ref.source, c.position, text_hash(c.text)) for c in cs]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog(tmp_path / "catalog.db")
    yield c
    c.close()


def test_new_documents_plan_every_chunk_and_apply_bumps_the_version(catalog: Catalog) -> None:
    a, b = doc("a.md"), doc("b.md", partition="dev")
    ca, cb = chunks("alpha pager rotation", "alpha escalation"), chunks("beta deploys")
    added, deleted = catalog.plan([(a, ca), (b, cb)], [])
    assert added == [(i, c.text) for i, c in zip(ids(a, ca) + ids(b, cb), ca + cb, strict=True)]
    assert deleted == []
    assert catalog.version == 0 and catalog.counts() == {"documents": 0, "chunks": 0}  # a plan
    assert catalog.apply([(a, ca), (b, cb)], [], "emb-1") is True
    assert catalog.version == 1
    assert catalog.counts() == {"documents": 2, "chunks": 3}
    assert catalog.partitions() == {"dev": 1, "ops": 2}
    assert catalog.get_meta("embedder") == "emb-1"
    assert catalog.get_meta("index.version") == ""  # the index did not follow
    states = catalog.file_states()
    assert states[str(ROOT / "a.md")].content_hash == "hash-a.md-v1"
    assert catalog.sources() == [("docs/a.md", "a.md", "ops"), ("docs/b.md", "b.md", "dev")]


def test_an_unchanged_document_plans_nothing_and_keeps_the_version(catalog: Catalog) -> None:
    a, ca = doc("a.md"), chunks("alpha one", "alpha two")
    catalog.apply([(a, ca)], [], "emb-1")
    digest = catalog.digest()
    assert catalog.plan([(a, ca)], []) == ([], [])
    assert catalog.apply([(a, ca)], [], "emb-1") is False
    assert catalog.version == 1 and catalog.digest() == digest


def test_a_changed_document_adds_only_new_chunks_and_deletes_only_gone_ones(
    catalog: Catalog,
) -> None:
    a = doc("a.md")
    old = chunks("kept intro", "old middle", "old end")
    catalog.apply([(a, old)], [], "emb-1")
    a2 = doc("a.md", content="v2")
    new = chunks("kept intro", "new middle")  # position 0 same text: same id
    added, deleted = catalog.plan([(a2, new)], [])
    old_ids, new_ids = ids(a, old), ids(a2, new)
    assert new_ids[0] == old_ids[0]
    assert added == [(new_ids[1], "new middle")]
    assert deleted == sorted(old_ids[1:])
    assert catalog.apply([(a2, new)], [], "emb-1", index_follows=True) is True
    assert catalog.version == 2 and catalog.get_meta("index.version") == "2"
    assert catalog.known_ids(set(old_ids + new_ids)) == set(new_ids)
    assert catalog.file_states()[str(ROOT / "a.md")].content_hash == "hash-a.md-v2"
    assert catalog.counts() == {"documents": 1, "chunks": 2}
    # the lexical index follows the chunks in the same transaction
    assert [cid for cid, _ in catalog.lexical_search("middle", 5)] == [new_ids[1]]


def test_a_removed_document_deletes_all_its_chunks(catalog: Catalog) -> None:
    a, b = doc("a.md"), doc("b.md")
    ca, cb = chunks("alpha one", "alpha two"), chunks("beta one")
    catalog.apply([(a, ca), (b, cb)], [], "emb-1")
    path = str(ROOT / "a.md")
    assert catalog.plan([], [path]) == ([], sorted(ids(a, ca)))
    assert catalog.apply([], [path], "emb-1") is True
    assert catalog.version == 2
    assert catalog.counts() == {"documents": 1, "chunks": 1}
    assert path not in catalog.file_states()
    assert catalog.lexical_search("alpha", 5) == []
    assert catalog.chunks(ids(a, ca)) == {}


def test_removing_an_unknown_path_changes_nothing_but_records_the_embedder(
    catalog: Catalog,
) -> None:
    catalog.apply([(doc("a.md"), chunks("alpha"))], [], "emb-1")
    assert catalog.plan([], ["/nowhere.md"]) == ([], [])
    assert catalog.apply([], ["/nowhere.md"], "emb-2") is False
    assert catalog.version == 1 and catalog.get_meta("embedder") == "emb-2"


def test_touch_records_a_new_mtime_without_a_new_version(catalog: Catalog) -> None:
    catalog.apply([(doc("a.md"), chunks("alpha"))], [], "emb-1")
    catalog.touch(str(ROOT / "a.md"), 42)
    assert catalog.file_states()[str(ROOT / "a.md")].mtime_ns == 42
    assert catalog.version == 1


@pytest.fixture
def big(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> tuple[Catalog, list[str]]:
    """More chunks and documents than one batch of ids holds (the batch made small)."""
    monkeypatch.setattr(catalog_module, "_BATCH", 7)
    docs = [
        (doc(f"d{i:02}.md", partition=f"p{i % 3}", date_ts=i), chunks(f"t{i}")) for i in range(23)
    ]
    catalog.apply(docs, [], "emb-1")
    return catalog, [cid for d, cs in docs for cid in ids(d, cs)]


def test_batched_reads_return_every_row_past_one_batch(big: tuple[Catalog, list[str]]) -> None:
    catalog, all_ids = big
    records = catalog.chunks(all_ids)
    assert set(records) == set(all_ids) and records[all_ids[5]].title == "D05.MD"
    assert catalog.known_ids({*all_ids, "not-a-chunk"}) == set(all_ids)
    partitions = catalog.chunk_partitions(all_ids)
    assert [partitions[cid] for cid in all_ids] == [f"p{i % 3}" for i in range(23)]
    meta = catalog.chunk_metadata(all_ids)  # in the order asked
    assert [m["date_ts"] for m in meta] == list(range(23))
    assert meta[4] == {"partition": "p1", "source": "docs/d04.md", "date_ts": 4}
    sources = [f"docs/d{i:02}.md" for i in range(23)]
    assert sorted(s for _, s in catalog.paths_by_source(sources)) == sources
    rows = catalog.chunks_of_sources(sources)
    assert sorted(cid for cid, _, _ in rows) == sorted(all_ids)
    assert ("docs/d07.md", "p1") in {(s, p) for _, s, p in rows}


def test_document_names_give_path_source_and_relpath(catalog: Catalog) -> None:
    catalog.apply([(doc("sub/a.md"), chunks("alpha"))], [], "emb-1")
    assert catalog.document_names() == [(str(ROOT / "sub/a.md"), "docs/sub/a.md", "sub/a.md")]


def test_lexical_search_filters_by_partition_source_and_date(catalog: Catalog) -> None:
    catalog.apply(
        [
            (doc("a.md", partition="ops", date_ts=10), chunks("pager rotation")),
            (doc("b.md", partition="dev", date_ts=20), chunks("pager duty")),
        ],
        [],
        "emb-1",
    )

    def sources(where: LexicalFilter) -> set[str]:
        found = [cid for cid, _ in catalog.lexical_search("pager", 5, where)]
        return {r.source for r in catalog.chunks(found).values()}

    assert sources(LexicalFilter()) == {"docs/a.md", "docs/b.md"}
    assert sources(LexicalFilter(partitions=("dev",))) == {"docs/b.md"}
    assert sources(LexicalFilter(since_ts=15)) == {"docs/b.md"}
    assert sources(LexicalFilter(sources=("docs/a.md",))) == {"docs/a.md"}
