"""The warm launcher: executions forked from a fork server started once per runtime.

``WarmLauncher`` starts ``python -m runplane.runtime.forkserver`` when the
runtime starts and asks it for one supervisor per execution (forkserver.py has
the protocol). The supervisor it forks behaves exactly as a spawned one: its
own session and group, the control pipe on stdin (whose write end only this
process holds, so the runtime's death still ends every execution), the log
pipe on stdout and stderr. What changes is the cost: a fork of a small warm
interpreter instead of an interpreter's start-up.

Preloading (``preload = true`` in a process's ``[process]``): the launcher
keeps a *zygote* per process version (its bundle directory and entry point
module), forked from the fork server, that has imported the module once;
that version's executions fork from it. Zygotes are bounded
(``preload_max``, least recently used first out) and end after
``preload_idle_seconds`` unused. An import that fails fails the execution
that asked with ``PRELOAD_FAILED`` (the traceback in its log); the next
execution of the version tries again, once: there is no restart loop.

A fork server (or zygote) that dies is replaced at the next launch. The
executions it had forked do not notice: they are tied to this process by
their control pipes, and their end is read from the pidfd the server sent
with each pid (their exit status is then unknown, but the supervisor's
status file holds the process's). A launch whose answer never came is
relaunched once on a new server: the spec goes down the control pipe only
after the answer, so a supervisor forked by a server that died before
answering finds its stdin closed first and runs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runplane.runtime.executor import (
    PIPE_BUFFER_BYTES,
    ExecutionFiles,
    Job,
    LaunchError,
    LogSink,
    RunningExecution,
    SpawnLauncher,
    environment_variables,
    execution_variables,
    interpreter,
    process_environment,
    start_execution,
)

log = logging.getLogger("runplane.runtime")

FORKSERVER_MODULE = "runplane.runtime.forkserver"
MAX_MESSAGE_BYTES = 64 * 1024
MAX_FDS = 4
SERVER_EXIT_SECONDS = 5.0
LAUNCH_TRIES = 2  # a server that died mid-launch is replaced once, then the launch fails
DEFAULT_PRELOAD_MAX = 8
DEFAULT_PRELOAD_IDLE_SECONDS = 600.0
DEFAULT_SPARE_IDLE_SECONDS = 10.0  # the fork server's spare supervisor (forkserver.py)


def available() -> bool:
    """Whether this platform can run a fork server (fork, pidfds, descriptor passing)."""
    return (
        hasattr(os, "fork")
        and hasattr(os, "pidfd_open")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
    )


class ServerLost(Exception):
    """The fork server (or zygote) went away before answering."""


class _Channel:
    """This side of one fork server's (or zygote's) socket, on the event loop."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.loop = asyncio.get_running_loop()
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[tuple[dict[str, Any], list[int]]]] = {}
        self.exits: dict[int, asyncio.Future[int | None]] = {}
        self.early_exits: dict[int, int] = {}  # an exit read before its pid was watched
        self.notices: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.lost = self.loop.create_future()
        sock.setblocking(False)
        self.loop.add_reader(sock.fileno(), self._readable)

    @property
    def alive(self) -> bool:
        return not self.lost.done()

    async def request(
        self, message: dict[str, Any], fds: Sequence[int]
    ) -> tuple[dict[str, Any], list[int]]:
        """Send a request with descriptors and wait for its answer; ServerLost if it died."""
        if not self.alive:
            raise ServerLost(self.name)
        request_id = next(self.ids)
        answer: asyncio.Future[tuple[dict[str, Any], list[int]]] = self.loop.create_future()
        self.pending[request_id] = answer
        data = json.dumps({**message, "id": request_id}).encode()
        try:
            await self._send(data, fds)
            return await answer
        finally:
            self.pending.pop(request_id, None)

    async def _send(self, data: bytes, fds: Sequence[int]) -> None:
        while True:
            try:
                socket.send_fds(self.sock, [data], list(fds))
                return
            except BlockingIOError:
                writable = self.loop.create_future()
                self.loop.add_writer(self.sock.fileno(), writable.set_result, None)
                try:
                    await asyncio.wait({writable, self.lost}, return_when="FIRST_COMPLETED")
                finally:
                    self.loop.remove_writer(self.sock.fileno())
                if not self.alive:
                    raise ServerLost(self.name) from None
            except OSError as exc:
                if exc.errno == errno.EMSGSIZE:
                    raise ValueError("the request is too large for the fork server") from exc
                self._lose()
                raise ServerLost(self.name) from exc

    def watch(self, pid: int) -> asyncio.Future[int | None]:
        """A future of the child's wait status (None if the server ended before it did)."""
        exit_status = self.loop.create_future()
        if pid in self.early_exits:
            exit_status.set_result(self.early_exits.pop(pid))
        elif not self.alive:
            exit_status.set_result(None)
        else:
            self.exits[pid] = exit_status
        return exit_status

    def _readable(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE_BYTES, MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data:
                _close_all(fds)
                self._lose()
                return
            message = json.loads(data)
            if "exit" in message:
                _close_all(fds)
                pid, status = int(message["exit"]), int(message["status"])
                waiting = self.exits.pop(pid, None)
                if waiting is None:
                    self.early_exits[pid] = status
                elif not waiting.done():
                    waiting.set_result(status)
            elif message.get("id") is not None:
                answer = self.pending.get(message["id"])
                if answer is None or answer.done():
                    _close_all(fds)
                else:
                    answer.set_result((message, fds))
            else:
                _close_all(fds)
                self.notices.put_nowait(message)

    def _lose(self) -> None:
        if self.lost.done():
            return
        self.lost.set_result(None)
        self.loop.remove_reader(self.sock.fileno())
        for answer in self.pending.values():
            if not answer.done():
                answer.set_exception(ServerLost(self.name))
        for exit_status in self.exits.values():
            if not exit_status.done():
                exit_status.set_result(None)
        self.exits.clear()

    def close(self) -> None:
        """Close our end: the server (or zygote) sees EOF and exits."""
        self._lose()
        self.sock.close()


class _LogPipe(asyncio.Protocol):
    """Feeds the read end of a log pipe into a StreamReader, with flow control."""

    def __init__(self, output: asyncio.StreamReader) -> None:
        self.output = output

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.output.set_transport(transport)  # a read pipe: the reader pauses it when full

    def data_received(self, data: bytes) -> None:
        self.output.feed_data(data)

    def eof_received(self) -> bool | None:
        self.output.feed_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.output.feed_eof()


class _ForkedSupervisor:
    """A supervisor forked by a fork server or zygote: pipes and a pidfd of ours."""

    def __init__(
        self,
        pid: int,
        pidfd: int,
        control: int,
        output: asyncio.StreamReader,
        log_transport: asyncio.BaseTransport,
        exit_status: asyncio.Future[int | None],
    ) -> None:
        self.pid = pid
        self.output = output
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._returncode: int | None = None
        self._pidfd: int | None = pidfd
        self._control: int | None = control
        self._log_transport = log_transport
        self._watcher = asyncio.ensure_future(self._watch(exit_status))

    @property
    def returncode(self) -> int | None:
        return self._returncode

    async def _watch(self, exit_status: asyncio.Future[int | None]) -> None:
        """Exit status from the server; if the server is gone, the end from our pidfd."""
        loop = asyncio.get_running_loop()
        status = await exit_status
        if status is None and self._pidfd is not None:
            ended: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(self._pidfd, readable)
            try:
                await ended
            finally:
                loop.remove_reader(self._pidfd)
        if status is not None:
            self._returncode = os.waitstatus_to_exitcode(status)
        self._close_pidfd()
        if not self.exited.done():
            self.exited.set_result(None)

    def close_stdin(self) -> None:
        if self._control is not None:
            os.close(self._control)
            self._control = None

    def close(self) -> None:
        self.close_stdin()
        self._log_transport.close()
        if self.exited.done():
            self._close_pidfd()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class _Zygote:
    """A zygote's channel, and whether its import went well."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self.ready: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        """None once imported; else what to put in the log (the traceback)."""
        self.error = ""
        self.idle_timer: asyncio.TimerHandle | None = None
        self.starting: asyncio.Future[None] | None = None
        self.pid: int | None = None


class _ServerSlot:
    """The fork server of one interpreter: the runtime's, or a virtual environment's."""

    def __init__(self, environment: Path | None) -> None:
        self.environment = environment
        self.channel: _Channel | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.starting = asyncio.Lock()

    async def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.process is not None:
            try:  # it exits at the EOF on its socket
                await asyncio.wait_for(self.process.wait(), SERVER_EXIT_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
            self.process = None


class WarmLauncher:
    """Forks each execution's supervisor from a warm fork server (or a process's zygote)."""

    name = "warm"

    def __init__(
        self,
        *,
        preload_max: int = DEFAULT_PRELOAD_MAX,
        preload_idle_seconds: float = DEFAULT_PRELOAD_IDLE_SECONDS,
        spare_idle_seconds: float = DEFAULT_SPARE_IDLE_SECONDS,
    ) -> None:
        self.preload_max = preload_max
        self.preload_idle_seconds = preload_idle_seconds
        self.spare_idle_seconds = spare_idle_seconds
        self._servers: dict[Path | None, _ServerSlot] = {}
        self._zygotes: OrderedDict[tuple[str, str, str], _Zygote] = OrderedDict()
        self._spawn = SpawnLauncher()
        self.servers_started = 0

    async def warm_up(self) -> None:
        """Start the fork server now rather than at the first launch."""
        await self._fork_server()

    async def start(self, job: Job, log_sink: LogSink) -> RunningExecution:
        """Launch the job; launch problems come back as a failed outcome, not raised."""

        async def launch(files: ExecutionFiles) -> _ForkedSupervisor:
            return await self._launch(job, files, log_sink)

        return await start_execution(job, log_sink, launch, (OSError, ServerLost, ValueError))

    async def close(self) -> None:
        """Stop the fork server and every zygote (running executions go on to their end)."""
        for zygote in self._zygotes.values():
            self._retire(zygote)
        self._zygotes.clear()
        slots, self._servers = list(self._servers.values()), {}
        for slot in slots:
            await slot.close()

    async def forget_environment(self, environment: Path) -> None:
        """Stop the fork server and zygotes of a virtual environment that was removed."""
        for key in [k for k in self._zygotes if k[0] == str(environment)]:
            self._forget(key)
        slot = self._servers.pop(environment, None)
        if slot is not None:
            await slot.close()

    async def _launch(
        self, job: Job, files: ExecutionFiles, log_sink: LogSink
    ) -> _ForkedSupervisor:
        env = execution_variables(job, files)
        for attempt in range(LAUNCH_TRIES):
            channel = await self._channel_for(job, log_sink)
            try:
                return await self._fork(channel, job, files, env)
            except ServerLost:
                if attempt + 1 == LAUNCH_TRIES:
                    raise
                log.warning("the fork server ended during a launch; starting another")
        raise AssertionError("unreachable")

    async def _fork(
        self, channel: _Channel, job: Job, files: ExecutionFiles, env: dict[str, str]
    ) -> _ForkedSupervisor:
        loop = asyncio.get_running_loop()
        control_read, control = os.pipe()
        log_read, log_write = os.pipe()
        try:
            request = {"op": "launch", "cwd": str(job.bundle_dir), "env": env}
            try:
                answer, fds = await channel.request(request, [control_read, log_write])
            finally:
                os.close(control_read)
                os.close(log_write)
            if "error" in answer:
                _close_all(fds)
                raise OSError(answer["error"])
            pid, (pidfd,) = int(answer["pid"]), fds
            exit_status = channel.watch(pid)
            # Now, not before: a supervisor whose server died unanswered never gets a spec.
            os.write(control, files.spec(job))
            output = asyncio.StreamReader(limit=PIPE_BUFFER_BYTES)
            transport, _ = await loop.connect_read_pipe(
                lambda: _LogPipe(output), os.fdopen(log_read, "rb", buffering=0)
            )
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(control)  # a forked supervisor, if any, ends at once
            with contextlib.suppress(OSError):
                os.close(log_read)
            raise
        return _ForkedSupervisor(pid, pidfd, control, output, transport, exit_status)

    async def _channel_for(self, job: Job, log_sink: LogSink) -> _Channel:
        if job.preload and job.entrypoint:
            return await self._zygote(job, log_sink)
        return await self._fork_server(job.environment)

    async def _fork_server(self, environment: Path | None = None) -> _Channel:
        """The fork server of the environment's interpreter, started if need be."""
        slot = self._servers.get(environment)
        if slot is None:
            slot = self._servers[environment] = _ServerSlot(environment)
        if slot.channel is not None and slot.channel.alive:
            return slot.channel
        async with slot.starting:
            if slot.channel is not None and slot.channel.alive:
                return slot.channel
            if slot.channel is not None:
                log.warning("the fork server ended; starting another")
                slot.channel.close()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                # The server's working directory must be no import path of the robot's:
                # -P says so from Python 3.11; before it, the environment's own root
                # (which holds no module) is that directory.
                safe = ["-P"] if _supports_safe_path(environment) else []
                slot.process = await asyncio.create_subprocess_exec(
                    interpreter(environment),
                    *safe,
                    "-u",
                    "-m",
                    FORKSERVER_MODULE,
                    str(theirs.fileno()),
                    str(self.spare_idle_seconds),
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env={**process_environment(), **environment_variables(environment)},
                    cwd=None if safe else environment,
                )
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            self.servers_started += 1
            name = "fork server" if environment is None else f"fork server of {environment.name}"
            slot.channel = _Channel(ours, name)
            return slot.channel

    async def _zygote(self, job: Job, log_sink: LogSink) -> _Channel:
        assert job.entrypoint is not None
        module = job.entrypoint.partition(":")[0]
        key = (str(job.environment or ""), str(job.bundle_dir), module)
        zygote = self._zygotes.get(key)
        if zygote is not None and zygote.ready.done() and not zygote.channel.alive:
            self._forget(key)  # it ended (or was killed): start another
            zygote = None
        if zygote is None:
            zygote = self._new_zygote(job, module)
            self._zygotes[key] = zygote
            while len(self._zygotes) > self.preload_max:
                _, oldest = self._zygotes.popitem(last=False)
                self._retire(oldest)
        self._zygotes.move_to_end(key)
        error = await asyncio.shield(zygote.ready)
        if error is not None:
            if self._zygotes.get(key) is zygote:
                self._forget(key)  # the next execution tries again: once each, no loop
            await log_sink(error)
            raise _PreloadFailed(f"preloading module {module!r} failed: {zygote.error}")
        if zygote.idle_timer is not None:
            zygote.idle_timer.cancel()
        zygote.idle_timer = asyncio.get_running_loop().call_later(
            self.preload_idle_seconds, self._idle, key, zygote
        )
        return zygote.channel

    def _new_zygote(self, job: Job, module: str) -> _Zygote:
        """Register the zygote at once (concurrent launches share it); it starts meanwhile."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        zygote = _Zygote(_Channel(ours, f"zygote of {module}"))
        zygote.starting = asyncio.ensure_future(self._start_zygote(zygote, theirs, job, module))
        return zygote

    async def _start_zygote(
        self, zygote: _Zygote, theirs: socket.socket, job: Job, module: str
    ) -> None:
        channel = zygote.channel
        request = {
            "op": "zygote",
            "cwd": str(job.bundle_dir),
            "env": {},
            "module": module,
        }
        message: dict[str, Any] = {}
        try:
            try:
                server = await self._fork_server(job.environment)
                answer, fds = await server.request(request, [theirs.fileno()])
            finally:
                theirs.close()
            _close_all(fds)  # its pidfd: the zygote's end is its socket's EOF
            if "error" in answer:
                raise OSError(answer["error"])
            zygote.pid = int(answer["pid"])
            server.watch(zygote.pid)  # nobody waits for it; its end is its socket's EOF
            notice = asyncio.ensure_future(channel.notices.get())
            await asyncio.wait({notice, channel.lost}, return_when="FIRST_COMPLETED")
            if not notice.done():
                notice.cancel()
            else:
                message = notice.result()
        except (OSError, ServerLost) as exc:
            message = {"error": f"cannot start the preloading process: {exc}"}
        if message.get("ready"):
            zygote.ready.set_result(None)
            return
        zygote.error = str(message.get("error") or "the preloading process ended")
        zygote.ready.set_result(str(message.get("traceback") or zygote.error + "\n"))
        channel.close()

    def _idle(self, key: tuple[str, str, str], zygote: _Zygote) -> None:
        if self._zygotes.get(key) is zygote:
            self._forget(key)

    def _forget(self, key: tuple[str, str, str]) -> None:
        zygote = self._zygotes.pop(key, None)
        if zygote is not None:
            self._retire(zygote)

    @staticmethod
    def _retire(zygote: _Zygote) -> None:
        if zygote.idle_timer is not None:
            zygote.idle_timer.cancel()
        zygote.channel.close()

    @property
    def zygote_pids(self) -> list[int]:
        """The zygotes kept now (started, or starting), least recently used first."""
        return [z.pid for z in self._zygotes.values() if z.pid is not None]

    @property
    def server_pid(self) -> int | None:
        """The (runtime's own) fork server's pid, while it runs."""
        slot = self._servers.get(None)
        return slot.process.pid if slot is not None and slot.process is not None else None


class _PreloadFailed(LaunchError):
    """The process's module could not be imported in its zygote."""

    code = "PRELOAD_FAILED"


def _supports_safe_path(environment: Path | None) -> bool:
    """Whether the environment's Python (3.11 and newer) has ``-P``."""
    if environment is None:
        return sys.version_info >= (3, 11)
    try:
        config = (environment / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return True
    for line in config.splitlines():
        name, _, value = line.partition("=")
        if name.strip() in ("version_info", "version"):
            parts = value.strip().split(".")
            with contextlib.suppress(ValueError, IndexError):
                return (int(parts[0]), int(parts[1])) >= (3, 11)
    return True


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def create_launcher(
    kind: str,
    *,
    preload_max: int = DEFAULT_PRELOAD_MAX,
    preload_idle_seconds: float = DEFAULT_PRELOAD_IDLE_SECONDS,
) -> WarmLauncher | SpawnLauncher:
    """The launcher named ``warm`` or ``spawn``; ``warm`` falls back to spawn where
    a fork server cannot run."""
    if kind == "warm" and available():
        return WarmLauncher(preload_max=preload_max, preload_idle_seconds=preload_idle_seconds)
    if kind not in ("warm", "spawn"):
        raise ValueError(f"unknown launcher {kind!r}: use warm or spawn")
    return SpawnLauncher()
