"""The warm daemon as a shell meets it: `ragcli ask` starts it, uses it, falls back without
it, and `ragcli daemon start|stop|status` manage it (ragcli/daemon/).

Judged by events and counters — which pid answered (`-v`), the daemon's request count, its
socket and pid appearing and disappearing — never by a clock: every wait below has a generous
deadline that only ends a hang."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragcli.daemon.client import Client, Unavailable
from ragcli.daemon.location import Location
from tests.support.cli import REPO, clean_env, copy_home, run_ragcli
from tests.support.openai_server import OpenAICompatibleServer, ServerConfig, wait_for

ON = {"RAGCLI_DAEMON": "on"}
Q = "How do I rotate the on-call pager?"
ANSWERED = re.compile(r"^ragcli: daemon: answered by pid (\d+) \((started in \d+ ms|warm)\)$")
IN_PROCESS = re.compile(r"^ragcli: daemon: .*; answering in-process$")


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def dhome(sample_home: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the ingested sample corpus (a daemon writes its caches); its daemon,
    if any, is stopped when the test ends."""
    home = tmp_path / "h"
    copy_home(sample_home, home)
    yield home
    stop_all(home)


def stop_all(home: Path) -> None:
    """SIGTERM every daemon of `home` (one a test stopped or replaced too); they finish exiting
    on their own, unwaited (tests/support/cli.py's stop_daemons waits at the session's end)."""
    for pid in daemons_of(home):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)


def ask(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`ragcli ask ARGS -v` with the daemon on."""
    return run_ragcli(home, "ask", *args, "-v", **{**ON, **env})


def daemon_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ragcli: daemon:")]


def answered_by(proc: subprocess.CompletedProcess[str]) -> int:
    """The pid of the daemon that answered (its one -v line); fails if it answered in-process."""
    lines = daemon_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    match = ANSWERED.match(lines[0])
    assert match, proc.stderr
    return int(match.group(1))


def in_process(proc: subprocess.CompletedProcess[str]) -> str:
    """The one -v line saying the answer came from the client's own process."""
    lines = daemon_lines(proc.stderr)
    assert len(lines) == 1 and IN_PROCESS.match(lines[0]), proc.stderr
    return lines[0]


def status(home: Path) -> dict[str, Any] | None:
    try:
        return Client(Location(home.resolve())).status()
    except Unavailable:
        return None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def daemons_of(home: Path) -> list[int]:
    """The pids of the daemon processes serving `home`."""
    wanted = ["-m", "ragcli.daemon.main", "--data-dir", str(home.resolve())]
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if entry.name.isdigit() and argv[1:5] == wanted and alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def sock(home: Path) -> Path:
    return Location(home.resolve()).socket


def answered(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Sources:" in proc.stdout


# -- 2. the fast path imports nothing heavy ------------------------------------------------------
HEAVY = ("typer", "rich", "click", "asyncio", "numpy", "ragcli.retrieval", "ragcli.cli.app")


def _imported(stderr: str) -> set[str]:
    """Module names from `python -X importtime`'s lines on stderr."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_a_forwarded_ask_imports_nothing_heavy(dhome: Path) -> None:
    answered(first := ask(dhome, Q))
    pid = answered_by(first)
    for args in ([Q], ["How long do we keep application logs?", "--json"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "ragcli", "ask", *args, "-v"],
            capture_output=True,
            text=True,
            env=clean_env(dhome, **ON),
            cwd=REPO,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert answered_by(proc) == pid
        imported = _imported(proc.stderr)
        assert "ragcli.daemon.fastpath" in imported  # the parse worked: it lists imports
        heavy = {m for m in imported if any(m == h or m.startswith(h + ".") for h in HEAVY)}
        assert not heavy, sorted(heavy)


# -- 3. kill -9 mid-stream -----------------------------------------------------------------------
def test_kill_9_mid_stream_is_one_line_then_a_new_daemon(corpus: Path, home: Path) -> None:
    assert run_ragcli(home, "ingest", str(corpus)).returncode == 0
    reply = "Open PageRelay and click Hand Over before ten [1]."
    try:
        with OpenAICompatibleServer(ServerConfig(reply=reply)) as srv:
            env = clean_env(home, OPENAI_BASE_URL=srv.base_url, RAGCLI_LLM_MODEL="m", **ON)
            srv.hold(after_words=2)
            proc = subprocess.Popen(
                [sys.executable, "-m", "ragcli", "ask", Q, "-v"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=REPO,
                env=env,
            )
            out, err = bytearray(), bytearray()

            def read(stream: Any, into: bytearray) -> None:
                while chunk := os.read(stream.fileno(), 4096):
                    into.extend(chunk)

            readers = [
                threading.Thread(target=read, args=(proc.stdout, out), daemon=True),
                threading.Thread(target=read, args=(proc.stderr, err), daemon=True),
            ]
            for reader in readers:
                reader.start()
            try:
                wait_for(lambda: srv.waiting == 1 or proc.poll() is not None, 240, "the hold")
                assert srv.waiting == 1, err.decode()
                wait_for(lambda: b"Open" in out, 60, "the first words on stdout")
                pid = (status(home) or {}).get("pid")
                assert pid and f"answered by pid {pid}" in err.decode()
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: proc.poll() is not None, 60, "the client to exit")
            finally:
                srv.release()
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=60)
                for reader in readers:
                    reader.join(timeout=60)
            assert proc.returncode == 1
            lines = err.decode().splitlines()
            assert len([ln for ln in lines if "stopped mid-answer" in ln]) == 1, lines
            assert [ln for ln in lines if ln.startswith("ragcli: error")] == [
                ln for ln in lines if "stopped mid-answer" in ln
            ]
            assert "Traceback" not in err.decode()
            assert not alive(pid)
            # the next ask works, through a new daemon; the cut answer was never cached
            again = run_ragcli(home, "ask", Q, "--json", "-v", **{**env, **ON})
            assert again.returncode == 0, again.stderr
            assert answered_by(again) != pid
            result = json.loads(again.stdout)
            assert result["answer"] == reply and result["cached"] is False
    finally:
        stop_all(home)


# -- 4. never keeps a job alive; exits when idle or signalled ------------------------------------
def test_a_piped_ask_returns_while_the_daemon_lives_on(dhome: Path) -> None:
    # capture_output: the call returns only at EOF on both pipes, so a daemon that inherited
    # either would hold it until the timeout (which only ends such a hang)
    proc = subprocess.run(
        [sys.executable, "-m", "ragcli", "ask", Q, "-v"],
        capture_output=True,
        text=True,
        env=clean_env(dhome, **ON),
        cwd=REPO,
        timeout=120,
    )
    answered(proc)
    pid = answered_by(proc)
    assert "(started in" in daemon_lines(proc.stderr)[0]
    assert alive(pid)
    info = status(dhome)
    assert info is not None and info["pid"] == pid and info["running"] is True
    assert os.getsid(pid) == pid  # its own session: no terminal, no job control group
    assert os.getsid(pid) != os.getsid(0)


def test_the_daemon_exits_after_its_idle_time(dhome: Path) -> None:
    proc = ask(dhome, Q, RAGCLI_DAEMON_IDLE="1")
    answered(proc)
    pid = answered_by(proc)
    socket = sock(dhome)
    wait_for(lambda: not alive(pid), 120, "the idle daemon to exit")
    assert not socket.exists()
    assert not (dhome / "daemon.json").exists()
    assert "idle for" in (dhome / "daemon.log").read_text()


def test_sigterm_stops_the_daemon_and_removes_its_socket(dhome: Path) -> None:
    pid = answered_by(ask(dhome, Q))
    assert sock(dhome).exists()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), 120, "the daemon to exit on SIGTERM")
    assert not sock(dhome).exists()
    assert status(dhome) is None


# -- 5. ragcli daemon start|status|stop ---------------------------------------------------------
def test_daemon_start_status_stop(dhome: Path) -> None:
    def daemon(*args: str) -> subprocess.CompletedProcess[str]:
        return run_ragcli(dhome, "daemon", *args, **ON)

    started = daemon("start", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["running"] is True and info["started_now"] is True and alive(info["pid"])
    pid = info["pid"]
    again = daemon("start")
    assert again.returncode == 0 and f"daemon already running: pid {pid}" in again.stdout
    text = daemon("status")
    assert text.returncode == 0 and text.stdout.startswith(f"daemon running: pid {pid}")
    before = json.loads(daemon("status", "--json").stdout)
    for key in ("pid", "version", "fingerprint", "requests", "in_flight", "rss_mb",
                "idle_timeout_s", "socket"):  # fmt: skip
        assert key in before, key
    assert before["pid"] == pid and before["socket"] == str(sock(dhome))
    assert before["in_flight"] == 0 and before["rss_mb"] > 0
    assert answered_by(ask(dhome, Q)) == pid
    after = json.loads(daemon("status", "--json").stdout)
    assert after["requests"] == before["requests"] + 1
    stopped = daemon("stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"daemon stopped: pid {pid}"
    assert not alive(pid) and not sock(dhome).exists()
    gone = json.loads(daemon("status", "--json").stdout)
    assert gone["running"] is False
    assert daemon("status").stdout.startswith("no daemon:")
    again = daemon("stop")
    assert again.returncode == 0 and again.stdout.strip() == "no daemon was running"
    assert json.loads(daemon("stop", "--json").stdout) == {"stopped": False, "pid": None}
    # --json start and stop
    pid = json.loads(daemon("start", "--json").stdout)["pid"]
    assert json.loads(daemon("stop", "--json").stdout) == {"stopped": True, "pid": pid}


def test_daemon_start_with_nothing_ingested_is_one_line(home: Path) -> None:
    proc = run_ragcli(home, "daemon", "start", **ON)
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "nothing ingested" in proc.stderr
    assert proc.stdout == ""


# -- 6. who may use it ---------------------------------------------------------------------------
def test_the_socket_is_private(dhome: Path) -> None:
    answered_by(ask(dhome, Q))
    st = os.stat(sock(dhome))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.getuid()


def test_a_data_dir_others_can_write_gets_no_daemon(dhome: Path) -> None:
    os.chmod(dhome, 0o777)
    try:
        proc = ask(dhome, Q)
        answered(proc)
        assert "open to other users" in in_process(proc)
        assert not sock(dhome).exists() and not (dhome / "daemon.json").exists()
    finally:
        os.chmod(dhome, 0o700)


def test_a_socket_others_can_use_is_refused(dhome: Path) -> None:
    pid = answered_by(ask(dhome, Q))
    os.chmod(sock(dhome), 0o666)
    proc = ask(dhome, Q)
    answered(proc)
    assert "open to other users" in in_process(proc)  # never through that socket
    assert daemons_of(dhome) == [pid]  # and no second daemon beside the one that made it


# -- 7. falling back ----------------------------------------------------------------------------
def test_a_dead_daemons_socket_is_replaced(dhome: Path) -> None:
    pid = answered_by(ask(dhome, Q))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), 60, "the daemon to die")
    assert sock(dhome).exists()  # left behind
    proc = ask(dhome, "How long do we keep application logs?")
    answered(proc)
    new = answered_by(proc)
    assert new != pid and "(started in" in proc.stderr
    assert (status(dhome) or {}).get("pid") == new


def test_a_stuck_daemon_is_not_waited_for(dhome: Path) -> None:
    pid = answered_by(ask(dhome, Q))
    os.kill(pid, signal.SIGSTOP)
    try:
        proc = ask(dhome, "How long do we keep application logs?")
        answered(proc)
        assert f"answered by pid {pid}" not in proc.stderr
        assert len(daemon_lines(proc.stderr)) == 1, proc.stderr
        # in-process beside the stuck one, or through a new one that replaced it: one at most
        assert len(daemons_of(dhome)) <= 1, daemons_of(dhome)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the new daemon's starter killed it
            os.kill(pid, signal.SIGCONT)


# A daemon that runs but never answers (busy on a loaded machine, or deadlocked): it listens
# on the data dir's socket, says who it is in daemon.json and in its command line, and reads
# nothing. Its argv is a real daemon's, after `-c CODE`, so /proc shows it as one.
SILENT = (
    "import json, os, socket, sys, time\n"
    "home = sys.argv[4]\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "os.umask(0o177)\n"
    "s.bind(os.path.join(home, 'daemon.sock'))\n"
    "s.listen(8)\n"
    "json.dump({'pid': os.getpid()}, open(os.path.join(home, 'daemon.json'), 'w'))\n"
    "print('listening', flush=True)\n"
    "time.sleep(600)\n"
)


def test_a_daemon_that_runs_but_does_not_answer_is_left_alone(dhome: Path) -> None:
    home = str(dhome.resolve())
    silent = subprocess.Popen(
        [sys.executable, "-c", SILENT, "-m", "ragcli.daemon.main", "--data-dir", home],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert silent.stdout is not None and silent.stdout.readline() == "listening\n"
        proc = ask(dhome, Q)
        answered(proc)
        assert "did not answer in time" in in_process(proc)
        assert silent.poll() is None  # not killed: it runs, it may only be slow
        assert daemons_of(dhome) == []  # and no second daemon beside it
    finally:
        silent.kill()
        silent.wait()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` read-only, even for root (who ignores modes: the immutable attribute instead)."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)]).returncode != 0:
        pytest.skip("root ignores modes, and chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_a_read_only_data_dir_answers_as_without_a_daemon(dhome: Path) -> None:
    with read_only(dhome):
        proc = ask(dhome, Q)
        off = run_ragcli(dhome, "ask", Q, RAGCLI_DAEMON="off")
    assert "cannot start one" in in_process(proc)
    assert not sock(dhome).exists()
    # in-process, exactly as with the daemon off (SQLite needs to write there even to read)
    assert (proc.returncode, proc.stdout) == (off.returncode, off.stdout)
    assert proc.stderr.split("\n", 1)[1] == off.stderr


# -- 8. never stale -------------------------------------------------------------------------------
def test_an_ingest_while_it_runs_is_seen_by_the_next_ask(dhome: Path, tmp_path: Path) -> None:
    pid = answered_by(ask(dhome, Q))
    new = tmp_path / "new"
    new.mkdir()
    (new / "zebra.md").write_text(
        "---\ntitle: Zebra gateway\ndate: 2026-05-01\n---\n"
        "The Zebra-7 gateway rotates its vault password every 17 days, at 04:00 UTC.\n"
    )
    ingest = run_ragcli(dhome, "ingest", str(new), **ON)
    assert ingest.returncode == 0, ingest.stderr
    proc = ask(dhome, "How often does the Zebra-7 gateway rotate its vault password?", "--json")
    assert proc.returncode == 0, proc.stderr
    assert answered_by(proc) == pid  # the same daemon, its index reloaded
    result = json.loads(proc.stdout)
    assert any(s["source"].endswith("zebra.md") for s in result["sources"]), result["sources"]
    assert "17 days" in result["answer"]


def test_cache_clear_is_seen_by_the_next_ask(dhome: Path) -> None:
    first = ask(dhome, Q, "--json")
    pid = answered_by(first)
    assert json.loads(ask(dhome, Q, "--json").stdout)["cached"] == "exact"
    cleared = run_ragcli(dhome, "cache", "clear", **ON)
    assert cleared.returncode == 0, cleared.stderr
    proc = ask(dhome, Q, "--json")
    assert answered_by(proc) == pid
    assert json.loads(proc.stdout)["cached"] is False


@pytest.fixture
def small_home(corpus: Path, home: Path) -> Iterator[Path]:
    """The small two-partition corpus ingested (fast); its daemon stopped at the end."""
    assert run_ragcli(home, "ingest", str(corpus)).returncode == 0
    yield home
    stop_all(home)


def test_a_failed_index_load_is_tried_again_once_repaired(small_home: Path) -> None:
    shutil.rmtree(small_home / "chroma")
    broken = ask(small_home, "pager", "--no-cache", "all")
    assert broken.returncode == 1 and "index --rebuild" in broken.stderr
    pid = answered_by(broken)
    rebuilt = run_ragcli(small_home, "index", "--rebuild", **ON)
    assert rebuilt.returncode == 0, rebuilt.stderr
    proc = ask(small_home, "pager", "--no-cache", "all")
    answered(proc)
    assert answered_by(proc) == pid


def test_a_corrupted_index_set_aside_and_rebuilt_is_found(small_home: Path) -> None:
    shutil.rmtree(small_home / "chroma")
    broken = ask(small_home, "pager", "--no-cache", "all")
    assert broken.returncode == 1
    pid = answered_by(broken)
    (small_home / "chroma" / "chroma.sqlite3").write_bytes(b"garbage" * 1000)
    rebuilt = run_ragcli(small_home, "index", "--rebuild", **ON)
    assert rebuilt.returncode == 0, rebuilt.stderr
    proc = ask(small_home, "pager", "--no-cache", "all")
    answered(proc)
    assert answered_by(proc) == pid


def test_an_unreadable_cache_file_is_the_same_error_through_the_daemon(small_home: Path) -> None:
    (small_home / "cache.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (small_home / f"cache.db{suffix}").unlink(missing_ok=True)
    off = run_ragcli(small_home, "ask", "pager")
    assert off.returncode == 1 and off.stderr.startswith("ragcli: error: cache database")
    for _ in ("started", "warm"):
        on = ask(small_home, "pager")
        answered_by(on)
        assert on.returncode == 1 and on.stdout == ""
        assert on.stderr.split("\n", 1)[1] == off.stderr


# -- 9. other code is replaced, never used -------------------------------------------------------
def test_a_daemon_running_other_code_is_replaced(dhome: Path, tmp_path: Path) -> None:
    code = tmp_path / "code"
    shutil.copytree(REPO / "ragcli", code / "ragcli", ignore=shutil.ignore_patterns("__pycache__"))
    with open(code / "ragcli" / "daemon" / "__init__.py", "a") as f:
        f.write("# another build of ragcli\n")  # another size: another code fingerprint
    old = subprocess.run(
        [sys.executable, "-m", "ragcli", "daemon", "start", "--json"],
        capture_output=True,
        text=True,
        env=clean_env(dhome, PYTHONPATH=str(code), **ON),
        cwd=code,
        timeout=300,
    )
    assert old.returncode == 0, old.stderr
    info = json.loads(old.stdout)
    old_pid = info["pid"]
    assert (status(dhome) or {}).get("fingerprint") == info["fingerprint"]
    proc = ask(dhome, Q)
    answered(proc)
    new_pid = answered_by(proc)
    assert new_pid != old_pid
    assert not alive(old_pid)
    assert (status(dhome) or {}).get("fingerprint") != info["fingerprint"]


# -- 10. concurrency ------------------------------------------------------------------------------
QUESTIONS = [
    Q,
    "How long do we keep application logs?",
    "How many days of annual leave do employees get?",
    "How quickly does the on-call engineer have to acknowledge a SEV1 page?",
    "What is the learning budget?",
    "How do I deploy with shipit?",
    "What are the API rate limits?",
    "What do I do when a disk is full on a worker node?",
]


def test_concurrent_asks_are_answered_at_once_by_one_daemon(dhome: Path) -> None:
    """Eight asks held at the LLM's gate at the same time, all inside one daemon."""
    with OpenAICompatibleServer(ServerConfig(reply="Held, then answered [1].")) as srv:
        env = {"OPENAI_BASE_URL": srv.base_url, "RAGCLI_LLM_MODEL": "m", **ON}
        pid = answered_by(ask(dhome, "warm up", **env))
        before = (status(dhome) or {})["requests"]
        srv.reset()
        srv.hold()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "ragcli", "ask", question, "-v"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=clean_env(dhome, **env),
                cwd=REPO,
            )
            for question in QUESTIONS
        ]
        try:
            wait_for(lambda: srv.waiting == len(QUESTIONS), 240, "all eight at the gate")
            during = status(dhome) or {}
            assert during["in_flight"] == len(QUESTIONS)
        finally:
            srv.release()
            results = []
            for p in procs:
                out, err = p.communicate(timeout=300)
                results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    for r in results:
        answered(r)
        assert r.stdout.startswith("Held, then answered [1].")
        assert answered_by(r) == pid
    assert (status(dhome) or {})["requests"] == before + len(QUESTIONS)
    assert srv.counters.chat == len(QUESTIONS) and srv.counters.held == len(QUESTIONS)


# -- 11. per-request settings ---------------------------------------------------------------------
def test_each_request_gets_its_own_settings(dhome: Path) -> None:
    def sources(*args: str, **env: str) -> tuple[int, int]:
        proc = ask(dhome, Q, "--json", "--no-cache", "answer", *args, **env)
        assert proc.returncode == 0, proc.stderr
        return answered_by(proc), len(json.loads(proc.stdout)["sources"])

    pid, n = sources("-k", "2")
    assert n == 2
    assert sources() == (pid, 5)
    assert sources(RAGCLI_K="3") == (pid, 3)  # the client's environment, not the daemon's
    assert sources("-k", "4", RAGCLI_K="3") == (pid, 4)
