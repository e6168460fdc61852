"""The daemon's pipelines by effective settings (ragcli.daemon.pool): one per settings, an
embedder shared by those that agree on it, the least recently used evicted but never the
daemon's own nor one in use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ragcli.core.config import Settings, load_settings
from ragcli.daemon import pool as pool_module
from ragcli.daemon.pool import Pipelines


class FakePipeline:
    """What the pool uses of a Pipeline: its settings, its embedder, close()."""

    def __init__(self, settings: Settings, embedder: object | None = None) -> None:
        self.settings = settings
        self.embedder = embedder if embedder is not None else object()
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePipeline:
    monkeypatch.setattr(pool_module, "Pipeline", FakePipeline)
    return FakePipeline(load_settings({"data_dir": tmp_path}, None, {}, tmp_path))


def test_the_same_settings_get_the_same_pipeline(base: FakePipeline) -> None:
    pipelines = Pipelines(base)  # type: ignore[arg-type]
    assert pipelines.get(replace(base.settings)) is base
    again = load_settings({"data_dir": base.settings.data_dir}, None, {}, Path("/"))
    assert again == base.settings and pipelines.get(again) is base
    k3 = replace(base.settings, k=3)
    first = pipelines.get(k3)
    assert pipelines.get(replace(base.settings, k=3)) is first
    assert len(pipelines) == 2


def test_other_settings_get_another_pipeline_sharing_the_embedder(base: FakePipeline) -> None:
    pipelines = Pipelines(base)  # type: ignore[arg-type]
    other = pipelines.get(replace(base.settings, k=2))
    assert other is not base and other.settings.k == 2
    assert other.embedder is base.embedder
    lexical = pipelines.get(replace(base.settings, retrieval="lexical", no_cache="all"))
    assert lexical.embedder is base.embedder
    # another embedder setting: its own embedder
    threads = replace(base.settings, embed_batch_size=base.settings.embed_batch_size + 1)
    assert pipelines.get(threads).embedder is not base.embedder


def test_eviction_closes_the_least_recently_used_never_the_base(base: FakePipeline) -> None:
    pipelines = Pipelines(base, limit=3)  # type: ignore[arg-type]
    made = []
    for k in (2, 3, 4, 6):
        p = pipelines.get(replace(base.settings, k=k))
        pipelines.done(p)
        made.append(p)
        pipelines.done(pipelines.get(base.settings))  # the base is the most recently used too
    assert not base.closed
    assert [p.closed for p in made] == [True, True, False, False]
    assert len(pipelines) == 3
    assert pipelines.get(replace(base.settings, k=6)) is made[3]  # kept: the same one again
    pipelines.close()
    assert made[3].closed
    assert not base.closed  # the daemon's own pipeline is closed by its Service


def test_eviction_keeps_the_pipelines_in_use(base: FakePipeline) -> None:
    pipelines = Pipelines(base, limit=3)  # type: ignore[arg-type]
    busy = pipelines.get(replace(base.settings, k=2))  # in use: never `done`
    old = pipelines.get(replace(base.settings, k=3))
    pipelines.done(old)
    pipelines.done(pipelines.get(replace(base.settings, k=4)))
    assert old.closed and not busy.closed and not base.closed


def test_a_new_pipeline_is_not_evicted_while_the_others_are_in_use(base: FakePipeline) -> None:
    pipelines = Pipelines(base, limit=2)  # type: ignore[arg-type]
    busy = pipelines.get(replace(base.settings, k=2))  # in use: never `done`
    new = pipelines.get(replace(base.settings, k=3))
    assert not new.closed and not busy.closed and not base.closed
    assert len(pipelines) == 3  # over the limit, by the ones in use, until they are done
