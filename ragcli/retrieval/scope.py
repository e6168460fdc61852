"""A question's scope: `--partition`, `--since` and `--source` resolved against the catalogue
into one filter per place that searches — the Chroma `where` (global collection, and the rest
for a partition's own collection), the lexical index's SQL filter — and a stable key for the
caches. Bad specs (unknown partition, unmatched glob, unreadable date) are one-line
`UsageError`s."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from ragcli.core.errors import UsageError
from ragcli.index.catalog import LexicalFilter
from ragcli.retrieval.events import Query


@dataclass(frozen=True)
class Scope:
    """A query's resolved filters: the Chroma `where`, the same as SQL for the lexical index,
    and a stable key for the caches."""

    where: dict[str, Any] | None  # every filter, for the global collection
    key: str
    sql: LexicalFilter = field(default_factory=lambda: LexicalFilter())
    partitions: tuple[str, ...] = ()
    rest: dict[str, Any] | None = None  # the filters but the partition, for its own collection


_SINCE = re.compile(r"^(\d+)([hdw])$")


def since_timestamp(spec: str, now: float | None = None) -> int:
    """`30d` → the start of the UTC day 30 days ago (day granularity keeps cache keys stable)."""
    m = _SINCE.match(spec.strip())
    if m:
        hours = int(m.group(1)) * {"h": 1, "d": 24, "w": 168}[m.group(2)]
        moment = dt.datetime.fromtimestamp(now or time.time(), dt.UTC) - dt.timedelta(hours=hours)
        if m.group(2) == "h":
            return int(moment.replace(minute=0, second=0, microsecond=0).timestamp())
        return int(moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    try:
        day = dt.date.fromisoformat(spec.strip())
    except ValueError:
        raise UsageError(f"--since {spec!r}: use a duration like 30d, 12h, 2w or a date") from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _combine(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    return None if not items else items[0] if len(items) == 1 else {"$and": items}


def resolve_scope(
    query: Query,
    partitions: Callable[[], Collection[str]],
    sources: Callable[[], Iterable[tuple[str, str, str]]],
) -> Scope:
    """The scope of `query`. `partitions` (the known partition names) and `sources` (each
    document's (source, relative path, partition)) are read only when the query needs them."""
    rest: list[dict[str, Any]] = []
    key: dict[str, Any] = {}
    parts: list[str] = []
    if query.partitions:
        known = partitions()
        unknown = [p for p in query.partitions if p not in known]
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            raise UsageError(f"unknown partition {unknown[0]!r} (known: {names})")
        parts = sorted(set(query.partitions))
        key["partitions"] = parts
    if query.since:
        ts = since_timestamp(query.since)
        key["since"] = ts
        rest.append({"date_ts": {"$gte": ts}})
    if query.source:
        glob = query.source
        # only documents inside the asked partitions: a scoped API key must not learn, from
        # "matches no ingested document" or not, which paths another partition holds
        matched = [
            s
            for s, rel, part in sources()
            if (not parts or part in parts)
            and (fnmatch.fnmatch(s, glob) or fnmatch.fnmatch(rel, glob))
        ]
        if not matched:
            raise UsageError(f"--source {glob!r} matches no ingested document")
        key["sources"] = sorted(matched)
        rest.append({"source": {"$in": sorted(matched)}})
    clauses = list(rest)
    if parts:
        clauses.insert(
            0, {"partition": parts[0]} if len(parts) == 1 else {"partition": {"$in": parts}}
        )
    sql = LexicalFilter(tuple(parts), key.get("since"), tuple(key.get("sources", ())))
    return Scope(
        _combine(clauses), json.dumps(key, sort_keys=True), sql, tuple(parts), _combine(rest)
    )
