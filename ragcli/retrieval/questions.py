"""The questions of one command: a single question, or a question file (`ask --batch`,
`profile --questions`): a question a line, or JSONL with per-question k, partition, since and
source; what a line leaves out comes from the command's flags."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragcli.core.errors import UsageError
from ragcli.retrieval.events import Query


@dataclass(frozen=True)
class QueryFlags:
    """The per-question flags of `ask` and `profile`: the defaults of every question."""

    k: int | None
    partitions: tuple[str, ...]
    since: str | None
    source: str | None

    def query(self, question: str) -> Query:
        return Query(question, self.k, self.partitions, self.since, self.source)


def queries_from(
    question: str | None, path: Path | None, flags: QueryFlags, cwd: Path | None = None
) -> list[Query]:
    """The questions of a command: those of the file at `path`, else `question` alone. A
    relative `path` is read from `cwd` (another process's: the daemon answering a client)."""
    if path is not None:
        return read_batch(path, flags, cwd)
    if question is None:  # the commands check that one of the two is given
        raise ValueError("no question")
    return [flags.query(question)]


def read_batch(path: Path, flags: QueryFlags, cwd: Path | None = None) -> list[Query]:
    """A question a line, or JSONL: {"question", and optional k, partition, since, source}.
    Messages name `path` as given."""
    try:
        lines = (path if cwd is None else cwd / path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:  # named as given, whichever directory it was read from
        shown = OSError(exc.errno, exc.strerror, str(path)) if exc.filename else exc
        raise UsageError(f"cannot read --batch file {path}: {shown}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read --batch file {path}: {exc}") from None
    queries = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("{"):
            queries.append(flags.query(line))
            continue
        try:
            queries.append(_json_query(json.loads(line), flags))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UsageError(
                f'{path}:{n}: expected a question or a JSON object with "question"'
            ) from None
    if not queries:
        raise UsageError(f"--batch file {path} holds no questions")
    return queries


def _json_query(obj: Any, flags: QueryFlags) -> Query:
    """One JSONL line of a question file; what it leaves out comes from `flags`."""
    parts = obj.get("partition") or obj.get("partitions") or flags.partitions
    return Query(
        str(obj["question"]),
        obj.get("k") or flags.k,
        tuple([parts] if isinstance(parts, str) else parts),
        obj.get("since") or flags.since,
        obj.get("source") or flags.source,
    )
