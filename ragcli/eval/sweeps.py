"""`ragcli eval --sweep`: the configurations an evaluation runs, as the product of the values
swept, with the settings that cannot change a result folded (ef_search for lexical retrieval
or exact search; the hybrid weight for a single retriever)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import UsageError

if TYPE_CHECKING:
    from ragcli.core.config import RetrievalMode, SearchMethod

RETRIEVALS = ("dense", "lexical", "hybrid")
SEARCHES = ("hnsw", "exact")
_ON = {"on": True, "yes": True, "true": True, "1": True}
_OFF = {"off": False, "no": False, "false": False, "0": False}


@dataclass(frozen=True)
class Config:
    """One configuration of an evaluation: the settings a sweep may vary."""

    retrieval: RetrievalMode
    search: SearchMethod
    ef_search: int
    k: int
    partitions: bool = False
    hybrid_weight: float = 1.0

    @property
    def uses_hnsw(self) -> bool:
        return self.retrieval != "lexical" and self.search == "hnsw"

    def canonical(self) -> Config:
        """The same configuration with the settings that cannot change its results zeroed."""
        return dataclasses.replace(
            self,
            ef_search=self.ef_search if self.uses_hnsw else 0,
            search=self.search if self.retrieval != "lexical" else "hnsw",  # lexical: no vectors
            hybrid_weight=self.hybrid_weight if self.retrieval == "hybrid" else 0.0,
        )

    @property
    def label(self) -> str:
        parts: list[str] = [self.retrieval]
        if self.retrieval == "hybrid" and self.hybrid_weight != 1.0:
            parts.append(f"w={self.hybrid_weight:g}")
        if self.retrieval != "lexical":
            parts.append(f"ef={self.ef_search}" if self.search == "hnsw" else "exact")
        parts.append(f"k={self.k}")
        if self.partitions:
            parts.append("scoped")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not self.uses_hnsw:
            d["ef_search"] = None
        return d


def _parse_value(name: str, raw: str) -> Any:
    text = raw.strip().lower()
    if name in ("ef_search", "k"):
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"--sweep {name}: {raw!r} is not a positive integer")
        return int(text)
    if name == "hybrid_weight":
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if value < 0:
            raise UsageError(f"--sweep hybrid_weight: {raw!r} is not a number >= 0")
        return value
    if name == "partitions":
        if text not in _ON and text not in _OFF:
            raise UsageError(f"--sweep partitions: {raw!r}: use on or off")
        return {**_ON, **_OFF}[text]
    choices = RETRIEVALS if name == "retrieval" else SEARCHES
    if text not in choices:
        raise UsageError(f"--sweep {name}: {raw!r}: use {', '.join(choices)}")
    return text


SWEEPABLE = ("retrieval", "ef_search", "k", "partitions", "search", "hybrid_weight")


def parse_sweeps(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`["ef_search=16,64", "retrieval=dense,hybrid"]` → {"ef_search": [16, 64], ...}."""
    out: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SWEEPABLE:
            raise UsageError(
                f"--sweep {spec!r}: expected NAME=V1,V2,… with NAME one of {', '.join(SWEEPABLE)}"
            )
        if name in out:
            raise UsageError(f"--sweep {name} is given twice: list every value in one")
        parsed = [_parse_value(name, v) for v in values.split(",") if v.strip()]
        if not parsed:
            raise UsageError(f"--sweep {spec!r}: no values")
        out[name] = list(dict.fromkeys(parsed))
    return out


def configurations(base: Config, sweeps: dict[str, list[Any]]) -> list[Config]:
    """The product of the sweeps (in the order given), folding equivalent configurations."""
    names = list(sweeps)
    seen: set[Config] = set()
    out: list[Config] = []
    for values in itertools.product(*(sweeps[n] for n in names)):
        config = dataclasses.replace(base, **dict(zip(names, values, strict=True)))
        if config.canonical() not in seen:
            seen.add(config.canonical())
            out.append(config)
    return out
