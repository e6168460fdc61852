"""Rebuild the Django documentation corpus for `eval/django_docs/questions.jsonl`.

    python eval/django_docs/build_corpus.py [--out eval/django_docs/corpus]

Downloads the Django 5.2.19 source distribution from PyPI with pip (the sdist carries the
documentation as reStructuredText `.txt` files under docs/), checks its sha256, and copies
every `.txt` page under docs/ except the release notes (docs/releases/), the Sphinx build's
requirements.txt and the theme's files (docs/_theme/) into OUT (git-ignored), keeping the
folder layout: `topics/cache.txt`, `ref/settings.txt`, … — the paths questions.jsonl names.
Django and its documentation are under the BSD-3-Clause licence (copyright the Django
Software Foundation and individual contributors); the pages are not committed here, only
this script. Then:

    ragcli --data-dir /tmp/django-eval ingest eval/django_docs/corpus
    ragcli --data-dir /tmp/django-eval eval eval/django_docs/questions.jsonl \\
        --sweep retrieval=dense,lexical,hybrid --sweep ef_search=16,64,128
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

VERSION = "5.2.19"
SDIST = f"django-{VERSION}.tar.gz"
SHA256 = "ad03d8abc51dbff95ebf34b27123cf0c26a3b62db7ba0cd520783686362533d1"
HERE = Path(__file__).resolve().parent


def download(dest: Path) -> Path:
    target = dest / SDIST
    if not target.is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"django=={VERSION}",
             "--dest", str(dest)],
            check=True,
        )  # fmt: skip
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{target}: sha256 {digest}, expected {SHA256}")
    return target


def wanted(name: str) -> str | None:
    """The page's path below docs/, or None for anything that is not a documentation page."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3 or parts[1] != "docs" or not name.endswith(".txt"):
        return None
    rel = "/".join(parts[2:])
    if rel.startswith(("releases/", "_")) or rel == "requirements.txt":
        return None
    return rel


def check_questions(corpus: Path) -> int:
    """Every source a question names exists, and its main source (grade 2) holds the
    question's `evidence` string: the questions still fit the pages. Returns problems found."""
    problems = 0
    for n, line in enumerate((HERE / "questions.jsonl").read_text("utf-8").splitlines(), 1):
        q = json.loads(line)
        for source, grade in q["sources"].items():
            page = corpus / source
            if not page.is_file():
                print(f"questions.jsonl:{n}: {source} is not in the corpus", file=sys.stderr)
                problems += 1
            elif grade == 2 and q["evidence"] not in page.read_text("utf-8"):
                print(f"questions.jsonl:{n}: {q['evidence']!r} not in {source}", file=sys.stderr)
                problems += 1
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "corpus")
    ap.add_argument("--download-dir", type=Path, default=None, help="keep the sdist here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sdist = download(args.download_dir or Path(tmp))
        args.out.mkdir(parents=True, exist_ok=True)
        count = size = 0
        keep: set[Path] = set()
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                rel = wanted(member.name) if member.isfile() else None
                if rel is None:
                    continue
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                path = args.out / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.is_file() or path.read_bytes() != data:
                    path.write_bytes(data)  # unchanged pages keep their mtime: re-ingest is free
                keep.add(path)
                count, size = count + 1, size + len(data)
        for stale in args.out.rglob("*.txt"):  # pages a previous run wrote that are not wanted
            if stale not in keep:
                stale.unlink()
    print(f"{args.out}: {count} pages, {size / 1e6:.1f} MB from Django {VERSION} ({SDIST})")
    return 1 if check_questions(args.out) else 0


if __name__ == "__main__":
    sys.exit(main())
