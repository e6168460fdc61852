"""Relevance sets in the formats people already have, read into one shape.

* **BEIR**: a folder with `corpus.jsonl` (`{"_id", "title", "text"}`), `queries.jsonl`
  (`{"_id", "text"}`, optional `"metadata": {"partition": …}`) and `qrels/<split>.tsv`
  (`query-id<TAB>corpus-id<TAB>score`, header optional). The split is `test.tsv` unless the set
  is named by its qrels file (`eval/x/qrels/dev.tsv`) or the folder has only one.
* **TREC**: a qrels file (`qid iter docid rel`, whitespace-separated) with its queries beside
  it (`queries.tsv`: `qid<TAB>text`, or a BEIR `queries.jsonl`), or a folder holding both;
  TREC run files (`qid Q0 docid rank score tag`) can be scored against the qrels.
* **JSONL**: one object a line, `{"question": "...", "sources": ["path/in/the/folder.md", ...]}`
  (sources may also be `{"path": grade}` for graded relevance; optional `"id"` and
  `"partition"`/`"partitions"`).

Grades above 0 are relevant; 0 (or less) is judged not relevant. Every malformed line is one
`RelevanceError` naming the file and line. Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragcli.core.errors import UsageError

FORMATS = ("auto", "beir", "trec", "jsonl")
Qrels = dict[str, dict[str, int]]  # query id → document id → grade


class RelevanceError(UsageError):
    """A relevance set that cannot be read: the message names the file and line."""


@dataclass(frozen=True)
class EvalQuery:
    id: str
    text: str
    partitions: tuple[str, ...] = ()


@dataclass(frozen=True)
class CorpusDoc:
    id: str
    title: str
    text: str


@dataclass
class RelevanceSet:
    name: str
    format: str
    path: Path
    queries: list[EvalQuery]
    qrels: Qrels
    corpus: list[CorpusDoc] | None = None  # BEIR sets carry their documents
    skipped: list[str] = field(default_factory=list)  # query ids dropped: nothing relevant
    unanswerable: list[EvalQuery] = field(default_factory=list)  # those queries (abstention)

    @property
    def judged(self) -> list[EvalQuery]:
        """The queries with at least one relevant document (the ones that are scored)."""
        return [q for q in self.queries if any(g > 0 for g in self.qrels.get(q.id, {}).values())]


# -- low-level line readers -----------------------------------------------------------------
def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RelevanceError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RelevanceError(f"{path}: cannot read: {exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield n, line


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in _lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RelevanceError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise RelevanceError(f"{path}:{n}: expected a JSON object")
        yield n, obj


def _grade(raw: str, where: str) -> int:
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value.is_integer():
        raise RelevanceError(f"{where}: relevance {raw!r} is not an integer grade")
    return int(value)


def _str_id(value: Any, what: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise RelevanceError(f"{where}: missing or empty {what}")
    return str(value).strip()


# -- readers ---------------------------------------------------------------------------------
def read_beir_corpus(path: Path) -> list[CorpusDoc]:
    docs: list[CorpusDoc] = []
    seen: set[str] = set()
    for n, obj in _json_lines(path):
        where = f"{path}:{n}"
        doc_id = _str_id(obj.get("_id"), '"_id"', where)
        text = obj.get("text")
        if not isinstance(text, str):
            raise RelevanceError(f'{where}: "text" must be a string')
        title = obj.get("title") or ""
        if not isinstance(title, str):
            raise RelevanceError(f'{where}: "title" must be a string')
        if doc_id in seen:
            raise RelevanceError(f"{where}: document {doc_id!r} appears twice")
        seen.add(doc_id)
        docs.append(CorpusDoc(doc_id, title, text))
    if not docs:
        raise RelevanceError(f"{path}: no documents")
    return docs


def _partitions(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise RelevanceError(f"{where}: a partition must be a name or a list of names")


def read_queries(path: Path) -> list[EvalQuery]:
    """BEIR `queries.jsonl` or a TSV of `qid<TAB>text`."""
    out: list[EvalQuery] = []
    if path.suffix.lower() == ".jsonl":
        for n, obj in _json_lines(path):
            where = f"{path}:{n}"
            qid = _str_id(obj.get("_id", obj.get("id")), '"_id"', where)
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                raise RelevanceError(f'{where}: missing or empty "text"')
            meta = obj.get("metadata") or {}
            if not isinstance(meta, dict):
                raise RelevanceError(f'{where}: "metadata" must be an object')
            parts = _partitions(meta.get("partition", meta.get("partitions")), where)
            out.append(EvalQuery(qid, text.strip(), parts))
    else:
        for n, line in _lines(path):
            qid, sep, text = line.partition("\t")
            if not sep or not qid.strip() or not text.strip():
                raise RelevanceError(f"{path}:{n}: expected QUERY-ID<TAB>TEXT")
            out.append(EvalQuery(qid.strip(), text.strip()))
    ids = [q.id for q in out]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise RelevanceError(f"{path}: query {dup!r} appears twice")
    if not out:
        raise RelevanceError(f"{path}: no queries")
    return out


def read_beir_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    for n, line in _lines(path):
        cols = line.split("\t") if "\t" in line else line.split()
        if n == 1 and cols[-1].strip().lower() in ("score", "relevance", "rel"):
            continue  # the header BEIR writes: query-id, corpus-id, score
        if len(cols) != 3 or not cols[0].strip() or not cols[1].strip():
            raise RelevanceError(f"{path}:{n}: expected QUERY-ID<TAB>CORPUS-ID<TAB>SCORE")
        qrels.setdefault(cols[0].strip(), {})[cols[1].strip()] = _grade(
            cols[2].strip(), f"{path}:{n}"
        )
    if not qrels:
        raise RelevanceError(f"{path}: no judgements")
    return qrels


def read_trec_qrels(path: Path) -> Qrels:
    """`qid iter docid rel` a line (trec_eval's format; `iter` is ignored)."""
    qrels: Qrels = {}
    for n, line in _lines(path):
        cols = line.split()
        if len(cols) != 4:
            raise RelevanceError(
                f"{path}:{n}: expected 4 columns (QUERY-ID ITERATION DOC-ID RELEVANCE), "
                f"got {len(cols)}"
            )
        qrels.setdefault(cols[0], {})[cols[2]] = _grade(cols[3], f"{path}:{n}")
    if not qrels:
        raise RelevanceError(f"{path}: no judgements")
    return qrels


def read_trec_run(path: Path) -> dict[str, list[str]]:
    """`qid Q0 docid rank score tag` a line → document ids per query, best first. As
    trec_eval does, the order is by score (descending); the rank column breaks ties."""
    rows: dict[str, list[tuple[float, int, str]]] = {}
    for n, line in _lines(path):
        cols = line.split()
        if len(cols) != 6:
            raise RelevanceError(
                f"{path}:{n}: expected 6 columns (QUERY-ID Q0 DOC-ID RANK SCORE TAG), "
                f"got {len(cols)}"
            )
        try:
            rank, score = int(cols[3]), float(cols[4])
        except ValueError:
            raise RelevanceError(
                f"{path}:{n}: rank must be an integer and score a number"
            ) from None
        rows.setdefault(cols[0], []).append((-score, rank, cols[2]))
    if not rows:
        raise RelevanceError(f"{path}: no results")
    out: dict[str, list[str]] = {}
    for qid, items in rows.items():
        ranked = [doc for _, _, doc in sorted(items)]
        if len(set(ranked)) != len(ranked):
            raise RelevanceError(f"{path}: query {qid!r} lists a document twice")
        out[qid] = ranked
    return out


def read_jsonl(path: Path) -> RelevanceSet:
    """`{"question": ..., "sources": [...]}` a line."""
    queries: list[EvalQuery] = []
    qrels: Qrels = {}
    for n, obj in _json_lines(path):
        where = f"{path}:{n}"
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise RelevanceError(f'{where}: missing or empty "question"')
        sources = obj.get("sources")
        if isinstance(sources, list) and sources and all(isinstance(s, str) for s in sources):
            grades = dict.fromkeys(sources, 1)
        elif (
            isinstance(sources, dict)
            and sources
            and all(isinstance(g, int) and not isinstance(g, bool) for g in sources.values())
        ):
            grades = dict(sources)
        else:
            raise RelevanceError(
                f'{where}: "sources" must be a non-empty list of paths (or {{"path": grade}})'
            )
        qid = _str_id(obj.get("id", f"q{n}"), '"id"', where)
        if qid in qrels:
            raise RelevanceError(f"{where}: query id {qid!r} appears twice")
        parts = _partitions(obj.get("partition", obj.get("partitions")), where)
        queries.append(EvalQuery(qid, question.strip(), parts))
        qrels[qid] = {s.strip(): g for s, g in grades.items()}
    if not queries:
        raise RelevanceError(f"{path}: no questions")
    generic = path.stem.lower() in ("questions", "queries", "qrels", "test", "dev", "eval")
    name = path.parent.name if generic and path.parent.name else path.stem
    return _finish(RelevanceSet(name, "jsonl", path, queries, qrels))


def _beir_qrels_file(root: Path, named: Path | None) -> Path:
    if named is not None:
        return named
    folder = root / "qrels"
    found = sorted(folder.glob("*.tsv")) if folder.is_dir() else []
    if not found:
        raise RelevanceError(f"{root}: no qrels/*.tsv (a BEIR set needs qrels/test.tsv)")
    if folder / "test.tsv" in found:
        return folder / "test.tsv"
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found)
    raise RelevanceError(f"{root}: several qrels files ({names}): name one, e.g. {found[0]}")


def read_beir(path: Path, with_corpus: bool = True) -> RelevanceSet:
    """A BEIR folder, or one of its `qrels/*.tsv` files (that split)."""
    named = None
    if path.is_file():
        named, path = path, path.parent.parent
    qrels_file = _beir_qrels_file(path, named)
    queries = read_queries(path / "queries.jsonl")
    corpus = None
    if with_corpus:
        corpus = read_beir_corpus(path / "corpus.jsonl")
    rset = RelevanceSet(path.name, "beir", path, queries, read_beir_qrels(qrels_file), corpus)
    if corpus is not None:
        known = {d.id for d in corpus}
        for qid, docs in rset.qrels.items():
            unknown = sorted(d for d in docs if d not in known)
            if unknown:
                raise RelevanceError(
                    f"{qrels_file}: query {qid!r} judges {unknown[0]!r}, "
                    "which is not in corpus.jsonl"
                )
    return _finish(rset)


def _trec_queries_beside(qrels: Path) -> Path:
    for name in ("queries.tsv", "queries.jsonl", "topics.tsv"):
        if (qrels.parent / name).is_file():
            return qrels.parent / name
    raise RelevanceError(
        f"{qrels}: no queries beside it (queries.tsv with QUERY-ID<TAB>TEXT, or queries.jsonl); "
        "or name them with --queries FILE"
    )


def read_trec(path: Path, queries: Path | None = None) -> RelevanceSet:
    if path.is_dir():
        names = [p for p in ("qrels.txt", "qrels", "qrels.tsv") if (path / p).is_file()]
        if not names:
            raise RelevanceError(f"{path}: no TREC qrels file (qrels.txt) in this folder")
        path = path / names[0]
    qfile = queries or _trec_queries_beside(path)
    name = path.parent.name if path.stem.startswith("qrels") else path.stem
    return _finish(RelevanceSet(name, "trec", path, read_queries(qfile), read_trec_qrels(path)))


def _finish(rset: RelevanceSet) -> RelevanceSet:
    """Drop queries with nothing relevant (as BEIR and trec_eval do); refuse an empty set."""
    known = {q.id for q in rset.queries}
    judged = rset.judged
    rset.unanswerable = [q for q in rset.queries if q not in judged]
    rset.skipped = [q.id for q in rset.unanswerable]
    if not judged:
        raise RelevanceError(
            f"{rset.path}: no query has a relevant document "
            f"({len(known)} queries, {len(rset.qrels)} judged)"
        )
    rset.queries = judged
    return rset


def detect_format(path: Path) -> str:
    """The format of a set from its layout (the `auto` of `--format`)."""
    if not path.exists():
        raise RelevanceError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "queries.jsonl").is_file() and (path / "qrels").is_dir():
            return "beir"
        if any((path / n).is_file() for n in ("qrels.txt", "qrels", "qrels.tsv")):
            return "trec"
        raise RelevanceError(
            f"{path}: not a relevance set (a BEIR folder has queries.jsonl and qrels/; "
            "a TREC folder has qrels.txt and queries.tsv)"
        )
    if path.suffix.lower() == ".tsv" and path.parent.name == "qrels":
        return "beir"
    if path.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    for _, line in _lines(path):
        return "jsonl" if line.lstrip().startswith("{") else "trec"
    raise RelevanceError(f"{path}: empty file")


def load_set(
    path: Path, fmt: str = "auto", queries: Path | None = None, with_corpus: bool = False
) -> RelevanceSet:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use {', '.join(FORMATS)}")
    kind = detect_format(path) if fmt == "auto" else fmt
    if kind == "beir":
        if path.is_file() and path.parent.name != "qrels":
            raise RelevanceError(f"{path}: a BEIR set is a folder (or its qrels/SPLIT.tsv)")
        return read_beir(path, with_corpus)
    if kind == "trec":
        return read_trec(path, queries)
    if path.is_dir():
        raise RelevanceError(f"{path}: a JSONL set is a file")
    return read_jsonl(path)
