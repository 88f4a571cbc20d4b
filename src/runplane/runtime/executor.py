"""The executor: run one execution in its own process group, from launch to outcome.

A launcher starts the execution's supervisor in a new session (so the
supervisor's pid is the group id), hands it a spec on stdin, and keeps stdin
open for the whole execution: if this process dies, the pipe closes and the
supervisor ends the execution (see supervisor.py for why a pipe and not a
parent-death signal). ``SpawnLauncher`` here spawns ``python -m
runplane.runtime.supervisor``; ``WarmLauncher`` (warm.py) has a fork server
fork it. Either way ``RunningExecution`` gets a ``Supervisor``: it streams the
log while the process runs, enforces the timeout, honours ``cancel()``, and
turns the end into an ``Outcome``.

Ending an execution. The supervisor is a child subreaper: every process the
execution starts stays its descendant, even one that left the group
(``setsid``, a double fork into a new session). Whenever the supervisor ends
an execution it SIGKILLs all its descendants, then its group (itself
included). So the executor has the supervisor do it: a timeout first sends
SIGTERM to the group (the graceful stop; the supervisor ignores it, sees the
child end and sweeps), and after ``TERMINATE_GRACE_SECONDS`` closes the
supervisor's stdin, the same signal as the runtime's death; ``cancel()``
closes it at once. Only if the supervisor has not exited
``SUPERVISOR_STOP_SECONDS`` later does the executor SIGKILL the group
itself, which misses what left the group.

Invariant: when ``wait()`` returns or raises, every member of the group has
been sent SIGKILL, and normally (the supervisor exited by itself) every
descendant, escaped ones included, is gone. The executor sends one more
group SIGKILL on every path (timeout, cancel, ``wait()`` cancelled, an
exception here, a supervisor killed from outside); on an exception, its own
task cancelled included (a loop shutting down), it first closes the
supervisor's stdin and waits up to ``SUPERVISOR_STOP_SECONDS`` for the
sweep. That late ``killpg`` is safe: Linux keeps a pid number allocated
while any process still uses it as a group id, so it can only reach our own
group.

Limit: a supervisor SIGKILLed from outside cannot sweep; then whatever left
its group survives (see supervisor.py), and the executor stops waiting for
its log after ``LOG_DRAIN_SECONDS``.

Processes inherit the runtime's environment except its own ``RUNPLANE_*``
settings, which hold credentials; the launcher adds ``RUNPLANE_EXECUTION_ID``,
``RUNPLANE_ATTEMPT`` and ``RUNPLANE_RUNTIME`` (which run this is), and the
supervisor then adds ``RUNPLANE_INPUT``, ``RUNPLANE_OUTPUT`` and
``RUNPLANE_WORK_DIR``.

Result rules: exit 0 with no output file, or an empty one, is an empty
result ``{}`` (a Python entrypoint returning ``None`` writes ``{}``); the
output must be a JSON object of at most ``MAX_RESULT_BYTES`` that the server
can store. The server's JSON codec is orjson, so a result orjson refuses
(integers outside ``[-2**63, 2**64)``, lone surrogates, nesting deeper than
orjson allows) is ``INVALID_RESULT`` here, as are NaN, Infinity and numbers
beyond the float range (which orjson would silently store as ``null``): an
execution that succeeded must never fail later, at the store, as a lost
runtime. Error messages are made storable too: NUL and lone surrogates
become U+FFFD. Secret values, and their escaped forms (see logstream.py),
are masked as ``***`` in the log, in error messages and in result strings:
DESIGN.md promises secrets are never echoed in records or logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import orjson

from runplane.runtime.logstream import PIPE_READ_BYTES, LogStream, SecretMasker

MAX_RESULT_BYTES = 1024 * 1024
MAX_ERROR_MESSAGE_CHARS = 4000
MIN_STORABLE_INTEGER = -(2**63)  # orjson's range: int64 and uint64
MAX_STORABLE_INTEGER = 2**64 - 1
TERMINATE_GRACE_SECONDS = 2.0
SUPERVISOR_STOP_SECONDS = 3.0  # its sweep gives up after supervisor.SWEEP_SECONDS (2 s)
LOG_DRAIN_SECONDS = 2.0
PIPE_BUFFER_BYTES = 4 * PIPE_READ_BYTES  # log read ahead before the pipe is paused
SUPERVISOR_MODULE = "runplane.runtime.supervisor"
RUNTIME_SETTINGS_PREFIX = "RUNPLANE_"  # never passed on to processes

LogSink = Callable[[str], Awaitable[None]]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_CONTROL_FILES = ("input.json", "output.json", "error.json", "status.json")
_folders = itertools.count(1)
KEEP_FREE_FOLDERS = 16  # emptied execution folders kept for reuse, per work root
FREE_FOLDER_PREFIX = ".free-"
_free_folders: dict[str, list[str]] = {}  # by work root: kept folders, each with an empty work/


@dataclass(frozen=True)
class Job:
    """What to run for one attempt of one execution."""

    execution_id: str
    attempt: int
    bundle_dir: Path
    entrypoint: str | None  # "module:function"
    command: list[str] | None
    inputs: dict[str, Any]  # effective inputs, secrets in plain text: they must reach the process
    secret_values: tuple[str, ...]  # masked as "***" in every log line, error and result
    timeout_seconds: float
    work_root: Path  # a per-execution directory is created under it and removed afterwards
    runtime: str = ""  # the runtime's name, given to the process as RUNPLANE_RUNTIME
    preload: bool = False  # fork from a zygote that imported the entry point's module (warm.py)
    environment: Path | None = None  # the version's virtual environment (environments.py)
    robot: dict[str, Any] | None = None  # a Robocorp robot's folders (robot.py): its variables


@dataclass(frozen=True)
class Outcome:
    """How an execution ended."""

    status: str  # "succeeded" | "failed" | "timed_out" | "cancelled"
    result: dict[str, Any] | None
    error_code: str | None  # PROCESS_ERROR, EXIT_CODE, INVALID_RESULT, RESULT_TOO_LARGE,
    # TIMED_OUT, CANCELLED, LAUNCH_FAILED, PRELOAD_FAILED
    error_message: str | None
    # files the run left in its artifacts folder (a robot's): (path in the folder, bytes)
    artifacts: tuple[tuple[str, bytes], ...] = ()


def _failed(code: str, message: str) -> Outcome:
    return Outcome(
        "failed", None, _storable_text(code), _storable_text(message)[:MAX_ERROR_MESSAGE_CHARS]
    )


_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")


def _storable_text(text: str) -> str:
    """NUL (PostgreSQL text refuses it) and lone surrogates (not UTF-8) become U+FFFD."""
    return _UNSTORABLE_CHARS.sub("\ufffd", text)


@dataclass(frozen=True)
class ExecutionFiles:
    """The per-execution directory: control files beside the process's work dir."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def input(self) -> Path:
        return self.root / "input.json"

    @property
    def output(self) -> Path:
        return self.root / "output.json"

    @property
    def error(self) -> Path:
        return self.root / "error.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    def spec(self, job: Job) -> bytes:
        spec = {
            "bundle_dir": str(job.bundle_dir),
            "work_dir": str(self.work),
            "entrypoint": job.entrypoint,
            "command": job.command,
            "input_file": str(self.input),
            "output_file": str(self.output),
            "error_file": str(self.error),
            "status_file": str(self.status),
        }
        return json.dumps(spec).encode() + b"\n"


class Supervisor(Protocol):
    """A launched supervisor as the executor sees it, however it was started."""

    pid: int
    """The supervisor's pid, which is its process group id."""
    exited: asyncio.Future[None]
    """Done when the supervisor has exited."""
    output: asyncio.StreamReader
    """The log pipe (the process's stdout and stderr); EOF once every holder closed it."""

    @property
    def returncode(self) -> int | None:
        """As ``subprocess``: negative for a signal; None until exited (or when unknown)."""

    def close_stdin(self) -> None:
        """Close the control pipe: the supervisor ends the execution, as if we had died."""

    def close(self) -> None:
        """Close every pipe to the supervisor (stdin included)."""


class _SupervisorProtocol(asyncio.SubprocessProtocol):
    """Feeds the supervisor's output pipe into a StreamReader and reports its exit.

    Not ``asyncio.create_subprocess_exec``: its ``Process.wait()`` returns only
    once every pipe has closed, so a background process still holding the log
    pipe would hide the supervisor's exit forever.
    """

    def __init__(self) -> None:
        self.output = asyncio.StreamReader(limit=PIPE_BUFFER_BYTES)
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not subclass asyncio's.
        pipe = cast(asyncio.SubprocessTransport, transport).get_pipe_transport(1)
        if pipe is not None:
            self.output.set_transport(pipe)  # so a slow log sink pauses the pipe

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.output.feed_data(data if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.output.feed_eof()

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


class _SpawnedSupervisor:
    """A supervisor spawned as a fresh interpreter: an asyncio subprocess."""

    def __init__(
        self, transport: asyncio.SubprocessTransport, protocol: _SupervisorProtocol
    ) -> None:
        self._transport = transport
        self.pid = transport.get_pid()
        self.exited = protocol.exited
        self.output = protocol.output

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    def close_stdin(self) -> None:
        stdin = self._transport.get_pipe_transport(0)
        if stdin is not None and not stdin.is_closing():
            stdin.close()

    def close(self) -> None:
        self._transport.close()


def prepare(job: Job) -> ExecutionFiles:
    """Create the execution's directory (with its empty ``work`` folder) and input file.

    This runs on the runtime's event loop for every execution, so it is a few plain
    system calls: a folder an earlier execution left empty is renamed to this one's
    name (see `remove`), else two are made. The name is unique to this process's
    attempt (its pid and a counter); one some other process took falls back to a
    random one.
    """
    prefix = _UNSAFE_NAME_CHARS.sub("_", job.execution_id)[:64]
    root = os.path.join(job.work_root, f"{prefix}-{job.attempt}-{os.getpid()}-{next(_folders)}")
    if not _reuse_folder(str(job.work_root), root):
        try:
            os.mkdir(root, 0o700)
        except (FileNotFoundError, FileExistsError):  # no work root yet; the name taken
            job.work_root.mkdir(parents=True, exist_ok=True)
            root = tempfile.mkdtemp(prefix=f"{prefix}-{job.attempt}-", dir=job.work_root)
        try:
            os.mkdir(os.path.join(root, "work"))
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
    files = ExecutionFiles(Path(root))
    try:
        if job.robot is not None:
            (files.work / str(job.robot.get("artifactsDir") or "output")).mkdir(parents=True)
        with open(os.path.join(root, "input.json"), "xb") as stream:
            stream.write(json.dumps(job.inputs).encode())
    except BaseException:
        shutil.rmtree(files.root, ignore_errors=True)
        raise
    return files


def remove(files: ExecutionFiles) -> None:
    """Clear an execution's directory once its run has ended (no process of it is left).

    The common case, a run that left nothing in its work folder, costs a few system
    calls: the control files are unlinked and the emptied folder is kept, under a
    hidden name, for the next execution to rename (removing a directory costs ten
    times as much as renaming one on ext4). Anything else is removed as a whole tree
    on a worker thread, without waiting for it.
    """
    root = str(files.root)
    for name in _CONTROL_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(root, name))
    parent = os.path.dirname(root)
    free = _free_folders.setdefault(parent, [])
    try:
        with os.scandir(os.path.join(root, "work")) as entries:
            empty = next(entries, None) is None
        if empty and len(free) < KEEP_FREE_FOLDERS and len(os.listdir(root)) == 1:
            kept = os.path.join(parent, f"{FREE_FOLDER_PREFIX}{os.getpid()}-{next(_folders)}")
            os.rename(root, kept)
            free.append(kept)
            return
    except OSError:
        pass
    _remove_later(files.root)


def _reuse_folder(parent: str, root: str) -> bool:
    """Rename a folder `remove` kept empty to `root`; False when there is none."""
    free = _free_folders.get(parent)
    while free:
        try:
            os.rename(free.pop(), root)
            return True
        except OSError:  # removed behind our back: make a new one
            continue
    return False


def discard_free_folders() -> None:
    """Remove the empty folders `remove` kept (when the runtime stops)."""
    for free in _free_folders.values():
        while free:
            shutil.rmtree(free.pop(), ignore_errors=True)


def interpreter(environment: Path | None) -> str:
    """The Python an execution runs under: its virtual environment's, else the runtime's."""
    return sys.executable if environment is None else str(environment / "bin" / "python")


def environment_variables(environment: Path | None) -> dict[str, str]:
    """What activating a virtual environment sets: ``VIRTUAL_ENV``, its ``bin`` first on PATH."""
    if environment is None:
        return {}
    path = os.environ.get("PATH", os.defpath)
    return {"VIRTUAL_ENV": str(environment), "PATH": f"{environment / 'bin'}{os.pathsep}{path}"}


def execution_variables(job: Job, files: ExecutionFiles) -> dict[str, str]:
    """Which run this is, for the process's environment; and a robot's own variables."""
    variables = {
        "RUNPLANE_EXECUTION_ID": job.execution_id,
        "RUNPLANE_ATTEMPT": str(job.attempt),
        "RUNPLANE_RUNTIME": job.runtime,
    }
    if job.robot is not None:
        variables |= robot_variables(job, files)
    return variables


def robot_variables(job: Job, files: ExecutionFiles) -> dict[str, str]:
    """What rcc gives a robot: ``ROBOT_ROOT`` (its folder, the working directory),
    ``ROBOT_ARTIFACTS`` (this execution's own artifacts folder), its ``PATH`` entries
    first on ``PATH`` (before its environment's), its ``PYTHONPATH`` entries as
    ``PYTHONPATH``."""
    assert job.robot is not None
    root = job.bundle_dir
    artifacts = files.work / str(job.robot.get("artifactsDir") or "output")
    base_path = environment_variables(job.environment).get("PATH") or os.environ.get(
        "PATH", os.defpath
    )
    robot_path = [str(root / entry) for entry in job.robot.get("path", [])]
    variables = {
        "ROBOT_ROOT": str(root),
        "ROBOT_ARTIFACTS": str(artifacts),
        "PATH": os.pathsep.join([*robot_path, base_path]),
    }
    if job.robot.get("pythonpath"):
        variables["PYTHONPATH"] = os.pathsep.join(
            str(root / entry) for entry in job.robot["pythonpath"]
        )
    run = job.robot.get("run")
    if run:  # Robocorp's work-items libraries call the server with these
        server = str(job.robot.get("server") or "")
        variables |= {
            "RC_WORKSPACE_ID": run["workspaceId"],
            "RC_PROCESS_ID": run["processId"],
            "RC_PROCESS_RUN_ID": run["runId"],
            "RC_ACTIVITY_RUN_ID": run["activityRunId"],
            "RC_WORKITEM_ID": run["workItemId"],
            "RC_API_WORKITEM_HOST": server,
            "RC_API_WORKITEM_TOKEN": run["token"],
            "RC_API_PROCESS_HOST": server,
            "RC_API_PROCESS_TOKEN": run["token"],
        }
    return variables


class LaunchError(Exception):
    """A launch failure whose message the outcome reports under its own code."""

    code = "LAUNCH_FAILED"


async def start_execution(
    job: Job,
    log: LogSink,
    launch: Callable[[ExecutionFiles], Awaitable[Supervisor]],
    failures: tuple[type[Exception], ...],
) -> RunningExecution:
    """Prepare the job's files and launch it: what every launcher's ``start`` does.

    A LaunchError, or one of ``failures`` (as "cannot launch: ..."), comes back as a
    failed outcome rather than raised; anything else removes the files and is raised.
    """
    files: ExecutionFiles | None = None
    try:
        files = prepare(job)
        supervisor = await launch(files)
    except LaunchError as exc:
        return RunningExecution(job, log, None, files, str(exc), error_code=exc.code)
    except failures as exc:
        return RunningExecution(job, log, None, files, f"cannot launch: {exc}")
    except BaseException:
        if files is not None:
            shutil.rmtree(files.root, ignore_errors=True)
        raise
    return RunningExecution(job, log, supervisor, files, None)


class SpawnLauncher:
    """Starts each execution under a fresh interpreter running the supervisor.

    The launcher of ``--launcher spawn``, and the fallback where a fork server
    cannot run (no ``fork``, no pidfds).
    """

    name = "spawn"

    async def start(self, job: Job, log: LogSink) -> RunningExecution:
        """Launch the job; launch problems come back as a LAUNCH_FAILED outcome, not raised."""

        async def launch(files: ExecutionFiles) -> Supervisor:
            transport, protocol = await asyncio.get_running_loop().subprocess_exec(
                _SupervisorProtocol,
                interpreter(job.environment),
                "-u",
                "-m",
                SUPERVISOR_MODULE,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=job.bundle_dir,
                env={
                    **process_environment(),
                    **environment_variables(job.environment),
                    **execution_variables(job, files),
                },
            )
            # Written, never closed: the open pipe is the supervisor's proof that we live.
            stdin = cast(asyncio.WriteTransport, transport.get_pipe_transport(0))
            stdin.write(files.spec(job))
            return _SpawnedSupervisor(transport, protocol)

        return await start_execution(job, log, launch, (OSError, TypeError, ValueError))

    async def warm_up(self) -> None:
        """Nothing to start ahead: each execution starts its own interpreter."""

    async def close(self) -> None:
        """Nothing to stop: every supervisor belongs to its execution."""


class RunningExecution:
    """One launched execution: its log streams while it runs; ``wait()`` gives the outcome."""

    def __init__(
        self,
        job: Job,
        log: LogSink,
        supervisor: Supervisor | None,
        files: ExecutionFiles | None,
        launch_error: str | None,
        *,
        error_code: str = "LAUNCH_FAILED",
    ) -> None:
        self._supervisor = supervisor
        self.pid: int | None = supervisor.pid if supervisor is not None else None
        """The supervisor's pid, which is the process group id; None if the launch failed."""
        self._job = job
        self._files = files
        self._launch_error = launch_error
        self._launch_error_code = error_code
        self._masker = SecretMasker(job.secret_values)
        self._log_sink = log
        self._started_at = asyncio.get_running_loop().time()
        self._stop = asyncio.Event()
        self._cancel_requested = False
        self._timed_out = False
        self._log: asyncio.Task[None] | None = None
        if supervisor is not None:
            stream = LogStream(supervisor.output, self._masker, log)
            self._log = asyncio.create_task(stream.pump(), name=f"log-{job.execution_id}")
        self._task = asyncio.create_task(self._supervise(), name=f"execution-{job.execution_id}")
        self._task.add_done_callback(_retrieve_exception)

    async def wait(self) -> Outcome:
        """Wait for the end; if this wait is cancelled, the execution is cancelled first."""
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            self.cancel()
            raise

    def cancel(self) -> None:
        """End the execution now (every descendant SIGKILLed); the outcome becomes ``cancelled``."""
        if self._supervisor is None or self._task.done():
            return
        if self._supervisor.exited.done():
            return  # already ended by itself: its own outcome stands
        self._cancel_requested = True
        self._close_stdin()  # the supervisor sweeps; _run falls back to killpg if it does not
        self._stop.set()

    async def _supervise(self) -> Outcome:
        try:
            outcome = await self._run()
        except BaseException:
            try:
                # Even when cancelled (the loop shutting down): awaiting once more is
                # allowed, and the supervisor needs the loop to see its stdin close.
                if self._supervisor is not None:
                    await self._stop_supervisor(self._supervisor.exited)
            finally:
                self._release()
                if self._log is not None:
                    self._log.cancel()
                if self._files is not None:
                    shutil.rmtree(self._files.root, ignore_errors=True)
            raise
        self._release()
        if self._files is not None:
            if self._job.robot is not None:
                folder = self._files.work / str(self._job.robot.get("artifactsDir") or "output")
                kept, left = await asyncio.get_running_loop().run_in_executor(
                    None, collect_artifacts, folder
                )
                if left:
                    note = f"[runplane] artifacts not kept (over the limits): {', '.join(left)}\n"
                    await self._log_sink(note)
                outcome = dataclasses.replace(outcome, artifacts=kept)
            remove(self._files)
        return outcome

    def _close_stdin(self) -> None:
        """EOF on its stdin tells the supervisor to end the execution, as if we had died."""
        if self._supervisor is not None:
            self._supervisor.close_stdin()

    def _release(self) -> None:
        """Kill whatever is left of the group and close the pipes (stdin included)."""
        if self._supervisor is not None:
            self._kill_group(signal.SIGKILL)
            self._supervisor.close()

    def _kill_group(self, signum: int) -> None:
        # After the supervisor's exit this still reaches only our group: Linux keeps
        # a pid allocated while any process uses it as its group id.
        if self.pid is not None and self.pid > 1:  # killpg(0) and killpg(1) would be wrong
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    async def _run(self) -> Outcome:
        if self._supervisor is None or self._files is None:
            return _failed(self._launch_error_code, self._launch_error or "cannot launch")
        exited = self._supervisor.exited
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            elapsed = asyncio.get_running_loop().time() - self._started_at
            remaining = max(0.0, self._job.timeout_seconds - elapsed)
            either: set[asyncio.Future[Any]] = {exited, stopped}
            await asyncio.wait(either, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                if self._cancel_requested:
                    await self._stop_supervisor(exited)
                else:
                    self._timed_out = True
                    await self._terminate(exited)
            await asyncio.shield(exited)
        finally:
            stopped.cancel()
        # A supervisor killed from outside leaves its group behind: end it too.
        self._kill_group(signal.SIGKILL)
        await self._drain_log()
        return self._outcome(self._files, self._supervisor.returncode)

    async def _terminate(self, exited: asyncio.Future[None]) -> None:
        """SIGTERM the group; if the process has not ended within the grace, stop it all."""
        # The supervisor ignores it; once the child has ended, it sweeps.
        self._kill_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(exited), TERMINATE_GRACE_SECONDS)
        except TimeoutError:
            await self._stop_supervisor(exited)

    async def _stop_supervisor(self, exited: asyncio.Future[None]) -> None:
        """Have the supervisor kill every descendant; SIGKILL the group if it does not exit."""
        if exited.done():
            return
        self._close_stdin()
        try:
            await asyncio.wait_for(asyncio.shield(exited), SUPERVISOR_STOP_SECONDS)
        except TimeoutError:
            self._kill_group(signal.SIGKILL)

    async def _drain_log(self) -> None:
        if self._log is None or self._supervisor is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._log), LOG_DRAIN_SECONDS)
        except TimeoutError:
            # Something still holds the log pipe (it left the group of a supervisor
            # killed from outside): closing our end gives the pump its EOF.
            self._supervisor.close()
            await self._log

    def _outcome(self, files: ExecutionFiles, returncode: int | None) -> Outcome:
        if self._cancel_requested:
            return Outcome("cancelled", None, "CANCELLED", "execution was cancelled")
        if self._timed_out:
            message = f"execution exceeded its timeout of {self._job.timeout_seconds:g} seconds"
            return Outcome("timed_out", None, "TIMED_OUT", message)
        status = _read_json_object(files.status)
        if status is None:
            # The supervisor never saw the process end: it failed before, or was killed.
            if (error := self._reported_error(files)) is not None:
                return error
            if returncode is None:  # its parent (a fork server) ended before it
                return _failed("EXIT_CODE", "the supervisor ended without recording a status")
            if returncode < 0:
                return _failed("EXIT_CODE", f"process killed by {_signal_name(-returncode)}")
            return _failed("LAUNCH_FAILED", f"supervisor exited with code {returncode}")
        exit_code = status.get("exit_code")
        if exit_code == 0:
            return self._result(files)
        if (error := self._reported_error(files)) is not None:
            return error
        if isinstance(signum := status.get("signal"), int):
            return _failed("EXIT_CODE", f"process killed by {_signal_name(signum)}")
        return _failed("EXIT_CODE", f"process exited with code {exit_code}")

    def _reported_error(self, files: ExecutionFiles) -> Outcome | None:
        error = _read_json_object(files.error)
        if error is None or not isinstance(error.get("code"), str):
            return None
        message = self._masker.mask(str(error.get("message", "")))
        return _failed(error["code"], message)

    def _result(self, files: ExecutionFiles) -> Outcome:
        try:
            size = files.output.stat().st_size
        except FileNotFoundError:
            return Outcome("succeeded", {}, None, None)
        if size > MAX_RESULT_BYTES:
            return _failed(
                "RESULT_TOO_LARGE", f"result is {size} bytes; the limit is {MAX_RESULT_BYTES}"
            )
        data = files.output.read_bytes()
        if not data.strip():
            return Outcome("succeeded", {}, None, None)
        try:
            result = json.loads(data, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            return _failed("INVALID_RESULT", f"result is not valid JSON: {exc}")
        if not isinstance(result, dict):
            kind = type(result).__name__
            return _failed("INVALID_RESULT", f"result must be a JSON object, not {kind}")
        if (problem := _unstorable(result)) is not None:
            return _failed("INVALID_RESULT", f"the result cannot be stored as JSON: {problem}")
        return Outcome("succeeded", self._masker.mask_json(result), None, None)


MAX_ARTIFACT_FILES = 100
MAX_ARTIFACTS_BYTES = 32 * 1024 * 1024  # all of one attempt's artifacts together


def collect_artifacts(folder: Path) -> tuple[tuple[tuple[str, bytes], ...], list[str]]:
    """The regular files under `folder` (no symbolic links followed), by path, up to
    MAX_ARTIFACT_FILES and MAX_ARTIFACTS_BYTES in all; and the paths left out."""
    kept: list[tuple[str, bytes]] = []
    left: list[str] = []
    total = 0
    if not folder.is_dir():
        return (), []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        name = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        if len(kept) >= MAX_ARTIFACT_FILES or total + size > MAX_ARTIFACTS_BYTES:
            left.append(name)
            continue
        try:
            kept.append((name, path.read_bytes()))
        except OSError:
            left.append(name)
            continue
        total += size
    return tuple(kept), left


def _remove_later(folder: Path) -> None:
    """Remove an execution's folder on a worker thread, without waiting for it.

    The loop's default executor finishes queued work when the loop shuts down
    (``asyncio.run`` waits for it), so a runtime that exits cleanly leaves no
    folder behind.
    """
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, shutil.rmtree, folder, True)


def process_environment() -> dict[str, str]:
    """The runtime's environment minus its own settings (database URL, runtime token)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(RUNTIME_SETTINGS_PREFIX)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unstorable(result: dict[str, Any]) -> str | None:
    """Why the server could not store this decoded result as JSON, or None if it can."""
    try:
        orjson.dumps(result)  # what the store will do: lone surrogates, depth, integer range
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        return str(exc)
    # orjson refuses big integers itself, but writes non-finite floats as null: walk it all.
    pending: list[Any] = [result]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        elif isinstance(value, int):
            if not MIN_STORABLE_INTEGER <= value <= MAX_STORABLE_INTEGER:
                return "Integer exceeds 64-bit range"
        elif isinstance(value, float) and not math.isfinite(value):
            return "Number exceeds the float range"
    return None


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _retrieve_exception(task: asyncio.Task[Outcome]) -> None:
    # The outcome may never be awaited (wait() cancelled); don't warn about it.
    if not task.cancelled():
        task.exception()
