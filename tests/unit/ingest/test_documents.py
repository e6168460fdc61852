import codecs
from pathlib import Path

import pytest

from ragcli.core.errors import UsageError
from ragcli.core.records import Document, FileRef
from ragcli.ingest.documents import Skipped, discover, load


def _load_all(root: Path, **kw) -> tuple[list[Document], list[Skipped]]:
    docs, skipped = [], []
    for item in discover([root], **kw):
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        got = load(item)
        (skipped if isinstance(got, Skipped) else docs).append(got)
    return docs, skipped


def test_partitions_are_top_folders_and_dates_come_from_front_matter(corpus: Path) -> None:
    docs, skipped = _load_all(corpus)
    by_name = {d.ref.path.name: d for d in docs}
    assert set(by_name) == {"pager.md", "leave.md", "notes.txt"}
    assert by_name["pager.md"].ref.partition == "ops"
    assert by_name["leave.md"].ref.partition == "hr"
    assert by_name["pager.md"].date == "2026-03-14"
    assert by_name["pager.md"].title == "Rotating the pager"
    assert not by_name["pager.md"].text.startswith("---")  # front matter stripped
    assert by_name["pager.md"].ref.source == "corpus/ops/pager.md"
    assert by_name["notes.txt"].title == "Payroll runs on the 25th of every month."
    assert not skipped


def test_partition_flag_overrides_folders(corpus: Path) -> None:
    docs, _ = _load_all(corpus, partition="all")
    assert {d.ref.partition for d in docs} == {"all"}


def test_unreadable_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "bin.txt").write_bytes(b"abc\x00\x01\x02")
    (root / "empty.md").write_text("  \n\n")
    (root / "latin1.txt").write_bytes("café crème".encode("latin-1"))
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / "utf16.txt").write_bytes(codecs.BOM_UTF16_LE + "hello UTF-16 world".encode("utf-16-le"))
    (root / ".hidden.md").write_text("secret")
    docs, skipped = _load_all(root)
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["bin.txt"].startswith("binary")
    assert reasons["empty.md"] == "empty"
    assert reasons["latin1.txt"].startswith("binary or not UTF-8")
    assert reasons["image.png"].startswith("unsupported file type")
    assert [d.text for d in docs] == ["hello UTF-16 world"]
    assert ".hidden.md" not in reasons


def test_html_is_reduced_to_text(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Deploys</title><script>var x=1;</script></head>"
        "<body><h1>Deploys</h1><p>Run shipit to deploy.</p></body></html>"
    )
    doc = load(FileRef(page, tmp_path, "web"))
    assert isinstance(doc, Document)
    assert doc.title == "Deploys"
    assert "Run shipit to deploy." in doc.text
    assert "var x" not in doc.text


def test_size_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    got = load(FileRef(big, tmp_path, "p"), max_file_size=100)
    assert isinstance(got, Skipped) and "max-file-size" in got.reason


def test_symlinks_are_not_followed_by_default(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    outside = tmp_path / "outside.md"
    outside.write_text("outside the root")
    (root / "link.md").symlink_to(outside)
    (root / "loop").symlink_to(root)
    docs, skipped = _load_all(root)
    assert docs == []
    # the file link is reported; the looping folder link is never entered
    assert {Path(s.path).name for s in skipped} == {"link.md"}


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        list(discover([tmp_path / "nope"]))
