"""Pipeline loads in a long-lived process (serve, the daemon): a load that fails is forgotten,
so the next question tries again (an index repaired meanwhile is found), and a load started
ahead of need that fails unawaited is not logged as "Task exception was never retrieved" (it
was: a line of traceback on a daemon's or an ask's stderr)."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import pytest

from ragcli.core.config import Settings
from ragcli.retrieval.pipeline import Pipeline


def test_a_failed_load_is_tried_again_and_a_good_one_is_kept(tmp_path: Path) -> None:
    pipeline = Pipeline(Settings(data_dir=tmp_path))
    calls: list[str] = []

    async def flaky() -> None:
        calls.append("load")
        if len(calls) == 1:
            raise RuntimeError("the index is missing")

    async def main() -> None:
        with pytest.raises(RuntimeError):
            await pipeline._load("load.index", flaky)
        await pipeline._load("load.index", flaky)  # tried again: succeeds
        await pipeline._load("load.index", flaky)  # kept: not loaded a third time

    asyncio.run(main())
    assert calls == ["load", "load"]


def test_a_load_that_fails_unawaited_is_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = Pipeline(Settings(data_dir=tmp_path))

    async def broken() -> None:
        raise RuntimeError("llama-cpp-python is not installed")

    async def main() -> None:
        pipeline._load("load.generator", broken)  # started ahead of need, never awaited
        for _ in range(3):
            await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(main())
        gc.collect()
    assert "never retrieved" not in caplog.text
    assert "load.generator" not in pipeline._loads
