"""Which catalogued documents are missing on disk: their file is gone (a moved or deleted
folder). One stat per document, stdlib only, no write: `ingest` and `prune` turn the answer
into the catalogue's marks (retrieval skips marked documents) or remove the documents;
`status` only reports it.

Only a file that certainly does not exist counts as missing (ENOENT, ENOTDIR): a file that
cannot be stat'ed for another reason (a folder without search permission, an I/O error) is
kept, so that nothing whose file may still exist is ever marked or removed.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragcli.index.catalog import Catalog

_GONE = frozenset({errno.ENOENT, errno.ENOTDIR})


@dataclass(frozen=True)
class MissingScan:
    """What one scan found."""

    checked: int  # documents stat'ed
    missing: list[str]  # catalogued documents whose file is gone, in path order
    unmarked: list[str]  # of `missing`, those the catalogue does not mark yet
    back: list[str]  # documents marked missing whose file is there again
    seconds: float

    @property
    def marked(self) -> int:
        """Missing documents that retrieval already skips."""
        return len(self.missing) - len(self.unmarked)


def is_gone(path: str) -> bool:
    """Whether `path` certainly does not exist (a stat that fails with ENOENT or ENOTDIR)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno in _GONE
    return False


def scan(
    catalog: Catalog,
    handled: Callable[[str], bool] = lambda path: False,
    present: Callable[[str], bool] = lambda path: False,
) -> MissingScan:
    """Stat every catalogued document except those `handled` elsewhere (an ingest's own
    paths, removed by it when gone; `present` says which of those it found, so that their
    marks are cleared too)."""
    started = time.perf_counter()
    missing: list[str] = []
    unmarked: list[str] = []
    back: list[str] = []
    checked = 0
    for path, marked in catalog.document_marks():
        if handled(path):
            if marked and present(path):
                back.append(path)
            continue
        checked += 1
        if is_gone(path):
            missing.append(path)
            if not marked:
                unmarked.append(path)
        elif marked:
            back.append(path)
    return MissingScan(checked, missing, unmarked, back, time.perf_counter() - started)


def example(paths: Sequence[str], count: int = 1) -> str:
    """A message's sample of `paths`: the first `count` of them."""
    return ", ".join(paths[:count])
