"""What the command modules share: the global options, settings from them and a command's
flags, the option types used by several commands, console and JSON output, and running a
coroutine (the question file of `ask --batch` is ragcli.retrieval.questions).

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
    quiet: bool = False

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
        if self.quiet:
            out.append("--quiet")
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
_quiet = False  # `ragcli -q`: set once by the app's callback, before the command runs


def set_quiet(quiet: bool) -> None:
    """`-q/--quiet`: every console from `stderr()` prints nothing, `note()` neither."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether `-q/--quiet` was given: progress bars, notes and warnings are not shown."""
    return _quiet


def stderr() -> Console:
    """A rich console on stderr (notes, progress, warnings); silent under `-q`. Errors do not
    go through it: `main()` prints them with `print`, quiet or not."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, quiet=_quiet)


def note(line: str) -> None:
    """An informational line on stderr, unless `-q`."""
    import sys

    if not _quiet:
        print(line, file=sys.stderr, flush=True)


def lock_notice(message: str) -> None:
    """The writer lock's "waiting for another writer" notice, unless `-q`."""
    note(f"ragcli: {message}")


def stdout() -> Console:
    """A rich console on stdout (rendered reports): its tables are never cut, in a pipe or on
    a narrow terminal (ragcli.cli.output)."""
    from ragcli.cli.output import report_console

    return report_console()


def print_json(data: Any, flush: bool = False) -> None:
    """One JSON object on one line of stdout (the `--json` output)."""
    print(json.dumps(data), flush=flush)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end (asyncio is imported only by the commands that need it)."""
    import asyncio

    return asyncio.run(coro)
