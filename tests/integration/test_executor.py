"""The executor against real processes: supervisor, process groups, pipes, signals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
import pytest

from runplane.runtime import executor
from runplane.runtime.executor import (
    FREE_FOLDER_PREFIX,
    Job,
    Outcome,
    RunningExecution,
    SpawnLauncher,
)
from runplane.runtime.warm import WarmLauncher

DEADLINE_SECONDS = 10.0
POLL_SECONDS = 0.01


def left_in(work_root: Path) -> list[Path]:
    """What executions left under a work root: folders kept for reuse hold an empty
    ``work`` folder and nothing else, so they do not count."""

    def kept(folder: Path) -> bool:
        return (
            folder.name.startswith(FREE_FOLDER_PREFIX)
            and [p.name for p in folder.iterdir()] == ["work"]
            and not any((folder / "work").iterdir())
        )

    return [p for p in work_root.iterdir() if not kept(p)]


def make_process(root: Path, files: dict[str, str]) -> Path:
    """A process folder; files ending in .sh are made executable."""
    folder = root / "process"
    folder.mkdir()
    for name, text in files.items():
        path = folder / name
        path.write_text(textwrap.dedent(text).lstrip())
        if name.endswith(".sh"):
            path.chmod(0o755)
    return folder


def make_job(
    tmp_path: Path,
    bundle_dir: Path,
    *,
    entrypoint: str | None = None,
    command: list[str] | None = None,
    inputs: dict[str, Any] | None = None,
    secrets: tuple[str, ...] = (),
    timeout_seconds: float = 30.0,
) -> Job:
    return Job(
        execution_id="exec-1",
        attempt=1,
        bundle_dir=bundle_dir,
        entrypoint=entrypoint,
        command=command,
        inputs=inputs or {},
        secret_values=secrets,
        timeout_seconds=timeout_seconds,
        work_root=tmp_path / "work",
    )


class Log:
    """Collects what the executor streams, in order."""

    def __init__(self) -> None:
        self.chunks: list[str] = []

    async def __call__(self, text: str) -> None:
        self.chunks.append(text)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


def poll_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (pid 1 may never reap it here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or reaped between open and read
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


ESCAPES = ("child.pid", "grandchild.pid", "escaped.pid", "daemon.pid")


def pid_files_written(folder: Path, names: tuple[str, ...]) -> bool:
    """True once every file holds a whole pid line (the shell may be mid-write)."""
    paths = [folder / name for name in names]
    return all(path.exists() and path.read_text().endswith("\n") for path in paths)


def read_pids(folder: Path, names: tuple[str, ...]) -> dict[str, int]:
    return {name: int((folder / name).read_text()) for name in names}


def assert_gone(pids: dict[str, int]) -> None:
    """Gone now, not eventually: the supervisor reaps what it kills before it exits."""
    assert not [name for name, pid in pids.items() if is_alive(pid)]


def kill_leftovers(pids: dict[str, int]) -> None:
    for pid in pids.values():
        if is_alive(pid):
            os.kill(pid, signal.SIGKILL)


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:  # uvicorn[standard] serves on uvloop, so the embedded runtime runs there too
    import uvloop

    LOOPS["uvloop"] = uvloop.new_event_loop
except ImportError:  # pragma: no cover
    pass

T = TypeVar("T")
During = Callable[[RunningExecution, "Log"], Awaitable[None]]


class Run(Protocol):
    def __call__(self, job: Job, during: During | None = None) -> tuple[Outcome, Log]: ...


LAUNCHERS: dict[str, Callable[[], WarmLauncher | SpawnLauncher]] = {
    "spawn": SpawnLauncher,
    "warm": WarmLauncher,
}


@pytest.fixture(params=sorted(LOOPS))
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=sorted(LAUNCHERS))
def launcher_name(request: pytest.FixtureRequest) -> str:
    """Every guarantee holds for both launchers: each test runs with each."""
    return str(request.param)


@contextlib.asynccontextmanager
async def launched(launcher_name: str) -> AsyncIterator[WarmLauncher | SpawnLauncher]:
    launcher = LAUNCHERS[launcher_name]()
    try:
        yield launcher
    finally:
        await launcher.close()


@pytest.fixture
def aio(loop_name: str) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine to completion on a fresh loop of the parametrised kind."""

    def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
            return runner.run(coroutine)

    return run_coroutine


@pytest.fixture
def run(
    aio: Callable[[Coroutine[Any, Any, tuple[Outcome, Log]]], tuple[Outcome, Log]],
    launcher_name: str,
) -> Run:
    """Run a job to its outcome, optionally doing something while it runs."""

    def run_job(job: Job, during: During | None = None) -> tuple[Outcome, Log]:
        async def main() -> tuple[Outcome, Log]:
            log = Log()
            async with launched(launcher_name) as launcher:
                running = await launcher.start(job, log)
                if during is not None:
                    await during(running, log)
                return await running.wait(), log

        return aio(main())

    return run_job


PYTHON_PROCESS = {
    "runplane.toml": '[process]\nname = "bot"\nentrypoint = "bot:main"\n',
    "bot.py": """
        import json, os, subprocess, sys, time
        from pathlib import Path

        def greet(name, times=1):
            print(f"greeting {name}")
            return {"greeting": " ".join(["hi " + name] * times), "cwd": os.getcwd()}

        def leak(password):
            print(f"whole: {password}")
            sys.stdout.write(f"split: {password[:3]}")
            sys.stdout.flush()
            time.sleep(0.3)  # longer than the executor's partial-line delay
            sys.stdout.write(f"{password[3:]} done\\n")
            return {"echo": password}

        def boom(password):
            raise ValueError(f"cannot log in with {password}")

        def leaks_escaped(token):
            print(token)
            print(repr({"token": token}))
            print(json.dumps(token))
            print(json.dumps({"token": token}, ensure_ascii=False))
            escaped = json.dumps(token)
            sys.stdout.write(f"split: {escaped[:5]}")
            sys.stdout.flush()
            time.sleep(0.3)  # longer than the executor's partial-line delay
            sys.stdout.write(f"{escaped[5:]} done\\n")
            return {"repr": repr(token), "json": json.dumps(token)}

        def raises_escaped(token):
            raise ValueError(f"bad token {token!r}")

        def raises_unstorable():
            raise ValueError("bad \\ud800 and \\x00 here")

        def returns_big_int():
            return {"x": 2**70}

        def returns_lone_surrogate():
            return {"x": "\\ud800"}

        def returns_list():
            return [1, 2]

        def returns_object():
            return object()

        def returns_none():
            print("nothing to say")

        def returns_huge():
            return {"blob": "x" * (2 * 1024 * 1024)}

        def exits(code):
            sys.exit(code)

        def kills_itself():
            os.kill(os.getpid(), 9)

        def chatty():
            for i in range(150_000):
                print(f"line {i:06d} " + "x" * 64)
            return {"done": True}

        def waits_for(path):
            print("ready", flush=True)
            while not Path(path).exists():
                time.sleep(0.01)
            return {"waited": True}

        def hangs():
            print("started", flush=True)
            time.sleep(1000)
    """,
}

SHELL_PROCESS = {
    "runplane.toml": '[process]\nname = "sh"\ncommand = ["./run.sh"]\n',
    "run.sh": """
        #!/bin/sh
        echo "input: $(cat "$RUNPLANE_INPUT")"
        printf '{"input": %s, "work_dir_exists": %s}' "$(cat "$RUNPLANE_INPUT")" \\
            "$(test -d "$RUNPLANE_WORK_DIR" && echo true || echo false)" > "$RUNPLANE_OUTPUT"
    """,
    "env.sh": """
        #!/bin/sh
        env | grep ^RUNPLANE_ | cut -d= -f1 | sort
    """,
    "fail.sh": """
        #!/bin/sh
        echo "about to fail" >&2
        exit 3
    """,
    "raw.sh": """
        #!/bin/sh
        cat raw.json > "$RUNPLANE_OUTPUT"
    """,
    "silent.sh": """
        #!/bin/sh
        echo "no output file"
    """,
    "background.sh": """
        #!/bin/sh
        sleep 1000 &
        echo $! > grandchild.pid
    """,
    "escape.sh": """
        #!/bin/sh
        # Leaves the group two ways, then succeeds at once.
        setsid sleep 1000 &
        echo $! > escaped.pid
        (setsid sh -c 'sleep 1000 & echo $! > daemon.pid' &)
        until test -s daemon.pid; do :; done
        echo '{"ok": true}' > "$RUNPLANE_OUTPUT"
    """,
    "escapes.sh": """
        #!/bin/sh
        # A grandchild in the group; one that left it with setsid; a daemon that
        # double-forked into a new session (its parent, a subshell, exits at once).
        # With "stubborn" in the input the shell and its children ignore SIGTERM.
        grep -q stubborn "$RUNPLANE_INPUT" && trap '' TERM
        sleep 1000 &
        echo $! > grandchild.pid
        setsid sleep 1000 &
        echo $! > escaped.pid
        (setsid sh -c 'sleep 1000 & echo $! > daemon.pid' &)
        echo $$ > child.pid
        wait
    """,
    "stubborn.sh": """
        #!/bin/sh
        # The grandchild ignores SIGTERM, so only a SIGKILL can end it.
        (trap '' TERM; exec sleep 1000) &
        echo $! > grandchild.pid
        echo $$ > child.pid
        wait
    """,
}


# --- Python entrypoints -------------------------------------------------------


def test_python_entrypoint_is_called_with_inputs_as_keyword_arguments(
    tmp_path: Path, run: Run
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    job = make_job(tmp_path, bundle, entrypoint="bot:greet", inputs={"name": "ada", "times": 2})
    outcome, log = run(job)
    assert outcome == Outcome(
        "succeeded", {"greeting": "hi ada hi ada", "cwd": str(bundle)}, None, None
    )
    assert log.text == "greeting ada\n"


def test_secrets_are_masked_in_log_error_and_result_even_when_split(
    tmp_path: Path, run: Run
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    secret = "hunter2-correct-horse"
    job = make_job(
        tmp_path, bundle, entrypoint="bot:leak", inputs={"password": secret}, secrets=(secret, "")
    )
    outcome, log = run(job)
    assert outcome.result == {"echo": "***"}
    assert log.text == "whole: ***\nsplit: *** done\n"
    assert secret[:3] not in "".join(log.chunks)


# A quote of each kind, a backslash and a non-ASCII letter: every escaping differs.
TRICKY = 'it\'s "w\\ö"'


def test_secrets_are_masked_escaped_too_in_log_and_result(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    job = make_job(
        tmp_path,
        bundle,
        entrypoint="bot:leaks_escaped",
        inputs={"token": TRICKY},
        secrets=(TRICKY,),
    )
    outcome, log = run(job)
    assert outcome == Outcome("succeeded", {"repr": "'***'", "json": '"***"'}, None, None)
    printed = ["***", "{'token': '***'}", '"***"', '{"token": "***"}', 'split: "***" done']
    assert log.text.splitlines() == printed
    assert json.dumps(TRICKY)[1:5] not in "".join(log.chunks)  # the first piece of the split


def test_secrets_are_masked_escaped_too_in_the_error(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    job = make_job(
        tmp_path,
        bundle,
        entrypoint="bot:raises_escaped",
        inputs={"token": TRICKY},
        secrets=(TRICKY,),
    )
    outcome, log = run(job)
    assert outcome == Outcome("failed", None, "PROCESS_ERROR", "ValueError: bad token '***'")
    assert "bad token '***'" in log.text
    assert repr(TRICKY)[1:-1] not in log.text


def test_an_exception_fails_with_process_error_and_its_traceback_in_the_log(
    run: Run,
    tmp_path: Path,
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    job = make_job(
        tmp_path, bundle, entrypoint="bot:boom", inputs={"password": "pw123"}, secrets=("pw123",)
    )
    outcome, log = run(job)
    assert outcome == Outcome("failed", None, "PROCESS_ERROR", "ValueError: cannot log in with ***")
    assert "Traceback (most recent call last)" in log.text
    assert 'in boom\n    raise ValueError(f"cannot log in with {password}")' in log.text
    assert "pw123" not in log.text


def test_a_missing_entrypoint_is_a_process_error(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint="bot:nope"))
    assert outcome.error_code == "PROCESS_ERROR"
    assert outcome.error_message == "AttributeError: module 'bot' has no attribute 'nope'"


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        ("bot:returns_list", "result must be a JSON object, not list"),
        ("bot:returns_object", "result is not JSON-serialisable: TypeError: Object of type"),
    ],
)
def test_a_result_that_is_not_a_json_object_is_invalid(
    run: Run, tmp_path: Path, entrypoint: str, message: str
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint=entrypoint))
    assert (outcome.status, outcome.error_code) == ("failed", "INVALID_RESULT")
    assert outcome.error_message is not None
    assert outcome.error_message.startswith(message)


UNSTORABLE = "the result cannot be stored as JSON: "


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        ("bot:returns_big_int", UNSTORABLE + "Integer exceeds 64-bit range"),
        (
            "bot:returns_lone_surrogate",
            UNSTORABLE + "str is not valid UTF-8: surrogates not allowed",
        ),
    ],
)
def test_a_result_the_server_cannot_store_is_invalid_not_lost(
    run: Run, tmp_path: Path, entrypoint: str, message: str
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint=entrypoint))
    assert outcome == Outcome("failed", None, "INVALID_RESULT", message)


DEEP = '{"x": ' * 300 + "1" + "}" * 300


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"x": "\\ud800"}', UNSTORABLE + "str is not valid UTF-8: surrogates not allowed"),
        ('{"x": {"y": [18446744073709551616]}}', UNSTORABLE + "Integer exceeds 64-bit range"),
        ('{"x": -9223372036854775809}', UNSTORABLE + "Integer exceeds 64-bit range"),
        ('{"x": 1e400}', UNSTORABLE + "Number exceeds the float range"),
        ('{"x": NaN}', "result is not valid JSON: NaN is not JSON"),
        (DEEP, UNSTORABLE + "Recursion limit reached"),
    ],
    ids=["lone-surrogate", "2**64", "-2**63-1", "1e400", "NaN", "deep"],
)
def test_a_command_result_the_server_cannot_store_is_invalid(
    run: Run, tmp_path: Path, raw: str, message: str
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    (bundle / "raw.json").write_text(raw)
    outcome, _ = run(make_job(tmp_path, bundle, command=["./raw.sh"]))
    assert outcome == Outcome("failed", None, "INVALID_RESULT", message)


def test_a_result_at_the_edges_of_the_storable_range_succeeds(run: Run, tmp_path: Path) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    (bundle / "raw.json").write_text('{"max": 18446744073709551615, "min": -9223372036854775808}')
    outcome, _ = run(make_job(tmp_path, bundle, command=["./raw.sh"]))
    assert outcome == Outcome("succeeded", {"max": 2**64 - 1, "min": -(2**63)}, None, None)


def test_an_error_message_is_made_storable(run: Run, tmp_path: Path) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint="bot:raises_unstorable"))
    assert outcome == Outcome(
        "failed", None, "PROCESS_ERROR", "ValueError: bad \ufffd and \ufffd here"
    )
    assert orjson.loads(orjson.dumps(outcome.error_message)) == outcome.error_message


def test_returning_none_is_an_empty_result(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint="bot:returns_none"))
    assert outcome == Outcome("succeeded", {}, None, None)


def test_a_result_over_the_limit_is_refused(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint="bot:returns_huge"))
    assert (outcome.status, outcome.error_code) == ("failed", "RESULT_TOO_LARGE")


def test_system_exit_with_a_code_is_an_exit_code_failure(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint="bot:exits", inputs={"code": 4}))
    assert outcome == Outcome("failed", None, "EXIT_CODE", "process exited with code 4")


def test_a_process_killed_by_a_signal_says_which(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint="bot:kills_itself"))
    assert outcome == Outcome("failed", None, "EXIT_CODE", "process killed by SIGKILL")


def test_a_huge_log_is_capped_and_the_process_still_finishes(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    outcome, log = run(make_job(tmp_path, bundle, entrypoint="bot:chatty"))
    assert outcome.result == {"done": True}
    assert len(log.text.encode()) < 10 * 1024 * 1024 + 200
    assert log.text.endswith("bytes\n")
    assert log.text.count("log truncated") == 1


def test_the_log_is_visible_while_the_execution_runs(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    go = tmp_path / "go"
    job = make_job(tmp_path, bundle, entrypoint="bot:waits_for", inputs={"path": str(go)})

    async def during(running: RunningExecution, log: Log) -> None:
        await until(lambda: "ready" in log.text, "the first log line")
        assert running.pid is not None and is_alive(running.pid)
        go.touch()

    outcome, _ = run(job, during)
    assert outcome.result == {"waited": True}


# --- commands -----------------------------------------------------------------


def test_command_reads_input_and_writes_output_through_the_environment(
    tmp_path: Path, run: Run
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    job = make_job(tmp_path, bundle, command=["./run.sh"], inputs={"n": 1})
    outcome, log = run(job)
    assert outcome == Outcome("succeeded", {"input": {"n": 1}, "work_dir_exists": True}, None, None)
    assert log.text == 'input: {"n": 1}\n'
    assert left_in(tmp_path / "work") == []  # the work dir is gone


def test_the_runtimes_own_settings_do_not_reach_the_process(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPLANE_RUNTIME_TOKEN", "rt-123")
    bundle = make_process(tmp_path, SHELL_PROCESS)
    _, log = run(make_job(tmp_path, bundle, command=["./env.sh"]))
    assert log.text == (
        "RUNPLANE_ATTEMPT\nRUNPLANE_EXECUTION_ID\nRUNPLANE_INPUT\nRUNPLANE_OUTPUT\n"
        "RUNPLANE_RUNTIME\nRUNPLANE_WORK_DIR\n"
    )


def test_the_process_knows_its_execution_attempt_and_runtime(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    job = dataclasses.replace(
        make_job(
            tmp_path,
            bundle,
            command=[
                "sh",
                "-c",
                'echo "$RUNPLANE_EXECUTION_ID $RUNPLANE_ATTEMPT $RUNPLANE_RUNTIME"',
            ],
        ),
        attempt=2,
        runtime="edge-1",
    )
    _, log = run(job)
    assert log.text == "exec-1 2 edge-1\n"


def test_command_exiting_non_zero_fails_with_exit_code(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    outcome, log = run(make_job(tmp_path, bundle, command=["./fail.sh"]))
    assert outcome == Outcome("failed", None, "EXIT_CODE", "process exited with code 3")
    assert log.text == "about to fail\n"


def test_command_writing_no_output_succeeds_with_an_empty_result(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, command=["./silent.sh"]))
    assert outcome == Outcome("succeeded", {}, None, None)


def test_a_command_that_cannot_start_is_a_launch_failure(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    outcome, log = run(make_job(tmp_path, bundle, command=["./missing.sh"]))
    assert (outcome.status, outcome.error_code) == ("failed", "LAUNCH_FAILED")
    assert "missing.sh" in log.text


def test_a_missing_bundle_dir_is_a_launch_failure(tmp_path: Path, run: Run) -> None:
    outcome, _ = run(make_job(tmp_path, tmp_path / "nowhere", command=["./run.sh"]))
    assert (outcome.status, outcome.error_code) == ("failed", "LAUNCH_FAILED")
    assert left_in(tmp_path / "work") == []


def test_background_processes_left_by_a_finished_process_are_killed(
    tmp_path: Path, run: Run
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, command=["./background.sh"]))
    assert outcome.status == "succeeded"
    grandchild = int((bundle / "grandchild.pid").read_text())
    poll_until(lambda: not is_alive(grandchild), "the background sleep to die")


def test_processes_that_left_the_group_die_when_the_process_ends(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    started = time.monotonic()
    outcome, _ = run(make_job(tmp_path, bundle, command=["./escape.sh"]))
    pids = read_pids(bundle, ("escaped.pid", "daemon.pid"))
    try:
        assert outcome == Outcome("succeeded", {"ok": True}, None, None)
        assert_gone(pids)
        # Dead, so the log pipe they held closed too: no wait for LOG_DRAIN_SECONDS.
        assert time.monotonic() - started < executor.LOG_DRAIN_SECONDS
    finally:
        kill_leftovers(pids)


# --- ending an execution early --------------------------------------------------


def test_timeout_kills_the_whole_group_including_a_grandchild(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    job = make_job(tmp_path, bundle, command=["./stubborn.sh"], timeout_seconds=0.5)
    started = time.monotonic()
    outcome, _ = run(job)
    assert time.monotonic() - started < 2.0  # the shell took SIGTERM; no need for the grace
    assert outcome == Outcome(
        "timed_out", None, "TIMED_OUT", "execution exceeded its timeout of 0.5 seconds"
    )
    pids = read_pids(bundle, ("child.pid", "grandchild.pid"))
    try:
        assert_gone(pids)  # when wait() returns, not some time later
    finally:
        kill_leftovers(pids)


@pytest.mark.parametrize("stubborn", [False, True], ids=["takes-sigterm", "ignores-sigterm"])
def test_timeout_kills_processes_that_left_the_group(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch, stubborn: bool
) -> None:
    # Taking SIGTERM, the child ends and the supervisor sweeps; ignoring it, the
    # executor closes the supervisor's stdin after the grace and it sweeps then.
    monkeypatch.setattr(executor, "TERMINATE_GRACE_SECONDS", 0.1)
    bundle = make_process(tmp_path, SHELL_PROCESS)
    inputs = {"mode": "stubborn" if stubborn else "plain"}
    job = make_job(tmp_path, bundle, command=["./escapes.sh"], inputs=inputs, timeout_seconds=0.4)
    pids: dict[str, int] = {}

    async def during(running: RunningExecution, log: Log) -> None:
        await until(lambda: pid_files_written(bundle, ESCAPES), "the pid files")
        pids.update(read_pids(bundle, ESCAPES), supervisor=running.pid or 0)
        assert all(map(is_alive, pids.values()))

    try:
        outcome, _ = run(job, during)
        assert outcome.status == "timed_out"
        assert_gone(pids)
    finally:
        kill_leftovers(pids)


def test_a_python_process_gets_sigterm_on_timeout_not_the_full_grace(
    tmp_path: Path, run: Run
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    started = time.monotonic()
    outcome, _ = run(make_job(tmp_path, bundle, entrypoint="bot:hangs", timeout_seconds=0.3))
    assert outcome.status == "timed_out"
    assert time.monotonic() - started < executor.TERMINATE_GRACE_SECONDS


def test_cancel_kills_the_group_and_reports_cancelled(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    pids: list[int] = []

    async def during(running: RunningExecution, log: Log) -> None:
        await until(lambda: "started" in log.text, "the process to start")
        assert running.pid is not None
        pids.append(running.pid)
        running.cancel()

    outcome, log = run(make_job(tmp_path, bundle, entrypoint="bot:hangs"), during)
    assert outcome == Outcome("cancelled", None, "CANCELLED", "execution was cancelled")
    assert log.text == "started\n"
    poll_until(lambda: not is_alive(pids[0]), "the supervisor to die")


def test_cancel_kills_processes_that_left_the_group(tmp_path: Path, run: Run) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    job = make_job(tmp_path, bundle, command=["./escapes.sh"], inputs={"mode": "stubborn"})
    pids: dict[str, int] = {}

    async def during(running: RunningExecution, log: Log) -> None:
        await until(lambda: pid_files_written(bundle, ESCAPES), "the pid files")
        pids.update(read_pids(bundle, ESCAPES), supervisor=running.pid or 0)
        assert all(map(is_alive, pids.values()))
        running.cancel()

    started = time.monotonic()
    try:
        outcome, _ = run(job, during)
        assert outcome == Outcome("cancelled", None, "CANCELLED", "execution was cancelled")
        assert_gone(pids)
        assert time.monotonic() - started < executor.SUPERVISOR_STOP_SECONDS  # no fallback
    finally:
        kill_leftovers(pids)


def test_cancelling_wait_kills_the_group(
    tmp_path: Path, aio: Callable[[Coroutine[Any, Any, int]], int], launcher_name: str
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    job = make_job(tmp_path, bundle, entrypoint="bot:hangs")

    async def main() -> int:
        log = Log()
        async with launched(launcher_name) as launcher:
            running = await launcher.start(job, log)
            waiter = asyncio.create_task(running.wait())
            await until(lambda: "started" in log.text, "the process to start")
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert running.pid is not None
            assert (await running.wait()).status == "cancelled"
            return running.pid

    pid = aio(main())
    assert not is_alive(pid)
    assert left_in(tmp_path / "work") == []


def test_a_loop_shut_down_mid_execution_still_ends_every_descendant(
    tmp_path: Path,
    aio: Callable[[Coroutine[Any, Any, dict[str, int]]], dict[str, int]],
    launcher_name: str,
) -> None:
    # asyncio.Runner cancels the executor's own task on the way out: its error path
    # must let the supervisor sweep before the fallback killpg. The warm launcher is
    # closed first, so the end is seen through the supervisor's pidfd alone.
    bundle = make_process(tmp_path, SHELL_PROCESS)
    job = make_job(tmp_path, bundle, command=["./escapes.sh"], inputs={"mode": "stubborn"})

    async def main() -> dict[str, int]:
        async with launched(launcher_name) as launcher:
            running = await launcher.start(job, Log())
            await until(lambda: pid_files_written(bundle, ESCAPES), "the pid files")
            return {**read_pids(bundle, ESCAPES), "supervisor": running.pid or 0}

    pids = aio(main())  # returns without wait(): the loop closes under the execution
    try:
        assert_gone(pids)
        assert left_in(tmp_path / "work") == []
    finally:
        kill_leftovers(pids)


# --- the supervisor on its own: with pidfd_open, without it, without children files --

# Deleting os.pidfd_open before the supervisor runs exercises its polling fallback.
SUPERVISOR_WITHOUT_PIDFD = (
    "import os, runpy; del os.pidfd_open; "
    "runpy.run_module('runplane.runtime.supervisor', run_name='__main__')"
)
# As on a kernel without /proc/<pid>/task/<tid>/children: it must scan /proc.
SUPERVISOR_SCANNING_PROC = (
    "import runplane.runtime.supervisor as s; s._read_children = lambda pid: None; s.main()"
)
WAIT_MODES = ["pidfd", "poll", "scan"]


class StartSupervisor(Protocol):
    def __call__(self, bundle: Path, wait_mode: str, **work: Any) -> subprocess.Popen[bytes]: ...


@pytest.fixture
def start_supervisor(tmp_path: Path) -> Iterator[StartSupervisor]:
    """Drive the supervisor protocol by hand: spec on stdin, stdin left open."""
    started: list[subprocess.Popen[bytes]] = []
    yield functools.partial(_start_supervisor, tmp_path, started)
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group, in case the test failed
        process.wait()
        if process.stdin is not None:
            process.stdin.close()


def _start_supervisor(
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
    bundle: Path,
    wait_mode: str,
    **work: Any,
) -> subprocess.Popen[bytes]:
    argv = {
        "pidfd": [sys.executable, "-m", "runplane.runtime.supervisor"],
        "poll": [sys.executable, "-c", SUPERVISOR_WITHOUT_PIDFD],
        "scan": [sys.executable, "-c", SUPERVISOR_SCANNING_PROC],
    }[wait_mode]
    (tmp_path / "input.json").write_text("{}")
    spec = {
        "bundle_dir": str(bundle),
        "work_dir": str(tmp_path),
        "entrypoint": None,
        "command": None,
        "input_file": str(tmp_path / "input.json"),
        "output_file": str(tmp_path / "output.json"),
        "error_file": str(tmp_path / "error.json"),
        "status_file": str(tmp_path / "status.json"),
        **work,
    }
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=bundle,
        start_new_session=True,
    )
    started.append(process)
    assert process.stdin is not None
    process.stdin.write(json.dumps(spec).encode() + b"\n")
    process.stdin.flush()
    return process


@pytest.mark.parametrize("wait_mode", WAIT_MODES)
def test_supervisor_records_the_exit_status_then_ends_every_descendant(
    tmp_path: Path, wait_mode: str, start_supervisor: StartSupervisor
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    (bundle / "run.sh").write_text(
        "#!/bin/sh\n"
        "sleep 1000 &\n"
        "echo $! > grandchild.pid\n"
        "setsid sleep 1000 &\n"
        "echo $! > escaped.pid\n"
        "(setsid sh -c 'sleep 1000 & echo $! > daemon.pid' &)\n"
        "until test -s daemon.pid; do :; done\n"
        "exit 5\n"
    )
    supervisor = start_supervisor(bundle, wait_mode, command=["./run.sh"])
    assert supervisor.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL  # its own group kill
    status = json.loads((tmp_path / "status.json").read_text())
    assert status == {"exit_code": 5, "signal": None}
    pids = read_pids(bundle, ("grandchild.pid", "escaped.pid", "daemon.pid"))
    try:
        assert_gone(pids)
    finally:
        kill_leftovers(pids)


@pytest.mark.parametrize("wait_mode", WAIT_MODES)
def test_supervisor_ends_every_descendant_when_stdin_closes(
    tmp_path: Path, wait_mode: str, start_supervisor: StartSupervisor
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    supervisor = start_supervisor(bundle, wait_mode, command=["./escapes.sh"])
    poll_until(lambda: pid_files_written(bundle, ESCAPES), "the pid files")
    pids = read_pids(bundle, ESCAPES)
    try:
        assert all(map(is_alive, pids.values()))
        assert supervisor.stdin is not None
        supervisor.stdin.close()
        assert supervisor.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL
        assert_gone(pids)
        assert not group_members(supervisor.pid)
        assert not (tmp_path / "status.json").exists()
    finally:
        kill_leftovers(pids)


def test_supervisor_reaps_orphans_while_the_child_runs(
    tmp_path: Path, start_supervisor: StartSupervisor
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    (bundle / "run.sh").write_text(
        "#!/bin/sh\n(sleep 0 & echo $! > orphan.pid)\necho $$ > child.pid\nexec sleep 1000\n"
    )
    supervisor = start_supervisor(bundle, "poll", command=["./run.sh"])
    poll_until(lambda: pid_files_written(bundle, ("orphan.pid", "child.pid")), "the pid files")
    orphan = int((bundle / "orphan.pid").read_text())
    # Adopted by the supervisor when its subshell exited, then reaped: not a zombie.
    poll_until(lambda: not Path(f"/proc/{orphan}").exists(), "the orphan to be reaped")
    assert supervisor.poll() is None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is pgid."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def test_supervisor_imports_only_the_standard_library() -> None:
    probe = (
        "import sys; import runplane.runtime.supervisor; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, check=True, text=True
    )
    outside = set(loaded.stdout.split()) - sys.stdlib_module_names - {"runplane"}
    assert not {name for name in outside if not name.startswith("_")}, outside


# --- the orphan guarantee -------------------------------------------------------

RUNTIME_SCRIPT = """
    import asyncio, sys
    from pathlib import Path
    from runplane.runtime.executor import Job, SpawnLauncher
    from runplane.runtime.warm import WarmLauncher

    async def main() -> None:
        bundle, work_root, command = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[4]
        job = Job("orphan", 1, bundle, None, [command], {}, (), 600, work_root)

        async def sink(text: str) -> None:
            pass

        launcher = WarmLauncher() if sys.argv[5] == "warm" else SpawnLauncher()
        running = await launcher.start(job, sink)
        (bundle / "supervisor.pid").write_text(f"{running.pid}\\n")
        await running.wait()

    if sys.argv[3] == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("./stubborn.sh", ("child.pid", "grandchild.pid")),
        ("./escapes.sh", ESCAPES),  # what left the group dies too
    ],
    ids=["group", "escaped"],
)
def test_killing_the_runtime_kills_supervisor_and_every_descendant(
    tmp_path: Path, loop_name: str, launcher_name: str, command: str, names: tuple[str, ...]
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    script = tmp_path / "runtime.py"
    script.write_text(textwrap.dedent(RUNTIME_SCRIPT))
    runtime = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(bundle),
            str(tmp_path / "work"),
            loop_name,
            command,
            launcher_name,
        ],
        start_new_session=True,
    )
    pids: dict[str, int] = {}
    try:
        names = ("supervisor.pid", *names)
        poll_until(lambda: pid_files_written(bundle, names), "the process tree")
        pids = read_pids(bundle, names)
        assert all(map(is_alive, pids.values()))
        runtime.send_signal(signal.SIGKILL)
        runtime.wait()
        # The supervisor sweeps on its own once its stdin closes: poll for that.
        poll_until(lambda: not any(map(is_alive, pids.values())), "the orphans to die")
    finally:
        if runtime.poll() is None:
            runtime.kill()
            runtime.wait()
        kill_leftovers(pids)
