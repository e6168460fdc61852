"""The `ragcli` command's entry point.

An `ask` that the data directory's warm daemon can answer is forwarded to it with the
standard library only (ragcli.daemon.fastpath): no Typer, rich, asyncio, numpy or pipeline
import. Everything else — other commands, `--help`, an `ask` answered in-process — goes to
the Typer app (ragcli.cli.app), whose help is printed without rich (TYPER_USE_RICH=0, unless
set) so that `ragcli --help` imports only what it prints with."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if "ask" in sys.argv[1:]:  # nothing else is ever forwarded: --help pays nothing for it
        from ragcli.daemon.fastpath import forward

        code = forward(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    os.environ.setdefault("TYPER_USE_RICH", "0")
    from ragcli.cli.app import main as typer_main

    typer_main()


__all__ = ["main"]
