"""The query pipeline in-process, for tests: settings on a private data directory, an ingest
with the shared local embedder, and one ask collected into its answer and its spans."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ragcli.core.config import Settings, load_settings
from ragcli.embedders.local import LocalEmbedder
from ragcli.ingest.run import ingest
from ragcli.retrieval.events import DoneEvent, Query, Span
from ragcli.retrieval.pipeline import Pipeline

EMB = LocalEmbedder()
PAGER = "How do I rotate the on-call pager?"


def settings_for(home: Path, **kw: Any) -> Settings:
    return load_settings({"data_dir": home, **kw}, environ={})


def ingest_corpus(home: Path, corpus: Path) -> None:
    asyncio.run(ingest([corpus], settings_for(home), EMB))


def ask_query(pipeline: Pipeline, query: Query) -> tuple[DoneEvent, dict[str, Span]]:
    """Run one ask to its end: the done event and every span by name."""

    async def go() -> tuple[DoneEvent, dict[str, Span]]:
        spans: dict[str, Span] = {}
        done = None
        async for ev in pipeline.ask(query):
            if isinstance(ev, Span):
                spans[ev.name] = ev
            elif isinstance(ev, DoneEvent):
                done = ev
        assert done is not None
        return done, spans

    return asyncio.run(go())


def pipeline_for(home: Path, **kw: Any) -> Pipeline:
    # Share the loaded model across tests (same class, same files).
    return Pipeline(settings_for(home, **kw), EMB)
