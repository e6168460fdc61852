"""What every benchmark result file says about where it came from, and writing it.

Every script in benchmarks/ writes one JSON object to benchmarks/results/NAME.json through
`write_result`, which adds a `meta` block:

    {"schema": "ragcli.bench/1", "script": "benchmarks/retrieval.py",
     "command": "python benchmarks/retrieval.py --quick", "arguments": {...}, "quick": true,
     "commit": "c62eca0…", "dirty": false, "date": "2025-…Z", "cpu_model": "AMD EPYC",
     "cpus": 2, "memory_gib": 23.5, "load_average": {"start": 0.4, "end": 1.2},
     "python": "3.11.7", "platform": "Linux-…", "packages": {"chromadb": "1.5.9", …},
     "wall_s": 368.2}

`quick` marks a smoke run (`--quick`, `make bench-quick`): small sizes that check the script
works end to end. benchmarks/render.py labels tables made from such a file as smoke runs.
`dirty` is true when ragcli/, benchmarks/ (results aside), eval/ or tests/support/ had
uncommitted changes: the figures then come from code that `commit` does not hold.

Nothing here imports a heavy library: package versions come from installed metadata.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SCHEMA = "ragcli.bench/1"
STARTED = time.perf_counter()
PACKAGES = (
    "chromadb",
    "onnxruntime",
    "numpy",
    "openai",
    "httpx",
    "uvicorn",
    "redis",
    "llama_cpp_python",
)
CODE_PATHS = ("ragcli", "benchmarks", "eval", "tests/support", "pyproject.toml")


def result_path(name: str) -> str:
    """The default `--out` of a script: benchmarks/results/NAME.json."""
    return str(RESULTS / f"{name}.json")


def add_common(parser: argparse.ArgumentParser, name: str) -> None:
    """`--quick` and `--out`, the same in every script."""
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: small sizes, marked quick in the JSON"
    )
    parser.add_argument("--out", default=result_path(name), help="the result file")


def apply_quick(args: argparse.Namespace, parser: argparse.ArgumentParser, **small: Any) -> None:
    """With --quick, replace each named argument that still has its default by the small value
    (an argument given on the command line wins)."""
    if not args.quick:
        return
    for key, value in small.items():
        if getattr(args, key) == parser.get_default(key):
            setattr(args, key, value)


def _git(*argv: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *argv], cwd=REPO, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return round(kb / 2**20, 1)
    return None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 0


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


LOAD_AT_START = _load()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def metadata(args: argparse.Namespace | dict[str, Any] | None = None) -> dict[str, Any]:
    """Where a result came from: commit, date, machine, arguments."""
    arguments = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO)
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    dirty_lines = [x for x in dirty.splitlines() if "benchmarks/results/" not in x]
    packages = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            packages[name] = importlib_metadata.version(name)
    return {
        "schema": SCHEMA,
        "script": str(script),
        "command": " ".join(["python", str(script), *sys.argv[1:]]),
        "arguments": _jsonable({k: v for k, v in arguments.items() if k != "out"}),
        "quick": bool(arguments.get("quick", False)),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(dirty_lines),
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "cpu_model": _cpu_model(),
        "cpus": _cpus(),
        "memory_gib": _memory_gib(),
        "load_average": {"start": LOAD_AT_START, "end": _load()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "wall_s": round(time.perf_counter() - STARTED, 1),
    }


def write_result(
    out: str | Path, result: dict[str, Any], args: argparse.Namespace | dict[str, Any] | None
) -> Path:
    """Write `result` with its `meta` block first; returns the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"meta": metadata(args), **{k: v for k, v in result.items() if k != "meta"}}
    path.write_text(json.dumps(_jsonable(body), indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {_shown(path)}", flush=True)
    return path


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(REPO))
    return str(path)
