"""`ragcli eval` as a real process (issue 10): a TREC run scored from the command line, one-line
errors, the shipped evaluation set's quality floor and --min gate, ef_search sweeps that restore
the index, `--ingest` of a BEIR corpus, and the lexical index (FTS5) against the vector index
through ingests, re-ingests, removals and killed ingests. Real SQLite, Chroma and model."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ragcli.core.errors import EXIT_QUALITY, EXIT_USAGE
from ragcli.eval.ef_search import RESTORE_FILE
from tests.support.cli import REPO, clean_env, copy_home, run_ragcli
from tests.support.eval_sets import SHIPPED, TOY_EXPECTED, write_toy


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_toy(tmp_path / "toy")


def test_cli_scores_a_trec_run_file(toy: Path, home: Path) -> None:
    proc = run_ragcli(home, "eval", str(toy), "--run", str(toy / "run.txt"), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    doc = report["configurations"][0]["document"]
    for name, value in TOY_EXPECTED.items():
        assert doc[name] == pytest.approx(value, abs=1e-4), name
    assert report["set"]["skipped_queries"] == 1


def test_cli_errors_are_one_line(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    for args in (
        [str(bad)],
        [str(SHIPPED), "--sweep", "ef_search=0"],
        [str(SHIPPED), "--sweep", "colour=red"],
        [str(SHIPPED), "--min", "ndcg@10=high"],
        [str(SHIPPED), "--format", "xml"],
    ):
        proc = run_ragcli(home, "eval", *args)
        assert proc.returncode == EXIT_USAGE, (args, proc.stderr)
        assert proc.stderr.startswith("ragcli: error:") and proc.stderr.count("\n") == 1


# -- against a real index ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def eval_home(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the ingested sample corpus: eval changes ef_search during sweeps."""
    home = tmp_path_factory.mktemp("eval") / "home"
    copy_home(sample_home, home)
    return home


def _eval(home: Path, *args: str) -> subprocess.CompletedProcess:
    return run_ragcli(home, "eval", str(SHIPPED), *args)


def test_shipped_set_quality_floor_and_min_gate(eval_home: Path, tmp_path: Path) -> None:
    svg = tmp_path / "curve.svg"
    proc = _eval(
        eval_home,
        "--sweep", "retrieval=dense,lexical,hybrid",
        "--min", "ndcg@10=0.85,hit@5=0.95",
        "--json", "--svg", str(svg),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = {r["config"]["retrieval"]: r for r in report["configurations"]}
    # Measured on this corpus (all-MiniLM-L6-v2, k=10): document nDCG@10 dense 0.972,
    # lexical 0.908, hybrid 0.972 (0.958 before stop words left the FTS5 query); the floors
    # sit just under.
    assert rows["dense"]["document"]["ndcg@10"] >= 0.95
    assert rows["lexical"]["document"]["ndcg@10"] >= 0.88
    assert rows["hybrid"]["document"]["ndcg@10"] >= 0.95
    for row in rows.values():
        assert row["queries"] == 40 and row["document"]["hit@10"] == 1.0
        assert row["chunk"]["ndcg@10"] > 0.6
        assert row["latency_ms"]["total"]["n"] == 40
    assert all(m["ok"] for m in report["minimums"])
    assert report["set"]["missing_documents"] == 0
    assert svg.read_text().startswith("<svg") and "hybrid" in svg.read_text()

    # The gate fails: exit 6, one line naming the metric under its minimum.
    proc = _eval(eval_home, "--sweep", "retrieval=lexical", "--min", "ndcg@10=0.5,hit@1=0.99")
    assert proc.returncode == EXIT_QUALITY
    assert proc.stderr.count("\n") == 1 and "hit@1 0.8000 < 0.99 (lexical k=10)" in proc.stderr
    assert "ndcg@10" not in proc.stderr  # that one passed
    assert "minimum ok: ndcg@10" in proc.stdout and "minimum FAILED: hit@1" in proc.stdout


def test_ef_search_sweep_restores_the_index(eval_home: Path) -> None:
    proc = _eval(
        eval_home, "--sweep", "ef_search=16,32", "--sweep", "retrieval=dense,lexical",
        "--sweep", "k=5", "--sweep", "partitions=off,on", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    labels = [r["label"] for r in report["configurations"]]
    # ef_search cannot change lexical results: its rows are folded.
    assert labels == [
        "dense ef=16 k=5",
        "dense ef=16 k=5 scoped",
        "lexical k=5",
        "lexical k=5 scoped",
        "dense ef=32 k=5",
        "dense ef=32 k=5 scoped",
    ]
    scoped = [r for r in report["configurations"] if r["config"]["partitions"]]
    assert all(r["scoped_queries"] == 40 for r in scoped)
    assert not (eval_home / RESTORE_FILE).exists()
    assert _collection_ef(eval_home) == {64}


@pytest.mark.filterwarnings("ignore:legacy embedding function config:DeprecationWarning")
def test_ef_search_is_set_on_every_collection_during_the_sweep(eval_home: Path) -> None:
    from ragcli.eval.ef_search import ef_search_control
    from ragcli.index.catalog import Catalog

    catalog = Catalog(eval_home / "catalog.db")
    try:
        with ef_search_control(eval_home, catalog) as set_ef:
            set_ef(16)
            assert _collection_ef(eval_home) == {16}  # what a fresh process loads
            assert json.loads((eval_home / RESTORE_FILE).read_text())["ef_search"] == 64
    finally:
        catalog.close()
    assert _collection_ef(eval_home) == {64} and not (eval_home / RESTORE_FILE).exists()


def test_an_interrupted_sweep_is_restored_by_the_next_eval(eval_home: Path) -> None:
    names = _collections(eval_home)
    code = (
        "import sys; from pathlib import Path; from ragcli.index.store import Store\n"
        "s = Store(Path(sys.argv[1]))\n"
        "for n in sys.argv[2:]: s.set_ef_search(n, 24)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(eval_home / "chroma"), *names], check=True)
    (eval_home / RESTORE_FILE).write_text(json.dumps({"ef_search": 64, "collections": names}))
    assert _collection_ef(eval_home) == {24}
    proc = _eval(eval_home, "--sweep", "retrieval=lexical", "--json")
    assert proc.returncode == 0, proc.stderr
    assert not (eval_home / RESTORE_FILE).exists()
    assert _collection_ef(eval_home) == {64}


def test_ingest_a_beir_corpus(eval_home: Path, home: Path) -> None:
    """`--ingest` writes the corpus as files and ingests them: the same chunk texts as
    ingesting sample_corpus itself (embedded once: cache hits); a second run embeds nothing."""
    home.mkdir(parents=True)
    shutil.copy(eval_home / "cache.db", home / "cache.db")  # embeddings: cache hits
    proc = run_ragcli(home, "eval", str(SHIPPED), "--ingest", "--json", "--k", "5")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ingest"]["files"] == 43 and report["ingest"]["chunks_added"] == 200
    assert report["configurations"][0]["document"]["ndcg@10"] >= 0.95
    assert report["ingest"]["embedded"] == 0  # same texts as sample_corpus: cache hits
    assert _text_hashes(home) == _text_hashes(eval_home)
    again = json.loads(run_ragcli(home, "eval", str(SHIPPED), "--ingest", "--json").stdout)
    assert again["ingest"]["embedded"] == 0 and again["ingest"]["chunks_added"] == 0


def test_eval_reports_abstention_on_unanswerable_queries(eval_home: Path, tmp_path: Path) -> None:
    """Queries without a relevant document (BEIR-style) are asked whether `ask` would answer:
    the shipped out-of-corpus questions are abstained on, the in-corpus ones answered."""
    root = tmp_path / "mixed"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").symlink_to(SHIPPED / "corpus.jsonl")
    lines = (SHIPPED / "queries.jsonl").read_text().splitlines()[:4]
    lines += (SHIPPED / "unanswerable.jsonl").read_text().splitlines()[:3]
    (root / "queries.jsonl").write_text("\n".join(lines) + "\n")
    qrels = (SHIPPED / "qrels" / "test.tsv").read_text().splitlines()[:5]
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    proc = run_ragcli(eval_home, "eval", str(root), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["set"]["skipped_queries"] == 3
    assert report["abstention"] == {
        "threshold": 0.4, "unanswerable": 3, "abstained": 3, "answerable": 4, "answered": 4
    }  # fmt: skip


def _text_hashes(home: Path) -> list[str]:
    conn = sqlite3.connect(home / "catalog.db")
    try:
        return sorted(r[0] for r in conn.execute("SELECT text_hash FROM chunks"))
    finally:
        conn.close()


def test_shipped_set_is_what_its_script_generates() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_sample_eval.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


# -- the lexical index equals the vector index ---------------------------------------------------
def _collections(home: Path) -> list[str]:
    conn = sqlite3.connect(home / "catalog.db")
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
    finally:
        conn.close()
    return [meta["index.name"], *json.loads(meta.get("index.partitions", "{}")).values()]


def _chroma(home: Path, code: str, *args: str) -> object:
    """Run `code` (which prints JSON) in a fresh process: Chroma caches what it loaded."""
    proc = subprocess.run(
        [sys.executable, "-c", code, str(home / "chroma"), *args],
        capture_output=True,
        text=True,
        env=clean_env(home),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _collection_ef(home: Path) -> set[int]:
    code = (
        "import json, sys; from pathlib import Path; from ragcli.index.store import Store\n"
        "s = Store(Path(sys.argv[1]))\n"
        "print(json.dumps([s._get(n).configuration_json['hnsw']['ef_search'] "
        "for n in sys.argv[2:]]))\n"
    )
    return set(_chroma(home, code, *_collections(home)))  # type: ignore[arg-type]


def index_sets(home: Path) -> dict[str, set[str]]:
    """Chunk ids in the catalogue, in the FTS5 index (read from the index itself, not from
    its content table) and in Chroma (global collection; partition collections together)."""
    conn = sqlite3.connect(home / "catalog.db")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE temp.fts_rows USING fts5vocab(main, chunks_fts, instance)"
        )
        rowids = {r[0] for r in conn.execute("SELECT DISTINCT doc FROM temp.fts_rows")}
        ids = dict(conn.execute("SELECT rowid, id FROM chunks"))
        # Raises if any indexed row disagrees with the text in `chunks`.
        conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
        chunks = set(ids.values())
        fts = {ids.get(r, f"<gone rowid {r}>") for r in rowids}
    finally:
        conn.close()
    names = _collections(home)
    code = (
        "import json, sys; from pathlib import Path; from ragcli.index.store import Store\n"
        "s = Store(Path(sys.argv[1]))\n"
        "print(json.dumps([sorted(s.ids(n)) for n in sys.argv[2:]]))\n"
    )
    found = _chroma(home, code, *names)
    parts: set[str] = set()
    for got in found[1:]:  # type: ignore[index]
        parts.update(got)
    return {
        "chunks": chunks,
        "fts": fts,
        "chroma": set(found[0]),  # type: ignore[index]
        "partitions": parts,
        "in_own_partitions": _chunks_with_own_collection(home),
    }


def _chunks_with_own_collection(home: Path) -> set[str]:
    """Ids of the chunks whose partition has a collection of its own (partition_rule.py)."""
    conn = sqlite3.connect(f"file:{home / 'catalog.db'}?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        own = sorted(json.loads(meta.get("index.partitions", "{}")))
        marks = ",".join("?" * len(own))
        rows = conn.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.path = c.doc_path "
            f"WHERE d.partition IN ({marks})",
            own,
        )
        return {r[0] for r in rows}
    finally:
        conn.close()


def assert_in_step(home: Path) -> set[str]:
    sets = index_sets(home)
    assert sets["fts"] == sets["chunks"], "FTS5 index differs from the chunks table"
    assert sets["chroma"] == sets["chunks"], "Chroma differs from the catalogue"
    assert sets["partitions"] == sets["in_own_partitions"], "partition collections differ"
    return sets["chunks"]


def _lexical(home: Path, text: str) -> list[str]:
    from ragcli.index.catalog import Catalog

    catalog = Catalog(home / "catalog.db")
    try:
        return [catalog.chunks([cid])[cid].relpath for cid, _ in catalog.lexical_search(text, 5)]
    finally:
        catalog.close()


def test_ask_and_profile_take_retrieval_mode(ragcli, home: Path, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    for mode in ("dense", "lexical", "hybrid"):
        question = "Which tool pages the on-call engineer?"
        proc = ragcli("ask", question, "--retrieval", mode, "--json")
        assert proc.returncode == 0, proc.stderr
        best = max(json.loads(proc.stdout)["sources"], key=lambda s: s["score"])
        assert best["source"].endswith("ops/pager.md"), mode
    proc = ragcli("profile", "Who is on call?", "--retrieval", "lexical", "--runs", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["settings"]["retrieval"] == "lexical"
    proc = ragcli("ask", "Who is on call?", "--retrieval", "fuzzy")
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.count("\n") == 1 and "unknown retrieval 'fuzzy'" in proc.stderr


def test_fts_follows_ingests_reingests_and_removals(ragcli, home: Path, corpus: Path) -> None:
    assert ragcli("ingest", str(corpus)).returncode == 0
    first = assert_in_step(home)
    assert _lexical(home, "PageRelay") == ["ops/pager.md"]
    (corpus / "ops" / "pager.md").write_text("# Pager\n\nPagerDuty replaced the old tool.\n")
    (corpus / "ops" / "disk.md").write_text("# Disk\n\nRun the janitor job when disks fill.\n")
    assert ragcli("ingest", str(corpus)).returncode == 0
    second = assert_in_step(home)
    assert second != first and _lexical(home, "PageRelay") == []
    assert _lexical(home, "janitor") == ["ops/disk.md"]
    (corpus / "hr" / "notes.txt").unlink()
    assert ragcli("ingest", str(corpus)).returncode == 0
    third = assert_in_step(home)
    assert len(third) < len(second) and _lexical(home, "payroll") == []
    assert ragcli("ingest", str(corpus)).returncode == 0  # unchanged: nothing moves
    assert assert_in_step(home) == third


# A real ingest process, SIGKILLed at a chosen point of its work.
KILL = """
import os, signal, sys
import ragcli.index.catalog, ragcli.index.store
cls = {"upsert": ragcli.index.store.Store, "delete": ragcli.index.store.Store,
       "set_meta": ragcli.index.catalog.Catalog}[sys.argv[1]]
original = getattr(cls, sys.argv[1])
def killed(self, *args, **kwargs):
    if sys.argv[1] != "set_meta" or args[0] == "version":
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)
setattr(cls, sys.argv[1], killed)
from ragcli.cli.app import main
sys.argv = ["ragcli", "ingest", sys.argv[2]]
main()
"""


@pytest.mark.parametrize(
    ("first", "point"),
    [
        (True, "upsert"),  # the first ingest ever, killed while adding vectors
        (False, "upsert"),  # a re-ingest: new vectors half in, catalogue not yet changed
        (False, "set_meta"),  # inside the catalogue transaction, before its commit
        (False, "delete"),  # catalogue committed, old vectors not yet deleted
    ],
)
def test_fts_follows_a_killed_ingest(
    ragcli, home: Path, corpus: Path, first: bool, point: str
) -> None:
    if not first:
        assert ragcli("ingest", str(corpus)).returncode == 0
        (corpus / "ops" / "pager.md").write_text("# Pager\n\nPagerDuty replaced the old tool.\n")
        (corpus / "ops" / "disk.md").write_text("# Disk\n\nRun the janitor job when disks fill.\n")
        (corpus / "hr" / "notes.txt").unlink()
    proc = subprocess.run(
        [sys.executable, "-c", KILL, point, str(corpus)],
        capture_output=True,
        text=True,
        env=clean_env(home),
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr  # it really died mid-way
    if (home / "catalog.db").exists():
        conn = sqlite3.connect(home / "catalog.db")
        try:  # whatever Chroma holds, the lexical index matches the catalogue at every moment
            conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
        finally:
            conn.close()
    assert ragcli("ingest", str(corpus)).returncode == 0
    ids = assert_in_step(home)
    assert len(ids) == 3 and _lexical(home, "janitor") == ([] if first else ["ops/disk.md"])
