"""Which partitions get a collection of their own (index/partition_rule.py): those holding
less than OWN_COLLECTION_BELOW of the corpus; one that has a collection keeps it up to
KEEP_MARGIN more, so a partition near the line is not rebuilt on every ingest."""

from __future__ import annotations

from ragcli.index.partition_rule import KEEP_MARGIN, OWN_COLLECTION_BELOW, wants_own_collection


def test_a_partition_holding_the_whole_corpus_gets_no_collection_of_its_own() -> None:
    assert not wants_own_collection(5000, 5000)
    assert not wants_own_collection(5000, 5000, has_own=True)


def test_the_line_is_the_share_of_the_corpus() -> None:
    total = 100_000
    line = round(OWN_COLLECTION_BELOW * total)
    assert wants_own_collection(line - 1, total)
    assert not wants_own_collection(line, total)
    assert wants_own_collection(1, total)


def test_a_collection_it_has_is_kept_a_little_beyond_the_line() -> None:
    total = 100_000
    line = round(OWN_COLLECTION_BELOW * total)
    keep = round((OWN_COLLECTION_BELOW + KEEP_MARGIN) * total)
    assert wants_own_collection(line, total, has_own=True)
    assert wants_own_collection(keep - 1, total, has_own=True)
    assert not wants_own_collection(keep, total, has_own=True)


def test_an_empty_partition_or_corpus_gets_none() -> None:
    assert not wants_own_collection(0, 100)
    assert not wants_own_collection(0, 0)
