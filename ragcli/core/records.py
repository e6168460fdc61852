"""The plain records that ingest produces and the catalogue and index store: a file found
under an ingest root (`FileRef`), its text read and described (`Document`), and one chunk of
that text (`Chunk`). Data only, stdlib only: both `ingest` (which makes them) and `index`
(which stores them) import them from here, so `index` never imports `ingest`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileRef:
    """A file found under an ingest root."""

    path: Path  # absolute, resolved
    root: Path  # the folder the user named (or the file's parent)
    partition: str

    @property
    def relpath(self) -> str:
        return self.path.relative_to(self.root).as_posix()

    @property
    def source(self) -> str:
        """Stable display name: the root's folder name + the path below it."""
        return f"{self.root.name}/{self.relpath}" if self.root.name else self.relpath


@dataclass(frozen=True)
class Document:
    """A file's text and what is known about it, as `ingest.documents.load` read it."""

    ref: FileRef
    text: str
    title: str
    date: str  # ISO date: front matter `date:` if given, else the file's mtime
    date_ts: int
    content_hash: str  # sha256 of the file's bytes
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class Chunk:
    """One piece of a document's text, cut on the embedding model's token boundaries."""

    position: int
    text: str
    start: int  # character offsets into the document text
    end: int
    n_tokens: int
