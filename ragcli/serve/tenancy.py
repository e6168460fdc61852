"""A request's partitions under its API key's scope (multi-tenant serve).

A key limited to partitions searches only within them: a request that asks for partitions
inside its scope gets those, one that asks for none gets the whole scope, and one that asks
for a partition outside it is refused (403), never widened. Partitions of the scope that the
index does not hold (yet) are dropped; when none is left the request is answered from no
sources at all, so that a tenant learns nothing about partitions outside its scope (an
unknown partition's error would list the others)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from ragcli.retrieval.events import Query


class PartitionNotAllowed(Exception):
    """A request asked for a partition outside its key's scope."""

    def __init__(self, partition: str) -> None:
        super().__init__(partition)
        self.partition = partition


def restrict(query: Query, allowed: Collection[str], known: Collection[str]) -> Query | None:
    """`query` searching only `allowed` partitions (of those the index holds, `known`);
    None when it can search none of them. PartitionNotAllowed for a partition outside."""
    asked = query.partitions
    for partition in asked:
        if partition not in allowed:
            raise PartitionNotAllowed(partition)
    wanted = set(asked or allowed)
    held = tuple(sorted(p for p in wanted if p in known))
    return replace(query, partitions=held) if held else None
