"""cli/common.py in-process: the global options handed to a fresh `ragcli` process."""

from __future__ import annotations

from pathlib import Path

import typer

from ragcli.cli.app import app
from ragcli.cli.common import GlobalOptions, global_options


def test_global_options_as_arguments_of_a_fresh_process() -> None:
    assert GlobalOptions().argv() == []
    opts = GlobalOptions(Path("/d"), Path("c.toml"), "http://127.0.0.1:8000", None)
    assert opts.argv() == [
        "--data-dir", "/d", "--config", "c.toml", "--chroma-url", "http://127.0.0.1:8000"
    ]  # fmt: skip
    opts = GlobalOptions(redis_url="redis://127.0.0.1:6379/0")
    assert opts.argv() == ["--redis-url", "redis://127.0.0.1:6379/0"]


def test_global_options_default_when_the_callback_did_not_run() -> None:
    ctx = typer.Context(typer.main.get_command(app))
    assert global_options(ctx) == GlobalOptions()
    ctx.obj = GlobalOptions(config=Path("x.toml"))
    assert global_options(ctx).config == Path("x.toml")
