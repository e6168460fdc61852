"""ragcli's whole ingest against an OpenAI-compatible API, beside LlamaIndex's embedding of the
same texts on the same server, in one run (issue 17).

    python benchmarks/ingest_remote.py [--files 5000,50000] [--rounds 3] [--compare-max 5000]
        [--latency 0.15] [--max-in-flight 10] [--retry-after 1] [--seed 0]

The server: the project's test server (tests/support/openai_server.py) in its own process,
`--latency` seconds per embeddings request, HTTP 429 (Retry-After `--retry-after` s) above
`--max-in-flight` requests in flight, 1536-d vectors (text-embedding-3-small's own size: ragcli
sends no `dimensions` for it, nor does LlamaIndex by default, so the server's default is set to
1536). Its counters (GET /_stats) are reset before each run.

The corpus: N plain-text files in one folder (one partition), generated from a fixed seed:
English prose in the style of a company handbook (a title, then 2–5 paragraphs of sentences
built from templates over a vocabulary of a dozen topics), 150–350 words each (uniform), about
2 of ragcli's default chunks (200 tokens, 40 overlap) per file.

Per size, rounds alternate (ragcli, then LlamaIndex) and every figure is from the round of
median ragcli wall (all rounds are kept in the JSON):

* ragcli: the command as a user runs it, a new process each round, fresh data directory:
  `ragcli --data-dir D ingest DIR --embedder openai:text-embedding-3-small --json`
  (OPENAI_BASE_URL, OPENAI_API_KEY, RAGCLI_DAEMON=off, no other RAGCLI_* variable, run from an
  empty folder so no ragcli.toml applies). Wall from spawn to exit; peak RSS and CPU time from
  os.wait4; requests, inputs, 429s and the time with an embeddings request in flight
  (`embeddings_busy_s`) from the server. "Not on the network" = 1 − busy / wall, split into
  before the first request, gaps between requests, and after the last answer. Every chunk
  embedded: the server embedded at least as many distinct texts as the report has chunks,
  and `ragcli status --json` shows them all in the catalogue, in the embedding cache and the
  index in step. `phases` and `peak_rss_mb` of the JSON report are kept when it has them.
* LlamaIndex (`make bench-deps` installs it once in benchmarks/.venv-llamaindex;
  benchmarks/llamaindex_embed.py runs there), its embedding alone with its async default:
  `OpenAIEmbedding(model="text-embedding-3-small", api_base=..., api_key=...)` and
  `await embed_model.aget_text_embedding_batch(texts)` over **the texts ragcli embedded**
  (ragcli's chunks, read from its catalogue): the same inputs and tokens, so the two do the same
  network work and only how they do it differs. Timed in-process (first request to last
  vector: the headline "embedding alone") and as a whole new process (imports included).
  For context, also over its own SentenceSplitter's nodes of the same files (fewer, longer
  texts: 1 node per file at its 1024-token default), the reading and splitting not timed in.

Sizes above `--compare-max` files run ragcli once, without LlamaIndex (the 50,000-file row:
wall, requests, peak RSS, the share not on the network). `--quick`: 500 files, 1 round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import benchmeta  # noqa: E402

MODEL = "text-embedding-3-small"
DIMS = 1536
LLAMA_VENV = REPO / "benchmarks" / ".venv-llamaindex"
LLAMA_PYTHON = LLAMA_VENV / "bin" / "python"
LLAMA_SCRIPT = REPO / "benchmarks" / "llamaindex_embed.py"
TARGETS = {"ratio_vs_llamaindex_embed": 0.5, "requests": 200, "storm_429_share": 0.1}

# -- the corpus -----------------------------------------------------------------------------


def _phrases(text: str) -> list[str]:
    return [x.strip() for x in text.split("|")]


# topic: (things, actors), "|"-separated
TOPICS: dict[str, tuple[str, str]] = {
    "on-call": ("pager|rotation|incident|escalation policy|runbook|handover",
                "the primary engineer|the secondary|the incident commander|the team"),
    "databases": ("replica|failover|backup|restore drill|checksum|migration",
                  "the database team|the storage owner|each region|the platform group"),
    "deployments": ("canary|feature flag|rollback|release train|changelog|build",
                    "every service|the release captain|the pipeline|each squad"),
    "security": ("access review|credential|audit log|vulnerability|patch|token",
                 "the security team|every employee|the owner of a system|auditors"),
    "payroll": ("payslip|bonus|expense claim|receipt|pension|tax form",
                "payroll|the finance office|each manager|new joiners"),
    "travel": ("booking|per diem|flight|hotel|visa letter|travel request",
               "the traveller|the travel desk|the approving manager|the office"),
    "leave": ("parental leave|holiday|sick day|sabbatical|leave request|calendar",
              "the employee|the people team|the line manager|the primary caregiver"),
    "support": ("ticket|customer|service level|refund|complaint|knowledge base",
                "the support desk|the account manager|tier two|the duty lead"),
    "capacity": ("forecast|quota|load test|cluster|budget|headroom",
                 "the capacity planner|each product|the infrastructure team|finance"),
    "hiring": ("interview loop|offer|reference check|job description|onboarding|scorecard",
               "the recruiter|the hiring manager|every interviewer|the panel"),
    "facilities": ("badge|meeting room|desk booking|parking space|locker|visitor",
                   "reception|the facilities team|visitors|the office manager"),
    "data": ("dashboard|metric|retention policy|data request|export|schema",
             "the analytics team|the data owner|each report|the privacy officer"),
}  # fmt: skip
VERBS = _phrases("reviews|approves|updates|checks|records|rotates|schedules|archives|escalates|"
                 "documents|confirms|publishes|tests|tracks")  # fmt: skip
ADJECTIVES = _phrases("weekly|quarterly|urgent|routine|shared|regional|written|automated|"
                      "manual|annual|temporary|critical|standard|new")  # fmt: skip
WHEN = _phrases(
    "every Monday before ten|at the end of each quarter|within two working days|before the "
    "change window opens|on the first day of the month|after each incident|during the handover "
    "meeting|once the ticket is closed|by the twenty-fifth|at least a week in advance|as soon as "
    "possible|before anyone signs off"
)
WHY = _phrases(
    "so that nothing is lost between shifts|because auditors ask for it every year|which keeps "
    "the numbers honest|to keep customers informed|since the old process caused delays|so the "
    "next person can pick it up|because regulators require a paper trail|to avoid surprises at "
    "month end"
)
CONNECT = _phrases("In practice,|As a rule,|Where possible,|For example,|If in doubt,|Note that|"
                   "Usually|In most regions,|After the review,|Occasionally")  # fmt: skip
PEOPLE = _phrases("Amara|Bruno|Chen|Dana|Elif|Farid|Greta|Hiro|Ines|Jonas|Kofi|Lena|Mateo|"
                  "Noor|Olga|Priya|Quentin|Rosa|Sven|Tariq")  # fmt: skip


def _sentence(rng: random.Random, nouns: list[str], actors: list[str]) -> str:
    actor, noun, other = rng.choice(actors), rng.choice(nouns), rng.choice(nouns)
    kind = rng.randrange(6)
    if kind == 0:
        s = f"{actor} {rng.choice(VERBS)} the {rng.choice(ADJECTIVES)} {noun} {rng.choice(WHEN)}"
    elif kind == 1:
        s = f"the {noun} is {rng.choice(VERBS)[:-1]}ed by {actor}, {rng.choice(WHY)}"
        s = s.replace("eed by", "ed by")
    elif kind == 2:
        n = rng.randint(2, 90)
        s = f"about {n} percent of each {noun} needs a {rng.choice(ADJECTIVES)} {other}"
    elif kind == 3:
        s = (
            f"{rng.choice(PEOPLE)} from {actor} owns the {noun} and keeps the {other} "
            f"up to date {rng.choice(WHEN)}"
        )
    elif kind == 4:
        a = "an" if noun[0] in "aeiou" else "a"
        s = f"ask {actor} before changing {a} {noun}; the {other} must stay "
        s += rng.choice(ADJECTIVES)
    else:
        s = f"a {rng.choice(ADJECTIVES)} {noun} {rng.choice(VERBS)} the {other} {rng.choice(WHY)}"
    if rng.random() < 0.35:
        s = f"{rng.choice(CONNECT)} {s}"
    return s[0].upper() + s[1:] + "."


def document(i: int, seed: int) -> str:
    """File i of the corpus: a title and 150–350 words of handbook prose, from (seed, i) alone."""
    rng = random.Random(f"{seed}:{i}")
    topic = rng.choice(list(TOPICS))
    nouns, actors = (_phrases(x) for x in TOPICS[topic])
    target = rng.randint(150, 350)
    title = f"{topic.title()}: the {rng.choice(nouns)} ({rng.choice(PEOPLE)}, note {i})"
    paragraphs: list[str] = []
    words = 0
    while words < target:
        para: list[str] = []
        for _ in range(rng.randint(3, 6)):
            para.append(_sentence(rng, nouns, actors))
            words += len(para[-1].split())
            if words >= target:
                break
        paragraphs.append(" ".join(para))
    return title + "\n\n" + "\n\n".join(paragraphs) + "\n"


def make_corpus(folder: Path, n: int, seed: int) -> dict[str, Any]:
    t = time.perf_counter()
    folder.mkdir(parents=True)
    words: list[int] = []
    size = 0
    for i in range(n):
        text = document(i, seed)
        (folder / f"note-{i:06d}.txt").write_text(text, "utf-8")
        words.append(len(text.split()))
        size += len(text.encode())
    return {
        "files": n,
        "words_mean": round(statistics.fmean(words), 1),
        "words_min": min(words),
        "words_max": max(words),
        "mb": round(size / 1e6, 2),
        "generate_s": round(time.perf_counter() - t, 2),
    }


# -- the server -----------------------------------------------------------------------------
class Server:
    """The test server as a subprocess (so that it does not share the clients' GIL)."""

    def __init__(self, args: argparse.Namespace) -> None:
        cmd = [
            sys.executable,
            "-m",
            "tests.support.openai_server",
            "--latency",
            str(args.latency),
            "--max-in-flight",
            str(args.max_in_flight),
            "--retry-after",
            str(args.retry_after),
            "--dimensions",
            str(DIMS),
            "--record-bodies",
            "0",
            "--record-texts",
            "1",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise SystemExit("the test server did not start")
        self.root = self.base_url.removesuffix("/v1")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.root}/_stats") as r:
            stats: dict[str, Any] = json.load(r)
        return stats

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.root}/_reset", data=b"{}", method="POST")
        urllib.request.urlopen(req).close()

    def cpu_s(self) -> float:
        """The server process's CPU time so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def server_figures(cpu_before: float, server: Server) -> dict[str, Any]:
    s = server.stats()
    return {
        "requests": s["embeddings"],
        "throttled_429": s["throttled"],
        "inputs": s["inputs"],
        "tokens": s["tokens"],
        "distinct_texts": s["distinct_texts"],
        "max_inputs_per_request": s["max_inputs_seen"],
        "max_in_flight": s["max_in_flight_seen"],
        "busy_s": s["embeddings_busy_s"],
        "first_request_at": s["first_embeddings_at"],
        "last_answer_at": s["last_embeddings_at"],
        "server_cpu_s": round(server.cpu_s() - cpu_before, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),  # the machine is shared: how busy it was
    }


# -- a timed process ------------------------------------------------------------------------
def timed_process(
    cmd: list[str], env: dict[str, str], cwd: Path, log: Path
) -> tuple[int, float, float, Any, str]:
    """Spawn → exit: (exit code, monotonic spawn, monotonic exit, rusage, stdout)."""
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    with out.open("wb") as o, err.open("wb") as e:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        t1 = time.monotonic()
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = err.read_text("utf-8", "replace").strip().splitlines()[-5:]
        raise SystemExit(f"{' '.join(cmd[:3])}… exited {code}:\n" + "\n".join(tail))
    return code, t0, t1, usage, out.read_text("utf-8")


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("RAGCLI_", "OPENAI_", "TIKTOKEN_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, **extra}


def ragcli_module() -> str:
    """Where the ragcli that runs is imported from (a checkout other than this one shows)."""
    code = "import ragcli; print(ragcli.__file__)"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, check=False
    )
    where = proc.stdout.strip()
    if not where:
        return proc.stderr.strip()[-200:]
    with contextlib.suppress(ValueError):
        return str(Path(where).relative_to(REPO))
    return where


def ragcli_command() -> list[str]:
    script = Path(sys.executable).parent / "ragcli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ragcli"]


# -- ragcli ---------------------------------------------------------------------------------
def run_ragcli(corpus: Path, work: Path, server: Server, tag: str) -> dict[str, Any]:
    data = work / f"data-{tag}"
    env = clean_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="bench", RAGCLI_DAEMON="off")
    cmd = [
        *ragcli_command(),
        "--data-dir",
        str(data),
        "ingest",
        str(corpus),
        "--embedder",
        f"openai:{MODEL}",
        "--json",
    ]
    server.reset()
    cpu = server.cpu_s()
    _, t0, t1, usage, out = timed_process(cmd, env, work, work / f"ragcli-{tag}")
    net = server_figures(cpu, server)
    report = json.loads(out)
    wall = t1 - t0
    row: dict[str, Any] = {
        "wall_s": round(wall, 3),
        "chunks": report["chunks"],
        "embedded": report["embedded"],
        "files": report["files"],
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        **{k: v for k, v in net.items() if not k.endswith("_at")},
        "busy_s": round(net["busy_s"], 3),
        **network_share(wall, t0, t1, net),
    }
    for key in ("phases", "peak_rss_mb"):
        if key in report:
            row[f"report_{key}"] = report[key]
    row["status"] = status_check(data, env, work, report["chunks"])
    row["all_embedded"] = bool(
        row["status"]["ok"]
        and net["inputs"] >= report["chunks"] == report["embedded"]
        and net["distinct_texts"] >= report["chunks"]
    )
    row["data_dir"] = str(data)
    return row


def network_share(wall: float, t0: float, t1: float, net: dict[str, Any]) -> dict[str, Any]:
    """Where the wall time went relative to the server: waiting on it, or not."""
    if not net["first_request_at"]:
        return {"not_on_network_share": 1.0}
    before = net["first_request_at"] - t0
    after = t1 - net["last_answer_at"]
    gaps = max(0.0, (net["last_answer_at"] - net["first_request_at"]) - net["busy_s"])
    return {
        "not_on_network_share": round(1 - net["busy_s"] / wall, 4),
        "before_first_request_s": round(before, 3),
        "gaps_between_requests_s": round(gaps, 3),
        "after_last_answer_s": round(after, 3),
    }


def status_check(data: Path, env: dict[str, str], work: Path, chunks: int) -> dict[str, Any]:
    cmd = [*ragcli_command(), "--data-dir", str(data), "status", "--json"]
    proc = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, check=True)
    s = json.loads(proc.stdout)
    index = s.get("index") or {}
    out = {
        "chunks": s.get("chunks"),
        "cached_embeddings": (s.get("cache") or {}).get("embeddings"),
        "index_in_step": index.get("in_step"),
        "embedder": s.get("embedder"),
        "problems": s.get("problems"),
    }
    out["ok"] = bool(
        out["chunks"] == chunks
        and (out["cached_embeddings"] or 0) >= chunks
        and out["index_in_step"]
        and not out["problems"]
        and str(out["embedder"]).endswith(f":{DIMS}")
    )
    return out


def chunk_texts(data: Path) -> list[str]:
    """The texts ragcli embedded: its chunks, from its catalogue (the source of truth)."""
    db = sqlite3.connect(f"file:{data / 'catalog.db'}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT text FROM chunks ORDER BY doc_path, position")]
    finally:
        db.close()


# -- LlamaIndex -----------------------------------------------------------------------------
def llama_ready() -> str:
    """'' when the LlamaIndex venv can run, else why not."""
    if not LLAMA_PYTHON.exists():
        return f"{LLAMA_VENV.relative_to(REPO)} is missing: run `make bench-deps` once"
    probe = subprocess.run(
        [str(LLAMA_PYTHON), "-c", "import llama_index.embeddings.openai"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return "llama_index is not importable in the venv: run `make bench-deps`"
    return ""


def run_llama(source: list[str], work: Path, server: Server, tag: str) -> dict[str, Any]:
    """One LlamaIndex process: `source` is ["--texts", FILE] or ["--files", DIR]."""
    result = work / f"llama-{tag}.json"
    cmd = [
        str(LLAMA_PYTHON),
        str(LLAMA_SCRIPT),
        "--base-url",
        server.base_url,
        "--api-key",
        "bench",
        *source,
        "--out",
        str(result),
    ]
    server.reset()
    cpu = server.cpu_s()
    _, t0, t1, usage, _ = timed_process(cmd, clean_env(), work, work / f"llama-{tag}")
    net = server_figures(cpu, server)
    r = json.loads(result.read_text("utf-8"))
    return {
        "embed_s": round(r["embed_s"], 3),
        "process_wall_s": round(t1 - t0, 3),
        "texts": r["texts"],
        "all_embedded": r["vectors"] == r["texts"]
        and r["dims"] == [DIMS]
        and net["inputs"] >= r["texts"],
        "dims": r["dims"],
        "import_s": round(r["import_s"], 3),
        **{k: round(r[k], 3) for k in ("read_s", "split_s") if k in r},
        **({"documents": r["documents"]} if "documents" in r else {}),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        **{k: v for k, v in net.items() if not k.endswith("_at")},
        "busy_s": round(net["busy_s"], 3),
        "defaults": {k: r[k] for k in ("embed_batch_size", "num_workers", "max_retries")},
        "versions": r["versions"],
    }


# -- one size -------------------------------------------------------------------------------
def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r[key])
    middle = {k: v for k, v in ordered[(len(ordered) - 1) // 2].items() if k != "data_dir"}
    return {**middle, "rounds": [r[key] for r in runs]}


def measure_size(
    n: int, rounds: int, args: argparse.Namespace, server: Server, work: Path, compare: str
) -> dict[str, Any]:
    corpus = work / f"corpus-{n}" / "handbook"
    info = make_corpus(corpus, n, args.seed)
    print(
        f"\n{n:,} files: {info['words_mean']:.0f} words on average "
        f"({info['words_min']}–{info['words_max']}), {info['mb']} MB",
        flush=True,
    )
    ours: list[dict[str, Any]] = []
    same: list[dict[str, Any]] = []
    splitter: list[dict[str, Any]] = []
    texts_file = work / f"texts-{n}.json"
    for i in range(rounds):
        tag = f"{n}-{i}"
        ours.append(run_ragcli(corpus, work, server, tag))
        print(
            f"  round {i + 1}: ragcli {ours[-1]['wall_s']:.2f} s, "
            f"{ours[-1]['requests']} requests, {ours[-1]['chunks']:,} chunks",
            flush=True,
        )
        data = Path(ours[-1]["data_dir"])
        if not compare and not texts_file.exists():
            texts_file.write_text(json.dumps(chunk_texts(data)), "utf-8")
        shutil.rmtree(data)  # gigabytes at 50,000 files
        if compare:
            continue
        same.append(run_llama(["--texts", str(texts_file)], work, server, f"{tag}-texts"))
        splitter.append(run_llama(["--files", str(corpus)], work, server, f"{tag}-files"))
        print(
            f"           LlamaIndex embedding alone {same[-1]['embed_s']:.2f} s "
            f"(process {same[-1]['process_wall_s']:.2f} s), {same[-1]['requests']} requests, "
            f"{same[-1]['throttled_429']} 429s; over its own nodes "
            f"{splitter[-1]['embed_s']:.2f} s",
            flush=True,
        )
    out: dict[str, Any] = {"corpus": info, "ragcli": median_run(ours, "wall_s")}
    if compare:
        out["llamaindex"] = {"skipped": compare}
        return out
    out["llamaindex_same_texts"] = median_run(same, "embed_s")
    out["llamaindex_own_nodes"] = median_run(splitter, "embed_s")
    out["verdict"] = verdict(out["ragcli"], out["llamaindex_same_texts"])
    return out


def verdict(ours: dict[str, Any], llama: dict[str, Any]) -> dict[str, Any]:
    ratio = ours["wall_s"] / llama["embed_s"]
    storm = ours["throttled_429"] > TARGETS["storm_429_share"] * max(1, ours["requests"])
    return {
        "ratio_vs_llamaindex_embed": round(ratio, 3),
        "ratio_vs_llamaindex_process": round(ours["wall_s"] / llama["process_wall_s"], 3),
        "ratio_met": ratio <= TARGETS["ratio_vs_llamaindex_embed"],
        "all_embedded": ours["all_embedded"],
        "requests_met": ours["requests"] <= TARGETS["requests"],
        "no_429_storm": not storm,
    }


# -- output ---------------------------------------------------------------------------------
def print_table(sizes: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nserver: {args.latency * 1000:.0f} ms per request, HTTP 429 above "
        f"{args.max_in_flight} in flight (Retry-After {args.retry_after:g} s), {DIMS}-d"
    )
    head = (
        f"{'files':>7} {'run':<44}{'wall':>9}{'requests':>9}{'429s':>6}{'inputs':>8}"
        f"{'peak RSS':>10}{'CPU':>8}{'not net':>8}"
    )
    print(head)
    for n, s in sizes.items():
        rows = [("ragcli ingest, whole process", s["ragcli"], s["ragcli"]["wall_s"])]
        if "llamaindex_same_texts" in s:
            li, own = s["llamaindex_same_texts"], s["llamaindex_own_nodes"]
            rows += [
                ("LlamaIndex embedding alone (same texts)", li, li["embed_s"]),
                ("LlamaIndex, whole process (same texts)", li, li["process_wall_s"]),
                (f"LlamaIndex embedding alone ({own['texts']:,} own nodes)", own, own["embed_s"]),
            ]
        for name, r, wall in rows:
            share = r.get("not_on_network_share")
            cpu = r["cpu_user_s"] + r["cpu_sys_s"]
            print(
                f"{int(n):>7,} {name:<44}{wall:>8.2f}s{r['requests']:>9}"
                f"{r['throttled_429']:>6}{r['inputs']:>8}{r['peak_rss_mb']:>8.0f}MB"
                f"{cpu:>7.1f}s{'' if share is None else f'{share:.0%}':>8}"
            )
        ours = s["ragcli"]
        if "before_first_request_s" in ours:
            print(
                f"{'':>8}ragcli: {ours['before_first_request_s']:.2f} s before the first request, "
                f"{ours['busy_s']:.2f} s with requests in flight, "
                f"{ours['gaps_between_requests_s']:.2f} s of gaps, "
                f"{ours['after_last_answer_s']:.2f} s after the last answer"
            )
        if "report_phases" in ours:
            phases = ", ".join(
                f"{k} {v:.2f} s" if isinstance(v, (int, float)) else f"{k} {v}"
                for k, v in ours["report_phases"].items()
            )
            print(f"{'':>8}ragcli's phases: {phases}")
        if "report_peak_rss_mb" in ours:
            print(f"{'':>8}ragcli's own peak RSS: {ours['report_peak_rss_mb']} MB")
        if "verdict" in s:
            v = s["verdict"]
            print(
                f"{'':>8}ratio {v['ratio_vs_llamaindex_embed']:.2f}× LlamaIndex's embedding "
                f"alone (target ≤ {TARGETS['ratio_vs_llamaindex_embed']}); all embedded: "
                f"{v['all_embedded']}; ≤ {TARGETS['requests']} requests: {v['requests_met']}; "
                f"no 429 storm: {v['no_429_storm']}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", default="5000,50000", help="comma-separated corpus sizes")
    p.add_argument("--rounds", type=int, default=3, help="rounds at the compared sizes")
    p.add_argument(
        "--compare-max",
        type=int,
        default=5000,
        help="LlamaIndex runs beside ragcli up to this many files",
    )
    p.add_argument("--latency", type=float, default=0.15)
    p.add_argument("--max-in-flight", type=int, default=10)
    p.add_argument("--retry-after", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    benchmeta.add_common(p, "ingest_remote")
    args = p.parse_args()
    benchmeta.apply_quick(args, p, files="500", rounds=1, compare_max=500)
    sizes = [int(x) for x in args.files.split(",") if x]
    why_not = llama_ready()
    if why_not:
        print(f"LlamaIndex not measured: {why_not}", file=sys.stderr)
    server = Server(args)
    results: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="ingest-remote-") as tmp:
            for n in sizes:
                compared = n <= args.compare_max and not why_not
                compare = "" if compared else (why_not or f"above --compare-max {args.compare_max}")
                results[str(n)] = measure_size(
                    n, args.rounds if compared else 1, args, server, Path(tmp), compare
                )
    finally:
        server.close()
    print_table(results, args)
    setup = {
        "model": MODEL,
        "dimensions": DIMS,
        "server": {
            "latency_s": args.latency,
            "max_in_flight": args.max_in_flight,
            "retry_after_s": args.retry_after,
            "per_token_s": 0.0,
        },
        "corpus": f"handbook prose, 150–350 words per file (uniform), one folder, seed {args.seed}",
        "ragcli_command": f"ragcli --data-dir D ingest DIR --embedder openai:{MODEL} --json",
        "targets": TARGETS,
        "ragcli_module": ragcli_module(),
    }
    benchmeta.write_result(args.out, {"setup": setup, "sizes": results}, args)


if __name__ == "__main__":
    main()
