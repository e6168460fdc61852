"""Abstention on the sample corpus: where to put `abstain_threshold`.

Answers the 40 in-corpus questions (tests/fixtures/sample_questions.jsonl) and the
out-of-corpus ones (eval/sample_corpus/unanswerable.jsonl) on the offline defaults
(extractive, hybrid) with abstention off, records each question's best relevance (the best
retrieved chunk's cosine to the question), then sweeps the threshold: out-of-corpus questions
abstained x/N, in-corpus questions answered with the expected fact y/40, hit@1 (the right
document ranked first). A last pass with the default settings checks the chosen threshold end
to end.

It also measures what the extractive generator's choice of sentences by meaning costs the
time-to-first-token and buys in answers: the 40 questions through one warm in-process pipeline,
each asked with the lexical choice alone, with the meaning rerank (its sentences embedded), and
again (their vectors now in the embedding cache), alternating, answer cache off; the cost is
the `llm.first_token` span (the extractive generator's whole choice).

The Django part (on by default, `--skip-django` to skip) does the same on the Django 5.2
documentation (eval/django_docs: corpus/ built by build_corpus.py, questions.jsonl's 40
questions, unanswerable.jsonl's out-of-corpus ones): that set has no expected-fact strings, so
"answered" is "not abstained"; hit@1 is the first source's path among the question's relevant
documents. `--django-data-dir DIR` keeps (or reuses) the ingested Django data directory: it is
ingested only when empty (~2.5 min on 2 cores). Written under the result's "django" key.

    .venv/bin/python benchmarks/abstention.py [--quick] [--out FILE] [--skip-django]
        [--django-data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchmeta

from ragcli.core.config import Settings
from ragcli.retrieval.events import DoneEvent, Query, Span
from ragcli.retrieval.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
IN_CORPUS = REPO / "tests/fixtures/sample_questions.jsonl"
OUT_OF_CORPUS = REPO / "eval/sample_corpus/unanswerable.jsonl"
DJANGO = REPO / "eval/django_docs"
DEFAULT = Settings().abstain_threshold
SWEEP = [0.0, 0.2, 0.3, 0.35, 0.38, 0.4, 0.42, 0.45, 0.5]


def ragcli(home: Path, *args: str, **env_extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGCLI_", "OPENAI_"))}
    env.update(env_extra, RAGCLI_DAEMON="off")
    cmd = [sys.executable, "-m", "ragcli", "--data-dir", str(home), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"ragcli {' '.join(args[:3])} failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def ask_all(home: Path, questions: list[str], tmp: Path, **env: str) -> list[dict[str, Any]]:
    batch = tmp / "questions.txt"
    batch.write_text("".join(q + "\n" for q in questions))
    out = ragcli(home, "ask", "--batch", str(batch), "--json", "--no-cache", "answer", **env)
    results = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(results) == len(questions), (len(results), len(questions))
    return results


def best(result: dict[str, Any]) -> float:
    return max((s["relevance"] or 0.0 for s in result["sources"]), default=0.0)


def hit1(q: dict[str, Any], r: dict[str, Any]) -> bool:
    ranked = sorted(r["sources"], key=lambda s: s["rank"])
    return bool(ranked) and ranked[0]["path"] in q["sources"]


def measure(
    home: Path, tmp: Path, t: float, questions: list[dict], unanswerable: list[dict], off: list
) -> dict[str, Any]:
    """Both sets asked with abstain_threshold t (cosine and names), and cosine alone at t from
    the best relevances `off` recorded with abstention off."""
    env = {"RAGCLI_ABSTAIN_THRESHOLD": str(t)}
    got_in = ask_all(home, [q["question"] for q in questions], tmp, **env)
    got_out = ask_all(home, [q["text"] for q in unanswerable], tmp, **env)
    return {
        "threshold": t,
        "abstained_out": sum(not r["answered"] for r in got_out),
        "answered_in_with_fact": sum(
            r["answered"] and q["answer"].lower() in r["answer"].lower()
            for q, r in zip(questions, got_in, strict=True)
        ),
        "abstained_in": sum(not r["answered"] for r in got_in),
        "hit1": sum(hit1(q, r) for q, r in zip(questions, got_in, strict=True)),
        "cosine_only_abstained_out": sum(t > 0 and b < t for b in off),
    }


async def _first_token(p: Pipeline, question: str) -> tuple[float, str]:
    """One ask: the llm.first_token span (ms) and the answer."""
    ms, answer = float("nan"), ""
    async for event in p.ask(Query(question)):
        if isinstance(event, Span) and event.name == "llm.first_token":
            ms = event.ms
        elif isinstance(event, DoneEvent):
            answer = event.answer
    return ms, answer


async def rerank_cost(home: Path, questions: list[dict]) -> dict[str, Any]:
    """First-token time (the choice of sentences) and facts, lexical alone vs with the
    meaning rerank, in one warm process, alternating question by question."""
    settings = dataclasses.replace(
        Settings(), data_dir=home, no_cache="answer", abstain_threshold=0.0
    )
    p = Pipeline(settings)
    await p.open()
    await p.warm()
    lend = p.generator.lend_similarity  # type: ignore[attr-defined]
    modes = ("lexical", "meaning", "meaning_cached")
    runs: dict[str, list[float]] = {m: [] for m in modes}
    facts = dict.fromkeys(modes, 0)
    for q in questions:
        # meaning embeds the candidate sentences; meaning_cached finds them in the cache.
        for mode in modes:
            lend(p.similarities if mode != "lexical" else None)
            ms, answer = await _first_token(p, q["question"])
            runs[mode].append(ms)
            facts[mode] += q["answer"].lower() in answer.lower()
    p.close()

    def pct(xs: list[float], f: float) -> float:
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(f * len(xs)))], 2)

    return {
        mode: {"p50_ms": pct(xs, 0.5), "p90_ms": pct(xs, 0.9), "facts": facts[mode]}
        for mode, xs in runs.items()
    }


def relpath(path: str) -> str:
    """A source's path relative to the Django corpus folder (as questions.jsonl names it)."""
    marker = "django_docs/corpus/"
    return path.split(marker, 1)[1] if marker in path else path


def django_hit1(q: dict[str, Any], r: dict[str, Any]) -> bool:
    ranked = sorted(r["sources"], key=lambda s: s["rank"])
    relevant = {p for p, grade in q["sources"].items() if grade > 0}
    return bool(ranked) and relpath(ranked[0]["path"]) in relevant


def django_home(args: argparse.Namespace, tmp: Path) -> Path:
    """The Django data dir: --django-data-dir (ingested there when empty), else a fresh one."""
    corpus = DJANGO / "corpus"
    if not corpus.is_dir():
        raise SystemExit(f"no {corpus}: run eval/django_docs/build_corpus.py first")
    home = args.django_data_dir or tmp / "django"
    if home.is_dir() and any(home.iterdir()):
        print(f"[abstention] reusing the Django data dir {home}", flush=True)
        return home
    print(f"[abstention] ingesting {corpus} into {home} (~2.5 min on 2 cores)", flush=True)
    ragcli(home, "ingest", str(corpus), "--json")
    return home


def measure_django(
    home: Path, tmp: Path, t: float, questions: list[dict], unanswerable: list[dict], off: dict
) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """Both Django sets asked at abstain_threshold t: the row, and the answers (in, out)."""
    env = {"RAGCLI_ABSTAIN_THRESHOLD": str(t)}
    got_in = ask_all(home, [q["question"] for q in questions], tmp, **env)
    got_out = ask_all(home, [q["text"] for q in unanswerable], tmp, **env)
    row = {
        "threshold": t,
        "abstained_out": sum(not r["answered"] for r in got_out),
        "cosine_only_abstained_out": sum(t > 0 and b < t for b in off["out"]),
        "answered_in": sum(r["answered"] for r in got_in),
        "cosine_only_abstained_in": sum(t > 0 and b < t for b in off["in"]),
        "hit1": sum(django_hit1(q, r) for q, r in zip(questions, got_in, strict=True)),
    }
    return row, got_in, got_out


def django_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The Django documentation: the same sweep, "answered" meaning not abstained."""
    questions = read_jsonl(DJANGO / "questions.jsonl")
    unanswerable = read_jsonl(DJANGO / "unanswerable.jsonl")
    home = django_home(args, tmp)
    zero = {"RAGCLI_ABSTAIN_THRESHOLD": "0"}
    got_in = ask_all(home, [q["question"] for q in questions], tmp, **zero)
    got_out = ask_all(home, [q["text"] for q in unanswerable], tmp, **zero)
    off = {"in": [best(r) for r in got_in], "out": [best(r) for r in got_out]}
    sweep, at_default = [], ([], [])
    for t in SWEEP if not args.quick else [0.0, DEFAULT]:
        row, asked_in, asked_out = measure_django(home, tmp, t, questions, unanswerable, off)
        sweep.append(row)
        if t == DEFAULT:
            at_default = (asked_in, asked_out)
    inside = [
        {
            "id": q["id"],
            "question": q["question"],
            "best": b,
            "hit1": django_hit1(q, r),
            "first_source": relpath(r["sources"][0]["path"]) if r["sources"] else None,
            "answered_at_default": a["answered"],
        }
        for q, r, b, a in zip(questions, got_in, off["in"], at_default[0], strict=True)
    ]
    outside = [
        {
            "id": q["_id"],
            "question": q["text"],
            "kind": q["metadata"]["kind"],
            "best": b,
            "abstained_at_default": not a["answered"],
        }
        for q, b, a in zip(unanswerable, off["out"], at_default[1], strict=True)
    ]
    return {"sweep": sweep, "in_corpus": inside, "out_of_corpus": outside}


def print_django(result: dict[str, Any]) -> None:
    inside, outside = result["in_corpus"], result["out_of_corpus"]
    n_out, n_in = len(outside), len(inside)
    print(f"\nDjango 5.2 docs: {n_in} in-corpus questions, {n_out} out-of-corpus")
    print_sweep(
        result["sweep"],
        [
            *out_columns(n_out),
            ("answered in", lambda r: f"{r['answered_in']}/{n_in}"),
            ("(cosine only)", lambda r: f"{n_in - r['cosine_only_abstained_in']}/{n_in}"),
            hit1_column(n_in),
        ],
    )
    print(f"the 3 lowest in-corpus best relevances, and any abstained on at {DEFAULT}:")
    low = sorted(inside, key=lambda x: x["best"])
    for x in [x for i, x in enumerate(low) if i < 3 or not x["answered_at_default"]]:
        said = "answered" if x["answered_at_default"] else "ABSTAINED"
        print(f"  {x['best']:.3f} {said:<9} {x['id']} {x['question']}")
    print(f"the 3 highest out-of-corpus best relevances, and any answered at {DEFAULT}:")
    high = sorted(outside, key=lambda x: -x["best"])
    for x in [x for i, x in enumerate(high) if i < 3 or not x["abstained_at_default"]]:
        said = "abstained" if x["abstained_at_default"] else "ANSWERED"
        print(f"  {x['best']:.3f} {said:<9} {x['id']} {x['kind']:<15} {x['question']}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def sample_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The sample corpus: the sweep, each question's best relevance, the rerank's cost."""
    questions, unanswerable = read_jsonl(IN_CORPUS), read_jsonl(OUT_OF_CORPUS)
    home = tmp / "home"
    ragcli(home, "ingest", "sample_corpus", "--json")
    fresh = tmp / "fresh"  # as ingest left it: no sentence vectors cached yet
    shutil.copytree(home, fresh)
    off = {"RAGCLI_ABSTAIN_THRESHOLD": "0"}
    got_in = ask_all(home, [q["question"] for q in questions], tmp, **off)
    got_out = ask_all(home, [q["text"] for q in unanswerable], tmp, **off)
    bests = [best(r) for r in got_out]
    sweep = [
        measure(home, tmp, t, questions, unanswerable, bests)
        for t in (SWEEP if not args.quick else [0.0, DEFAULT])
    ]
    cost = asyncio.run(rerank_cost(fresh, questions))
    inside = [
        {
            "question": q["question"],
            "best": best(r),
            "fact": q["answer"].lower() in r["answer"].lower(),
        }
        for q, r in zip(questions, got_in, strict=True)
    ]
    outside = [
        {"question": q["text"], "kind": q["metadata"]["kind"], "best": b}
        for q, b in zip(unanswerable, bests, strict=True)
    ]
    return {
        "default_threshold": DEFAULT,
        "extractive_choice": cost,
        "sweep": sweep,
        "in_corpus": inside,
        "out_of_corpus": outside,
    }


Column = tuple[str, Callable[[dict[str, Any]], str]]


def out_columns(n_out: int) -> list[Column]:
    """The threshold and the out-of-corpus columns, the same for both sets."""
    return [
        ("threshold", lambda r: f"{r['threshold']:.2f}"),
        ("abstained out", lambda r: f"{r['abstained_out']}/{n_out}"),
        ("(cosine only)", lambda r: f"{r['cosine_only_abstained_out']}/{n_out}"),
    ]


def hit1_column(n_in: int) -> Column:
    return ("hit@1", lambda r: f"{r['hit1']}/{n_in}")


def print_sweep(sweep: list[dict[str, Any]], columns: list[Column]) -> None:
    """The sweep as a table: one row per threshold, the default marked."""
    widths = [max(len(h), 9) for h, _ in columns]
    print("  ".join(f"{h:>{w}}" for (h, _), w in zip(columns, widths, strict=True)))
    for r in sweep:
        mark = "  <- default" if r["threshold"] == DEFAULT else ""
        cells = (f"{cell(r):>{w}}" for (_, cell), w in zip(columns, widths, strict=True))
        print("  ".join(cells) + mark)


def print_sample(result: dict[str, Any]) -> None:
    inside, outside = result["in_corpus"], result["out_of_corpus"]
    n_out, n_in = len(outside), len(inside)
    print_sweep(
        result["sweep"],
        [
            *out_columns(n_out),
            ("answered in w/ fact", lambda r: f"{r['answered_in_with_fact']}/{n_in}"),
            ("abstained in", lambda r: f"{r['abstained_in']}/{n_in}"),
            hit1_column(n_in),
        ],
    )
    lowest_in = min(inside, key=lambda x: x["best"])
    highest_out = max(outside, key=lambda x: x["best"])
    print(f"lowest in-corpus best relevance {lowest_in['best']:.3f}: {lowest_in['question']}")
    print(
        f"highest out-of-corpus best relevance {highest_out['best']:.3f}: {highest_out['question']}"
    )
    print("extractive choice of sentences (first token, warm process, answer cache off):")
    for mode, c in result["extractive_choice"].items():
        print(
            f"  {mode:<14} p50 {c['p50_ms']:>6.2f} ms  p90 {c['p90_ms']:>6.2f} ms  "
            f"answers with the expected fact {c['facts']}/{n_in}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-django", action="store_true", help="the sample corpus only")
    parser.add_argument(
        "--django-data-dir", type=Path, help="keep (or reuse) the ingested Django data dir"
    )
    benchmeta.add_common(parser, "abstention")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragcli-abstention-") as tmp_name:
        tmp = Path(tmp_name)
        result = sample_part(args, tmp)
        print_sample(result)
        if args.skip_django:
            result["django"] = None
        else:
            result["django"] = django_part(args, tmp)
            print_django(result["django"])
    benchmeta.write_result(args.out, result, args)


if __name__ == "__main__":
    main()
