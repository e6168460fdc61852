"""`ragcli daemon start|stop|status`: the data directory's warm daemon, which `ragcli ask`
starts and uses by itself (ragcli/daemon/)."""

from __future__ import annotations

from typing import Any

import typer

from ragcli.cli.common import JsonFlag, global_options, print_json, settings_from

daemon_app = typer.Typer(
    help="The data directory's warm daemon: `ask` starts and uses it by itself; these manage "
    "it. It exits after daemon_idle seconds (600, or 60 under CI) without a request.",
    no_args_is_help=True,
)


def _location(ctx: typer.Context) -> Any:
    from ragcli.daemon.location import Location

    settings = settings_from(ctx)
    return Location(settings.data_dir.resolve())


def _config(ctx: typer.Context) -> Any:
    """The config file this command reads, as an absolute path for the daemon to read."""
    from ragcli.core.config import find_config_file

    path = find_config_file(global_options(ctx).config)
    return path.resolve() if path is not None else None


@daemon_app.command()
def start(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Start the daemon (or say which one runs); it is replaced if it runs other code."""
    from ragcli.core.errors import NotReadyError, RagcliError
    from ragcli.daemon.client import Client, Unavailable
    from ragcli.daemon.location import fingerprint
    from ragcli.daemon.spawn import StartFailed
    from ragcli.daemon.spawn import start as start_daemon

    location = _location(ctx)
    if not (location.data_dir / "catalog.db").is_file():
        raise NotReadyError(f"nothing ingested in {location.data_dir}: run `ragcli ingest PATH`")
    try:
        stale = Client(location).status().get("fingerprint") != fingerprint()
    except Unavailable:
        stale = False
    try:
        started = start_daemon(location, _config(ctx), replace=stale)
        status = Client(location).status()
    except (StartFailed, Unavailable, OSError) as exc:
        raise RagcliError(f"cannot start the daemon: {exc}") from None
    status["started_now"] = started is not None
    if started is not None:
        status["start_ms"] = round(started.ms, 1)
    if as_json:
        print_json(status)
    elif started is not None:
        print(f"daemon started: pid {status['pid']} in {started.ms:.0f} ms, {status['socket']}")
    else:
        print(f"daemon already running: pid {status['pid']}, {status['socket']}")


@daemon_app.command()
def stop(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Stop the daemon (the requests in flight finish first)."""
    from ragcli.daemon.spawn import stop as stop_daemon

    pid = stop_daemon(_location(ctx))
    if as_json:
        print_json({"stopped": pid is not None, "pid": pid})
    else:
        print(f"daemon stopped: pid {pid}" if pid is not None else "no daemon was running")


@daemon_app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Whether the daemon runs, and its pid, version, uptime, requests, memory, idle time."""
    from ragcli.daemon.client import Client, Unavailable

    location = _location(ctx)
    try:
        data = Client(location).status()
    except Unavailable as exc:
        data = {"running": False, "socket": str(location.socket), "why": str(exc)}
    if as_json:
        print_json(data)
        return
    if not data["running"]:
        print(f"no daemon: {data['why']} ({data['socket']})")
        return
    print(
        f"daemon running: pid {data['pid']}, ragcli {data['version']}, up {data['uptime_s']} s, "
        f"{data['requests']} requests ({data['in_flight']} in flight), "
        f"{data['rss_mb']} MB, idle {data['idle_s']} of {data['idle_timeout_s']:.0f} s, "
        f"{data['socket']}"
    )
