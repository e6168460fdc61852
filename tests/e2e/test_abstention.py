"""Abstention and readable sources on the sample corpus with the offline defaults (issue 19):
a question the corpus does not answer gets "No answer in the indexed documents." and its
closest sources (exit 0, `"answered": false`); an answered one prints only the sources close
to the best, the cited first, with their relevance; `--json` keeps every source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_ragcli
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig

FRANCE = "What is the capital of France?"
PAGER = "How do I rotate the on-call pager?"
PAGER_DOC = "runbooks/rotate-on-call-pager.md"
UNRELATED = ("benefits-overview.md", "onboarding-first-week.md", "incident-severity-levels.md")


@pytest.fixture(scope="module")
def batch(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("abstention") / "questions.txt"
    path.write_text(f"{FRANCE}\n{PAGER}\n")
    return path


def test_printed_answers_abstain_or_show_the_relevant_sources(
    sample_home: Path, batch: Path
) -> None:
    # --no-cache all: sample_home is shared by the session; a test never writes to it
    proc = run_ragcli(sample_home, "ask", "--batch", str(batch), "--no-cache", "all")
    assert proc.returncode == 0, proc.stderr
    france, pager = proc.stdout.split(f"Q: {PAGER}")
    assert "No answer in the indexed documents." in france
    closest = france.split("Closest sources (they do not answer it):\n")[1].strip().splitlines()
    assert len(closest) == 5 and all(" relevance 0." in line for line in closest)
    assert "Sources:" not in france and "[1]" not in france  # nothing is cited
    sources = pager.split("Sources:\n")[1].strip().splitlines()
    assert PAGER_DOC in sources[0] and " relevance 0." in sources[0]
    assert not any(doc in line for line in sources for doc in UNRELATED), sources
    assert "score" not in pager  # fusion scores are for --json, not for readers


def test_json_says_whether_it_answered_and_keeps_every_source(
    sample_home: Path, batch: Path
) -> None:
    proc = run_ragcli(sample_home, "ask", "--batch", str(batch), "--json", "--no-cache", "all")
    assert proc.returncode == 0, proc.stderr
    france, pager = (json.loads(line) for line in proc.stdout.splitlines())
    assert france["answered"] is False and pager["answered"] is True
    assert france["answer"] == "No answer in the indexed documents."
    for result in (france, pager):
        sources = result["sources"]
        assert len(sources) == 5
        assert sorted(s["rank"] for s in sources) == [1, 2, 3, 4, 5]
        assert all(0 < s["score"] < 1 and 0 <= s["relevance"] <= 1 for s in sources)
    assert max(s["relevance"] for s in france["sources"]) < 0.4 < pager["sources"][0]["relevance"]
    assert any(UNRELATED[0] in s["path"] for s in pager["sources"])  # kept in --json


def test_an_abstention_never_calls_the_llm(sample_home: Path, batch: Path) -> None:
    """Abstention is decided before generation: the LLM server sees only the pager question."""
    with OpenAICompatibleServer(ServerConfig(api_key="sk-test-abstain")) as srv:
        env = {"RAGCLI_OPENAI_BASE_URL": srv.base_url, "OPENAI_API_KEY": "sk-test-abstain"}
        proc = run_ragcli(
            sample_home, "ask", "--batch", str(batch), "--json", "--no-cache", "all", "--llm",
            "openai", **env,
        )  # fmt: skip
        assert srv.counters.chat == 1
    assert proc.returncode == 0, proc.stderr
    france, pager = (json.loads(line) for line in proc.stdout.splitlines())
    assert france["answered"] is False and pager["answered"] is True
