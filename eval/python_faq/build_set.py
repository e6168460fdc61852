"""Build the Python FAQ relevance set (BEIR layout) from the Python 3.11 documentation.

    python eval/python_faq/build_set.py [--deb FILE] [--out DIR]

Source: Debian's `python3.11-doc` package (bookworm), fetched with `apt-get download`
unless `--deb` names a copy; its `html/_sources/faq/*.rst.txt` are the reStructuredText
sources of the Python FAQ (PSF licence), checked against the sha256 below, so a newer
package revision works as long as the FAQ text is the same.

Each FAQ entry is a section whose heading is a question ("How do I ...?"). The heading
becomes a query and the section's body, *without* its heading, one document: the query is
the question the docs' authors wrote, the document the answer they wrote to it, and no
document contains its own question. One relevant document per query (grade 1); every other
answer counts as not relevant. Queries are named `PAGE-NNN`, documents `PAGE/NNN.txt`
(the folder is the page, which becomes the ragcli partition). Entries whose body is under
20 words are left out (a "Yes." alone, or a pointer to another entry).

Writes OUT/corpus.jsonl, OUT/queries.jsonl and OUT/qrels/test.tsv (default OUT: this
folder; git-ignored here). Then: `ragcli eval eval/python_faq --ingest`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "python3.11-doc"
FAQ_DIR = "usr/share/doc/python3.11/html/_sources/faq"
PAGES = {  # page -> sha256 of its .rst.txt (python3.11-doc 3.11.2-6+deb12u8)
    "general": "2e48b3bd8b4b4630f0973a8e712022c74dec582f6b54ec7d9ac18a083b1bb5fa",
    "programming": "7d60d4b4eec137f6762b92a073f027b1981f735d6c498d87809b9c01076fe720",
    "design": "80227bd4d6acf61382886b874af33d7d04350f935fb4806b2fad09a129d0ec38",
    "library": "4b4ffa484acec02ad5c258532c370923a3e005ddbe1f37316a09d1a85790e679",
    "extending": "4c6f67c28b1936c31edf0f7b053489269f2f0d0a802727196338fb007f8ce2e7",
    "windows": "fc614953032cd7f2e31ba19a63a8a012dcc034e56aa5b93fb866eb70c7e24d7d",
    "gui": "6ab47f21346cc83cb88b845c4d9f94f39d8e502d4eae073da4820a6f89b2a647",
    "installed": "c204a8fe1873944f79fdc052aed8e3b1c15c40fe9dfe377e65c072a9303c54a2",
}
MIN_WORDS = 20
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of every titled section, in order; the body runs to the next heading."""
    lines = text.splitlines()
    heads = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip()
        and _UNDERLINE.match(lines[i + 1])
        and len(lines[i + 1].rstrip()) >= len(lines[i].rstrip())
        and not _UNDERLINE.match(lines[i])
    ]
    out = []
    for n, i in enumerate(heads):
        end = heads[n + 1] if n + 1 < len(heads) else len(lines)
        body = [ln for ln in lines[i + 2 : end] if not re.match(r"^\.\. _[^:]+:\s*$", ln)]
        out.append((lines[i].strip(), "\n".join(body).strip() + "\n"))
    return out


def entries(sources: Path) -> list[tuple[str, str, str]]:
    """(page, question, answer) for every FAQ question whose answer has MIN_WORDS words."""
    found = []
    for page, digest in PAGES.items():
        data = (sources / f"{page}.rst.txt").read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise SystemExit(f"{page}.rst.txt: sha256 differs from the one this set was built on")
        for heading, body in sections(data.decode("utf-8")):
            if heading.endswith("?") and len(body.split()) >= MIN_WORDS:
                found.append((page, heading, body))
    return found


def extract(deb: Path | None, tmp: Path) -> Path:
    if deb is None:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=True)
        deb = next(tmp.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True)
    return tmp / "x" / FAQ_DIR


def write(found: list[tuple[str, str, str]], out: Path) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    counters: dict[str, int] = {}
    for page, question, answer in found:
        counters[page] = counters.get(page, 0) + 1
        qid, did = f"{page}-{counters[page]:03d}", f"{page}/{counters[page]:03d}.txt"
        corpus.append(json.dumps({"_id": did, "title": "", "text": answer}))
        queries.append(json.dumps({"_id": qid, "text": question}))
        qrels.append(f"{qid}\t{did}\t1")
    (out / "corpus.jsonl").write_text("\n".join(corpus) + "\n", "utf-8")
    (out / "queries.jsonl").write_text("\n".join(queries) + "\n", "utf-8")
    (out / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help=f"a downloaded {PACKAGE} .deb")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        found = entries(extract(args.deb, Path(tmp)))
    write(found, args.out)
    pages = {p: sum(1 for e in found if e[0] == p) for p in PAGES}
    print(
        f"{len(found)} questions -> {args.out} ({', '.join(f'{p} {n}' for p, n in pages.items())})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
