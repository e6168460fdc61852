"""Ingest against a real SQLite catalogue, a real embedding cache and a real Chroma index."""

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragcli.core.config import load_settings
from ragcli.core.datadir import DataDir
from ragcli.core.errors import UsageError
from ragcli.embedders.local import LocalEmbedder
from ragcli.index.catalog import Catalog
from ragcli.index.partition_rule import wants_own_collection
from ragcli.index.store import Store
from ragcli.ingest.run import ingest
from ragcli.status.report import collect_status
from tests.support.cli import REPO, Run, clean_env, ragcli_and_modules, run_ragcli
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig
from tests.support.remote_env import remote_env

EMB = LocalEmbedder()


def _ingest(home: Path, *paths: Path, **kw):
    settings = load_settings({"data_dir": home}, environ={})
    return asyncio.run(ingest(list(paths), settings, EMB, **kw)), settings


def _index_ids(home: Path) -> set[str]:
    dirs = DataDir(home)
    cat = Catalog(dirs.catalog)
    name = cat.get_meta("index.name")
    cat.close()
    return Store(dirs.chroma).ids(name)


def _catalog_ids(home: Path) -> set[str]:
    cat = Catalog(DataDir(home).catalog)
    try:
        return {cid for cid, _ in cat.chunk_texts()}
    finally:
        cat.close()


def test_rerun_on_unchanged_corpus_embeds_nothing(home: Path, corpus: Path) -> None:
    first, _ = _ingest(home, corpus)
    assert first.new == 3 and first.embedded == first.chunks > 0
    second, _ = _ingest(home, corpus)
    assert (second.new, second.changed, second.unchanged) == (0, 0, 3)
    assert second.embedded == 0 and second.chunks_added == 0
    assert second.index_version == first.index_version
    assert _index_ids(home) == _catalog_ids(home)


def test_changed_file_is_rechunked_and_removed_file_leaves_the_index(
    home: Path, corpus: Path
) -> None:
    _ingest(home, corpus)
    before = _catalog_ids(home)
    pager = corpus / "ops" / "pager.md"
    pager.write_text(pager.read_text() + "\nA new closing sentence about escalation policy.\n")
    (corpus / "hr" / "notes.txt").unlink()
    report, _ = _ingest(home, corpus)
    assert (report.changed, report.removed, report.unchanged) == (1, 1, 1)
    assert report.embedded >= 1 and report.chunks_deleted >= 2
    after = _catalog_ids(home)
    assert after != before
    assert _index_ids(home) == after
    assert report.index_version == 2


def test_touch_without_change_costs_nothing(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    pager = corpus / "ops" / "pager.md"
    os.utime(pager, ns=(pager.stat().st_atime_ns, pager.stat().st_mtime_ns + 10**9))
    report, _ = _ingest(home, corpus)
    assert report.unchanged == 3 and report.embedded == 0 and report.index_version == 1


def test_embedding_cache_is_shared_across_data_changes(home: Path, corpus: Path) -> None:
    """A file that goes away and comes back costs no new embeddings."""
    _ingest(home, corpus)
    leave = corpus / "hr" / "leave.md"
    text = leave.read_text()
    leave.unlink()
    _ingest(home, corpus)
    leave.write_text(text)
    report, _ = _ingest(home, corpus)
    assert report.new == 1 and report.embedded == 0 and report.cache_hits >= 1


def test_digest_is_equal_for_equal_content(tmp_path: Path, corpus: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _, sa = _ingest(a, corpus)
    _, sb = _ingest(b, corpus)
    assert collect_status(sa)["digest"] == collect_status(sb)["digest"]
    assert collect_status(sa)["chunks"] > 0


def test_empty_corpus_is_an_error(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.md").write_text("")
    with pytest.raises(UsageError, match="nothing to ingest"):
        _ingest(home, empty)


def test_two_folders_of_one_name_are_refused_before_anything_is_written(
    home: Path, corpus: Path, tmp_path: Path
) -> None:
    """Both would show as `corpus/…` and share chunk ids: one would overwrite the other."""
    twin = tmp_path / "elsewhere" / "corpus"
    (twin / "ops").mkdir(parents=True)
    (twin / "ops" / "pager.md").write_text((corpus / "ops" / "pager.md").read_text())
    with pytest.raises(UsageError, match="would both be 'corpus/ops/pager.md'"):
        _ingest(home, corpus, twin)  # in one run
    assert not _catalog_ids(home)  # nothing was written
    first, _ = _ingest(home, corpus)
    with pytest.raises(UsageError, match="into another data directory"):
        _ingest(home, twin)  # in a later run, against the catalogue
    assert _catalog_ids(home) == _index_ids(home) and len(_catalog_ids(home)) == first.chunks
    # a moved folder is no clash: the old path no longer exists
    moved = tmp_path / "moved" / "corpus"
    moved.parent.mkdir()
    corpus.rename(moved)
    assert _ingest(home, moved)[0].new == 3


def test_chunk_size_over_model_limit_is_refused(home: Path, corpus: Path) -> None:
    settings = load_settings({"data_dir": home, "chunk_tokens": 400}, environ={})
    with pytest.raises(UsageError, match="exceeds the embedder's input limit"):
        asyncio.run(ingest([corpus], settings, EMB))


def test_metadata_per_chunk(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    cat = Catalog(DataDir(home).catalog)
    try:
        ids = [cid for cid, _ in cat.chunk_texts()]
        records = cat.chunks(ids)
        meta = cat.chunk_metadata(ids)
    finally:
        cat.close()
    pager = [r for r in records.values() if r.relpath == "ops/pager.md"][0]
    assert (pager.partition, pager.date, pager.source) == (
        "ops",
        "2026-03-14",
        "corpus/ops/pager.md",
    )
    assert all({"partition", "source", "date_ts"} <= set(m) for m in meta)


def _collections(home: Path) -> dict[str, set[str]]:
    """partition (or "*" for the global collection) → the ids its collection holds."""
    from ragcli.index import indexing

    dirs = DataDir(home)
    cat = Catalog(dirs.catalog)
    info = indexing.current(cat)
    cat.close()
    store = Store(dirs.chroma)
    out = {"*": store.ids(info.name)}
    out.update({p: store.ids(name) for p, name in info.partitions.items()})
    return out


def _by_partition(home: Path) -> dict[str, set[str]]:
    cat = Catalog(DataDir(home).catalog)
    try:
        parts = cat.chunk_partitions([cid for cid, _ in cat.chunk_texts()])
    finally:
        cat.close()
    by: dict[str, set[str]] = {}
    for cid, p in parts.items():
        by.setdefault(p, set()).add(cid)
    # only the partitions index/partition_rule.py gives a collection of their own
    own = {p: ids for p, ids in by.items() if wants_own_collection(len(ids), len(parts))}
    return {"*": set(parts), **own}


def test_partition_collections_follow_the_catalogue(home: Path, corpus: Path) -> None:
    _ingest(home, corpus)
    assert _collections(home) == _by_partition(home)
    (corpus / "ops" / "pager.md").unlink()
    (corpus / "new").mkdir()
    (corpus / "new" / "a.md").write_text("A brand new partition about release trains.\n")
    _ingest(home, corpus)
    got, want = _collections(home), _by_partition(home)
    assert got == want  # ops lost a document, new exists: each has a collection iff the rule says
    settings = load_settings({"data_dir": home}, environ={})
    from ragcli.index.tuning import tune_index

    asyncio.run(tune_index(settings, {"m": 8}, True, 0))  # a rebuild recreates them all
    assert _collections(home) == _by_partition(home)


# -- through the CLI ---------------------------------------------------------------------------
KEY = "sk-test-ingest-1d2c"


def _paragraph_corpus(root: Path, files: int = 3, paragraphs: int = 4) -> Path:
    """Distinct sentences: with 40-token chunks, a dozen or more chunks of distinct text."""
    for f in range(files):
        part = root / f"part{f % 2}"
        part.mkdir(parents=True, exist_ok=True)
        body = "\n\n".join(
            " ".join(
                f"File {f} paragraph {p} sentence {s} describes step {s * 5 + p} of "
                f"procedure {f * 13 + s} in plain words."
                for s in range(4)
            )
            for p in range(paragraphs)
        )
        (part / f"doc{f}.md").write_text(f"# Document {f}\n\n{body}\n")
    return root


def _cached_embeddings(home: Path) -> int:
    """Rows in the embedding cache, read the way another process would (read-only)."""
    path = DataDir(home).cache
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet, or mid-migration
        return 0


# A process started by a test may inherit SIGINT ignored (a background job of a
# non-interactive shell): restore the default, as a terminal gives it, then exec ragcli,
# so that the process that receives Ctrl-C is a plain `python -m ragcli`.
_AS_FROM_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'ragcli', *sys.argv[1:]])"
)


def test_ctrl_c_mid_ingest_exits_130_and_the_rerun_embeds_only_what_is_missing(
    home: Path, tmp_path: Path
) -> None:
    docs = _paragraph_corpus(tmp_path / "docs")
    # The server answers 3 requests, then meters one a minute (429, Retry-After ≈ 60 s): the
    # ingest is then stalled mid-run, with 3 batches answered, until it is interrupted.
    gate = ServerConfig(api_key=KEY, rpm=1, rate_burst_s=180)
    with OpenAICompatibleServer(gate) as srv:
        env = remote_env(
            srv,
            key=KEY,
            dims=16,
            RAGCLI_EMBED_BATCH_SIZE="2",
            RAGCLI_EMBED_CONCURRENCY="1",
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", _AS_FROM_A_TERMINAL, "ingest", str(docs), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(home, **env),
            cwd=REPO,
        )
        try:
            # progress, observed: the next request refused, and every text answered before it
            # committed to the cache
            deadline = time.monotonic() + 60
            while not (
                srv.counters.throttled and _cached_embeddings(home) == len(srv.counters.texts) > 0
            ):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the ingest never made progress"
                time.sleep(0.02)
            assert proc.poll() is None  # a live process, mid-run
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, err
        assert err.strip().splitlines()[-1] == (
            "ragcli: interrupted; run the same command again to resume"
        )
        assert "Traceback" not in err and out == ""
        cached = _cached_embeddings(home)
        first_run = set(srv.counters.texts)
        assert cached == len(first_run) > 0  # every answered batch was kept

        srv.reset(rpm=0)
        again = run_ragcli(home, "ingest", str(docs), "--json", **env)
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout)
        total = report["chunks"]
        assert total > cached  # it really was cut short
        assert report["embedded"] == total - cached and report["cache_hits"] == cached
        assert srv.counters.inputs == total - cached  # exactly what was missing, once each
        assert not first_run & set(srv.counters.texts)
        assert _cached_embeddings(home) == total
    assert _catalog_ids(home) == _index_ids(home) and len(_index_ids(home)) == total


def test_reingesting_an_unchanged_corpus_never_loads_the_model(home: Path, corpus: Path) -> None:
    # the observer sees a load: a first ingest embeds, so the ONNX runtime comes in
    first, imported = ragcli_and_modules(home, "ingest", str(corpus), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["embedded"] > 0 and "onnxruntime" in imported
    # a fresh process over the unchanged corpus: nothing to embed, no model loaded at all
    again, imported = ragcli_and_modules(home, "ingest", str(corpus), "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["unchanged"], report["embedded"], report["chunks_added"]) == (3, 0, 0)
    assert "onnxruntime" not in imported
    # also when a file was touched (same bytes, new mtime): it is re-read, never re-embedded
    pager = corpus / "ops" / "pager.md"
    os.utime(pager, ns=(pager.stat().st_atime_ns, pager.stat().st_mtime_ns + 10**9))
    touched, imported = ragcli_and_modules(home, "ingest", str(corpus), "--json")
    assert touched.returncode == 0, touched.stderr
    assert json.loads(touched.stdout)["embedded"] == 0 and "onnxruntime" not in imported


def test_symlinks_are_skipped_by_default_and_followed_with_the_flag(
    ragcli: Run, home: Path, tmp_path: Path
) -> None:
    root = tmp_path / "kb"
    (root / "ops").mkdir(parents=True)
    (root / "ops" / "real.md").write_text("The release train leaves every Tuesday at noon.\n")
    (root / "ops" / "diagram.png").write_bytes(b"\x89PNG not text")  # skipped on every visit
    outside = tmp_path / "elsewhere"
    (outside / "shared").mkdir(parents=True)
    (outside / "linked.md").write_text("Badge readers are serviced on the first Friday.\n")
    (outside / "shared" / "glossary.md").write_text("A runbook is a checklist for operators.\n")
    (root / "ops" / "linked.md").symlink_to(outside / "linked.md")  # a file link
    (root / "shared").symlink_to(outside / "shared")  # a folder link
    (root / "ops" / "back").symlink_to("..")  # a loop: kb/ops/back/ops/back/…

    default = ragcli("ingest", str(root), "--json")
    assert default.returncode == 0, default.stderr
    report = json.loads(default.stdout)
    assert report["new"] == 1  # real.md alone: neither link was followed, the loop not entered
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert reasons["linked.md"] == "symlink (use --follow-symlinks)"
    assert [Path(s["path"]).name for s in report["skipped"]].count("diagram.png") == 1

    followed = ragcli("ingest", str(root), "--follow-symlinks", "--json")
    assert followed.returncode == 0, followed.stderr
    report = json.loads(followed.stdout)
    assert (report["new"], report["unchanged"]) == (2, 1)  # linked.md and shared/glossary.md
    skipped = [Path(s["path"]).name for s in report["skipped"]]
    assert skipped == ["diagram.png"]  # each real folder walked once: the loop ends there
    status = collect_status(load_settings({"data_dir": home}, environ={}))
    assert status["documents"] == 3 and set(status["partitions"]) == {"ops", "shared"}
