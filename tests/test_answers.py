"""Answer quality on the sample corpus with the offline defaults (a regression gate, not a
benchmark): the right document retrieved, and the quoted answer holding the expected fact."""

import json
from pathlib import Path

from tests.conftest import run_ragcli

# Measured when written: top-1 36/40, hit@5 40/40, answer phrase 38/40.
MIN_TOP1, MIN_HIT5, MIN_ANSWER = 33, 38, 34


def test_sample_questions_are_answered_from_the_right_source(
    sample_home: Path, sample_questions: list[dict], tmp_path: Path
) -> None:
    batch = tmp_path / "questions.txt"
    batch.write_text("\n".join(q["question"] for q in sample_questions) + "\n")
    proc = run_ragcli(sample_home, "ask", "--batch", str(batch), "--json", "--no-cache", "answer")
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(sample_questions) == 40
    top1 = hit5 = answered = 0
    for q, r in zip(sample_questions, results, strict=True):
        paths = [s["path"] for s in r["sources"]]
        top1 += bool(paths) and paths[0] in q["sources"]
        hit5 += any(p in q["sources"] for p in paths[:5])
        answered += q["answer"].lower() in r["answer"].lower()
    assert top1 >= MIN_TOP1 and hit5 >= MIN_HIT5 and answered >= MIN_ANSWER, (top1, hit5, answered)


def test_prompt_injection_in_a_document_is_only_quoted(sample_home: Path) -> None:
    proc = run_ragcli(
        sample_home,
        "ask",
        "What should I do with a message asking for the admin password?",
        "--json",
    )
    out = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert any(s["path"] == "faq/security-faq.md" for s in out["sources"])
    assert out["generator"] == "extractive"  # the text is quoted with its source, never obeyed
