"""Which partitions get a Chroma collection of their own, beside the global one.

A partition's own collection makes its scoped questions fast, but it indexes its chunks a
second time. For a partition that holds most of the corpus that second index buys nothing: a
scoped question searches the global collection as fast (retrieval/search.py
`search_in_scope`: no filter when the partition holds every chunk, else the global collection
asked for a few times more hits, those of the partition kept, the `where` filter as the
fallback). Measured by benchmarks/partitions.py (benchmarks/results/partitions.json,
docs/benchmarks.md "Partitions without a collection of their own"; synthetic clustered 384-d
vectors, ragcli's HNSW defaults, a shared 2-core machine under load 4-9, p50 of 100 questions
about the partition):

    share  own collection (100k chunks)       scoped p50, ms (100k / 10k)
           build     disk                     own          global, over-fetch   global + where
    100 %  184 s     263 MiB (97 % of global) 4.4 / 2.8    6.5 / 3.6 (no filter) 783 / 62
     50 %   56 s      83 MiB (31 %)           3.4 / 2.4    4.0 / 5.8             275 / 62
     30 %   31 s      51 MiB (19 %)           5.3 / 1.6    4.6 / 3.3             187 / 16
     10 %    7 s      17 MiB  (6 %)           2.2 / 1.5    8.2 / 4.9             61 / 8.9
      2 %  0.7 s     3.4 MiB  (1 %)           2.0 / 1.6    29 / 14               36 / 6.1

(the global collection: 227 s and 272 MiB at 100k). From 30 % up, a question about the
partition costs the same with or without its own collection (within the noise), while the
collection costs 13-81 % of the global build time and 19-97 % of its disk (100k); at 10 % and
below it is 3-14 times faster than the best search without it, for a few per cent of the
build. Hence `OWN_COLLECTION_BELOW`.

Questions far from anything the partition holds are where the two differ: without an own
collection they fall back to the `where` filter (at 100k, 135-622 ms at p50 for shares of
30-90 %), with one they stay fast but find fewer of the right chunks (recall@10 0.34-0.50
against 0.63-0.71). docs/benchmarks.md has both.

A partition whose share moves across the line would have its collection dropped and built
again on every crossing; `has_own` keeps an existing one until the partition holds
`OWN_COLLECTION_BELOW + KEEP_MARGIN`.
"""

from __future__ import annotations

OWN_COLLECTION_BELOW = 0.30  # a partition gets its own collection below this share
KEEP_MARGIN = 0.05  # ... and keeps one it has until it holds this much more


def wants_own_collection(partition_chunks: int, total_chunks: int, has_own: bool = False) -> bool:
    """Whether a partition of `partition_chunks` of the corpus's `total_chunks` gets (or, with
    `has_own`, keeps) a collection of its own: only while it holds less than
    `OWN_COLLECTION_BELOW` of the chunks (`+ KEEP_MARGIN` for one it has). An empty partition
    gets none."""
    if partition_chunks <= 0 or total_chunks <= 0:
        return False
    line = OWN_COLLECTION_BELOW + (KEEP_MARGIN if has_own else 0.0)
    return partition_chunks < line * total_chunks
