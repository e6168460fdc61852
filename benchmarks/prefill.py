"""Prefill is the TTFT of a local LLM: prompt size, prefix reuse and the prompt layout.

    python benchmarks/prefill.py [--questions 3] [--pairs 6] [--quality 8]
                                 [--server-ttft 0.05] [--server-prefill-ms 0.5] [--skip-local]
                                 [--quick] [--check]

Ingests sample_corpus into a temporary data directory, then in one process, on two backends:
  * local: SmolLM2-135M-Instruct Q4_1 in llama.cpp, in-process (`--llm local`; needs
    `make install-local`), and
  * server: the project's OpenAI-compatible test server (tests/support/openai_server.py) on
    127.0.0.1 through the real `openai` client, modelling a provider with a fixed TTFT plus a
    prefill cost per uncached prompt token and a vLLM-style prefix cache (16-token blocks),
measures, with the request → first token time of the generator (ragcli's own time before the
request is reported separately):
  1. TTFT against prompt size for k = 1, 2, 4, 8 (budget 3000 tokens, so k decides): the
     prompt with nothing cached (cold) and the same prompt again (all of it cached); the
     difference is prefill, and its share of the cold TTFT;
  2. a follow-up question over the same sources, after the first question: TTFT with the
     prefix layout (canonical source order: the whole prefix is reused) and with the ranked
     layout (best-first for the new question: reuse stops at the first source that moved);
  3. quality: the README's questions answered by the local model and by the extractive
     default; how many answers cite the document that answers the question and contain the
     expected figure.
Prints the tables and writes benchmarks/results/prefill.json.
Without the local model (`make install-local`) it stops with exit code 3 and says why, rather
than write a result without the local rows; `--skip-local` measures the test server alone.
`--check` only says whether the local model is ready (exit 0) or not (exit 3, with the reason):
`make bench` skips this script, with that reason, when it is not. `--quick`: 1 question per k,
2 follow-up pairs, 2 quality questions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchmeta  # noqa: E402

README_QUESTIONS = [
    "How do I rotate the on-call pager?",
    "What's the daily per-diem when I travel abroad for work?",
    "How long do we keep application logs?",
    "What was the root cause of the duplicate invoices incident?",
    "How much parental leave does the primary caregiver get?",
    "What is the API rate limit on the Team plan?",
    "I lost my work laptop on the train. How soon do I have to report it?",
    "How do I roll back a bad release?",
]
FOLLOW_UPS = [
    "And what if PageRelay itself is down during the handover?",
    "Is the per-diem different for domestic trips?",
    "Are audit logs kept longer than application logs?",
    "What was changed so that it cannot happen again?",
    "Can the secondary caregiver take leave too?",
    "What happens when a client goes over that limit?",
    "Who do I tell first, IT or my manager?",
    "How long does a rollback usually take?",
]
KS = (1, 2, 4, 8)
SWEEP_BUDGET = 3000


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ingest(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    env["RAGCLI_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-m", "ragcli", "ingest", str(REPO / "sample_corpus"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed: {proc.stderr.strip()[-400:]}")


class Backend:
    """A generator plus how to empty its prefix cache and wait until it is idle."""

    def __init__(self, name: str, generator: Any, clear: Any, idle: Any, drain: bool) -> None:
        self.name, self.generator, self.clear, self.idle = name, generator, clear, idle
        self.drain = drain  # read the whole (short) answer: the usage block comes last

    async def first_token(self, question: str, prompt: Any) -> float:
        """Seconds from the request to the first streamed piece. The local model's stream is
        closed there (its decode is not measured); the server's is read to the end."""
        self.idle()
        t = time.perf_counter()
        first: float | None = None
        stream = self.generator.stream(question, prompt)
        try:
            async for _ in stream:
                first = first or time.perf_counter() - t
                if not self.drain:
                    break
        finally:
            await stream.aclose()
        if first is None:
            raise RuntimeError("the generator streamed nothing")
        return first


def local_not_ready() -> str | None:
    """Why the local model cannot run here (the extra or the GGUF missing), or None."""
    from ragcli.core.errors import NotReadyError
    from ragcli.generators import local

    try:
        local.LocalGenerator()
    except NotReadyError as exc:
        return str(exc)
    return None


async def local_backend() -> Backend:
    from ragcli.generators import local

    gen = local.LocalGenerator()
    await gen.warm()

    def model() -> Any:
        return local._models[gen.path]

    def clear() -> None:
        model().llm.reset()  # forget the KV state: the next prompt is prefilled from scratch

    def idle() -> None:
        while model().lock.locked():  # a closed stream stops at its next token
            time.sleep(0.005)

    return Backend("local (llama.cpp in-process, SmolLM2-135M Q4_1)", gen, clear, idle, False)


async def server_backend(srv: Any) -> Backend:
    from ragcli.generators.openai_compat import OpenAIGenerator

    gen = OpenAIGenerator("test-model", srv.base_url)
    await gen.warm()
    return Backend(
        "server (OpenAI-compatible test server, modelled prefill)",
        gen,
        srv.reset,
        srv.wait_idle,
        True,
    )


async def retrieve(pipeline: Any, question: str, k: int) -> list[Any]:
    from ragcli.retrieval.events import Query

    ranked, _ = await pipeline.retrieve(Query(question, k=k))
    return ranked


def reorder_for(pipeline: Any, question: str, ranked: list[Any]) -> list[Any]:
    """The same chunks, best-first for another question (cosine to its embedding): what a
    follow-up's retrieval returns when it finds the same sources."""
    import numpy as np

    vecs = pipeline.embedder.embed([question] + [c.text for c, _ in ranked])
    scores = vecs[1:] @ vecs[0]
    order = np.argsort(-scores, kind="stable")
    return [(ranked[i][0], float(scores[i])) for i in order]


async def prompt_size(backend: Backend, pipeline: Any, questions: list[str]) -> list[dict]:
    from ragcli.retrieval.prompt import build_prompt

    gen = backend.generator
    rows = []
    for k in KS:
        cold, hot, tokens, cached_hot, sources, pre = [], [], [], [], [], []
        for q in questions:
            t = time.perf_counter()
            ranked = await retrieve(pipeline, q, k)
            p = build_prompt(q, ranked, SWEEP_BUDGET, gen.count_tokens, "prefix")
            pre.append(time.perf_counter() - t)
            backend.clear()
            cold.append(await backend.first_token(q, p))
            tokens.append(p.usage.get("prompt_tokens", p.tokens))
            sources.append(len(p.sources))
            again = dataclasses.replace(p, usage={})
            hot.append(await backend.first_token(q, again))
            cached_hot.append(again.usage.get("cached_tokens", 0))
        c, h = p50(cold) * 1000, p50(hot) * 1000
        rows.append(
            {
                "k": k,
                "sources": p50(sources),
                "prompt_tokens": p50(tokens),
                "ttft_cold_ms": round(c, 1),
                "ttft_all_cached_ms": round(h, 1),
                "cached_tokens_when_repeated": p50(cached_hot),
                "prefill_ms": round(c - h, 1),
                "prefill_share": round((c - h) / c, 3) if c else None,
                "prefill_tokens_per_s": round(p50(tokens) / ((c - h) / 1000), 1) if c > h else None,
                "ragcli_before_llm_ms": round(p50(pre) * 1000, 2),
                "runs": len(questions),
            }
        )
        print(f"  {backend.name[:6]} k={k}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


async def follow_ups(
    backend: Backend, pipeline: Any, pairs: list[tuple[str, str]]
) -> dict[str, Any]:
    from ragcli.retrieval.prompt import build_prompt

    gen = backend.generator
    out: dict[str, Any] = {}
    for layout in ("prefix", "ranked"):
        ttft, cached, tokens, same_order = [], [], [], 0
        for q1, q2 in pairs:
            ranked1 = await retrieve(pipeline, q1, 5)
            ranked2 = reorder_for(pipeline, q2, ranked1)
            same_order += [c.id for c, _ in ranked1] == [c.id for c, _ in ranked2]
            p1 = build_prompt(q1, ranked1, 1500, gen.count_tokens, layout)
            p2 = build_prompt(q2, ranked2, 1500, gen.count_tokens, layout)
            backend.clear()
            await backend.first_token(q1, p1)  # the first question fills the cache
            ttft.append(await backend.first_token(q2, p2))
            cached.append(p2.usage.get("cached_tokens", 0))
            tokens.append(p2.usage.get("prompt_tokens", p2.tokens))
        out[layout] = {
            "follow_up_ttft_ms": round(p50(ttft) * 1000, 1),
            "follow_up_ttft_ms_runs": [round(v * 1000, 1) for v in ttft],
            "prompt_tokens": p50(tokens),
            "cached_tokens": p50(cached),
            "pairs": len(pairs),
            "pairs_ranked_alike": same_order,
        }
        print(f"  {backend.name[:6]} {layout}: {out[layout]}", file=sys.stderr, flush=True)
    pre, rk = out["prefix"]["follow_up_ttft_ms"], out["ranked"]["follow_up_ttft_ms"]
    out["ranked_over_prefix"] = round(rk / pre, 2) if pre else None
    return out


def _fact(expected: str, answer: str) -> bool:
    """The expected figure is in the answer: its numbers, or else its longest word."""
    text = answer.lower()
    numbers = re.findall(r"\d+(?::\d+)?", expected)
    if numbers:
        return all(re.search(rf"(?<!\d){re.escape(n)}(?!\d)", text) for n in numbers)
    return max(re.findall(r"[a-z-]+", expected.lower()), key=len) in text


_WORDS = re.compile(r"[a-z0-9]+")


def _trigrams(text: str) -> set[tuple[str, ...]]:
    w = _WORDS.findall(text.lower())
    return set(zip(w, w[1:], w[2:], strict=False))


def answered_from(answer: str, sources: list[Any]) -> str | None:
    """The document whose sources share the most word trigrams with the answer (None: none
    shares any): where the answer's wording came from, cited or not."""
    grams = _trigrams(answer)
    best: dict[str, int] = {}
    for s in sources:
        best[s.chunk.relpath] = best.get(s.chunk.relpath, 0) + len(grams & _trigrams(s.chunk.text))
    doc, hits = max(best.items(), key=lambda kv: kv[1], default=(None, 0))
    return doc if hits else None


async def _answer(pipeline: Any, question: str) -> tuple[str, list[Any]]:
    from ragcli.retrieval.events import DoneEvent, Query, SourcesEvent

    sources, answer = [], ""
    async for event in pipeline.ask(Query(question)):
        if isinstance(event, SourcesEvent):
            sources = event.sources
        elif isinstance(event, DoneEvent):
            answer = event.answer
    return answer, sources


async def quality(home: Path, questions: list[dict], llms: list[str]) -> dict[str, Any]:
    from ragcli.core.config import load_settings
    from ragcli.retrieval.pipeline import Pipeline

    out: dict[str, Any] = {}
    for llm in llms:
        settings = load_settings({"data_dir": home, "llm": llm, "no_cache": "answer"}, environ={})
        pipeline = Pipeline(settings)
        rows = []
        try:
            for item in questions:
                t = time.perf_counter()
                answer, sources = await _answer(pipeline, item["question"])
                by_number = {s.number: s.chunk.relpath for s in sources}
                cited = {by_number.get(int(n)) for n in re.findall(r"\[(\d+)\]", answer)}
                cited.discard(None)
                right = item["sources"][0]
                rows.append(
                    {
                        "question": item["question"],
                        "right_doc_in_sources": right in by_number.values(),
                        "answers_from_right_doc": answered_from(answer, sources) == right,
                        "cites_any": bool(cited),
                        "cites_right_doc": right in cited,
                        "cites_only_right_doc": cited == {right},
                        "expected_fact": _fact(item["answer"], answer),
                        "seconds": round(time.perf_counter() - t, 2),
                        "answer": answer,
                    }
                )
                print(f"  {llm}: {rows[-1]['cites_right_doc']} {answer[:90]!r}", file=sys.stderr)
        finally:
            pipeline.close()
        totals = {
            key: sum(r[key] for r in rows)
            for key in (
                "right_doc_in_sources",
                "answers_from_right_doc",
                "cites_any",
                "cites_right_doc",
                "cites_only_right_doc",
                "expected_fact",
            )
        }
        out[llm] = {"questions": len(rows), **totals, "rows": rows}
    return out


def main() -> None:
    asyncio.run(run())


async def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=3, help="questions per k (part 1)")
    parser.add_argument("--pairs", type=int, default=6, help="follow-up pairs (part 2)")
    parser.add_argument("--quality", type=int, default=8, help="README questions (part 3)")
    parser.add_argument("--server-ttft", type=float, default=0.05, help="server base TTFT (s)")
    parser.add_argument(
        "--server-prefill-ms", type=float, default=0.5, help="server prefill per token (ms)"
    )
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument(
        "--check", action="store_true", help="only check that the local model is ready"
    )
    benchmeta.add_common(parser, "prefill")
    args = parser.parse_args()
    benchmeta.apply_quick(args, parser, questions=1, pairs=2, quality=2)
    if not args.skip_local and (reason := local_not_ready()):
        print(f"prefill.py: the local model is not ready: {reason}", file=sys.stderr)
        raise SystemExit(3)
    if args.check:
        print("prefill.py: the local model is ready")
        return

    from ragcli.core.config import load_settings
    from ragcli.retrieval.pipeline import Pipeline
    from ragcli.retrieval.prompt import build_prompt
    from tests.support.openai_server import OpenAICompatibleServer, ServerConfig

    questions = [
        json.loads(line)
        for line in (REPO / "tests/fixtures/sample_questions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    by_text = {q["question"]: q for q in questions}
    readme = [by_text[q] for q in README_QUESTIONS][: args.quality]
    pairs = list(zip(README_QUESTIONS, FOLLOW_UPS, strict=True))[: args.pairs]
    cfg = ServerConfig(
        reply="The answer is in the sources [1].",
        ttft_s=args.server_ttft,
        prefill_per_token_s=args.server_prefill_ms / 1000,
        prefix_cache_block=16,
        record_bodies=False,
    )
    results: dict[str, Any] = {
        "server_model": {
            "ttft_s": cfg.ttft_s,
            "prefill_ms_per_uncached_token": args.server_prefill_ms,
            "prefix_cache_block_tokens": cfg.prefix_cache_block,
        },
        "sweep_budget_tokens": SWEEP_BUDGET,
        "backends": {},
    }
    with tempfile.TemporaryDirectory() as tmp, OpenAICompatibleServer(cfg) as srv:
        home = Path(tmp) / "home"
        ingest(home)
        settings = load_settings({"data_dir": home}, environ={})
        pipeline = Pipeline(settings)
        await pipeline.warm()
        backends = [] if args.skip_local else [await local_backend()]
        backends.append(await server_backend(srv))
        for b in backends:
            print(f"{b.name}:", file=sys.stderr, flush=True)
            # one unmeasured request: connections, first-call allocations
            ranked = await retrieve(pipeline, README_QUESTIONS[0], 1)
            await b.first_token(
                "warm-up", build_prompt("warm-up", ranked, 500, b.generator.count_tokens)
            )
            results["backends"][b.name] = {
                "kind": b.name.split(" ")[0],  # "local" or "server"
                "prompt_size": await prompt_size(b, pipeline, README_QUESTIONS[: args.questions]),
                "follow_up": await follow_ups(b, pipeline, pairs),
            }
        pipeline.close()
        llms = ["extractive"] + ([] if args.skip_local or len(backends) < 2 else ["local"])
        results["quality"] = await quality(home, readme, llms)

    for name, r in results["backends"].items():
        print(f"\n{name}: TTFT (request → first token) against prompt size")
        print(
            "| k | sources | prompt tokens | TTFT, nothing cached | TTFT, all cached | "
            "prefill | prefill share | prefill tok/s | ragcli before the LLM |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in r["prompt_size"]:
            print(
                f"| {row['k']} | {row['sources']:.0f} | {row['prompt_tokens']:.0f} | "
                f"{row['ttft_cold_ms']:.0f} ms | {row['ttft_all_cached_ms']:.0f} ms | "
                f"{row['prefill_ms']:.0f} ms | {row['prefill_share'] * 100:.0f} % | "
                f"{row['prefill_tokens_per_s'] or 0:.0f} | {row['ragcli_before_llm_ms']:.1f} ms |"
            )
        f = r["follow_up"]
        print(f"\n{name}: follow-up question over the same 5 sources")
        print("| layout | follow-up TTFT p50 | prompt tokens | cached tokens |")
        print("| --- | ---: | ---: | ---: |")
        for layout in ("prefix", "ranked"):
            x = f[layout]
            print(
                f"| {layout} | {x['follow_up_ttft_ms']:.0f} ms | {x['prompt_tokens']:.0f} | "
                f"{x['cached_tokens']:.0f} |"
            )
        print(
            f"ranked / prefix: {f['ranked_over_prefix']}× "
            f"({f['prefix']['pairs_ranked_alike']} of {f['prefix']['pairs']} follow-ups "
            "ranked the sources in the same order)"
        )
    print("\nQuality on the README questions")
    print("| generator | right doc among sources | answers from it | cites it | cites only it | "
          "expected figure in the answer |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for llm, q in results["quality"].items():
        n = q["questions"]
        print(
            f"| {llm} | {q['right_doc_in_sources']}/{n} | {q['answers_from_right_doc']}/{n} | "
            f"{q['cites_right_doc']}/{n} | "
            f"{q['cites_only_right_doc']}/{n} | {q['expected_fact']}/{n} |"
        )
    benchmeta.write_result(args.out, results, args)


if __name__ == "__main__":
    main()
