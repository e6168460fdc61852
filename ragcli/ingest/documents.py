"""Find files under the paths a user names, read them as text, and describe them.

Everything here is stdlib: discovery runs before any model is loaded.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from ragcli.core.errors import UsageError
from ragcli.core.records import Document, FileRef

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst", ".html", ".htm"}
DEFAULT_MAX_FILE_SIZE = 20 * 1024 * 1024
_SNIFF_BYTES = 8192
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_DEFAULT_PARTITION = "default"
_READ_ATTEMPTS = 3  # a file still changing after this many reads is skipped for this run
# A file modified less than this before it was read is "racy": a rewrite in the same
# timestamp tick would keep its mtime and size, so it is recorded with mtime 0 and the next
# run compares its hash (as git does for racily clean files).
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    keep: bool = False  # True: keep what the index already holds for this file


def _partition_for(path: Path, root: Path, flag: str | None) -> str:
    if flag:
        return flag
    rel = path.relative_to(root).parts
    if len(rel) > 1:
        return rel[0]
    return root.name or _DEFAULT_PARTITION


def discover(
    paths: list[Path], partition: str | None = None, follow_symlinks: bool = False
) -> Iterator[FileRef | Skipped]:
    """Yield each candidate file once, in a deterministic order, or a reason it was skipped.

    Hidden files and folders (dot-names) are ignored. Symlinks are not followed unless asked,
    which also keeps a walk from leaving the root or looping; when they are followed, each real
    folder is walked once, so a link loop ends where it closes (os.walk would go round it until
    the path got too long: ~40 levels per loop, and exponentially many paths with two).
    """
    seen: set[Path] = set()
    walked: set[tuple[int, int]] = set()  # (device, inode) of each folder walked
    for given in paths:
        if not given.exists():
            raise UsageError(f"no such file or directory: {given}")
        if given.is_file():
            resolved = given.resolve()
            if resolved not in seen:
                seen.add(resolved)
                yield FileRef(
                    resolved, resolved.parent, _partition_for(resolved, resolved.parent, partition)
                )
            continue
        root = given.resolve()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_symlinks):
            if follow_symlinks:
                try:
                    st = os.stat(dirpath)
                except OSError:
                    st = None
                if st is None or (st.st_dev, st.st_ino) in walked:
                    dirnames[:] = []
                    continue
                walked.add((st.st_dev, st.st_ino))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            current = Path(dirpath)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = current / name
                if path.is_symlink() and not follow_symlinks:
                    yield Skipped(str(path), "symlink (use --follow-symlinks)")
                    continue
                if path.suffix.lower() not in TEXT_SUFFIXES:
                    yield Skipped(str(path), f"unsupported file type {path.suffix or '(none)'}")
                    continue
                resolved = path.resolve() if follow_symlinks else path
                if resolved in seen:
                    continue
                seen.add(resolved)
                yield FileRef(path, root, _partition_for(path, root, partition))


class _TextFromHTML(HTMLParser):
    _SKIP = {"script", "style", "head"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        if tag == "title":
            self._in_title = True
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        if tag == "title":
            self._in_title = False
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)


def _decode(raw: bytes) -> str | None:
    """Decode UTF-8 (with or without BOM) or BOM-marked UTF-16; None if it is not text."""
    if raw.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        if b"\x00" in raw[:_SNIFF_BYTES]:
            return None
        encoding = "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return None


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields[key.strip().lower()] = value.strip().strip("\"'")
    return fields, text[match.end() :]


def _parse_date(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _first_heading(text: str) -> str:
    match = re.search(r"\S", text)  # no copy of a long text: look at its first line only
    if match is None:
        return ""
    line = text[match.start() : match.start() + 1000].splitlines()[0]
    return line.strip().lstrip("#").strip()[:200]


def _read_stable(path: Path, max_file_size: int) -> tuple[bytes, os.stat_result] | str:
    """The file's bytes and the stat they match, or why not. A file whose size or mtime moves
    while it is read (a rewrite under our feet) is read again, then given up on."""
    for _ in range(_READ_ATTEMPTS):
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            if before.st_size > max_file_size:
                return f"larger than --max-file-size ({max_file_size} bytes)"
            raw = f.read(max_file_size + 1)  # bounded even if the file grows meanwhile
            after = os.fstat(f.fileno())
        if len(raw) == before.st_size == after.st_size and before.st_mtime_ns == after.st_mtime_ns:
            return raw, after
    return "changed while being read (ingest it again once it is written)"


def load(ref: FileRef, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> Document | Skipped:
    """Read one file; return why not when it is not usable text."""
    started = time.time_ns()
    try:
        got = _read_stable(ref.path, max_file_size)
    except OSError as exc:
        return Skipped(ref.source, f"cannot read: {exc.strerror or exc}")
    if isinstance(got, str):
        return Skipped(ref.source, got, keep=got.startswith("changed"))
    raw, stat = got
    content_hash = hashlib.sha256(raw).hexdigest()
    text = _decode(raw)
    del raw  # a large file should not be held twice
    if text is None:
        return Skipped(ref.source, "binary or not UTF-8/UTF-16 text")
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    meta, body = _front_matter(text)
    title = meta.get("title", "")
    if ref.path.suffix.lower() in {".html", ".htm"}:
        parser = _TextFromHTML()
        parser.feed(body)
        body = re.sub(r"\n\s*\n+", "\n\n", "".join(parser.parts))
        title = title or parser.title.strip()
    if not body or body.isspace():
        return Skipped(ref.source, "empty")
    when = _parse_date(meta.get("date", "")) or dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
    racy = started - stat.st_mtime_ns < RACY_NS
    return Document(
        ref=ref,
        text=body,
        title=title or _first_heading(body) or ref.path.stem,
        date=when.date().isoformat(),
        date_ts=int(when.timestamp()),
        content_hash=content_hash,
        mtime_ns=0 if racy else stat.st_mtime_ns,
        size=stat.st_size,
    )
