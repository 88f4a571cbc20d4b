"""The executor against real processes: supervisor, process groups, pipes, signals."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from runplane.runtime import executor
from runplane.runtime.executor import Job, Outcome, PlainLauncher, RunningExecution

DEADLINE_SECONDS = 10.0
POLL_SECONDS = 0.01


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
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


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


@pytest.fixture(params=sorted(LOOPS))
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def aio(loop_name: str) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a coroutine to completion on a fresh loop of the parametrised kind."""

    def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
            return runner.run(coroutine)

    return run_coroutine


@pytest.fixture
def run(aio: Callable[[Coroutine[Any, Any, tuple[Outcome, Log]]], tuple[Outcome, Log]]) -> Run:
    """Run a job to its outcome, optionally doing something while it runs."""

    def run_job(job: Job, during: During | None = None) -> tuple[Outcome, Log]:
        async def main() -> tuple[Outcome, Log]:
            log = Log()
            running = await PlainLauncher().start(job, log)
            if during is not None:
                await during(running, log)
            return await running.wait(), log

        return aio(main())

    return run_job


PYTHON_PROCESS = {
    "runplane.toml": '[process]\nname = "bot"\nentrypoint = "bot:main"\n',
    "bot.py": """
        import os, subprocess, sys, time
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
        setsid sleep 1000 &
        echo $! > escaped.pid
        echo '{"ok": true}' > "$RUNPLANE_OUTPUT"
    """,
    "stubborn.sh": """
        #!/bin/sh
        # The grandchild ignores SIGTERM, so only the group SIGKILL can end it.
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
    assert list((tmp_path / "work").iterdir()) == []  # the work dir is gone


def test_the_runtimes_own_settings_do_not_reach_the_process(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPLANE_RUNTIME_TOKEN", "rt-123")
    bundle = make_process(tmp_path, SHELL_PROCESS)
    _, log = run(make_job(tmp_path, bundle, command=["./env.sh"]))
    assert log.text == "RUNPLANE_INPUT\nRUNPLANE_OUTPUT\nRUNPLANE_WORK_DIR\n"


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
    assert list((tmp_path / "work").iterdir()) == []


def test_background_processes_left_by_a_finished_process_are_killed(
    tmp_path: Path, run: Run
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    outcome, _ = run(make_job(tmp_path, bundle, command=["./background.sh"]))
    assert outcome.status == "succeeded"
    grandchild = int((bundle / "grandchild.pid").read_text())
    poll_until(lambda: not is_alive(grandchild), "the background sleep to die")


def test_a_process_that_escaped_the_group_cannot_hold_the_outcome_back(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor, "LOG_DRAIN_SECONDS", 0.2)
    bundle = make_process(tmp_path, SHELL_PROCESS)
    try:
        outcome, _ = run(make_job(tmp_path, bundle, command=["./escape.sh"]))
        assert outcome == Outcome("succeeded", {"ok": True}, None, None)
    finally:  # out of the group, so out of our reach: clean up by hand
        os.kill(int((bundle / "escaped.pid").read_text()), signal.SIGKILL)


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
    for name in ("child.pid", "grandchild.pid"):
        pid = int((bundle / name).read_text())
        poll_until(lambda pid=pid: not is_alive(pid), name)  # type: ignore[misc]


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


def test_cancelling_wait_kills_the_group(
    tmp_path: Path, aio: Callable[[Coroutine[Any, Any, int]], int]
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    job = make_job(tmp_path, bundle, entrypoint="bot:hangs")

    async def main() -> int:
        log = Log()
        running = await PlainLauncher().start(job, log)
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
    assert list((tmp_path / "work").iterdir()) == []


# --- the supervisor on its own, with and without pidfd_open ------------------------

# Deleting os.pidfd_open before the supervisor runs exercises its polling fallback.
SUPERVISOR_WITHOUT_PIDFD = (
    "import os, runpy; del os.pidfd_open; "
    "runpy.run_module('runplane.runtime.supervisor', run_name='__main__')"
)


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
    if wait_mode == "pidfd":
        argv = [sys.executable, "-m", "runplane.runtime.supervisor"]
    else:
        argv = [sys.executable, "-c", SUPERVISOR_WITHOUT_PIDFD]
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


@pytest.mark.parametrize("wait_mode", ["pidfd", "poll"])
def test_supervisor_records_the_exit_status_then_ends_its_whole_group(
    tmp_path: Path, wait_mode: str, start_supervisor: StartSupervisor
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    (bundle / "run.sh").write_text("#!/bin/sh\nsleep 1000 &\necho $! > grandchild.pid\nexit 5\n")
    supervisor = start_supervisor(bundle, wait_mode, command=["./run.sh"])
    assert supervisor.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL  # its own group kill
    status = json.loads((tmp_path / "status.json").read_text())
    assert status == {"exit_code": 5, "signal": None}
    grandchild = int((bundle / "grandchild.pid").read_text())
    poll_until(lambda: not is_alive(grandchild), "the grandchild to die")


@pytest.mark.parametrize("wait_mode", ["pidfd", "poll"])
def test_supervisor_ends_its_group_when_stdin_closes(
    tmp_path: Path, wait_mode: str, start_supervisor: StartSupervisor
) -> None:
    bundle = make_process(tmp_path, PYTHON_PROCESS)
    supervisor = start_supervisor(bundle, wait_mode, entrypoint="bot:hangs")
    poll_until(lambda: len(group_members(supervisor.pid)) == 2, "the child to start")
    assert supervisor.stdin is not None
    supervisor.stdin.close()
    assert supervisor.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL
    poll_until(lambda: not group_members(supervisor.pid), "the group to die")
    assert not (tmp_path / "status.json").exists()


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
    from runplane.runtime.executor import Job, PlainLauncher

    async def main() -> None:
        bundle, work_root = Path(sys.argv[1]), Path(sys.argv[2])
        job = Job("orphan", 1, bundle, None, ["./stubborn.sh"], {}, (), 600, work_root)

        async def sink(text: str) -> None:
            pass

        running = await PlainLauncher().start(job, sink)
        (bundle / "supervisor.pid").write_text(str(running.pid))
        await running.wait()

    if sys.argv[3] == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
"""


def test_killing_the_runtime_kills_supervisor_child_and_grandchild(
    tmp_path: Path, loop_name: str
) -> None:
    bundle = make_process(tmp_path, SHELL_PROCESS)
    script = tmp_path / "runtime.py"
    script.write_text(textwrap.dedent(RUNTIME_SCRIPT))
    runtime = subprocess.Popen(
        [sys.executable, str(script), str(bundle), str(tmp_path / "work"), loop_name],
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        names = ("supervisor.pid", "child.pid", "grandchild.pid")
        poll_until(lambda: all((bundle / n).exists() for n in names), "the process tree")
        poll_until(lambda: all((bundle / n).read_text().strip() for n in names), "the pid files")
        pids = [int((bundle / name).read_text()) for name in names]
        assert all(is_alive(pid) for pid in pids)
        runtime.send_signal(signal.SIGKILL)
        runtime.wait()
        poll_until(lambda: not any(is_alive(pid) for pid in pids), "the orphans to die")
    finally:
        if runtime.poll() is None:
            runtime.kill()
            runtime.wait()
        for pid in pids:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
