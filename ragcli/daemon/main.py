"""`python -m ragcli.daemon.main --data-dir DIR [--config FILE] [--ready-fd N]`: the daemon
process, as `ragcli ask` and `ragcli daemon start` start it (ragcli.daemon.spawn)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ragcli-daemon")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--ready-fd", type=int)
    args = parser.parse_args(argv)
    from ragcli.daemon.location import fingerprint

    fingerprint()  # of the code as it is now, before the rest of it is imported
    from ragcli.core.failures import failure_line
    from ragcli.daemon.server import run_daemon

    try:
        run_daemon(args.data_dir.resolve(), args.config, args.ready_fd)
    except Exception as exc:  # one line in daemon.log; the starter reads it
        line, code = failure_line(exc)
        print(line.replace("ragcli: ", "ragcli daemon: ", 1), file=sys.stderr, flush=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
