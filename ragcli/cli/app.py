"""The `ragcli` command: the Typer app, its global options, the command groups (one module
each: ingest, index, ask, profile, eval, cache, serve, status, model) and `main()`, which turns
every failure into one line on stderr and a documented exit code.

Nothing heavy is imported here or by the command modules; each command imports the library
when it runs, so `ragcli --help` stays fast."""

from __future__ import annotations

import time

CLI_STARTED_NS = time.perf_counter_ns()  # profile's cold-run origin when /proc cannot say

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, NoReturn  # noqa: E402

import typer  # noqa: E402

from ragcli.cli import ask, cache, daemon, index, ingest, profile, prune, serve, status  # noqa: E402
from ragcli.cli import eval as eval_command  # noqa: E402
from ragcli.cli.common import GlobalOptions, set_quiet  # noqa: E402
from ragcli.cli.model import model_app  # noqa: E402
from ragcli.core.errors import EXIT_INTERRUPTED, EXIT_USAGE, RagcliError  # noqa: E402

app = typer.Typer(
    name="ragcli",
    help="Retrieval-augmented generation from the shell, built for time-to-first-token.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from ragcli.cli.version import version_lines

        print("\n".join(version_lines()))
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Data directory (default: $RAGCLI_HOME or ~/.local/share/ragcli)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: ./ragcli.toml).")
    ] = None,
    chroma_url: Annotated[
        str | None,
        typer.Option(
            "--chroma-url",
            help="Chroma server (`chroma run`) to hold the index, e.g. http://127.0.0.1:8000 "
            "(default: $RAGCLI_CHROMA_URL, else embedded in the data directory).",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            "--redis-url",
            help="Redis for the embedding, retrieval and answer caches, e.g. "
            "redis://127.0.0.1:6379/0 (default: $RAGCLI_REDIS_URL, else SQLite in the data "
            "directory).",
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="For scripts: no progress bars, notes or warnings on stderr (errors still "
            "print, in one line); stdout is unchanged.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the versions of ragcli, its embedding model, Chroma and Python.",
        ),
    ] = False,
) -> None:
    set_quiet(quiet)
    ctx.obj = GlobalOptions(data_dir, config, chroma_url, redis_url, quiet)


# The commands, in the order `ragcli --help` lists them.
app.command()(ingest.ingest)
app.command()(prune.prune)
app.command()(index.index)
app.command()(ask.ask)
app.command()(profile.profile)
app.command("eval")(eval_command.eval_)
app.add_typer(cache.cache_app, name="cache")
app.command()(serve.serve)
app.add_typer(daemon.daemon_app, name="daemon")
app.command()(status.status)
app.add_typer(model_app, name="model")


def main() -> None:
    """Console entry point: one line on stderr and a documented exit code for every failure."""
    try:
        rc = app(standalone_mode=False)
    except RagcliError as exc:
        print(f"ragcli: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _interrupted()
        sys.exit(EXIT_INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's usage errors: bad flags, missing arguments
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            print(f"ragcli: error: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except Exception as exc:
        if os.environ.get("RAGCLI_DEBUG"):
            raise
        _unexpected(exc)
    if rc == EXIT_INTERRUPTED:  # typer turns Ctrl-C into this return code, silently
        _interrupted()
    sys.exit(rc if isinstance(rc, int) else 0)


def _interrupted() -> None:
    print("ragcli: interrupted; run the same command again to resume", file=sys.stderr)


def _unexpected(exc: Exception) -> NoReturn:
    """Anything else, in one line (core.failures)."""
    from ragcli.core.failures import failure_line

    line, code = failure_line(exc)
    print(line, file=sys.stderr)
    sys.exit(code)


__all__ = ["app", "main"]
