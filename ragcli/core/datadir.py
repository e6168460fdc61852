"""Where a data directory keeps each of its parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
    """One data directory (`--data-dir`, `RAGCLI_HOME`): the catalogue, the SQLite caches and the
    embedded Chroma live side by side in it (the writer lock too: core/locking.py)."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.db"

    @property
    def cache(self) -> Path:
        return self.root / "cache.db"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    def exists(self) -> bool:
        return self.catalog.is_file()
