"""The daemon's pipelines: one per distinct effective settings a client asked with, so every
request is answered with exactly its own settings (k, retrieval, generator, caches, prompt
layout, endpoints…), never with the daemon's. Pipelines whose embedder settings agree share
one loaded embedder. At most `limit` are kept; the one used least recently is closed first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import fields
from typing import TYPE_CHECKING

from ragcli.core.config import Settings
from ragcli.retrieval.pipeline import Pipeline

if TYPE_CHECKING:
    from ragcli.embedders.base import Embedder

# What `open_embedder` reads: pipelines that agree on these can share one embedder.
EMBEDDER_FIELDS = tuple(
    f.name
    for f in fields(Settings)
    if f.name.startswith("embed") or f.name in ("openai_base_url", "openai_api_key")
) + ("provider_timeout", "connection_reuse")


def embedder_key(settings: Settings) -> tuple[object, ...]:
    return tuple(getattr(settings, name) for name in EMBEDDER_FIELDS)


class Pipelines:
    """Pipelines by settings, the daemon's own first."""

    def __init__(self, base: Pipeline, limit: int = 4) -> None:
        self.base = base
        self.limit = limit
        self._by_settings: OrderedDict[Settings, Pipeline] = OrderedDict()
        self._by_settings[base.settings] = base
        self._in_use: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._by_settings)

    def get(self, settings: Settings) -> Pipeline:
        """The pipeline of `settings` (made on first use), marked in use until `done`."""
        pipeline = self._by_settings.get(settings)
        if pipeline is None:
            pipeline = Pipeline(settings, self._shared_embedder(settings))
            self._by_settings[settings] = pipeline
        self._by_settings.move_to_end(settings)
        self._in_use[id(pipeline)] = self._in_use.get(id(pipeline), 0) + 1
        self._evict()  # never this one: it is in use now
        return pipeline

    def done(self, pipeline: Pipeline) -> None:
        self._in_use[id(pipeline)] -= 1

    def _shared_embedder(self, settings: Settings) -> Embedder | None:
        """A loaded embedder made with the same settings (a pipeline's settings are the
        index's embedder's once it has opened), if there is one."""
        key = embedder_key(settings)
        for pipeline in self._by_settings.values():
            if embedder_key(pipeline.settings) == key:
                return pipeline.embedder
        return None

    def _evict(self) -> None:
        for known, pipeline in list(self._by_settings.items()):
            if len(self._by_settings) <= self.limit:
                return
            if pipeline is self.base or self._in_use.get(id(pipeline), 0) > 0:
                continue
            del self._by_settings[known]
            self._in_use.pop(id(pipeline), None)
            pipeline.close()

    def close(self) -> None:
        """Close every pipeline but the base one (its service closes it)."""
        for pipeline in self._by_settings.values():
            if pipeline is not self.base:
                pipeline.close()
        self._by_settings.clear()
        self._by_settings[self.base.settings] = self.base
