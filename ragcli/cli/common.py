"""What the command modules share: the global options, settings from them and a command's
flags, the option types used by several commands, console and JSON output, the question file
of `ask --batch` and `profile --questions`, and running a coroutine.

Only typer and the standard library are imported here; the library is imported inside the
functions, so that `ragcli --help` stays fast."""

from __future__ import annotations

import json
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ragcli.generators.registry import help_text as llm_help

if TYPE_CHECKING:
    from rich.console import Console

    from ragcli.core.config import Settings
    from ragcli.retrieval.events import Query

T = TypeVar("T")

# ------------------------------------------------------------------ options of several commands
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
WaitOpt = Annotated[
    float, typer.Option("--wait", help="Seconds to wait for another writer of the data directory.")
]
PartitionOpt = Annotated[
    list[str] | None,
    typer.Option("--partition", "-p", help="Search only this partition (repeatable)."),
]
KOpt = Annotated[int | None, typer.Option("--k", "-k", help="Chunks to retrieve [5].")]
NoCacheOpt = Annotated[
    str | None,
    typer.Option("--no-cache", help="Switch caches off: embedding,retrieval,answer or all."),
]
RetrievalOpt = Annotated[
    str | None,
    typer.Option(help="dense (vectors), lexical (FTS5 BM25) or hybrid (both, fused) [hybrid]."),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Only documents dated within this (30d, 12h, 2w) or since a date."),
]
LlmOpt = Annotated[
    str | None,
    typer.Option("--llm", help=llm_help()),
]
LayoutOpt = Annotated[
    str | None,
    typer.Option(
        "--prompt-layout",
        help="prefix (canonical source order, question last: prefix-cache friendly), "
        "ranked (best first) or auto [auto].",
    ),
]
ContextOpt = Annotated[
    int | None,
    typer.Option(
        "--max-context-tokens", help="Prompt token budget: fewer tokens, faster prefill [1500]."
    ),
]
SourceOpt = Annotated[
    str | None,
    typer.Option(help="Only documents whose path matches this glob (e.g. '*/runbooks/*')."),
]


# -------------------------------------------------------------------------- global options
@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command (`ragcli --data-dir D ask ...`)."""

    data_dir: Path | None = None
    config: Path | None = None
    chroma_url: str | None = None
    redis_url: str | None = None

    def argv(self) -> list[str]:
        """The same options as arguments of a fresh `ragcli` process."""
        out: list[str] = []
        for flag, value in (
            ("--data-dir", self.data_dir),
            ("--config", self.config),
            ("--chroma-url", self.chroma_url),
            ("--redis-url", self.redis_url),
        ):
            if value:
                out += [flag, str(value)]
        return out


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The global options the app's callback stored on the context."""
    obj = ctx.obj
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions()


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from the config file, the environment, the global options and `overrides`
    (a command's flags; None means not given)."""
    from ragcli.core.config import load_settings

    opts = global_options(ctx)
    given = {"data_dir": opts.data_dir, "chroma_url": opts.chroma_url, "redis_url": opts.redis_url}
    return load_settings({**given, **overrides}, opts.config)


# ---------------------------------------------------------------------------------- output
def stderr() -> Console:
    """A rich console on stderr (notes, progress, warnings)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout() -> Console:
    """A rich console on stdout (rendered reports)."""
    from rich.console import Console

    return Console(highlight=False)


def print_json(data: Any, flush: bool = False) -> None:
    """One JSON object on one line of stdout (the `--json` output)."""
    print(json.dumps(data), flush=flush)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end (asyncio is imported only by the commands that need it)."""
    import asyncio

    return asyncio.run(coro)


# ------------------------------------------------------------------------------- questions
@dataclass(frozen=True)
class QueryFlags:
    """The per-question flags of `ask` and `profile`: the defaults of every question."""

    k: int | None
    partitions: tuple[str, ...]
    since: str | None
    source: str | None

    def query(self, question: str) -> Query:
        from ragcli.retrieval.events import Query

        return Query(question, self.k, self.partitions, self.since, self.source)


def queries_from(question: str | None, path: Path | None, flags: QueryFlags) -> list[Query]:
    """The questions of a command: those of the file at `path`, else `question` alone."""
    if path is not None:
        return read_batch(path, flags)
    if question is None:  # the commands check that one of the two is given
        raise ValueError("no question")
    return [flags.query(question)]


def read_batch(path: Path, flags: QueryFlags) -> list[Query]:
    """A question a line, or JSONL: {"question", and optional k, partition, since, source}."""
    from ragcli.core.errors import UsageError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
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
    from ragcli.retrieval.events import Query

    parts = obj.get("partition") or obj.get("partitions") or flags.partitions
    return Query(
        str(obj["question"]),
        obj.get("k") or flags.k,
        tuple([parts] if isinstance(parts, str) else parts),
        obj.get("since") or flags.since,
        obj.get("source") or flags.source,
    )
