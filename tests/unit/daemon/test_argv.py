"""The fast path's `ask` parser: exactly the command lines click accepts for `ask` and its
options, and None (the normal path) for everything else."""

from __future__ import annotations

import pytest

from ragcli.daemon.argv import parse_ask

Q = "How do I rotate the on-call pager?"


@pytest.mark.parametrize(
    ("argv", "options"),
    [
        (["ask", Q], {}),
        (["ask", "--k", "3", Q], {"k": 3}),
        (["ask", "--k=3", Q], {"k": 3}),
        (["ask", "-k", "3", Q], {"k": 3}),
        (["ask", "-k3", Q], {"k": 3}),
        (["ask", Q, "--retrieval", "lexical"], {"retrieval": "lexical"}),
        (["ask", "--no-cache=all", Q], {"no_cache": "all"}),
        (
            ["ask", "--prompt-layout", "ranked", "--max-context-tokens", "900", Q],
            {"prompt_layout": "ranked", "max_context_tokens": 900},
        ),  # fmt: skip
        (
            ["ask", "--source", "runbooks/*", "--since", "2025-01-01", Q],
            {"source": "runbooks/*", "since": "2025-01-01"},
        ),  # fmt: skip
        (["ask", "--source-floor", "0.5", Q], {"source_floor": 0.5}),
        (["ask", "--source-floor=0.5", Q], {"source_floor": 0.5}),
        (["ask", Q, "--source-floor", "0"], {"source_floor": 0.0}),
        (["ask", Q, "--source-floor=1"], {"source_floor": 1.0}),
        (["ask", "--", "--k is not an option here"], {}),
    ],
)
def test_accepts_the_forms_click_accepts(argv: list[str], options: dict[str, object]) -> None:
    args = parse_ask(argv)
    assert args is not None
    assert args.options == options
    assert args.question == ("--k is not an option here" if "--" in argv else Q)


def test_global_options_before_the_command_and_repeated_partitions() -> None:
    args = parse_ask(
        ["--data-dir", "/d", "--config=/c.toml", "ask", "-p", "hr", "--partition=ops", "-pfaq", Q]
    )
    assert args is not None
    assert args.globals == {"data_dir": "/d", "config": "/c.toml"}
    assert args.partitions == ["hr", "ops", "faq"]
    assert args.question == Q


@pytest.mark.parametrize("quiet", ["-q", "--quiet"])
def test_quiet_before_the_command(quiet: str) -> None:
    args = parse_ask([quiet, "--data-dir", "/d", "ask", Q])
    assert args is not None
    assert args.flags == {"quiet"} and args.globals == {"data_dir": "/d"}
    assert args.question == Q
    args = parse_ask(["--data-dir=/d", quiet, "ask", "-v", Q])
    assert args is not None and args.flags == {"quiet", "verbose"}


def test_without_quiet_there_is_no_quiet_flag() -> None:
    args = parse_ask(["ask", Q])
    assert args is not None and "quiet" not in args.flags


def test_flags_and_batch() -> None:
    args = parse_ask(["ask", "--batch", "qs.jsonl", "--json", "-v", "--no-daemon"])
    assert args is not None
    assert args.question is None and args.options == {"batch": "qs.jsonl"}
    assert args.flags == {"json", "verbose", "no_daemon"}


def test_an_empty_question_is_still_a_question() -> None:
    args = parse_ask(["ask", ""])
    assert args is not None and args.question == ""  # the answer is the usual usage error


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["status"],
        ["--help"],
        ["--version"],
        ["ask"],  # no question
        ["ask", "--help"],
        ["ask", Q, "--help"],
        ["ask", "--frobnicate", Q],  # an unknown option
        ["--frobnicate", "ask", Q],  # an unknown global option
        ["ask", Q, "another"],  # two positionals
        ["ask", "--k=x", Q],
        ["ask", "-kx", Q],
        ["ask", "--max-context-tokens", "many", Q],
        ["ask", "--source-floor", "half", Q],  # malformed: click's usage error
        ["ask", "--source-floor=", Q],
        ["ask", "--source-floor", "1.5", Q],  # outside 0..1: ask's one-line error
        ["ask", "--source-floor=-0.1", Q],
        ["ask", "--source-floor", "nan", Q],
        ["ask", Q, "--source-floor"],
        ["ask", "-q", Q],  # -q is the app's option, not ask's: click refuses it there
        ["ask", Q, "--quiet"],
        ["--quiet=1", "ask", Q],  # a flag takes no value
        ["-qq", "ask", Q],  # left to click
        ["-q", "--version", "ask", Q],
        ["-q", "--help", "ask", Q],
        ["ask", Q, "--k"],  # a value option without its value
        ["ask", "--batch", "qs.txt", Q],  # both a question and --batch
        ["ingest", "ask"],
    ],
)
def test_declines_everything_else(argv: list[str]) -> None:
    assert parse_ask(argv) is None
