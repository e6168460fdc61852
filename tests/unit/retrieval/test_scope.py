"""A question's scope (retrieval.scope): partitions, --since and --source resolved into the
Chroma `where`, the lexical SQL filter and the cache key; bad specs refused in one line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from ragcli.core.datadir import DataDir
from ragcli.core.errors import UsageError
from ragcli.index.catalog import Catalog, LexicalFilter
from ragcli.retrieval.events import Query
from ragcli.retrieval.scope import Scope, resolve_scope, since_timestamp

PARTS = {"ops", "hr", "eng"}
SOURCES = [
    ("/data/corpus/hr/leave.md", "hr/leave.md", "hr"),
    ("/data/corpus/ops/pager.md", "ops/pager.md", "ops"),
    ("/data/corpus/ops/runbooks/disk.md", "ops/runbooks/disk.md", "ops"),
]


def _never() -> Any:
    raise AssertionError("read although the query does not need it")


def scope(query: Query) -> Scope:
    return resolve_scope(query, lambda: PARTS, lambda: SOURCES)


def day_start(days_ago: int) -> int:
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days_ago)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def test_no_filters_is_the_empty_scope_and_reads_nothing() -> None:
    s = resolve_scope(Query("q"), _never, _never)
    assert s == Scope(None, "{}", LexicalFilter(), (), None)


def test_one_partition_filters_the_global_collection_but_not_its_own() -> None:
    s = scope(Query("q", partitions=("ops",)))
    assert s.where == {"partition": "ops"}
    assert s.rest is None  # the partition's own collection needs no filter
    assert s.partitions == ("ops",) and s.sql == LexicalFilter(("ops",))
    assert json.loads(s.key) == {"partitions": ["ops"]}


def test_partitions_are_sorted_and_deduplicated_so_the_key_is_stable() -> None:
    a = scope(Query("q", partitions=("ops", "hr", "ops")))
    b = scope(Query("q", partitions=("hr", "ops")))
    assert a == b
    assert a.where == {"partition": {"$in": ["hr", "ops"]}} and a.partitions == ("hr", "ops")


def test_since_and_source_combine_with_the_partition() -> None:
    s = scope(Query("q", partitions=("ops",), since="30d", source="ops/*"))
    ts = day_start(30)
    ops = ["/data/corpus/ops/pager.md", "/data/corpus/ops/runbooks/disk.md"]
    assert s.where == {
        "$and": [{"partition": "ops"}, {"date_ts": {"$gte": ts}}, {"source": {"$in": ops}}]
    }
    assert s.rest == {"$and": [{"date_ts": {"$gte": ts}}, {"source": {"$in": ops}}]}
    assert s.sql == LexicalFilter(("ops",), ts, tuple(ops))
    assert json.loads(s.key) == {"partitions": ["ops"], "since": ts, "sources": ops}


def test_a_source_glob_matches_only_inside_the_asked_partitions() -> None:
    # an hr-scoped caller learns nothing of ops' paths: the same line as for no such path
    with pytest.raises(UsageError, match="matches no ingested document"):
        scope(Query("q", partitions=("hr",), source="ops/*"))
    s = scope(Query("q", partitions=("hr",), source="*/*.md"))
    assert s.sql.sources == ("/data/corpus/hr/leave.md",)


def test_source_glob_matches_the_source_path_or_the_relative_path() -> None:
    by_rel = scope(Query("q", source="*/runbooks/*"))
    by_abs = scope(Query("q", source="/data/corpus/hr/*"))
    assert by_rel.where == {"source": {"$in": ["/data/corpus/ops/runbooks/disk.md"]}}
    assert by_abs.where == {"source": {"$in": ["/data/corpus/hr/leave.md"]}}
    assert by_rel.rest == by_rel.where and by_rel.partitions == ()


def test_since_alone() -> None:
    s = resolve_scope(Query("q", since="2026-01-31"), _never, _never)
    ts = int(dt.datetime(2026, 1, 31, tzinfo=dt.UTC).timestamp())
    assert s.where == s.rest == {"date_ts": {"$gte": ts}}
    assert s.key == json.dumps({"since": ts})


def test_unknown_partition_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"^unknown partition 'sales' \(known: eng, hr, ops\)$"):
        scope(Query("q", partitions=("ops", "sales")))
    with pytest.raises(UsageError, match=r"\(known: none\)$"):
        resolve_scope(Query("q", partitions=("ops",)), set, _never)


def test_a_source_glob_that_matches_nothing_is_refused() -> None:
    with pytest.raises(
        UsageError, match=r"^--source '\*/nothing/\*' matches no ingested document$"
    ):
        scope(Query("q", source="*/nothing/*"))


@pytest.mark.parametrize("spec", ["30", "d30", "3 days", "2026-13-01", "yesterday", "-1d", ""])
def test_bad_since_specs(spec: str) -> None:
    with pytest.raises(UsageError, match="use a duration like 30d, 12h, 2w or a date"):
        since_timestamp(spec)


def test_since_durations_round_down_to_the_day_or_the_hour() -> None:
    now = dt.datetime(2026, 3, 14, 15, 42, 7, tzinfo=dt.UTC).timestamp()

    def at(year: int, month: int, day: int, hour: int = 0) -> int:
        return int(dt.datetime(year, month, day, hour, tzinfo=dt.UTC).timestamp())

    assert since_timestamp("30d", now) == at(2026, 2, 12)
    assert since_timestamp("2w", now) == at(2026, 2, 28)
    assert since_timestamp("12h", now) == at(2026, 3, 14, 3)
    assert since_timestamp(" 1d ", now) == at(2026, 3, 13)
    assert since_timestamp("2026-03-01", now) == at(2026, 3, 1)


def test_against_the_real_catalogue(sample_home: Path) -> None:
    catalog = Catalog(DataDir(sample_home).catalog)
    try:
        known = catalog.partition_names()
        part = next(p for _, rel, p in catalog.sources() if rel.startswith("runbooks/"))
        s = resolve_scope(
            Query("q", partitions=(part,), source="runbooks/*"), lambda: known, catalog.sources
        )
        matched = [
            src for src, rel, p in catalog.sources() if rel.startswith("runbooks/") and p == part
        ]
        assert matched and s.sql.sources == tuple(sorted(matched))
        assert s.where == {"$and": [{"partition": part}, {"source": {"$in": sorted(matched)}}]}
        with pytest.raises(UsageError, match="unknown partition"):
            resolve_scope(Query("q", partitions=("no-such",)), catalog.partition_names, _never)
    finally:
        catalog.close()
