"""The entry point's fast path: an `ask` the daemon can answer is sent to it before Typer,
rich, asyncio, numpy or the pipeline are imported, and its output is streamed as it comes.

`forward(argv)` returns the exit code when the daemon answered (or when it died mid-answer:
one line, exit 1), and None for everything the normal path must do: other commands, `--help`,
`--no-daemon` / RAGCLI_DAEMON=off / `daemon = "off"`, `--server`, a data directory with
nothing ingested, and any daemon that cannot answer (none can be started, its socket is not
private, it is stuck, it refuses the request) — then `ask` runs in-process, as without a
daemon, with one line on stderr under `-v` saying why.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ragcli import __version__
from ragcli.daemon.argv import AskArgs, parse_ask
from ragcli.daemon.client import Client, Lost, Refusal, Terminal, Unavailable
from ragcli.daemon.location import fingerprint, socket_path

if TYPE_CHECKING:
    from ragcli.daemon.spawn import Started

# Paths are strings here, and pathlib, tomllib and the starter (subprocess) are imported only
# when needed: every module costs a warm `ask` (~20 ms for Python itself) a few ms.

OFF, ON = "off", "on"  # Settings.daemon; anything else: the normal path's ConfigError
# What the code reads from the environment itself, outside Settings: a daemon started under
# other values would answer differently, so it answers only requests that agree with it.
PROCESS_ENV = (
    "RAGCLI_MODEL_DIR",
    "RAGCLI_EMBED_THREADS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
)
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


class Declined(Exception):
    """The normal path answers this one; the message says why (shown under -v)."""


def forward(argv: list[str]) -> int | None:
    """Answer `ragcli ARGV` through the daemon if it is an `ask` it can answer; else None."""
    args = parse_ask(argv)
    if args is None:
        return None
    verbose = "verbose" in args.flags
    try:
        location, body, config = _plan(args)
        return _through_daemon(location, body, config, verbose, "quiet" in args.flags)
    except Declined as why:
        if verbose:
            print(f"ragcli: daemon: {why}; answering in-process", file=sys.stderr, flush=True)
        return None
    except Lost as exc:
        print(
            f"ragcli: error: the ragcli daemon stopped mid-answer ({exc}); the next `ragcli ask` "
            "starts a new one",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ragcli: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly, as a filter does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR


def _plan(args: AskArgs) -> tuple[str, dict[str, Any], str | None]:
    """The data directory, what to send its daemon, the config file; Declined when this ask
    is not for the daemon."""
    if "no_daemon" in args.flags:
        raise Declined("off (--no-daemon)")
    if "server" in args.options:
        raise Declined("not used with --server")
    cwd = os.getcwd()
    env = os.environ
    config = _config_path(args.globals.get("config"), cwd)
    toml = _read_toml(config)
    mode = env.get("RAGCLI_DAEMON") or str(toml.get("daemon", ON))
    if mode == OFF:
        raise Declined(f"off ({'RAGCLI_DAEMON' if env.get('RAGCLI_DAEMON') else config})")
    if mode != ON:
        raise Declined(f"unknown daemon setting {mode!r}")
    if env.get("RAGCLI_SERVER") or toml.get("server"):
        raise Declined("not used with a server setting")
    data_dir = _data_dir(args, toml, cwd)
    if not os.path.isfile(os.path.join(data_dir, "catalog.db")):
        raise Declined(f"nothing ingested in {data_dir}")
    return data_dir, _body(args, cwd, config, data_dir), config


def _config_path(explicit: str | None, cwd: str) -> str | None:
    """The config file `load_settings` would read (see core.config.find_config_file)."""
    given = explicit or os.environ.get("RAGCLI_CONFIG")
    if given:
        path = os.path.join(cwd, os.path.expanduser(given))
        if not os.path.isfile(path):
            raise Declined("the config file is missing")  # the normal path says so
        return path
    local = os.path.join(cwd, "ragcli.toml")
    return local if os.path.isfile(local) else None


def _read_toml(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    import tomllib

    try:
        with open(path, encoding="utf-8") as f:
            data = tomllib.loads(f.read())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise Declined(f"cannot read {path}") from None  # the normal path says why
    return {key.replace("-", "_"): value for key, value in data.items()}


def _data_dir(args: AskArgs, toml: dict[str, Any], cwd: str) -> str:
    """The data directory, in the order Settings takes it: flag, RAGCLI_HOME, config file,
    then the per-user default."""
    raw = args.globals.get("data_dir") or os.environ.get("RAGCLI_HOME") or toml.get("data_dir")
    if not raw:
        home = os.path.expanduser("~")
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
        raw = os.path.join(base, "ragcli")
    return os.path.abspath(os.path.join(cwd, os.path.expanduser(str(raw))))


def _body(args: AskArgs, cwd: str, config: str | None, data_dir: str) -> dict[str, Any]:
    """The request: the command line, and what the settings are read from (the environment,
    the config file), so the daemon answers with exactly this process's settings."""
    overrides: dict[str, Any] = {"data_dir": data_dir}
    for name in ("chroma_url", "redis_url"):
        if name in args.globals:
            overrides[name] = args.globals[name]
    settings_flags = (
        "k", "no_cache", "retrieval", "llm", "prompt_layout", "max_context_tokens", "source_floor"
    )  # fmt: skip
    overrides.update({n: args.options[n] for n in settings_flags if n in args.options})
    batch = args.options.get("batch")
    env = os.environ
    return {
        "version": __version__,
        "fingerprint": fingerprint(),
        "cwd": cwd,
        "config": config,
        "env": {k: v for k, v in env.items() if k.startswith(("RAGCLI_", "OPENAI_")) or k == "CI"},
        "process_env": {name: env.get(name) for name in PROCESS_ENV},
        "overrides": overrides,
        "question": args.question,
        "batch": str(batch) if batch is not None else None,  # as typed: read from cwd
        "k": args.options.get("k"),
        "partitions": args.partitions,
        "since": args.options.get("since"),
        "source": args.options.get("source"),
        "json": "json" in args.flags,
    }


def _through_daemon(
    data_dir: str, body: dict[str, Any], config: str | None, verbose: bool, quiet: bool
) -> int:
    """Ask the running daemon; start it (or replace one of other code) when needed. Under
    `-q` its notes are not shown, as in-process; errors, and `-v`'s line, still are."""
    client, terminal = Client(socket_path(data_dir)), Terminal.of_this_process(quiet)
    started: Started | None = None

    def on_start(pid: int) -> None:
        if verbose:
            how = f"started in {started.ms:.0f} ms" if started else "warm"
            terminal.err(f"ragcli: daemon: answered by pid {pid} ({how})\n")

    for attempt in range(3):
        try:
            result = client.ask(body, terminal, on_start)
        except Unavailable as exc:
            if attempt == 2:
                raise Declined(str(exc)) from None
            started = _start(data_dir, config, replace=False)
            continue
        if not isinstance(result, Refusal):
            return result
        if result.reason != "version" or attempt == 2:
            raise Declined(result.message)
        started = _start(data_dir, config, replace=True)
    raise Declined("no daemon answered")


def _start(data_dir: str, config: str | None, replace: bool) -> Started | None:
    from pathlib import Path

    from ragcli.daemon.location import Location
    from ragcli.daemon.spawn import StartFailed, start

    try:
        return start(Location(Path(data_dir)), Path(config) if config else None, replace=replace)
    except StartFailed as exc:
        raise Declined(f"cannot start one: {exc}") from None
    except OSError as exc:
        raise Declined(f"cannot start one: {exc.strerror or exc}") from None
