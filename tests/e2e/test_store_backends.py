"""The store through real ragcli processes, on the embedded index and on a real Chroma server
(`chroma run` on 127.0.0.1, started by tests/conftest.py): the same status digest on both, a
collection missing on the server, a server that is down. In-process: tests/unit/index/."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ragcli.core.config import load_settings
from ragcli.core.datadir import DataDir
from ragcli.embedders.local import LocalEmbedder
from ragcli.index import indexing
from ragcli.index.catalog import Catalog
from ragcli.index.store import Store
from ragcli.ingest.run import ingest
from tests.support.cli import run_ragcli
from tests.support.servers import free_port

EMB = LocalEmbedder()


def _settings(home: Path, chroma_url: str, **kw: Any):
    return load_settings({"data_dir": home, "chroma_url": chroma_url, **kw}, environ={})


def _ingest(home: Path, corpus: Path, chroma_url: str) -> None:
    asyncio.run(ingest([corpus], _settings(home, chroma_url), EMB))


def test_status_digest_is_the_same_on_both_stores(
    tmp_path: Path, corpus: Path, chroma_server: Any
) -> None:
    out = {}
    for name, url in (("embedded", ""), ("server", chroma_server.url)):
        home = tmp_path / name
        extra = {"RAGCLI_CHROMA_URL": url} if url else {}
        assert run_ragcli(home, "ingest", str(corpus), **extra).returncode == 0
        proc = run_ragcli(home, "status", "--json", **extra)
        assert proc.returncode == 0, proc.stderr
        out[name] = json.loads(proc.stdout)
    for report in out.values():
        assert report["problems"] == [] and report["index"]["in_step"]
    assert out["embedded"]["digest"] == out["server"]["digest"]
    assert out["embedded"]["chunks"] == out["server"]["chunks"] > 0
    assert out["server"]["chroma_url"] == chroma_server.url
    assert not (tmp_path / "server" / "chroma").exists()  # nothing embedded was made


def test_status_reports_a_collection_missing_on_the_server(
    home: Path, corpus: Path, chroma_server: Any
) -> None:
    _ingest(home, corpus, chroma_server.url)
    catalog = Catalog(DataDir(home).catalog)
    info = indexing.current(catalog)
    catalog.close()
    assert info is not None
    Store(url=chroma_server.url).drop(info.name)
    proc = run_ragcli(home, "status", "--json", RAGCLI_CHROMA_URL=chroma_server.url)
    report = json.loads(proc.stdout)
    assert not report["index"]["in_step"]
    assert any("lacks 1 of this index's collections" in p for p in report["problems"])


def test_unreachable_chroma_server_is_one_line(home: Path, corpus: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run_ragcli(home, "--chroma-url", url, "ingest", str(corpus))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ragcli: error: cannot reach the Chroma server")
    assert url in lines[0] and "Traceback" not in proc.stderr
    bad = run_ragcli(home, "--chroma-url", "localhost:8000", "status")
    assert bad.returncode == 2 and "use http://HOST:PORT" in bad.stderr
