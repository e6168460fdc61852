"""Build eval/sample_corpus/ (a BEIR-layout relevance set) from sample_corpus/ and
tests/fixtures/sample_questions.jsonl.

    python scripts/make_sample_eval.py [--out eval/sample_corpus] [--check]

* corpus.jsonl: every file `ragcli ingest sample_corpus` reads, `_id` = its path relative to
  sample_corpus/ (what the catalogue calls relpath), `title` = the title ragcli gives it,
  `text` = the file exactly as it is (front matter included), so `ragcli eval --ingest`
  writes byte-identical files and gets the same chunks and chunk ids as ingesting the folder.
* queries.jsonl: `_id` q01…q40 in the fixture's order, `text` = the question, and in
  `metadata` the partition of its answer file (for `--sweep partitions=on`) and the fact the
  answer must contain.
* qrels/test.tsv: query-id, corpus-id, score = 1 for each expected source.

`--check` exits 1 if the files on disk differ from what this script would write.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ragcli.core.records import FileRef  # noqa: E402
from ragcli.ingest.documents import Skipped, discover, load  # noqa: E402

CORPUS = REPO / "sample_corpus"
QUESTIONS = REPO / "tests" / "fixtures" / "sample_questions.jsonl"


def build() -> dict[str, str]:
    """File name (relative to the set's folder) → content."""
    docs = []
    for ref in discover([CORPUS]):
        if not isinstance(ref, FileRef):
            continue
        doc = load(ref)
        if isinstance(doc, Skipped):
            continue
        raw = ref.path.read_bytes().decode("utf-8")
        docs.append({"_id": ref.relpath, "title": doc.title, "text": raw})
    ids = {d["_id"] for d in docs}
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    lines = [json.loads(x) for x in QUESTIONS.read_text("utf-8").splitlines() if x.strip()]
    for n, q in enumerate(lines, 1):
        qid = f"q{n:02d}"
        for source in q["sources"]:
            if source not in ids:
                raise SystemExit(f"{QUESTIONS}:{n}: {source} is not a file of sample_corpus")
            qrels.append(f"{qid}\t{source}\t1")
        partition = q["sources"][0].split("/")[0]
        meta = {"partition": partition, "answer": q.get("answer", "")}
        queries.append({"_id": qid, "text": q["question"], "metadata": meta})

    def jsonl(rows: list[dict]) -> str:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    return {
        "corpus.jsonl": jsonl(docs),
        "queries.jsonl": jsonl(queries),
        "qrels/test.tsv": "\n".join(qrels) + "\n",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "sample_corpus")
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    files = build()
    stale = [
        name
        for name, text in files.items()
        if not (args.out / name).is_file() or (args.out / name).read_text("utf-8") != text
    ]
    if args.check:
        for name in stale:
            print(f"out of date: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    for name, text in files.items():
        (args.out / name).parent.mkdir(parents=True, exist_ok=True)
        (args.out / name).write_text(text, "utf-8")
    corpus = files["corpus.jsonl"].count("\n")
    queries = files["queries.jsonl"].count("\n")
    print(f"{args.out}: {corpus} documents, {queries} queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
