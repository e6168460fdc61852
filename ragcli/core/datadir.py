"""Where a data directory keeps each of its parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
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
