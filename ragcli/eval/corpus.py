"""`ragcli eval --ingest`: a BEIR set's corpus written as files ragcli ingests (under the data
directory, in `eval-corpora/eval-NAME/`), then ingested. A manifest keeps the BEIR `_id` of
each file whose id is not a path, so judged ids still find their documents."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ragcli.core.errors import UsageError
from ragcli.ingest.documents import TEXT_SUFFIXES

if TYPE_CHECKING:
    from ragcli.core.config import Settings
    from ragcli.embedders.base import Embedder
    from ragcli.eval.relevance import RelevanceSet

CORPORA_DIR = "eval-corpora"
MANIFEST = ".ids.json"  # relpath → BEIR _id, for ids that are not paths (dot-files are not read)


def _file_name(doc_id: str) -> str:
    """A BEIR `_id` as a relative path: kept when it already is a safe path to a text file."""
    p = PurePosixPath(doc_id)
    if (
        not p.is_absolute()
        and p.suffix.lower() in TEXT_SUFFIXES
        and all(part not in ("", ".", "..") and not part.startswith(".") for part in p.parts)
        and re.fullmatch(r"[\w./ -]+", doc_id)
    ):
        return doc_id
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", doc_id)[:80].strip("_") or "doc"
    return f"{slug}-{hashlib.sha1(doc_id.encode()).hexdigest()[:8]}.txt"


def materialise_corpus(rset: RelevanceSet, data_dir: Path) -> Path:
    """Write the set's corpus under the data directory, in `eval-corpora/eval-NAME/` (a file
    is rewritten only when its content changed, so a second `--ingest` embeds nothing); files
    no longer in the corpus are removed, so the ingest that follows drops them."""
    assert rset.corpus is not None
    # "eval-NAME", not NAME: chunk ids derive from the folder's name and the file's path, so
    # a user's own ingest of a folder called NAME must not share them.
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", rset.name).strip("-.") or "set"
    folder = data_dir / CORPORA_DIR / f"eval-{slug}"
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str] = {}
    for doc in rset.corpus:
        rel = _file_name(doc.id)
        if rel in manifest:
            raise UsageError(f"corpus.jsonl: documents {manifest[rel]!r} and {doc.id!r} collide")
        manifest[rel] = doc.id
        text = doc.text
        if rel != doc.id and doc.title and not doc.text.lstrip().startswith(doc.title):
            text = f"{doc.title}\n\n{doc.text}"  # BEIR keeps titles apart; ragcli reads files
        target = folder / rel
        data = text.encode("utf-8")
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for path in sorted(folder.rglob("*"), reverse=True):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MANIFEST and rel not in manifest:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    (folder / MANIFEST).write_text(json.dumps(manifest, sort_keys=True, indent=0), "utf-8")
    return folder


async def ingest_set(rset: RelevanceSet, settings: Settings, embedder: Embedder) -> dict[str, Any]:
    from ragcli.ingest.run import ingest

    if rset.corpus is None:
        raise UsageError(
            "--ingest needs a BEIR set (its corpus.jsonl); for other formats run "
            "`ragcli ingest FOLDER` first, then `ragcli eval` without --ingest"
        )
    folder = materialise_corpus(rset, settings.data_dir)
    report = await ingest([folder], settings, embedder)
    return {"folder": str(folder), **report.as_dict()}
