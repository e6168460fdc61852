"""`ragcli [GLOBAL OPTIONS] ask ...` read without Typer, for the fast path.

It accepts exactly the forms click accepts for these options (`--opt VALUE`, `--opt=VALUE`,
`-k VALUE`, `-kVALUE`, `--` before the question; `-q/--quiet` before the command) and answers
None for anything else: another command, `--help`, `--version`, an unknown option, a
malformed value, a --source-floor outside 0..1 (ask's one-line error). None means "take the
normal path", which then gives the usual answer or the usual error: this parser never
reports errors.
"""

from __future__ import annotations

GLOBAL_VALUES = {
    "--data-dir": "data_dir",
    "--config": "config",
    "--chroma-url": "chroma_url",
    "--redis-url": "redis_url",
}
GLOBAL_FLAGS = {"--quiet": "quiet", "-q": "quiet"}  # `ragcli -q ask`: no notes on stderr
ASK_VALUES = {
    "--k": "k",
    "-k": "k",
    "--partition": "partition",
    "-p": "partition",
    "--since": "since",
    "--source": "source",
    "--no-cache": "no_cache",
    "--retrieval": "retrieval",
    "--llm": "llm",
    "--prompt-layout": "prompt_layout",
    "--max-context-tokens": "max_context_tokens",
    "--source-floor": "source_floor",
    "--batch": "batch",
    "--server": "server",
}
ASK_FLAGS = {"--json": "json", "--no-daemon": "no_daemon", "--verbose": "verbose", "-v": "verbose"}
INTS = frozenset({"k", "max_context_tokens"})
FLOATS = frozenset({"source_floor"})  # a share of the best relevance: 0..1


class AskArgs:
    """What an `ask` command line says: global options, the ask options, the question.
    (A plain class: dataclasses would import `inspect`, a tenth of a warm ask's cost.)"""

    def __init__(self) -> None:
        self.globals: dict[str, str] = {}
        self.options: dict[str, str | int | float] = {}
        self.partitions: list[str] = []
        self.flags: set[str] = set()
        self.question: str | None = None


class _Declined(Exception):
    """Not a command line this parser answers for."""


def _split(words: list[str], i: int, table: dict[str, str]) -> tuple[str, str, int] | None:
    """(name, value, next index) if words[i] is one of `table`'s value options."""
    word = words[i]
    if word.startswith("--") and "=" in word:
        opt, value = word.split("=", 1)
        return (table[opt], value, i + 1) if opt in table else None
    if word in table:
        if i + 1 >= len(words):
            raise _Declined
        return table[word], words[i + 1], i + 2
    if len(word) > 2 and not word.startswith("--") and word[:2] in table:  # -k5, -ppolicies
        return table[word[:2]], word[2:], i + 1
    return None


def _ask(words: list[str], args: AskArgs) -> None:
    i, positional = 0, []
    while i < len(words):
        word = words[i]
        if word == "--":
            positional += words[i + 1 :]
            break
        if word in ASK_FLAGS:
            args.flags.add(ASK_FLAGS[word])
            i += 1
            continue
        got = _split(words, i, ASK_VALUES)
        if got is None:
            if word.startswith("-") and word != "-":
                raise _Declined  # --help, an unknown option: the normal path says what
            positional.append(word)
            i += 1
            continue
        name, value, i = got
        if name == "partition":
            args.partitions.append(value)
        else:
            args.options[name] = _typed(name, value)
    if len(positional) > 1:
        raise _Declined
    args.question = positional[0] if positional else None
    if (args.question is None) == ("batch" not in args.options):
        raise _Declined  # neither or both: the normal path's usage error


def _typed(name: str, value: str) -> str | int | float:
    """`value` as the option's type (click's conversion); _Declined when malformed."""
    try:
        if name in INTS:
            return int(value)
        if name in FLOATS:
            number = float(value)
            if not 0.0 <= number <= 1.0:  # NaN too
                raise _Declined
            return number
    except ValueError:
        raise _Declined from None
    return value


def parse_ask(argv: list[str]) -> AskArgs | None:
    """The `ask` command line `argv` (without the program name), or None."""
    args = AskArgs()
    i = 0
    try:
        while i < len(argv) and argv[i] != "ask":
            if argv[i] in GLOBAL_FLAGS:
                args.flags.add(GLOBAL_FLAGS[argv[i]])
                i += 1
                continue
            got = _split(argv, i, GLOBAL_VALUES)
            if got is None:
                return None  # another command, --help, --version, an unknown option
            name, value, i = got
            args.globals[name] = value
        if i >= len(argv):
            return None
        _ask(argv[i + 1 :], args)
    except _Declined:
        return None
    return args
