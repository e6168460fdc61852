"""retrieval/questions.py in-process: the question file of `ask --batch` / `profile
--questions` (a question a line, or JSONL), and the question alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli.core.errors import UsageError
from ragcli.retrieval.questions import QueryFlags, queries_from, read_batch

FLAGS = QueryFlags(k=3, partitions=("ops",), since="30d", source=None)


def fields(query: object) -> tuple[object, ...]:
    return tuple(
        getattr(query, name) for name in ("question", "k", "partitions", "since", "source")
    )


def test_a_question_a_line_takes_the_flags_and_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("# a comment\n\n  first question  \nsecond question\n", encoding="utf-8")
    assert [fields(q) for q in read_batch(path, FLAGS)] == [
        ("first question", 3, ("ops",), "30d", None),
        ("second question", 3, ("ops",), "30d", None),
    ]


def test_jsonl_lines_override_the_flags_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "a", "k": 7, "partition": "docs", "source": "*/runbooks/*"}\n'
        '{"question": "b", "partitions": ["x", "y"], "since": "2w"}\n'
        '{"question": 42}\n'
        "plain\n",
        encoding="utf-8",
    )
    assert [fields(q) for q in read_batch(path, FLAGS)] == [
        ("a", 7, ("docs",), "30d", "*/runbooks/*"),
        ("b", 3, ("x", "y"), "2w", None),
        ("42", 3, ("ops",), "30d", None),
        ("plain", 3, ("ops",), "30d", None),
    ]


@pytest.mark.parametrize("line", ['{"k": 3}', "{not json", '{"question": "q", "k": 1} x'])
def test_a_bad_json_line_is_a_usage_error_naming_its_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(f"fine\n{line}\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_batch(path, FLAGS)
    assert str(caught.value) == f'{path}:2: expected a question or a JSON object with "question"'


def test_an_empty_or_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n", encoding="utf-8")
    with pytest.raises(UsageError, match="holds no questions"):
        read_batch(empty, FLAGS)
    with pytest.raises(UsageError, match="cannot read --batch file"):
        read_batch(tmp_path / "missing.txt", FLAGS)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UsageError, match="cannot read --batch file"):
        read_batch(binary, FLAGS)


def test_queries_from_a_question_or_a_file(tmp_path: Path) -> None:
    assert [fields(q) for q in queries_from("why?", None, FLAGS)] == [
        ("why?", 3, ("ops",), "30d", None)
    ]
    path = tmp_path / "q.txt"
    path.write_text("from the file\n", encoding="utf-8")
    assert [q.question for q in queries_from(None, path, FLAGS)] == ["from the file"]
