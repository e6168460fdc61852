"""`ragcli profile --server URL`: time to first token as a client of a running `ragcli serve`
sees it, next to the server's own TTFT and stage spans for the same requests.

The difference between the two TTFTs is what the HTTP hop and this client add; the stage
spans say where the server's share went. No model, index or heavy import in this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragcli.profile.stats import summarize
from ragcli.retrieval.events import Query
from ragcli.serve.remote import ask_remote, base_url


def profile_remote(server: str, queries: Sequence[Query], runs: int, warmup: int) -> dict[str, Any]:
    """`warmup` excluded requests, then `runs` measured ones, cycling through `queries`."""
    results: list[dict[str, Any]] = []
    for n in range(warmup + max(runs, 1)):
        result = ask_remote(server, queries[n % len(queries)], lambda _text: None)
        if n >= warmup:
            results.append(result)
    client = [r["ttft_ms"] for r in results]
    on_server = [r["server"]["ttft_ms"] for r in results]
    hop = [c - s for c, s in zip(client, on_server, strict=True) if s is not None]
    stages: dict[str, list[float]] = {}
    for r in results:
        per_request: dict[str, float] = {}
        for span in r["server"]["spans"]:
            per_request[span["name"]] = per_request.get(span["name"], 0.0) + span["ms"]
        for name, ms in per_request.items():
            stages.setdefault(name, []).append(ms)
    return {
        "schema": "ragcli.profile-remote/1",
        "server": base_url(server),
        "questions": list(dict.fromkeys(q.question for q in queries)),
        "warmup_runs_excluded": warmup,
        "runs": len(results),
        "cached_runs": sum(1 for r in results if r["cached"]),
        "client_ttft_ms": summarize(client),
        "server_ttft_ms": summarize([s for s in on_server if s is not None]),
        "http_and_client_ms": summarize(hop),
        "server_stages_ms": {name: summarize(v) for name, v in stages.items()},
    }


def render(report: dict[str, Any]) -> str:
    """A plain table: p50/p95 of the client's TTFT, the server's, their difference, and the
    server's stages."""
    rows = [
        ("TTFT seen by this client", report["client_ttft_ms"]),
        ("  TTFT inside the server", report["server_ttft_ms"]),
        ("  HTTP hop + client", report["http_and_client_ms"]),
    ] + [(f"  server: {name}", s) for name, s in report["server_stages_ms"].items()]
    width = max(len(label) for label, _ in rows)
    lines = [
        f"ragcli profile --server {report['server']}: {report['runs']} runs "
        f"({report['cached_runs']} cached answers), {report['warmup_runs_excluded']} warm-up "
        "excluded",
        f"{'':{width}}  {'p50 ms':>9}  {'p95 ms':>9}",
    ]
    for label, s in rows:
        if s.get("n"):
            lines.append(f"{label:{width}}  {s['p50']:9.2f}  {s['p95']:9.2f}")
    return "\n".join(lines)
