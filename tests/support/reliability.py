"""Helpers of the reliability tests (tests/e2e/test_reliability*.py): ragcli run as a real
process on a data directory, a remote embedder's environment with a secret API key, a corpus
generator, and a check that the catalogue, the FTS index and every Chroma collection agree."""

from __future__ import annotations

import functools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.cli import REPO, clean_env
from tests.support.remote_env import remote_env as shared_remote_env

MODEL = "text-embedding-3-small"
DIMS = 32
SECRET = "sk-RAGCLI-SECRET-7d1f0c9a4b2e"


remote_env = functools.partial(shared_remote_env, key=SECRET, dims=DIMS)


def run_home(
    home: Path, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragcli", *args],
        capture_output=True,
        text=True,
        env=clean_env(home, **env),
        cwd=REPO,
        timeout=timeout,
    )


def popen_home(home: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ragcli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(home, **env),
        cwd=REPO,
    )


def status_of(home: Path, **env: Any) -> dict[str, Any]:
    proc = run_home(home, "status", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


_CHROMA_IDS = (
    "import json, sys, chromadb\n"
    "from chromadb.config import Settings\n"
    "c = chromadb.PersistentClient(sys.argv[1], settings=Settings(anonymized_telemetry=False))\n"
    "ids = {}\n"
    "for col in c.list_collections():\n"
    "    col = c.get_collection(col.name if hasattr(col, 'name') else col)\n"
    "    ids[col.name] = col.get(include=[])['ids']\n"
    "print(json.dumps(ids))\n"
)


def assert_stores_agree(home: Path) -> int:
    """Chroma's ids == the catalogue's chunk ids == the FTS rows joined to chunks."""
    conn = sqlite3.connect(home / "catalog.db")
    try:
        catalogue = [r[0] for r in conn.execute("SELECT id FROM chunks")]
        fts = [
            r[0]
            for r in conn.execute(
                "SELECT c.id FROM chunks_fts f JOIN chunks c ON c.rowid = f.rowid"
            )
        ]
        fts_rows = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        partition_of = dict(
            conn.execute(
                "SELECT c.id, d.partition FROM chunks c JOIN documents d ON d.path = c.doc_path"
            )
        )
    finally:
        conn.close()
    out = subprocess.run(
        [sys.executable, "-c", _CHROMA_IDS, str(home / "chroma")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    collections: dict[str, list[str]] = json.loads(out.stdout)
    assert len(set(catalogue)) == len(catalogue)  # no duplicated chunk
    assert len(fts) == fts_rows == len(catalogue)  # no orphan FTS rows
    assert set(fts) == set(catalogue)
    # the collections the catalogue names and no other: the global one holding exactly the
    # catalogue, each partition's own (those index/partition_rule.py picks) exactly its chunks
    own = json.loads(meta.get("index.partitions", "{}"))
    assert set(collections) == {meta["index.name"], *own.values()}, (sorted(collections), meta)
    for name, ids in collections.items():
        assert len(set(ids)) == len(ids), name
    assert set(collections[meta["index.name"]]) == set(catalogue)
    for partition, name in own.items():
        mine = {cid for cid, p in partition_of.items() if p == partition}
        assert set(collections[name]) == mine, partition
    return len(catalogue)


def write_corpus(root: Path, docs: int = 4, edition: int = 0) -> Path:
    """`docs` Markdown files in three partitions. Another `edition` rewrites half of the
    paragraphs (an earlier version of the same corpus, for updates)."""
    for f in range(docs):
        part = ("ops", "hr", "eng")[f % 3]
        (root / part).mkdir(parents=True, exist_ok=True)
        revised = f" Revised in edition {edition}." if edition else ""
        paragraphs = [
            " ".join(
                f"Document {f} paragraph {p} sentence {s} explains step {s * 3 + p} of "
                f"procedure {f * 11 + s} in plain words." + (revised if (p + f) % 2 == 0 else "")
                for s in range(5)
            )
            for p in range(6)
        ]
        (root / part / f"doc{f}.md").write_text(f"# Doc {f}\n\n" + "\n\n".join(paragraphs) + "\n")
    return root


def catalog_meta(home: Path, key: str) -> str | None:
    """A catalogue setting as another reader sees it now (None: not readable yet)."""
    try:
        conn = sqlite3.connect(f"file:{home / 'catalog.db'}?mode=ro", uri=True, timeout=0.5)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None
