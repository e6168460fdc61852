"""What the CLI prints for people and for scripts: tables never cut (in a pipe, on a narrow
terminal), `--version`, `-q/--quiet`, no colour with NO_COLOR or in a pipe, shell completion.

Each command runs as a real subprocess with stdout on a pipe or on a pseudo-terminal."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import (
    REPO,
    clean_env,
    copy_home,
    ragcli_and_modules,
    read_terminal,
    run_ragcli,
)
from tests.support.eval_sets import write_toy

QUESTION = "How do I rotate the on-call pager?"
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;|9[0-7])[0-9;]*m")  # a foreground colour
LONG = "a-directory-name-much-longer-than-forty-columns-of-a-narrow-terminal"


def on(home: Path, *args: str, tty: bool, **env: str) -> tuple[int, str, str]:
    """`ragcli ARGS` with stdout on a pseudo-terminal (`tty`) or a pipe, at COLUMNS=40;
    stderr on a pipe. (exit code, stdout without the terminal's \\r, stderr)."""
    import threading

    environ = clean_env(home, COLUMNS="40", TERM="xterm-256color", **env)
    if "NO_COLOR" not in env:  # clean_env sets it: a terminal without it draws colours
        del environ["NO_COLOR"]
    master = slave = None
    out: int = subprocess.PIPE
    if tty:
        master, slave = os.openpty()
        out = slave
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragcli", *args],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=REPO,
    )
    err: list[bytes] = [b""]
    reader = threading.Thread(target=lambda: err.__setitem__(0, proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    seen = bytearray()
    if master is not None:
        os.close(slave)  # type: ignore[arg-type]
        seen += read_terminal(master)
    else:
        seen += proc.stdout.read()  # type: ignore[union-attr]
    rc = proc.wait(timeout=300)
    reader.join()
    return rc, seen.decode().replace("\r\n", "\n"), err[0].decode()


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture(scope="module")
def long_home(sample_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample corpus's data directory under a path longer than the terminal."""
    home = tmp_path_factory.mktemp("out") / LONG / "home"
    copy_home(sample_home, home)
    return home


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "terminal"])
def test_status_and_cache_stats_print_every_value_whole(long_home: Path, tty: bool) -> None:
    info = json.loads(run_ragcli(long_home, "status", "--json").stdout)
    rc, out, err = on(long_home, "status", tty=tty)
    assert rc == 0, err
    assert "…" not in out and str(long_home.resolve()) in out or str(long_home) in out
    assert f"documents: {info['documents']}" in out and f"chunks: {info['chunks']}" in out
    for name in info["partitions"]:
        assert name in out
    rc, out, err = on(long_home, "cache", "stats", tty=tty)
    assert rc == 0, err
    assert "…" not in out and LONG in out


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "terminal"])
def test_eval_table_is_never_cut(tmp_path: Path, home: Path, tty: bool) -> None:
    toy = write_toy(tmp_path / f"{LONG}-toy-set")
    args = ("eval", str(toy), "--run", str(toy / "run.txt"))
    report = json.loads(run_ragcli(home, *args, "--json").stdout)
    rc, out, err = on(home, *args, tty=tty)
    assert rc == 0, err
    text = plain(out)
    assert "…" not in text
    assert report["set"]["name"] in text  # the set's name, longer than the terminal, whole
    row = report["configurations"][0]
    assert row["label"] in text
    k = row["config"]["k"]
    for name in ("ndcg@10", "mrr@10", "hit@1", f"hit@{k}", f"recall@{k}"):
        assert f"{row['document'][name]:.3f}" in text, name
    for head in ("nDCG", "MRR", "hit@1", "hit@k", "rec@k"):
        assert head in text
    if not tty:  # a pipe: nothing wrapped, every column as wide as its widest cell
        assert f"ragcli eval: {report['set']['name']} (" in text
        assert "1 queries have no relevant document in the judgements: skipped" in text
        assert any(line.strip().startswith(row["label"]) for line in text.splitlines())


def test_profile_is_never_cut_and_has_no_colour_with_no_color(long_home: Path) -> None:
    args = ("profile", QUESTION, "--runs", "1", "--no-cache", "all")
    names = ("load.embedder", "load.index", "llm.first_token", "TTFT", "p50", "p99", "mean")
    for tty, no_color in ((False, None), (True, "1")):
        env = {"NO_COLOR": no_color} if no_color else {}
        rc, out, err = on(long_home, *args, tty=tty, **env)
        assert rc == 0, err
        assert "…" not in out and not COLOUR.search(out), out
        for name in names:
            assert name in plain(out), name
        if not tty:  # a pipe: no escape code at all, no line wrapped
            assert "\x1b" not in out and "Cold run, from process start: first token after" in out
    # the same terminal without NO_COLOR draws the waterfall's bars in colour
    rc, out, err = on(long_home, *args, tty=True)
    assert rc == 0 and COLOUR.search(out), err


def test_version_names_model_chroma_python_and_imports_nothing_heavy(home: Path) -> None:
    from importlib import metadata

    from ragcli import __version__

    proc, imported = ragcli_and_modules(home, "--version")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"ragcli {__version__}"
    assert "embedding model: all-MiniLM-L6-v2, installed in " in proc.stdout
    assert f"chromadb: {metadata.version('chromadb')}" in lines
    assert f"python: CPython {sys.version.split()[0]}" in proc.stdout
    assert any(line.startswith("platform: Linux") for line in lines)
    assert not {"chromadb", "onnxruntime", "openai", "numpy"} & imported
    # the model not installed: said so, with the command that installs it
    proc = run_ragcli(home, "--version", RAGCLI_MODEL_DIR=str(home / "no-model"))
    assert "all-MiniLM-L6-v2, not installed (run `ragcli model install`)" in proc.stdout


def test_quiet_silences_stderr_but_not_stdout_or_errors(sample_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    copy_home(sample_home, home)
    loud = run_ragcli(home, "ask", QUESTION)
    assert loud.returncode == 0 and "extractive answer" in loud.stderr
    quiet = run_ragcli(home, "-q", "ask", QUESTION)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout == loud.stdout
    as_json = run_ragcli(home, "--quiet", "ask", QUESTION, "--json")
    assert as_json.stderr == "" and json.loads(as_json.stdout)["answer"]
    # an error still prints, in one line
    bad = run_ragcli(home, "-q", "ask", "   ")
    assert bad.returncode != 0 and bad.stderr.startswith("ragcli: error:")
    assert bad.stderr.count("\n") == 1


def test_quiet_ingest_draws_no_progress_on_a_terminal(tmp_path: Path, corpus: Path) -> None:
    home = tmp_path / "home"
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragcli", "-q", "ingest", str(corpus)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=clean_env(home, TERM="xterm-256color"),
        cwd=REPO,
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        seen += data
    os.close(master)
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    assert proc.wait(timeout=300) == 0
    assert seen == b""  # the terminal (stderr) got no bar, no note
    assert "3 files: 3 new" in out  # the summary on stdout is unchanged


def test_shell_completion_is_offered_and_completes_commands(home: Path) -> None:
    command = str(
        Path(sys.executable).parent / "ragcli"
    )  # the installed script, as a shell runs it

    def ragcli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, *args], capture_output=True, text=True, env=clean_env(home, **env), timeout=60
        )

    help_text = ragcli("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    # the shell is named, not detected: under `make` the nearest shell is sh, which typer
    # does not support (a user's interactive bash or zsh is detected)
    script = ragcli("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert script.returncode == 0 and "complete -o default -F _ragcli_completion ragcli" in (
        script.stdout
    )
    done = ragcli(_RAGCLI_COMPLETE="complete_bash", COMP_WORDS="ragcli cache ", COMP_CWORD="2")
    assert set(done.stdout.split()) >= {"stats", "clear"}


def test_quiet_drops_the_writer_lock_notice_but_not_the_error(home: Path) -> None:
    from tests.support.locking import hold_lock

    holder = hold_lock(home)
    try:
        loud = run_ragcli(home, "index", "--wait", "0.3")
        quiet = run_ragcli(home, "-q", "index", "--wait", "0.3")
    finally:
        holder.kill()
        holder.wait()
    assert loud.returncode == quiet.returncode == 5
    assert "waiting up to 0.3 s for another ragcli writer" in loud.stderr
    assert quiet.stderr.startswith("ragcli: error: another ragcli writer is using")
    assert quiet.stderr.count("\n") == 1
