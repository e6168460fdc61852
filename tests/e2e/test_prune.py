"""No stale documents after a move (issue 18): a document whose file is gone from disk is
marked by the next `ingest` (retrieval leaves it out at once, caches of the old state are not
served), shown by `status`, and removed by `ragcli prune` or `ingest --prune`, through the
index's own crash-safe order. Nothing whose file exists is ever removed. Real SQLite, a real
embedded Chroma, the local embedder; tiny corpora in temporary folders."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from ragcli.core.config import load_settings
from ragcli.core.datadir import DataDir
from ragcli.embedders.local import LocalEmbedder
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.index.store import Store
from ragcli.ingest.prune import PruneReport, prune
from ragcli.ingest.run import IngestReport, ingest
from ragcli.retrieval.events import Query
from ragcli.status.missing import missing_line
from ragcli.status.report import collect_status
from tests.support.cli import ragcli_and_modules, run_ragcli
from tests.support.pipeline import PAGER, pipeline_for
from tests.support.reliability import assert_stores_agree, catalog_meta, popen_home

EMB = LocalEmbedder()

TEXTS = {
    "ops/pager.md": "# Pager\n\nTo rotate the on-call pager, open PageRelay and click Hand Over "
    "before 10:00 UTC on Monday.\n",
    "ops/deploy.md": "# Deploys\n\nDeploys go out on Tuesdays after the change board approves "
    "them; roll back with the Revert button.\n",
    "hr/leave.md": "# Leave\n\nEmployees get 25 days of annual leave per year; up to 5 unused "
    "days carry over.\n",
    "hr/payroll.md": "# Payroll\n\nPayroll runs on the 25th of every month.\n",
}
HR = ("hr/leave.md", "hr/payroll.md")


def write(root: Path, names: tuple[str, ...] = tuple(TEXTS)) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(TEXTS[name])
    return root


def settings(home: Path, **kw: object):
    return load_settings({"data_dir": home, **kw}, environ={})


def ingest_now(home: Path, *paths: Path, prune: bool = False) -> IngestReport:
    return asyncio.run(ingest(list(paths), settings(home), EMB, prune=prune))


def prune_now(home: Path, dry_run: bool = False) -> PruneReport:
    return asyncio.run(prune(settings(home), dry_run=dry_run))


def status(home: Path) -> dict:
    return collect_status(settings(home))


def assert_index_is_the_catalogue(home: Path) -> None:
    """Every collection of the index holds exactly the catalogue's chunks (the partitions'
    own ones, their partition's), and no ingest or prune is left half done."""
    catalog = Catalog(DataDir(home).catalog)
    try:
        info = indexing.current(catalog)
        assert info is not None and catalog.get_meta(indexing.PENDING) == ""
        assert info.version == catalog.version
        want = {cid for cid, _ in catalog.chunk_texts()}
        partition_of = catalog.chunk_partitions(sorted(want))
    finally:
        catalog.close()
    store = Store(DataDir(home).chroma)
    assert store.ids(info.name) == want
    for partition, name in info.partitions.items():
        assert store.ids(name) == {c for c, p in partition_of.items() if p == partition}


def test_a_moved_folder_ends_as_a_clean_ingest_at_its_new_place(tmp_path: Path) -> None:
    home, old, new = tmp_path / "home", tmp_path / "corpus", tmp_path / "corpus-new"
    first = ingest_now(home, write(old))
    assert (first.new, status(home)["documents"]) == (4, 4)
    old.rename(new)
    gone = sorted(str(old / name) for name in TEXTS)
    moved = status(home)["missing"]  # status stats, and writes nothing: not excluded yet
    assert moved == {"count": 4, "paths": gone, "excluded": 0}
    assert "answers may still cite 4 of them until `ragcli ingest`" in str(missing_line(moved))
    # the re-ingest at the new place: every vector from the embedding cache, no model loaded
    again, imported = ragcli_and_modules(home, "ingest", str(new))
    assert again.returncode == 0, again.stderr
    n = first.chunks
    assert f"{2 * n} chunks in the index (+{n} -0); 0 chunks embedded" in again.stdout
    assert "onnxruntime" not in imported
    line = f"4 documents are missing on disk (e.g. {old / 'hr' / 'leave.md'}); `ragcli prune`"
    assert line in again.stdout
    before = status(home)
    assert (before["documents"], before["chunks"]) == (8, 2 * first.chunks)
    assert before["missing"] == {"count": 4, "paths": gone, "excluded": 4}
    shown = run_ragcli(home, "status")
    assert f"missing on disk: 4 documents ({gone[0]}, {gone[1]}, {gone[2]}, …)" in shown.stdout
    # --dry-run says what would go and changes nothing
    dry = run_ragcli(home, "prune", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    said = json.loads(dry.stdout)
    assert (said["missing"], said["pruned"], said["paths"]) == (4, 0, gone)
    assert status(home) == before
    done = run_ragcli(home, "prune")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed 4 of 8 documents missing on disk") and (
        len(done.stdout.splitlines()) == 1
    )
    after = status(home)
    assert (after["documents"], after["chunks"], after["missing"]["count"]) == (4, first.chunks, 0)
    assert after["problems"] == [] and after["index_version"] > before["index_version"]
    assert_index_is_the_catalogue(home)
    clean = tmp_path / "clean-home"
    ingest_now(clean, new)
    assert after["digest"] == status(clean)["digest"] != before["digest"]
    # and a second prune has nothing to do
    again = run_ragcli(home, "prune")
    assert again.returncode == 0 and again.stdout.startswith("nothing to prune")
    assert status(home)["index_version"] == after["index_version"]


@pytest.mark.parametrize("at_once", [False, True], ids=["ingest-then-prune", "in-one-run"])
def test_a_copy_from_a_new_place_then_ingest_prune(tmp_path: Path, at_once: bool) -> None:
    """The same folder name elsewhere shows the same sources, so its chunks take over the old
    ones' ids: documents double until the old place is pruned, chunks do not, and the old
    documents' removal deletes nothing from the index, also when it happens in the window
    that brings the new ones in (`ingest --prune` at once)."""
    home, a, b = tmp_path / "home", tmp_path / "a" / "docs", tmp_path / "b" / "docs"
    first = ingest_now(home, write(a))
    shutil.copytree(a, b)
    shutil.rmtree(a)
    if not at_once:
        copied = ingest_now(home, b)
        assert (copied.new, copied.embedded, copied.missing) == (4, 0, 4)
        st = status(home)
        assert (st["documents"], st["chunks"], st["missing"]["count"]) == (8, first.chunks, 4)
    proc = run_ragcli(home, "ingest", str(b), "--prune", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["pruned"], report["removed"], report["missing"]) == (4, 0, 0)
    new = 4 if at_once else 0
    assert (report["new"], report["chunks_deleted"], report["embedded"]) == (new, 0, 0)
    st = status(home)
    assert (st["documents"], st["chunks"], st["missing"]["count"]) == (4, first.chunks, 0)
    assert_index_is_the_catalogue(home)
    clean = tmp_path / "clean-home"
    ingest_now(clean, b)
    assert st["digest"] == status(clean)["digest"]


def sources(home: Path, question: str = PAGER, **kw: object) -> dict[str, list[str]]:
    """The sources each retrieval mode returns for `question` (caches on)."""
    out = {}
    for mode in ("dense", "lexical", "hybrid"):
        p = pipeline_for(home, retrieval=mode, **kw)
        try:
            ranked, _ = asyncio.run(p.retrieve(Query(question)))
        finally:
            p.close()
        out[mode] = [record.source for record, _ in ranked]
    return out


def test_retrieval_leaves_out_a_missing_document_before_any_prune(tmp_path: Path) -> None:
    home = tmp_path / "home"
    notes, hr = write(tmp_path / "notes", ("ops/pager.md",)), write(tmp_path / "hr", HR)
    ingest_now(home, notes, hr)
    pager = "notes/ops/pager.md"
    found = sources(home)  # now in the retrieval caches
    assert all(found[mode][0] == pager for mode in found), found
    warm = pipeline_for(home)  # a long-lived pipeline (serve, the daemon) with its answer cached
    try:
        done = asyncio.run(_sources_of_ask(warm))
        assert done[0] == pager
        notes.rename(tmp_path / "notes-away")
        ingest_now(home, hr)  # any ingest marks it
        found = sources(home)
        assert all(pager not in found[mode] for mode in found) and found["dense"], found
        assert pager not in asyncio.run(_sources_of_ask(warm))
        # back on disk: the next ingest clears the mark, and retrieval finds it again
        (tmp_path / "notes-away").rename(notes)
        assert ingest_now(home, hr).missing == 0
        assert asyncio.run(_sources_of_ask(warm))[0] == pager
        notes.rename(tmp_path / "notes-away")
        ingest_now(home, hr)
        assert prune_now(home).pruned == 1
        assert pager not in asyncio.run(_sources_of_ask(warm))  # after prune: still out
    finally:
        warm.close()
    assert_index_is_the_catalogue(home)


async def _sources_of_ask(pipeline) -> list[str]:
    from ragcli.retrieval.events import SourcesEvent

    async for event in pipeline.ask(Query(PAGER)):
        if isinstance(event, SourcesEvent):
            return [s.chunk.source for s in event.sources]
    return []


def test_prune_never_removes_a_document_whose_file_exists(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ops, hr = tmp_path / "ops-docs", tmp_path / "hr-docs"
    write(ops, ("ops/pager.md", "ops/deploy.md"))
    write(hr, ("hr/leave.md", "hr/payroll.md"))
    ingest_now(home, ops)
    ingest_now(home, hr)
    pager, deploy = ops / "ops" / "pager.md", ops / "ops" / "deploy.md"
    deploy.unlink()
    saved = pager.read_text()
    pager.unlink()
    assert ingest_now(home, hr).missing == 2  # both marked
    pager.write_text(saved)  # back: its mark is stale now
    report = prune_now(home)
    assert (report.missing, report.pruned, report.paths) == (1, 1, [str(deploy)])
    st = status(home)
    assert (st["documents"], st["missing"]) == (3, {"count": 0, "paths": [], "excluded": 0})
    catalog = Catalog(DataDir(home).catalog)
    try:  # the stale mark is cleared: retrieval returns the pager again
        assert catalog.missing_documents() == []
        assert str(pager) in dict(catalog.document_marks())
    finally:
        catalog.close()
    assert_index_is_the_catalogue(home)


def test_prune_on_a_clean_catalogue_is_a_no_op(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ingest_now(home, write(tmp_path / "docs"))
    before = status(home)
    proc, imported = ragcli_and_modules(home, "prune", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["missing"], report["pruned"], report["checked"]) == (0, 0, 4)
    assert "chromadb" not in imported  # nothing to remove or repair: the index is not opened
    assert status(home) == before
    empty = run_ragcli(tmp_path / "nothing-here", "prune")
    assert empty.returncode != 0 and len(empty.stderr.splitlines()) == 1
    assert "nothing ingested" in empty.stderr and "Traceback" not in empty.stderr


@pytest.mark.parametrize("where", ["catalogue", "index"])
def test_a_prune_cut_short_is_repaired_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A prune that dies before its catalogue transaction (nothing removed yet) or after it
    (the rows out, the index still holding their chunks): `index.pending` stays set, retrieval
    never returns the chunks meanwhile, and the next prune ends with the catalogue and every
    collection in step, nothing lost or left behind."""
    home, old, new = tmp_path / "home", tmp_path / "corpus", tmp_path / "corpus-new"
    ingest_now(home, write(old))
    old.rename(new)
    ingest_now(home, new)
    before = status(home)

    def killed(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    target = (Catalog, "apply") if where == "catalogue" else (indexing, "delete")
    monkeypatch.setattr(*target, killed)
    with pytest.raises(KeyboardInterrupt):
        prune_now(home)
    monkeypatch.undo()
    cut = status(home)
    assert any("interrupted" in p for p in cut["problems"]), cut["problems"]
    removed = where == "index"
    assert cut["documents"] == (4 if removed else 8)
    assert all(not s.startswith("corpus/") for s in sources(home, no_cache="all")["hybrid"])
    again = prune_now(home)
    assert again.pruned == (0 if removed else 4)
    after = status(home)
    assert (after["documents"], after["problems"]) == (4, [])
    assert after["chunks"] == before["chunks"] // 2
    assert_index_is_the_catalogue(home)


def test_a_daemon_started_before_the_move_never_cites_the_missing_document(
    tmp_path: Path,
) -> None:
    """The warm daemon's pipeline watches the catalogue: after the mark, and after the prune,
    the same daemon (same pid) answers without the moved-away document."""
    home = tmp_path / "home"
    notes, hr = write(tmp_path / "notes", ("ops/pager.md",)), write(tmp_path / "hr", HR)
    ingest_now(home, notes, hr)

    def ask() -> tuple[list[str], str]:
        proc = run_ragcli(home, "ask", PAGER, "--json", "-v", RAGCLI_DAEMON="on")
        assert proc.returncode == 0, proc.stderr
        said = [ln for ln in proc.stderr.splitlines() if "answered by pid" in ln]
        assert len(said) == 1, proc.stderr
        return [s["path"] for s in json.loads(proc.stdout)["sources"]], said[0].split()[5]

    try:
        cited, pid = ask()
        assert cited[0] == "ops/pager.md"  # a relative path
        notes.rename(tmp_path / "notes-away")
        ingest_now(home, hr)
        cited, again = ask()
        assert again == pid and "ops/pager.md" not in cited and cited
        prune_now(home)
        cited, again = ask()
        assert again == pid and "ops/pager.md" not in cited and cited
    finally:
        run_ragcli(home, "daemon", "stop")


@pytest.mark.slow
def test_prunes_killed_with_sigkill_converge(tmp_path: Path) -> None:
    """`ragcli prune` killed (SIGKILL) once it has set `index.pending`, or once its catalogue
    transaction has committed (the version moved on), then run again: the catalogue, the FTS
    index and the collection end as a clean ingest at the new place, every time."""
    new = tmp_path / "corpus-new"
    clean = tmp_path / "clean-home"
    ingest_now(clean, write(new))
    want = status(clean)["digest"]
    landed = 0
    for i, event in enumerate(("pending", "catalogued") * 3):
        home, old = tmp_path / f"home-{i}", tmp_path / f"corpus-{i}" / "corpus"
        shutil.copytree(new, old)
        ingest_now(home, old)
        shutil.rmtree(old)
        ingest_now(home, new)  # marks the old place's documents
        version = catalog_meta(home, "version")
        proc = popen_home(home, "prune")
        while proc.poll() is None:
            if event == "pending" and catalog_meta(home, "index.pending") == "1":
                break
            if event == "catalogued" and catalog_meta(home, "version") not in (None, version):
                break
            time.sleep(0.002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=120)
        landed += proc.returncode == -signal.SIGKILL
        again = run_ragcli(home, "prune")
        assert again.returncode == 0, (i, event, again.stderr)
        st = status(home)
        assert (st["documents"], st["problems"], st["digest"]) == (4, [], want), (i, event)
        assert_stores_agree(home)
    print("prune-kills", json.dumps({"cycles": 6, "landed": landed}))
    assert landed >= 3
