"""Render the benchmark figures in the docs from benchmarks/results/*.json.

    python benchmarks/render.py [--check] [--results DIR]

Between marker comments, in docs/benchmarks.md, README.md and docs/deployment.md:

    <!-- bench:retrieval:hnsw_vs_exact -->
    …a table, rewritten on every run…
    <!-- /bench -->

and inline, inside a sentence: `first for <!-- bench:quality:answers.top1 -->37<!-- /bench -->
of them`. Everything outside the markers is hand-written and left alone. A key names a
renderer below (`KEY: what it reads`); each block ends with the result file(s) it came from,
their commit, date and machine, and says "smoke run" when the file came from `--quick`
(inline figures get "(smoke run)" after them). A result file that is missing leaves its
blocks as they were and is reported; an unknown key is an error. `--check` changes nothing
and exits 1 when a file is not up to date with the results (for CI).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = ("docs/benchmarks.md", "README.md", "docs/deployment.md")
MARKER = re.compile(r"<!-- bench:(?P<key>[A-Za-z0-9_.:-]+) -->(?P<body>.*?)<!-- /bench -->", re.S)


class Missing(Exception):
    """A result file (or a part of it) that is not there."""


class Ctx:
    def __init__(self, results: Path, doc: Path) -> None:
        self.results, self.doc = results, doc
        self._cache: dict[str, dict[str, Any]] = {}
        self.used: list[str] = []

    def load(self, name: str) -> dict[str, Any]:
        if name not in self._cache:
            path = self.results / f"{name}.json"
            if not path.is_file():
                raise Missing(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
            self._cache[name] = json.loads(path.read_text("utf-8"))
        if name not in self.used:
            self.used.append(name)
        return self._cache[name]

    def link(self, name: str) -> str:
        target = self.results / f"{name}.json"
        rel = os.path.relpath(target, self.doc.parent)
        return f"[`{name}.json`]({rel})"

    def quick(self, *names: str) -> bool:
        return any(self.load(n).get("meta", {}).get("quick") for n in names)


# -- formatting ---------------------------------------------------------------------------
def ms(v: float | None, unit: str = "") -> str:
    """Milliseconds at a precision that suits their size."""
    if v is None:
        return "–"
    if v >= 100:
        text = f"{v:,.0f}"
    elif v >= 10:
        text = f"{v:.1f}"
    elif v >= 1:
        text = f"{v:.2f}"
    else:
        text = f"{v:.3f}"
    return text + unit


def times(v: float) -> str:
    return f"{v:,.0f}×" if v >= 100 else (f"{v:.1f}×" if v < 10 else f"{v:.0f}×")


def span(values: Sequence[float], spec: str, unit: str) -> str:
    """ "1–3 ms", or "2 ms" when every value prints the same."""
    lo, hi = format(min(values), spec), format(max(values), spec)
    return f"{lo}{unit}" if lo == hi else f"{lo}–{hi}{unit}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else ("es" if word.endswith("s") else "s"))


def pct(v: float | None) -> str:
    return "" if v is None else f"{v * 100:+,.0f} %".replace("-", "−")


def table(
    head: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1, left_last: bool = False
) -> str:
    """A markdown table: the first `left` columns (and the last, with left_last) left-aligned,
    the others right-aligned."""
    align = ["---"] * left + ["---:"] * (len(head) - left)
    if left_last:
        align[-1] = "---"
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def provenance(ctx: Ctx, *names: str) -> str:
    """One line: where the figures above came from."""
    parts = []
    for name in names:
        m = ctx.load(name).get("meta", {})
        commit = (m.get("commit") or "?")[:7] + ("+dirty" if m.get("dirty") else "")
        load = m.get("load_average") or {}
        parts.append(
            f"{ctx.link(name)}: `{m.get('command', '?')}`, commit `{commit}`, "
            f"{(m.get('date') or '?')[:10]}, "
            f"{m.get('cpu_model', '?')} ({m.get('cpus', '?')} CPUs), "
            f"load {load.get('start', '?')}→{load.get('end', '?')}, {m.get('wall_s', '?')} s"
        )
    smoke = (
        "**Smoke run (`--quick`): small sizes, not a measurement.** " if ctx.quick(*names) else ""
    )
    return f"<sub>{smoke}From {'; '.join(parts)}.</sub>"


def inline(ctx: Ctx, name: str, text: str) -> str:
    return text + (" (smoke run)" if ctx.quick(name) else "")


RENDERERS: dict[str, Callable[[Ctx], str]] = {}


def renders(key: str) -> Callable[[Callable[[Ctx], str]], Callable[[Ctx], str]]:
    def register(fn: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
        RENDERERS[key] = fn
        return fn

    return register


# -- the index of result files ------------------------------------------------------------
@renders("runs")
def _runs(ctx: Ctx) -> str:
    rows = []
    for path in sorted(ctx.results.glob("*.json")):
        m = ctx.load(path.stem).get("meta", {})
        load = m.get("load_average") or {}
        rows.append(
            [
                ctx.link(path.stem),
                f"`{m.get('command', '?')}`",
                "**smoke run**" if m.get("quick") else "full",
                f"`{(m.get('commit') or '?')[:7]}`" + (" (dirty)" if m.get("dirty") else ""),
                (m.get("date") or "?")[:10],
                f"{m.get('cpu_model', '?')}, {m.get('cpus', '?')} CPUs",
                f"{load.get('start', '?')}→{load.get('end', '?')}",
                f"{m.get('wall_s', 0):,.0f} s",
            ]
        )
    if not rows:
        raise Missing(f"{ctx.results}/*.json")
    return table(
        ["result", "command", "mode", "commit", "date", "CPU", "load (1 min)", "wall"], rows, 7
    )


# -- end to end ---------------------------------------------------------------------------
@renders("ingest_and_ask:commands")
def _iaa_commands(ctx: Ctx) -> str:
    r = ctx.load("ingest_and_ask")
    c = r["corpus"]

    def row(name: str, s: dict[str, float]) -> list[str]:
        return [name, ms(s["p50"] * 1000, " ms"), ms(s["p95"] * 1000, " ms"), s["n"]]

    e = r["local_embedder"]
    body = table(
        ["measure (wall clock of the whole command)", "p50", "p95", "n"],
        [
            row("`ragcli --help`", r["help_s"]),
            row(
                "`ragcli ask`, fresh process, no cache (`--no-cache all`)",
                r["ask_fresh_process_uncached_s"],
            ),
            row("`ragcli ask`, fresh process, answer cached", r["ask_fresh_process_cached_s"]),
            [
                f"`ragcli ingest`, first ({r['ingest_first_embedded']} chunks embedded)",
                ms(r["ingest_first_s"] * 1000, " ms"),
                "",
                1,
            ],
            [
                f"`ragcli ingest`, re-run, unchanged ({r['ingest_rerun_embedded']} embedded)",
                ms(r["ingest_rerun_s"] * 1000, " ms"),
                "",
                1,
            ],
        ],
    )
    return (
        f"Corpus: {c['documents']} documents, {c['chunks']} chunks.\n\n{body}\n\n"
        f"The local embedder alone (in process, model loaded and warm; the embedding phase of an "
        f"ingest, without reading files, catalogue, Chroma or FTS writes): "
        f"**{e['chunks_per_s']:.0f} chunks/s** over the {e['chunks']} chunks (p50 of "
        f"{plural(e['rounds'], 'round')}); loading the model took {e['load_s']:.2f} s.\n\n"
        + provenance(ctx, "ingest_and_ask")
    )


@renders("ingest_and_ask:profile")
def _iaa_profile(ctx: Ctx) -> str:
    r = ctx.load("ingest_and_ask")
    ft, hot = r["profile_first_time_path"], r["profile_all_caches"]
    stages = [
        ("warm TTFT", "ttft"),
        ("ragcli before the LLM (pre_llm)", "pre_llm"),
        ("embed", "embed"),
        ("retrieve", "retrieve"),
        ("prompt", "prompt"),
        ("llm.first_token (extractive)", "llm.first_token"),
    ]

    def cell(data: dict, key: str, stat: str) -> str:
        s = data["warm"]["stats"].get(key) or {}
        return ms(s.get(stat)) if s.get("n") else "–"

    rows = [
        [
            "cold TTFT from process start",
            ms(ft["cold"]["ttft_ms"]),
            "",
            ms(hot["cold"]["ttft_ms"]),
            "",
        ]
    ]
    rows += [
        [
            name,
            cell(ft, key, "p50"),
            cell(ft, key, "p95"),
            cell(hot, key, "p50"),
            cell(hot, key, "p95"),
        ]
        for name, key in stages
    ]
    n = ft["warm"]["runs"]
    return (
        table(["stage (ms)", "first-time path p50", "p95", "all caches on p50", "p95"], rows)
        + f"\n\nWarm: {n} runs in one process after 1 excluded warm-up; a stage that a cache "
        "hit skipped counts as 0.\n\n" + provenance(ctx, "ingest_and_ask")
    )


@renders("ingest_and_ask:cold_spans")
def _iaa_cold(ctx: Ctx) -> str:
    r = ctx.load("ingest_and_ask")
    spans = r["profile_first_time_path"]["cold"]["spans"]
    rows = [[f"`{s['name']}`", ms(s["start_ms"]), ms(s["ms"])] for s in spans]
    return (
        table(["span (cold, first-time path)", "starts at ms", "ms"], rows)
        + "\n\n"
        + provenance(ctx, "ingest_and_ask")
    )


@renders("ingest_and_ask:ask_cached_p50_s")
def _iaa_cached(ctx: Ctx) -> str:
    s = ctx.load("ingest_and_ask")["ask_fresh_process_cached_s"]["p50"]
    return inline(ctx, "ingest_and_ask", f"{s:.2f} s")


# -- embedding throughput -----------------------------------------------------------------
def _throughput(ctx: Ctx, name: str) -> str:
    r = ctx.load(name)
    a = r["meta"]["arguments"]
    naive = next(iter(r["rows"].values()))
    rows = []
    for label, row in r["rows"].items():
        wall = row.get("wall_s_extrapolated", row["wall_s"])
        capped = row["capped"]
        requests = (
            f"~{round(row['batches_committed'] * r['n'] / max(1, row['chunks_done'])):,}"
            if capped
            else f"{row['requests']:,}"
        )
        rows.append(
            [
                label + (" \\*" if capped else ""),
                f"{wall:,.2f} s" if wall < 100 else f"{wall:,.0f} s",
                f"{wall * 1000 / r['n']:.2f}",
                requests,
                row["throttled_429"],
                row["retries"],
                "–" if row["chunks_lost"] is None else row["chunks_lost"],
                times(row["speedup_vs_naive"]),
            ]
        )
    head = f"{r['n']:,} chunks, {r['tokens']:,} tokens; server: "
    head += f"{a['latency'] * 1000:.0f} ms per request + {a['per_token_us']:g} µs per input "
    head += f"token, HTTP 429 above {a['max_in_flight']} in flight"
    head += f" (Retry-After {a['retry_after']:g} s); batches of at most {a['batch_size']}.\n\n"
    foot = ""
    if naive["capped"]:
        foot = (
            f"\n\n\\* Stopped after {naive['wall_s']:.0f} s ({naive['chunks_done']:,} chunks) and "
            f"extrapolated to {r['n']:,}: the start-up plus the steady pace of "
            f"{naive['s_per_chunk_steady'] * 1000:.0f} ms per chunk. Not run to the end, so "
            "nothing to count as lost."
        )
    body = table(
        [
            "way (embedding phase only)",
            "wall",
            "ms per chunk",
            "requests",
            "429s",
            "retries",
            "lost",
            "speed-up",
        ],
        rows,
    )
    return head + body + foot + "\n\n" + provenance(ctx, name)


for _name in (
    "embedding_throughput",
    "embedding_throughput_no_token_cost",
    "embedding_throughput_batch32",
):
    RENDERERS[_name] = lambda ctx, n=_name: _throughput(ctx, n)


def _mode(ctx: Ctx, name: str, mode: str) -> dict[str, Any]:
    for row in ctx.load(name)["rows"].values():
        if row.get("mode") == mode:
            return row
    raise Missing(f"{name}: no {mode} row")


def _gain(ctx: Ctx, name: str) -> str:
    seq, conc = _mode(ctx, name, "sequential"), _mode(ctx, name, "concurrent")
    return inline(ctx, name, times(seq["wall_s"] / conc["wall_s"]))


for _name in (
    "embedding_throughput",
    "embedding_throughput_no_token_cost",
    "embedding_throughput_batch32",
):
    RENDERERS[f"{_name}:concurrency_gain"] = lambda ctx, n=_name: _gain(ctx, n)


# -- profile against an OpenAI-compatible server ------------------------------------------
NOTES = {
    "no concurrency": "†",
    "no connection reuse": "‡",
}


@renders("profile_vs_server:ablation")
def _ablation(ctx: Ctx) -> str:
    r = ctx.load("profile_vs_server")
    a = r["meta"]["arguments"]
    rows = []
    for row in r["ablation"]["ablation"]:
        name = row["variant"]
        sub = row["baseline"] != "all optimisations"
        t = row["ttft"]
        rows.append(
            [
                ("· " if sub else "") + name + (f" {NOTES[name]}" if name in NOTES else ""),
                ms(t["p50"]),
                ms(t["p95"]),
                pct(row.get("ttft_p50_change")) if row["variant"] != row["baseline"] else "",
                pct(row.get("ttft_p95_change")) if row["variant"] != row["baseline"] else "",
                ms(row["round_ms"]["p50"]),
                "" if row["variant"] == row["baseline"] else row["baseline"],
            ]
        )
    q = a["questions"]
    return (
        table(
            [
                "variant",
                "TTFT p50 ms",
                "TTFT p95 ms",
                "Δp50",
                "Δp95",
                "whole set answered, ms",
                "compared with",
            ],
            rows,
            left_last=True,
        )
        + f"\n\n{plural(a['rounds'], 'round')} of the {q}-question set per variant after 1 "
        "excluded warm-up round; in a round the set is submitted at once and answered 8 at a "
        "time, and each TTFT counts from the submission. Server: TTFT "
        f"{a['ttft'] * 1000:.0f} ms, {a['gap'] * 1000:.0f} ms between tokens.\n\n"
        f"† *Measures queueing, not a slower question*: the {q} questions are answered one after "
        "another, so each waits for the whole answers before it; a single question's TTFT does "
        "not change (see the sweep's concurrency-1 row). Read it as the time to get through "
        "a set.\n\n"
        "‡ *Measures building a client more than connecting*: a new `openai` client (and HTTP "
        "connection) per request, on loopback without TLS, where a TCP connect costs well under "
        "a millisecond; most of the difference is constructing the client. Over a real network "
        "with TLS a new connection also pays the handshakes' round trips, which this does not "
        "measure.\n\n" + provenance(ctx, "profile_vs_server")
    )


@renders("profile_vs_server:concurrency")
def _pvs_sweep(ctx: Ctx) -> str:
    r = ctx.load("profile_vs_server")
    rows = [
        [
            x["concurrency"],
            x["requests"],
            f"{x['requests_per_s']:.1f}",
            ms(x["ttft"]["p50"]),
            ms(x["ttft"]["p99"]),
            ms(x["e2e"]["p50"]),
        ]
        for x in r["sweep"]["concurrency"]
    ]
    s = r["sweep"]["warm"]["stats"]
    return (
        table(
            ["in flight", "requests", "req/s", "TTFT p50 ms", "TTFT p99 ms", "e2e p50 ms"], rows, 0
        )
        + f"\n\nWarm single requests: TTFT p50 {ms(s['ttft']['p50'])} ms = the server's "
        f"{ms(s['llm.first_token']['p50'])} ms to first token + ragcli's "
        f"{ms(s['pre_llm']['p50'])} ms before the request.\n\n"
        + provenance(ctx, "profile_vs_server")
    )


# -- serve vs cold ------------------------------------------------------------------------
@renders("serve_vs_cold:first_byte")
def _svc(ctx: Ctx) -> str:
    r = ctx.load("serve_vs_cold")
    rows = []
    for name, key in (
        (
            "`ragcli ask` (cold process, daemon off: imports, model, Chroma)",
            "ask_cold_first_byte_ms",
        ),
        ("`ragcli ask --server URL` (a warm `ragcli serve`)", "ask_server_first_byte_ms"),
        ("`ragcli ask` (answered by its warm daemon, the default)", "ask_daemon_first_byte_ms"),
        ("`GET /healthz` over a kept-alive connection", "healthz_ms"),
        ("`POST /v1/retrieve` over a kept-alive connection", "retrieve_http_ms"),
        ("`Pipeline.retrieve` in process (the same work, no HTTP)", "retrieve_in_process_ms"),
    ):
        if key in r:  # the daemon row: results since the daemon's measurement was added
            s = r[key]
            rows.append([name, ms(s["p50"], " ms"), ms(s["p95"], " ms"), s["n"]])
    return table(["measure", "p50", "p95", "n"], rows) + "\n\n" + provenance(ctx, "serve_vs_cold")


@renders("serve_vs_cold:profile_server")
def _svc_remote(ctx: Ctx) -> str:
    r = ctx.load("serve_vs_cold")["profile_server"]
    rows = []
    for name, key in (
        ("TTFT seen by the client (request sent → first content byte)", "client_ttft_ms"),
        ("TTFT inside the server (question received → first token)", "server_ttft_ms"),
        ("HTTP hop + client (the difference, request by request)", "http_and_client_ms"),
    ):
        rows.append([name, ms(r[key]["p50"], " ms"), ms(r[key]["p95"], " ms")])
    return (
        table([f"measure ({r['runs']} requests)", "p50", "p95"], rows)
        + "\n\n"
        + provenance(ctx, "serve_vs_cold")
    )


@renders("serve_vs_cold:cold_p50")
def _svc_cold(ctx: Ctx) -> str:
    v = ctx.load("serve_vs_cold")["ask_cold_first_byte_ms"]["p50"]
    return inline(ctx, "serve_vs_cold", ms(v, " ms"))


@renders("serve_vs_cold:server_p50")
def _svc_server(ctx: Ctx) -> str:
    v = ctx.load("serve_vs_cold")["ask_server_first_byte_ms"]["p50"]
    return inline(ctx, "serve_vs_cold", ms(v, " ms"))


@renders("serve_vs_cold:daemon_p50")
def _svc_daemon(ctx: Ctx) -> str:
    v = ctx.load("serve_vs_cold")["ask_daemon_first_byte_ms"]["p50"]
    return inline(ctx, "serve_vs_cold", ms(v, " ms"))


@renders("serve_vs_cold:httpx_import_ms")
def _svc_httpx(ctx: Ctx) -> str:
    v = ctx.load("serve_vs_cold")["httpx_import_ms"]["import_ms"]
    return inline(ctx, "serve_vs_cold", ms(v, " ms"))


@renders("runs:total")
def _runs_total(ctx: Ctx) -> str:
    paths = sorted(ctx.results.glob("*.json"))
    if not paths:
        raise Missing(f"{ctx.results}/*.json")
    walls = [ctx.load(p.stem).get("meta", {}).get("wall_s") or 0 for p in paths]
    quick = any(ctx.load(p.stem).get("meta", {}).get("quick") for p in paths)
    m, s = divmod(round(sum(walls)), 60)
    return f"{m} min {s:02d} s" + (" (smoke runs)" if quick else "")


@renders("serve_vs_cold:speedup")
def _svc_speedup(ctx: Ctx) -> str:
    r = ctx.load("serve_vs_cold")
    v = r["ask_cold_first_byte_ms"]["p50"] / r["ask_server_first_byte_ms"]["p50"]
    return inline(ctx, "serve_vs_cold", times(v))


# -- retrieval at 100k --------------------------------------------------------------------
@renders("retrieval:setup")
def _ret_setup(ctx: Ctx) -> str:
    r = ctx.load("retrieval")
    t, disk = r["timings_s"], r["disk_mib"]
    b = r["b"]["partition_sizes"]
    load = [v for _, v in r["load_average_1m"]]
    h = r["hnsw"]
    return (
        f"{r['n']:,} synthetic chunks ({r['dims']}-d, {r['clusters']:,} clusters, "
        f"{len(b)} partitions of {min(b):,}–{max(b):,}); HNSW M={h['m']}, "
        f"ef_construction={h['ef_construction']}, ef_search={h['ef_search']}. Building the "
        f"data directory's index ({r['index_collections']} collections: global + one per "
        f"partition) took {t['index']:.0f} s, part b's own partition collections "
        f"{t['partition_collections']:.0f} s; whole run {t['total']:.0f} s. Disk: index "
        f"{disk['data_dir_index']:.0f} MiB, catalogue {disk['catalogue']:.0f} MiB. 1-minute load "
        f"average during the run {min(load):.1f}–{max(load):.1f}.\n\n"
        + _space(r.get("corpus_stats"))
        + provenance(ctx, "retrieval")
    )


def _space(st: dict[str, Any] | None) -> str:
    if not st:
        return ""
    o, s, q = st["cosine_different_clusters"], st["cosine_same_cluster"], st["cosine_query_top10"]
    c = st["cluster_size"]
    return (
        f"The space (random pairs): chunks of different clusters meet at cosine {o['mean']:.2f} "
        f"(5–95 %: {o['p5']:.2f} to {o['p95']:.2f}), chunks of one cluster at {s['mean']:.2f} "
        f"({s['p5']:.2f} to {s['p95']:.2f}); a query's 10 nearest chunks at {q['mean']:.2f} "
        f"({q['p5']:.2f} to {q['p95']:.2f}). Cluster sizes {c['min']}–{c['max']} chunks (median "
        f"{c['median']:.0f}); {st['documents']:,} documents.\n\n"
    )


@renders("retrieval:hnsw_vs_exact")
def _ret_a(ctx: Ctx) -> str:
    r = ctx.load("retrieval")
    a = r["a"]
    exact = a["rows"]["exact (numpy)"]["p50"]
    rows = [
        [
            "exact (numpy: matrix product + argpartition)" if k == "exact (numpy)" else k,
            ms(x["p50"]),
            ms(x["p95"]),
            f"{x['recall']:.3f}",
            times(exact / x["p50"]),
        ]
        for k, x in a["rows"].items()
    ]
    m = a["modify_only"]
    return (
        f"Whole corpus ({r['n']:,} chunks), top-{r['k']}, {a['queries']} queries per row after "
        f"{a['warmup']} warm-up:\n\n"
        + table(["search", "p50 ms", "p95 ms", f"recall@{r['k']}", "speed-up vs exact (p50)"], rows)
        + f"\n\nSetting ef_search={m['modified_to']} on a client that had loaded the index at "
        f"{m['loaded_with']}, without reopening it: recall {m['recall']:.3f}.\n\n"
        + provenance(ctx, "retrieval")
    )


@renders("retrieval:partitions")
def _ret_b(ctx: Ctx) -> str:
    r = ctx.load("retrieval")
    out = []
    for title, rows in r["b"]["groups"].items():
        out.append(
            table(
                [title, "p50 ms", "p95 ms", f"recall@{r['k']}", "vectors indexed", "eligible"],
                [
                    [
                        k,
                        ms(x["p50"]),
                        ms(x["p95"]),
                        f"{x['recall']:.3f}",
                        f"{x['vectors_indexed']:,} ({x['share_indexed']:.0%})",
                        f"{x['vectors_eligible']:,} ({x['share_eligible']:.0%})",
                    ]
                    for k, x in rows.items()
                ],
            )
        )
    return "\n\n".join(out) + "\n\n" + provenance(ctx, "retrieval")


@renders("retrieval:batching")
def _ret_c(ctx: Ctx) -> str:
    r = ctx.load("retrieval")
    c = r["c"]
    rows = [
        [
            k,
            ms(x["single"]["p50"]),
            ms(x["single"]["p95"]),
            ms(x["batched_per_query"]["p50"]),
            ms(x["batched_per_query"]["p95"]),
            times(x["speedup_p50"]),
        ]
        for k, x in c["rows"].items()
    ]
    return (
        f"{c['batches']} batches, {c['batches'] * c['batch']:,} queries each way, ms per query:\n\n"
        + table(
            [
                "search",
                "single p50",
                "single p95",
                f"batched ({c['batch']}) p50",
                "batched p95",
                "speed-up",
            ],
            rows,
        )
        + "\n\n"
        + provenance(ctx, "retrieval")
    )


@renders("retrieval:pipeline")
def _ret_d(ctx: Ctx) -> str:
    r = ctx.load("retrieval")
    d = r["d"]
    stages = ["embed", "retrieve", "answer_cache", "prompt", "llm.first_token"]
    rows = [
        [title, ms(x["pre_llm"]["p50"]), ms(x["pre_llm"]["p95"]), ms(x["from_call"]["p50"])]
        + [ms(x["stages"][s]["p50"]) if s in x["stages"] else "–" for s in stages]
        for title, x in d["configs"].items()
    ]
    return (
        f"{r['runs']} runs per row after {d['warmup']} warm-up; dense retrieval; question "
        f'"{d["question"]}"; partition scoping: {d["partition_scoping"]}; ms:\n\n'
        + table(
            ["path", "question → LLM request p50", "p95", "from the caller p50"]
            + [f"{s} p50" for s in stages],
            rows,
        )
        + "\n\n"
        + provenance(ctx, "retrieval")
    )


@renders("retrieval:profile")
def _ret_e(ctx: Ctx) -> str:
    r = ctx.load("retrieval")
    e = r["e"]
    rows = [
        [
            f"`{' '.join(x['flags'])}`" if x["flags"] else "(none: all caches warm)",
            ms(x["pre_llm"]["p50"]),
            ms(x["pre_llm"]["p95"]),
            ms(x["retrieve"]["p50"]),
            ms(x["ttft"]["p50"]),
            f"{x['cached_runs']}/{x['ttft']['n']}",
        ]
        for x in e["rows"].values()
    ]
    return (
        f'`ragcli --data-dir DIR profile "{e["question"]}" --runs {e["runs"]} --json [flags]`, '
        "ms over the warm runs:\n\n"
        + table(
            [
                "flags",
                "question → LLM request p50",
                "p95",
                "retrieve p50",
                "TTFT p50",
                "answer-cache hits",
            ],
            rows,
        )
        + "\n\n"
        + provenance(ctx, "retrieval")
    )


def _ret_group(ctx: Ctx, index: int, row: str) -> dict[str, Any]:
    groups = list(ctx.load("retrieval")["b"]["groups"].values())
    return groups[index][row]


@renders("retrieval:own_collection_p50")
def _ret_own(ctx: Ctx) -> str:
    v = _ret_group(ctx, 0, "partition's own collection")["p50"]
    return inline(ctx, "retrieval", ms(v, " ms"))


@renders("retrieval:where_filter_p50")
def _ret_where(ctx: Ctx) -> str:
    v = _ret_group(ctx, 0, "whole collection + where filter")["p50"]
    return inline(ctx, "retrieval", ms(v, " ms"))


@renders("retrieval:n")
def _ret_n(ctx: Ctx) -> str:
    n = ctx.load("retrieval")["n"]
    return inline(ctx, "retrieval", f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}")


# -- retrieval quality ----------------------------------------------------------------------
def _is_default(config: dict[str, Any]) -> bool:
    return (
        config.get("retrieval") == "hybrid"
        and config.get("search") == "hnsw"
        and config.get("ef_search") == 64
        and config.get("hybrid_weight") == 1.0
    )


def _label(config: dict[str, Any]) -> str:
    r = config["retrieval"]
    if r == "lexical":
        return "lexical (FTS5 BM25)"
    how = f"HNSW ef={config['ef_search']}" if config["search"] == "hnsw" else "exact search"
    return f"{r}, {how}"


def _quality_table(ctx: Ctx, report: dict[str, Any]) -> str:
    rows = []
    for row in report["configurations"]:
        d, c, lat = row["document"], row["chunk"], row["latency_ms"]
        n = row["queries"]
        cells = [
            _label(row["config"]) + (" (default)" if _is_default(row["config"]) else ""),
            f"{d['ndcg@10']:.3f}",
            f"{d['mrr@10']:.3f}",
            f"{round(d['hit@1'] * n)}/{n}",
            f"{d['hit@10']:.3f}",
            f"{c['ndcg@10']:.3f}",
            f"{c['mrr@10']:.3f}",
            ms(lat["total"]["p50"]),
            ms(lat["total"]["p95"]),
            ms(lat["retrieve"]["p50"]),
        ]
        if _is_default(row["config"]):
            cells = [f"**{x}**" for x in cells]
        rows.append(cells)
    return table(
        [
            "configuration",
            "doc nDCG@10",
            "doc MRR@10",
            "doc hit@1",
            "doc hit@10",
            "chunk nDCG@10",
            "chunk MRR@10",
            "ms p50",
            "ms p95",
            "search ms p50",
        ],
        rows,
    )


def _django(ctx: Ctx) -> dict[str, Any]:
    dj = ctx.load("quality").get("django")
    if not dj:
        raise Missing("quality.json: no Django part (run without --skip-django)")
    return dj


def _rows_by(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The default-ef HNSW row of each retrieval mode (lexical has one)."""
    out = {}
    for row in report["configurations"]:
        c = row["config"]
        if c["retrieval"] == "lexical" or (c["search"] == "hnsw" and c["ef_search"] == 64):
            out.setdefault(c["retrieval"], row)
    return out


@renders("quality:answers")
def _q_answers(ctx: Ctx) -> str:
    a = ctx.load("quality")["answers"]
    n = a["questions"]
    rows = [
        ["right document first", f"{a['right_doc_first']}/{n}"],
        ["right document among the five sources", f"{a['right_doc_in_five_sources']}/{n}"],
        ["expected phrase in the quoted answer", f"{a['expected_phrase_in_answer']}/{n}"],
    ]
    return (
        table([f"`ask --batch`, {n} sample questions, generator {a['generator']}", "count"], rows)
        + "\n\n"
        + provenance(ctx, "quality")
    )


for _key, _field in (
    ("top1", "right_doc_first"),
    ("hit5", "right_doc_in_five_sources"),
    ("phrase", "expected_phrase_in_answer"),
):
    RENDERERS[f"quality:answers.{_key}"] = lambda ctx, f=_field: inline(
        ctx, "quality", str(ctx.load("quality")["answers"][f])
    )


def _abstention_default(ctx: Ctx) -> dict[str, Any]:
    """The sweep row of the default threshold, with the set sizes."""
    a = ctx.load("abstention")
    row = next(r for r in a["sweep"] if r["threshold"] == a["default_threshold"])
    return {
        **row,
        "threshold": a["default_threshold"],
        "n_out": len(a["out_of_corpus"]),
        "n_in": len(a["in_corpus"]),
        "answered_in_without": next(r for r in a["sweep"] if r["threshold"] == 0)[
            "answered_in_with_fact"
        ],
    }


for _key in (
    "threshold",
    "abstained_out",
    "n_out",
    "answered_in_with_fact",
    "answered_in_without",
    "n_in",
    "hit1",
):
    RENDERERS[f"abstention:{_key}"] = lambda ctx, k=_key: inline(
        ctx, "abstention", str(_abstention_default(ctx)[k])
    )
for _choice in ("lexical", "meaning", "meaning_cached"):
    for _stat in ("p50_ms", "facts"):
        RENDERERS[f"abstention:choice.{_choice}.{_stat}"] = lambda ctx, m=_choice, f=_stat: inline(
            ctx, "abstention", str(ctx.load("abstention")["extractive_choice"][m][f])
        )


def _abstention_django(ctx: Ctx) -> dict[str, Any]:
    """The Django part's row at the default threshold, by kind too."""
    a = ctx.load("abstention")
    dj = a.get("django")
    if not dj:
        raise Missing("abstention.json: no Django part (run without --skip-django)")
    row = next(r for r in dj["sweep"] if r["threshold"] == a["default_threshold"])
    return {**row, "n_out": len(dj["out_of_corpus"]), "n_in": len(dj["in_corpus"])}


for _key in ("abstained_out", "n_out", "answered_in", "n_in", "hit1"):
    RENDERERS[f"abstention:django.{_key}"] = lambda ctx, k=_key: inline(
        ctx, "abstention", str(_abstention_django(ctx)[k])
    )


@renders("quality:sample")
def _q_sample(ctx: Ctx) -> str:
    rep = ctx.load("quality")["sample"]
    return (
        f"{rep['index']['documents']} documents, {rep['index']['chunks']} chunks, "
        f"{rep['set']['queries']} questions; {plural(rep['settings']['repeats'], 'measured pass')}."
        "\n\n" + _quality_table(ctx, rep) + "\n\n" + provenance(ctx, "quality")
    )


@renders("quality:django")
def _q_django(ctx: Ctx) -> str:
    dj = _django(ctx)
    rep, ing = dj["eval"], dj["ingest"]
    first = ing["embedded"] == ing["chunks"]
    note = "" if first else " (a reused data directory: not a first ingest)"
    subset = " **A subset (`--quick`): the pages of 5 questions.**" if dj["subset"] else ""
    miss = rep.get("embed_miss_ms") or {}
    return (
        f"{rep['index']['documents']} pages, {rep['index']['chunks']:,} chunks, "
        f"{rep['set']['queries']} questions; "
        f"{plural(rep['settings']['repeats'], 'measured pass')}. "
        f"`ragcli ingest` of the pages: {ing['wall_s']:.0f} s, {ing['embedded']:,} chunks "
        f"embedded{note}.{subset} A question never seen before adds its embedding: p50 "
        f"{ms(miss.get('p50'))} ms, p95 {ms(miss.get('p95'))} ms.\n\n"
        + _quality_table(ctx, rep)
        + "\n\n"
        + provenance(ctx, "quality")
    )


@renders("quality:django_halves")
def _q_halves(ctx: Ctx) -> str:
    h = _django(ctx)["halves"]
    len_all = _django(ctx)["eval"]["set"]["queries"]
    rows = []
    for row in h["rows"]:
        c = row["config"]
        if not (c["retrieval"] == "lexical" or (c["search"] == "hnsw" and c["ef_search"] == 64)):
            continue
        f, la = row["first"], row["last"]
        rows.append(
            [
                _label(c),
                f"{f['hit@1']}/{f['questions']}",
                f"{f['mrr@10']:.3f}",
                f"{la['hit@1']}/{la['questions']}",
                f"{la['mrr@10']:.3f}",
            ]
        )
    s = h["split"]
    return (
        table(
            [
                "configuration",
                f"questions 1–{s}: hit@1",
                "MRR@10",
                f"questions {s + 1}–{len_all}: hit@1",
                "MRR@10",
            ],
            rows,
        )
        + "\n\n"
        + provenance(ctx, "quality")
    )


@renders("quality:django_weights")
def _q_weights(ctx: Ctx) -> str:
    rep = _django(ctx)["weights"]
    rows = []
    for row in rep["configurations"]:
        d, n = row["document"], row["queries"]
        rows.append(
            [
                f"{row['config']['hybrid_weight']:g}",
                f"{d['ndcg@10']:.3f}",
                f"{d['mrr@10']:.3f}",
                f"{round(d['hit@1'] * n)}/{n}",
            ]
        )
    return (
        table(["hybrid weight (lexical list)", "doc nDCG@10", "doc MRR@10", "doc hit@1"], rows)
        + "\n\n"
        + provenance(ctx, "quality")
    )


def _dj_mode(ctx: Ctx, mode: str) -> dict[str, Any]:
    rows = _rows_by(_django(ctx)["eval"])
    if mode not in rows:
        raise Missing(f"quality.json: no Django {mode} row")
    return rows[mode]


for _mode_name in ("dense", "lexical", "hybrid"):
    RENDERERS[f"quality:django.{_mode_name}_hit1"] = lambda ctx, m=_mode_name: inline(
        ctx,
        "quality",
        str(round(_dj_mode(ctx, m)["document"]["hit@1"] * _dj_mode(ctx, m)["queries"])),
    )
    RENDERERS[f"quality:django.{_mode_name}_mrr"] = lambda ctx, m=_mode_name: inline(
        ctx, "quality", f"{_dj_mode(ctx, m)['document']['mrr@10']:.3f}"
    )


@renders("quality:django.questions")
def _q_dj_n(ctx: Ctx) -> str:
    return inline(ctx, "quality", str(_django(ctx)["eval"]["set"]["queries"]))


@renders("quality:django.chunks")
def _q_dj_chunks(ctx: Ctx) -> str:
    return inline(ctx, "quality", f"{_django(ctx)['eval']['index']['chunks']:,}")


@renders("quality:django.hybrid_extra_ms")
def _q_dj_extra(ctx: Ctx) -> str:
    h = _dj_mode(ctx, "hybrid")["latency_ms"]["total"]["p50"]
    d = _dj_mode(ctx, "dense")["latency_ms"]["total"]["p50"]
    return inline(ctx, "quality", ms(h - d, " ms"))


# -- local LLM prefill ----------------------------------------------------------------------
def _backends(ctx: Ctx) -> dict[str, dict[str, Any]]:
    return {
        b.get("kind", name.split(" ")[0]): b for name, b in ctx.load("prefill")["backends"].items()
    }


NAMES = {
    "local": "local, llama.cpp in-process (SmolLM2-135M Q4_1)",
    "server": "test server (modelled prefill)",
}


@renders("prefill:prompt_size")
def _pf_size(ctx: Ctx) -> str:
    rows = []
    for kind, b in _backends(ctx).items():
        for i, x in enumerate(b["prompt_size"]):
            share = x["prefill_share"]
            rows.append(
                [
                    NAMES.get(kind, kind) if i == 0 else "",
                    x["k"],
                    f"{x['prompt_tokens']:,.0f}",
                    ms(x["ttft_cold_ms"], " ms"),
                    ms(x["ttft_all_cached_ms"], " ms"),
                    "" if share is None else f"{share * 100:.0f} %",
                    f"{x['prefill_tokens_per_s']:.0f}"
                    if x.get("prefill_tokens_per_s") and kind == "local"
                    else "",
                    ms(x["ragcli_before_llm_ms"], " ms"),
                ]
            )
    m = ctx.load("prefill")["server_model"]
    return (
        table(
            [
                "backend",
                "k",
                "prompt tokens",
                "TTFT, nothing cached",
                "TTFT, all cached",
                "prefill share",
                "prefill tokens/s",
                "ragcli before the LLM",
            ],
            rows,
        )
        + f"\n\nTest server: {m['ttft_s'] * 1000:.0f} ms + "
        f"{m['prefill_ms_per_uncached_token']:g} ms per prompt token not in its prefix cache "
        f"({m['prefix_cache_block_tokens']}-token blocks).\n\n" + provenance(ctx, "prefill")
    )


@renders("prefill:follow_up")
def _pf_follow(ctx: Ctx) -> str:
    rows = []
    for kind, b in _backends(ctx).items():
        f = b["follow_up"]
        for layout in ("prefix", "ranked"):
            x = f[layout]
            rows.append(
                [
                    NAMES.get(kind, kind) if layout == "prefix" else "",
                    "**prefix** (default)" if layout == "prefix" else "ranked (ablation)",
                    ms(x["follow_up_ttft_ms"], " ms"),
                    f"{x['cached_tokens']:,.0f} / {x['prompt_tokens']:,.0f}",
                    f"**{f['ranked_over_prefix']:.1f}×**" if layout == "ranked" else "",
                ]
            )
    pairs = next(iter(_backends(ctx).values()))["follow_up"]["prefix"]
    return (
        table(
            [
                "backend",
                "layout",
                "follow-up TTFT p50",
                "cached / prompt tokens",
                "ranked / prefix",
            ],
            rows,
            left=2,
        )
        + f"\n\n{pairs['pairs']} question pairs; in {pairs['pairs_ranked_alike']} of them the "
        "follow-up ranked the sources in the first question's order.\n\n"
        + provenance(ctx, "prefill")
    )


@renders("prefill:quality")
def _pf_quality(ctx: Ctx) -> str:
    rows = []
    for llm, q in ctx.load("prefill")["quality"].items():
        n = q["questions"]
        rows.append(
            [
                "extractive (default)"
                if llm == "extractive"
                else "local SmolLM2-135M-Instruct Q4_1",
                f"{q['right_doc_in_sources']}/{n}",
                f"{q['answers_from_right_doc']}/{n}",
                f"{q['cites_right_doc']}/{n}",
                f"{q['expected_fact']}/{n}",
                ms(statistics.median(r["seconds"] for r in q["rows"]) * 1000, " ms"),
            ]
        )
    return (
        table(
            [
                "generator",
                "right doc among the sources",
                "answers from it",
                "cites it as [n]",
                "expected figure",
                "answer time p50",
            ],
            rows,
        )
        + "\n\n"
        + provenance(ctx, "prefill")
    )


@renders("prefill:local_tokens_per_s")
def _pf_rate(ctx: Ctx) -> str:
    local = _backends(ctx).get("local")
    if not local:
        raise Missing("prefill.json: no local backend")
    rates = [
        x["prefill_tokens_per_s"] for x in local["prompt_size"] if x.get("prefill_tokens_per_s")
    ]
    return inline(ctx, "prefill", span(rates, ".0f", " tokens/s"))


# -- Chroma server and Redis ----------------------------------------------------------------
@renders("store_backends")
def _sb(ctx: Ctx) -> str:
    r = ctx.load("store_backends")
    rows = [
        [x["what"], f"{x['a']:,.0f}", f"{x['b']:,.0f}", f"{x['b'] / x['a']:.1f}×"]
        for x in r["rows"]
    ]
    load = r.get("synthetic_load_s") or {}
    extra = ""
    if load:
        extra = (
            f"\n\nLoading the synthetic vectors took {load.get('embedded', 0):.1f} s embedded and "
            f"{load.get('server', 0):.1f} s through the server."
        )
    return (
        table(["measure (p50, µs)", "embedded / SQLite", "Chroma server / Redis", "ratio"], rows)
        + f"\n\n{r['queries']} timings per row, the two backends alternating in rounds of 10."
        + extra
        + "\n\n"
        + provenance(ctx, "store_backends")
    )


@renders("store_backends:chroma_http_extra_ms")
def _sb_http(ctx: Ctx) -> str:
    r = ctx.load("store_backends")
    extra = [(x["b"] - x["a"]) / 1000 for x in r["rows"] if x.get("key", "").startswith("query")]
    return inline(ctx, "store_backends", span(extra, ".1f", " ms"))


# -- serve under load -----------------------------------------------------------------------
@renders("serve_load:all")
def _sl(ctx: Ctx) -> str:
    r = ctx.load("serve_load")
    rows = []
    for i, x in enumerate(r["concurrency"]):
        rows.append(
            [
                "1: healthy endpoints" if i == 0 else "",
                x["hedge"],
                x["concurrency"],
                x["requests"],
                f"{x['req_per_s']:.1f}",
                ms(x["ttft_p50_ms"], " ms"),
                ms(x["ttft_p99_ms"], " ms"),
                x["llm_requests"],
                f"{x['extra_pct']:.1f} %",
            ]
        )
    for i, x in enumerate(r["slow_endpoint"]["rows"]):
        hedge = {"off": "off", "auto": "auto (p95)"}.get(x["hedge"], f"fixed {x['hedge']} ms")
        rows.append(
            [
                "2: B slow for 10 %" if i == 0 else "",
                hedge,
                x["concurrency"],
                x["requests"],
                f"{x['req_per_s']:.1f}",
                ms(x["ttft_p50_ms"], " ms"),
                f"**{ms(x['ttft_p99_ms'], ' ms')}**",
                x["llm_requests"],
                f"{x['extra_pct']:.1f} %",
            ]
        )
    return (
        table(
            [
                "step",
                "hedging",
                "concurrency",
                "requests",
                "req/s",
                "TTFT p50",
                "TTFT p99",
                "LLM requests",
                "extra",
            ],
            rows,
            2,
        )
        + "\n\n"
        + provenance(ctx, "serve_load")
    )


def _slow(ctx: Ctx, hedge: str) -> dict[str, Any]:
    for x in ctx.load("serve_load")["slow_endpoint"]["rows"]:
        if x["hedge"] == hedge or (hedge == "fixed" and x["hedge"] not in ("off", "auto")):
            return x
    raise Missing(f"serve_load.json: no {hedge} row")


@renders("serve_load:hedging")
def _sl_hedging(ctx: Ctx) -> str:
    rows = []
    for hedge in ("off", "auto", "fixed"):
        x = _slow(ctx, hedge)
        name = {"off": "off", "auto": "auto (p95)"}.get(x["hedge"], f"fixed {x['hedge']} ms")
        rows.append(
            [
                name,
                ms(x["ttft_p50_ms"], " ms"),
                ms(x["ttft_p99_ms"], " ms"),
                f"{x['extra_pct']:.1f} %",
            ]
        )
    return (
        table(["hedging", "TTFT p50", "TTFT p99", "extra LLM requests"], rows)
        + "\n\n"
        + provenance(ctx, "serve_load")
    )


@renders("serve_load:healthy_extra")
def _sl_healthy(ctx: Ctx) -> str:
    extra = [x["extra_pct"] for x in ctx.load("serve_load")["concurrency"]]
    return inline(ctx, "serve_load", span(extra, ".0f", " %"))


for _h in ("off", "auto", "fixed"):
    RENDERERS[f"serve_load:p99_{_h}"] = lambda ctx, h=_h: inline(
        ctx, "serve_load", ms(_slow(ctx, h)["ttft_p99_ms"], " ms")
    )
    RENDERERS[f"serve_load:extra_{_h}"] = lambda ctx, h=_h: inline(
        ctx, "serve_load", f"{_slow(ctx, h)['extra_pct']:.1f} %"
    )


# -- hybrid retrieval at ~13k chunks (benchmarks/hybrid.py) --------------------------------
@renders("hybrid:latency")
def _hybrid(ctx: Ctx) -> str:
    r = ctx.load("hybrid")
    order = ("dense", "lexical before", "lexical after", "hybrid before", "hybrid after",
             "2 lexical at once")  # fmt: skip
    rows = []
    for part in (r["whole"], r["partition"]):
        dense = part["rows"]["dense"]["p50"]
        where = "whole corpus" if part is r["whole"] else f"partition `{part['name']}`"
        for name in order:
            row = part["rows"].get(name)
            if row is not None:
                rows.append([where, name, ms(row["p50"], " ms"), ms(row["p95"], " ms"),
                             times(row["p50"] / dense)])  # fmt: skip
    same = r["whole"]["identical"]
    setup = r["setup"]
    return (
        table(["scope", "search", "p50", "p95", "× dense p50"], rows)
        + f"\n\n{setup['chunks']:,} chunks from {setup['files']} files; "
        f"{same['hybrid']}/{same['questions']} questions got identical hybrid results and "
        f"{same['lexical']}/{same['questions']} identical lexical results before and after.\n\n"
        + provenance(ctx, "hybrid")
    )


# -- the warm daemon (benchmarks/daemon.py) -------------------------------------------------
def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


@renders("daemon:whole_process")
def _daemon_table(ctx: Ctx) -> str:
    r = ctx.load("daemon")
    v, t = r["verdict"], r["targets"]
    ch, ft, rm, cold = r["cache_hit"], r["first_time"], r["remote"], r["cold_first_ask"]
    floor = r["floor_ms"]

    def row(
        name: str, d: dict[str, Any], nd: dict[str, Any] | None, target: str, met: str
    ) -> list[str]:
        ratio = times(nd["p50"] / d["p50"]) if nd else ""
        right = [ms(nd["p50"], " ms"), ms(nd["p90"], " ms")] if nd else ["", ""]
        return [name, ms(d["p50"], " ms"), ms(d["p90"], " ms"), *right, ratio, target, met]

    rows = [
        row("answer-cache hit (spawn → exit)", ch["daemon_exit_ms"], ch["no_daemon_exit_ms"],
            f"≤ {t['cache_hit_daemon_s'] * 1000:.0f} ms", _met(v["cache_hit_daemon_s"])),
        row("first-time question, offline defaults (spawn → exit)", ft["daemon_exit_ms"],
            ft["no_daemon_exit_ms"],
            f"≤ {t['first_time_daemon_s'] * 1000:.0f} ms and ≥ {t['first_time_speedup']:.0f}×",
            _met(v["first_time_daemon_s"] and v["first_time_speedup_met"])),
        row(f"first-time question against the test server: TTFT (spawn → first answer byte; "
            f"floor {floor:.0f} ms)", rm["daemon_first_byte_ms"], rm["no_daemon_first_byte_ms"],
            f"≤ {floor + t['remote_ttft_over_floor_ms']:.0f} ms",
            _met(v["remote_ttft_met"]) + f" (floor +{v['remote_ttft_over_floor_ms']:.0f} ms)"),
        row("`ragcli --help` (spawn → exit)", r["help_exit_ms"], None,
            f"≤ {t['help_s'] * 1000:.0f} ms", _met(v["help_s"])),
        row("first ask with no daemon running, its start included (spawn → first answer byte)",
            cold["daemon_first_byte_ms"], cold["no_daemon_first_byte_ms"],
            "no slower than `--no-daemon`", _met(v["cold_first_ask_no_slower"])),
    ]  # fmt: skip
    n = ch["daemon_exit_ms"]["n"]
    same = all(x.get("daemon_pid", {}).get("same", True) for x in (ch, ft, rm))
    one = (
        "one daemon served each warm measurement (its pid before and after)"
        if same
        else "**the daemon was replaced during a warm measurement** (ragcli's code changed)"
    )
    head = ["whole `ragcli` process", "daemon p50", "p90", "`--no-daemon` p50", "p90",
            "ratio", "target", "met"]  # fmt: skip
    load = f"<sub>`uptime` at the start: {r['uptime_start']}; at the end: {r['uptime_end']}.</sub>"
    return (
        table(head, rows, left_last=True)
        + f"\n\nMedian (p50) and p90 of {n} runs each way, alternating; {one}.\n\n"
        + load
        + "\n\n"
        + provenance(ctx, "daemon")
    )


def _daemon_p50(ctx: Ctx, part: str, key: str) -> float:
    return float(ctx.load("daemon")[part][key]["p50"])


@renders("daemon:cache_hit_p50")
def _daemon_cache_hit(ctx: Ctx) -> str:
    return inline(ctx, "daemon", ms(_daemon_p50(ctx, "cache_hit", "daemon_exit_ms"), " ms"))


@renders("daemon:first_time_p50")
def _daemon_first_time(ctx: Ctx) -> str:
    return inline(ctx, "daemon", ms(_daemon_p50(ctx, "first_time", "daemon_exit_ms"), " ms"))


@renders("daemon:no_daemon_first_time_p50")
def _daemon_first_time_off(ctx: Ctx) -> str:
    v = _daemon_p50(ctx, "first_time", "no_daemon_exit_ms")
    return inline(ctx, "daemon", ms(v, " ms"))


@renders("daemon:remote")
def _daemon_remote(ctx: Ctx) -> str:
    r = ctx.load("daemon")
    w, rm = r["remote_in_process_warm"], r["remote"]
    ttft = rm["daemon_first_byte_ms"]["p50"]
    rows = [
        ["the server's floor: one embeddings request + time to the first token",
         ms(r["floor_ms"], " ms")],
        ["the same pipeline warm in one process (`ragcli profile`, caches off): TTFT",
         ms(w["ttft"]["p50"], " ms")],
        ["… of which the embeddings request / the LLM's first token",
         f"{ms(w['embed']['p50'], ' ms')} / {ms(w['llm.first_token']['p50'], ' ms')}"],
        ["`ragcli ask` through the warm daemon: TTFT from spawn", ms(ttft, " ms")],
        ["… the client process's share (the difference)",
         ms(ttft - w["ttft"]["p50"], " ms")],
        ["a minimal client, for comparison: `python -I -S`, one Unix socket, the same request "
         "prepared beforehand (benchmarks/daemon.py's RAW_CLIENT): TTFT from spawn",
         ms(rm["raw_client_first_byte_ms"]["p50"], " ms")],
        ["`python -c pass` (the interpreter alone, spawn → exit)",
         ms(r["interpreter_ms"]["p50"], " ms")],
        ["the client's imports (console script + fast path, `-X importtime`, all self times)",
         ms(r["client_imports"]["total_ms"], " ms")],
    ]  # fmt: skip
    heavy = ", ".join(
        f"{name} {ms(v, ' ms')}"
        for name, v in list(r["client_imports"]["by_package_ms"].items())[:8]
    )
    return (
        table(["part of a first-time question's TTFT (p50)", "ms"], rows)
        + f"\n\nThe client's heaviest imports (self time by package): {heavy}.\n\n"
        + provenance(ctx, "daemon")
    )


@renders("daemon:cold_start")
def _daemon_cold(ctx: Ctx) -> str:
    r = ctx.load("daemon")
    cold = r["cold_first_ask"]
    spans = ", ".join(
        f"`{s['name']}` {ms(s['ms'], ' ms')}" for s in cold["daemon_warm_spans"] or []
    )
    heavy = ", ".join(
        f"{name} {ms(v, ' ms')}"
        for name, v in list(r["daemon_imports"]["by_package_ms"].items())[:8]
    )
    first = " and ".join(ms(x, " ms") for x in r["first_requests_after_start_ms"])
    return (
        "- the daemon says ready (socket bound, loads still running) "
        f"{ms(cold['daemon_ready_ms']['p50'], ' ms')} "
        f"after its process started (p50 of {cold['daemon_ready_ms']['n']}, `ready_ms` in "
        f"`ragcli daemon status --json`);\n"
        "- its loads, in the background from then on (`warm` in its `/healthz`, first start): "
        f"{spans};\n"
        f"- after `ragcli daemon start` returned, its first first-time questions took {first} "
        f"(spawn → exit): the first waits for the loads still running;\n"
        f"- its module imports before it can listen (`{r['daemon_imports']['code']}`): "
        f"{ms(r['daemon_imports']['total_ms'], ' ms')} in all; heaviest: {heavy}.\n\n"
        + provenance(ctx, "daemon")
    )


@renders("daemon:concurrency")
def _daemon_concurrency(ctx: Ctx) -> str:
    c = ctx.load("daemon")["concurrency"]
    rows = []
    for way, name in (("daemon", "one warm daemon"), ("no_daemon", "`--no-daemon`")):
        x = c[way]
        rows.append([
            name, x["asks"], x["answered"], x["lost"], f"{x['wall_s']:.2f} s",
            f"{x['asks_per_s']:.1f}", f"+{x['requests_delta']}" if "requests_delta" in x else "–",
        ])  # fmt: skip
    return (
        table(
            ["asks at once", "asks", "answered", "lost", "wall (all)", "asks/s", "daemon requests"],
            rows,
        )  # fmt: skip
        + f"\n\n{c['first_time']} first-time questions and {c['cached']} answer-cache hits "
        "each way (other first-time questions for `--no-daemon`).\n\n" + provenance(ctx, "daemon")
    )


@renders("daemon:kill")
def _daemon_kill(ctx: Ctx) -> str:
    k = ctx.load("daemon")["kill_mid_stream"]
    line = f"`` {k['client_error_line']} ``" if k["client_error_line"] else "(none)"
    return (
        f"- the client had printed {k['client_stdout_chars']} of the answer's "
        f"{k['reply_chars']} characters when the daemon (pid {k['killed_pid']}) got SIGKILL, "
        f"{k['killed_s_after_spawn']:.2f} s after the client's spawn;\n"
        f"- the client exited {ms(k['client_exit_after_kill_ms'], ' ms')} later with exit code "
        f"**{k['client_exit_code']}** and {plural(len(k['client_stderr_lines']), 'line')} "
        f"on stderr: {line};\n"
        f"- the next `ragcli ask` exited {k['next_ask_exit_code']} with an answer "
        f"({'yes' if k['next_ask_answered'] else 'no'}), from a new daemon: "
        f"{'yes' if k['new_daemon'] else '**no**'} (pid {k['new_daemon_pid']}; "
        f"`-v` said: {k['next_ask_daemon']}), in {ms(k['next_ask_ms'], ' ms')} "
        "(the new daemon's start and loads included).\n\n" + provenance(ctx, "daemon")
    )


# -- the whole ingest against an OpenAI-compatible API (benchmarks/ingest_remote.py) -------
def _ir_row(name: str, r: dict[str, Any], wall: float, process: bool = True) -> list[str]:
    """A row; the process's peak RSS and CPU only on rows that time a whole process."""
    share = r.get("not_on_network_share")
    cpu = r["cpu_user_s"] + r["cpu_sys_s"]
    rss, cpu_s = (f"{r['peak_rss_mb']:,.0f} MB", f"{cpu:.1f} s") if process else ("", "")
    net = "" if share is None else f"{share * 100:.0f} %"
    return [name, f"{wall:,.2f} s", f"{r['requests']:,}", f"{r['throttled_429']:,}",
            f"{r['inputs']:,}", rss, cpu_s, net]  # fmt: skip


def _ir_where(n: str, r: dict[str, Any]) -> str:
    """Where ragcli's wall time went, seen from the server (and its own phases if reported)."""
    if "before_first_request_s" not in r:
        return ""
    text = (
        f"{int(n):,} files, ragcli: {r['busy_s']:.2f} s with a request in flight; "
        f"{r['before_first_request_s']:.2f} s before the first request, "
        f"{r['gaps_between_requests_s']:.2f} s between requests with none in flight, "
        f"{r['after_last_answer_s']:.2f} s after the last answer"
    )
    phases = r.get("report_phases")
    if isinstance(phases, dict) and phases:
        parts = ", ".join(
            f"{k} {v:.2f} s" if isinstance(v, (int, float)) else f"{k} {v}"
            for k, v in phases.items()
        )
        text += f"; its report's phases: {parts}"
    if "report_peak_rss_mb" in r:
        text += f"; its report's peak RSS {r['report_peak_rss_mb']} MB"
    return text + "."


def _ir_verdict(n: str, s: dict[str, Any], targets: dict[str, Any]) -> str:
    v, ours = s["verdict"], s["ragcli"]
    storm = targets["storm_429_share"]
    return (
        f"{int(n):,} files: ragcli's whole ingest took **{times(v['ratio_vs_llamaindex_embed'])}** "
        f"LlamaIndex's embedding alone (target ≤ {targets['ratio_vs_llamaindex_embed']}×: "
        f"{_met(v['ratio_met'])}; {times(v['ratio_vs_llamaindex_process'])} its whole process); "
        f"every chunk embedded: {_met(v['all_embedded'])}; {ours['requests']:,} requests "
        f"(≤ {targets['requests']}: {_met(v['requests_met'])}); {ours['throttled_429']} 429s "
        f"(no storm, ≤ {storm * 100:.0f} % of requests: {_met(v['no_429_storm'])})."
    )


def _ir_source(module: str) -> str:
    """A note when the ragcli measured was not this checkout's (e.g. a commit exported aside)."""
    if not module.startswith("/"):
        return "\n\n"
    return (
        f"\n\n<sub>The ragcli measured was imported from `{module}`, not this checkout.</sub>\n\n"
    )


def _ir_before_after(ctx: Ctx) -> tuple[dict, dict, dict]:
    """ragcli at 5,000 files before issue 17 (ingest_remote_before.json) and now, and LlamaIndex."""
    now = ctx.load("ingest_remote")["sizes"]["5000"]
    before = ctx.load("ingest_remote_before")["sizes"]["5000"]["ragcli"]
    return before, now["ragcli"], now["llamaindex_same_texts"]


@renders("ingest_remote:before_wall")
def _ir_before_wall(ctx: Ctx) -> str:
    return inline(ctx, "ingest_remote_before", f"{_ir_before_after(ctx)[0]['wall_s']:.2f} s")


@renders("ingest_remote:before_rss")
def _ir_before_rss(ctx: Ctx) -> str:
    return inline(ctx, "ingest_remote_before", f"{_ir_before_after(ctx)[0]['peak_rss_mb']:.0f} MB")


@renders("ingest_remote:before_requests")
def _ir_before_requests(ctx: Ctx) -> str:
    return inline(ctx, "ingest_remote_before", f"{_ir_before_after(ctx)[0]['requests']}")


@renders("ingest_remote:before_after_last")
def _ir_before_after_last(ctx: Ctx) -> str:
    b = _ir_before_after(ctx)[0]
    return inline(ctx, "ingest_remote_before", f"{b['after_last_answer_s']:.2f} s")


@renders("ingest_remote:after_wall")
def _ir_after_wall(ctx: Ctx) -> str:
    return inline(ctx, "ingest_remote", f"{_ir_before_after(ctx)[1]['wall_s']:.2f} s")


@renders("ingest_remote:after_rss")
def _ir_after_rss(ctx: Ctx) -> str:
    return inline(ctx, "ingest_remote", f"{_ir_before_after(ctx)[1]['peak_rss_mb']:.0f} MB")


@renders("ingest_remote:after_requests")
def _ir_after_requests(ctx: Ctx) -> str:
    return inline(ctx, "ingest_remote", f"{_ir_before_after(ctx)[1]['requests']}")


@renders("ingest_remote:speedup")
def _ir_speedup(ctx: Ctx) -> str:
    b, a, _ = _ir_before_after(ctx)
    return inline(ctx, "ingest_remote", f"{b['wall_s'] / a['wall_s']:.2f}×")


@renders("ingest_remote:ratio")
def _ir_ratio(ctx: Ctx) -> str:
    _, a, li = _ir_before_after(ctx)
    return inline(ctx, "ingest_remote", f"{a['wall_s'] / li['embed_s']:.1f}×")


@renders("ingest_remote:llamaindex_embed")
def _ir_llamaindex(ctx: Ctx) -> str:
    return inline(ctx, "ingest_remote", f"{_ir_before_after(ctx)[2]['embed_s']:.2f} s")


@renders("ingest_remote:vector_index")
def _ir_vector_index(ctx: Ctx) -> str:
    phases = ctx.load("ingest_remote")["sizes"]["5000"]["ragcli"].get("report_phases") or {}
    return inline(ctx, "ingest_remote", f"{phases.get('vector_index', float('nan')):.2f} s")


@renders("chunking")
def _chunking(ctx: Ctx) -> str:
    r = ctx.load("chunking")
    rows = [
        [
            x["corpus"],
            x["tokenizer"],
            x["path"],
            f"{x['chunks']:,}",
            f"{x['wall_s']:.2f} s",
            f"{x['chunks_per_s']:,.0f}",
            f"{x['speedup']:.2f}×",
            "yes" if x["identical"] else "**no**",
        ]
        for x in r["rows"]
    ]
    head = ["corpus", "tokenizer", "path", "chunks", "wall", "chunks/s", "× old", "same chunks"]
    return table(head, rows, 3) + "\n\n" + provenance(ctx, "chunking")


@renders("ingest_local")
def _ingest_local(ctx: Ctx) -> str:
    r = ctx.load("ingest_local")
    rows = [
        [
            f"`{r['setup']['before']}` (before)" if x["code"] == "before" else "this checkout",
            str(x["round"]),
            f"{x['wall_s']:.1f} s",
            f"{x['chunks']:,}",
            f"{x['chunks_per_s']:.1f}",
            f"{x['cpu_s']:.0f} s",
            f"{x['peak_rss_mb']:.0f} MB" if x.get("peak_rss_mb") else "",
            f"{x['phases']['embed']:.1f} s" if x.get("phases") else "",
        ]
        for x in r["rows"]
    ]
    head = ["code", "round", "wall", "chunks", "chunks/s", "CPU", "peak RSS", "embed phase"]
    note = f"Same chunks on both sides (status digest): {'yes' if r['same_chunks'] else '**no**'}."
    return table(head, rows, 1) + "\n\n" + note + "\n\n" + provenance(ctx, "ingest_local")


@renders("ingest_remote")
def _ingest_remote(ctx: Ctx) -> str:
    r = ctx.load("ingest_remote")
    setup, sizes = r["setup"], r["sizes"]
    rows, notes, verdicts = [], [], []
    for n, s in sizes.items():
        ours, label = s["ragcli"], f"{int(n):,} files, {s['ragcli']['chunks']:,} chunks"
        rows.append([label, *_ir_row("`ragcli ingest`, whole process", ours, ours["wall_s"])])
        if "llamaindex_same_texts" in s:
            li, own = s["llamaindex_same_texts"], s["llamaindex_own_nodes"]
            rows += [
                ["", *_ir_row("LlamaIndex embedding alone, the same texts", li, li["embed_s"],
                              False)],
                ["", *_ir_row("LlamaIndex, whole process, the same texts", li,
                              li["process_wall_s"])],
                ["", *_ir_row(f"LlamaIndex embedding alone, its own {own['texts']:,} nodes",
                              own, own["embed_s"], False)],
            ]  # fmt: skip
            verdicts.append("- " + _ir_verdict(n, s, setup["targets"]))
        notes.append("- " + _ir_where(n, ours))
    srv = setup["server"]
    rounds = max(len(s["ragcli"]["rounds"]) for s in sizes.values())
    head = ["corpus", "run", "wall", "requests", "429s", "inputs", "process peak RSS",
            "process CPU", "not on the network"]  # fmt: skip
    li_versions = next(
        (s["llamaindex_same_texts"]["versions"] for s in sizes.values()
         if "llamaindex_same_texts" in s), {}
    )  # fmt: skip
    versions = ", ".join(f"{k} {v}" for k, v in li_versions.items())
    return (
        f"Server: {srv['latency_s'] * 1000:.0f} ms per request, HTTP 429 above "
        f"{srv['max_in_flight']} in flight (Retry-After {srv['retry_after_s']:g} s), "
        f"{setup['dimensions']}-d vectors. Corpus: {setup['corpus']}. "
        + (
            f"Each figure is from the round of median ragcli wall (LlamaIndex: median embedding "
            f"time) of {rounds} alternating rounds at the compared sizes, one round above."
            if rounds > 1
            else "One round per size."
        )
        + "\n\n"
        + table(head, rows, 2)
        + "\n\n"
        + "\n".join(verdicts + [x for x in notes if x != "- "])
        + (f"\n\nLlamaIndex: {versions}." if versions else "")
        + _ir_source(setup.get("ragcli_module", ""))
        + provenance(ctx, "ingest_remote")
    )


# -- the rewriting ----------------------------------------------------------------------------
def render_text(text: str, ctx: Ctx, problems: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key, body = match.group("key"), match.group("body")
        fn = RENDERERS.get(key)
        if fn is None:
            problems.append(f"{ctx.doc.name}: unknown key bench:{key}")
            return match.group(0)
        try:
            out = fn(ctx)
        except Missing as exc:
            if body.strip():
                problems.append(f"{ctx.doc.name}: bench:{key} left as it was: {exc} is missing")
                return match.group(0)
            problems.append(f"{ctx.doc.name}: bench:{key}: {exc} is missing")
            if body.startswith("\n"):  # an empty block: say so rather than show nothing
                note = f"_No result yet: `{exc}` is missing; `make bench` writes it._"
                return f"<!-- bench:{key} -->\n{note}\n<!-- /bench -->"
            return f"<!-- bench:{key} -->(not measured yet)<!-- /bench -->"
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
            problems.append(f"{ctx.doc.name}: bench:{key} left as it was: {exc!r}")
            return match.group(0)
        if "\n" in out or body.startswith("\n"):
            return f"<!-- bench:{key} -->\n{out.strip()}\n<!-- /bench -->"
        return f"<!-- bench:{key} -->{out}<!-- /bench -->"

    return MARKER.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a doc is out of date")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a missing result too")
    args = parser.parse_args()
    problems: list[str] = []
    stale: list[str] = []
    unknown = False
    for rel in DOCS:
        path = REPO / rel
        text = path.read_text("utf-8")
        ctx = Ctx(args.results.resolve(), path)
        before = len(problems)
        new = render_text(text, ctx, problems)
        unknown |= any("unknown key" in p for p in problems[before:])
        blocks = len(MARKER.findall(text))
        if new != text:
            stale.append(rel)
            if not args.check:
                path.write_text(new, "utf-8")
        state = ("out of date" if args.check else "rewritten") if new != text else "up to date"
        print(f"{rel}: {blocks} figures, {state}")
    for p in problems:
        print(f"render: {p}", file=sys.stderr)
    if unknown or (args.strict and problems) or (args.check and stale):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
