"""The warm launcher's fork server: ``python -P -u -m runplane.runtime.forkserver FD [IDLE]``.

Starting an interpreter for every execution costs tens of milliseconds of CPU
before a line of the robot runs. The warm launcher (warm.py) starts this
server once per runtime instead; it has imported only what an execution needs
(the supervisor, the standard library) and forks one supervisor per
execution, which then runs exactly as if it had been spawned: its own session
and process group, its control pipe on stdin, the log pipe on stdout and
stderr, the execution's working directory and environment. Everything
supervisor.py promises holds unchanged, because the forked child runs the
same ``supervisor.main()``.

A *zygote* is a second fork server forked from this one that has also
imported one process version's entry point module (``preload = true``):
executions of that version fork from it, so an import that takes a second is
paid once. It serves the same protocol on its own socket.

Protocol. FD is one end of an ``AF_UNIX``/``SOCK_SEQPACKET`` socket pair (one
message per packet, file descriptors passed with ``SCM_RIGHTS``); the runtime
holds the other end. Requests are JSON objects:

- ``{"op": "launch", "id", "cwd", "env"}`` (``env``: the variables to add to the
  server's environment, which execution this is) with two descriptors: the read end
  of the control pipe and the write end of the log pipe. The server forks a
  supervisor and answers ``{"id", "pid"}`` with a pidfd of it, or
  ``{"id", "error"}``. The runtime writes the spec line into the control pipe
  only once it has the answer: a supervisor forked by a server that died
  before answering finds its stdin closed before any spec arrived and exits
  without running anything, so relaunching elsewhere never runs an
  execution twice.
- ``{"op": "zygote", "id", "cwd", "env", "module"}`` with the zygote's end of
  a new socket pair. The server forks the zygote and answers ``{"id",
  "pid"}``; the zygote imports the module and says ``{"ready": true}`` or
  ``{"error", "traceback"}`` on its own socket (then exits), and serves
  launches there.

A *spare*. Once it has served a launch, the server keeps the next supervisor
forked ahead: a child that has already left the server's session and waits on
a socket of its own for a launch. A launch is handed to the spare (the request
and its two descriptors, one message) and answered with the spare's pid at
once; the server then forks the next spare while the execution runs. So the
fork, and the pages a new child copies as it starts, are off the path from
trigger to result. A spare left unused for ``IDLE`` seconds (the optional
second argument; ``SPARE_IDLE_SECONDS`` by default) is told to exit, so an
idle runtime keeps none; one that died is replaced by a plain fork at the next
launch. A spare is never a running execution: its end is not reported.

When a child ends the server reaps it and sends ``{"exit": pid, "status":
<wait status>}``. EOF on the socket (the runtime closed it, or died) ends the
server; executions already running do not depend on it: each supervisor
watches its control pipe, which only the runtime holds.

The server is a child subreaper, so supervisors whose zygote ended are
re-parented here and reaped, never left as zombies.

Only the standard library (and the supervisor) is imported: that is what
every forked execution inherits.
"""

from __future__ import annotations

import contextlib
import gc
import importlib  # with traceback: what an entry point's child imports, preloaded
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback

from runplane.runtime import supervisor

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Work = Callable[[], "Work | None"]
    Runner = Callable[[dict[str, Any], list[int]], "Work | None"]

MAX_MESSAGE_BYTES = 64 * 1024  # requests are small: the spec goes by pipe
MAX_FDS = 4
REAP_INTERVAL_SECONDS = 1.0  # how often adopted orphans (a zygote's supervisors) are reaped
FIRST_FREE_FD = 3
SPARE_IDLE_SECONDS = 10.0  # a spare unused this long exits: an idle runtime keeps none
spare_idle_seconds = SPARE_IDLE_SECONDS  # argv[2] when given (zygotes inherit it)


def main() -> None:
    """Serve on the socket given as argv[1]; a forked child leaves the loop and runs its work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the runtime's to handle
    supervisor._become_subreaper()
    if len(sys.argv) > 2:
        global spare_idle_seconds
        spare_idle_seconds = float(sys.argv[2])
    _freeze()
    work: Work | None = Server(socket.socket(fileno=int(sys.argv[1]))).serve()
    # Only forked children get here with work, at the top of the stack: what they run
    # ends the interpreter normally (SystemExit, atexit), as a spawned process would.
    while work is not None:
        work = work()


class Server:
    """One socket's loop: fork on request, report each child's end."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, int] = {}  # pid -> our pidfd of it
        self.spare: Spare | None = None
        self.retired: dict[int, Spare] = {}  # spares told to exit, by pid
        self.last_launch = 0.0

    def serve(self) -> Work | None:
        """Serve until EOF (return None), or return the work of a forked child."""
        self.selector.register(self.sock, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.selector.select(REAP_INTERVAL_SECONDS):
                if key.data is not None:
                    continue  # a child's pidfd: reaped below
                try:
                    data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE_BYTES, MAX_FDS)
                except OSError:
                    data, fds = b"", []
                if not data:
                    _close_all(fds)
                    self._retire_spare()
                    return None
                work = self._handle(data, fds)
                if work is not None:
                    return work
            self._reap()
            if self.spare is not None and time.monotonic() - self.last_launch > spare_idle_seconds:
                self._retire_spare()

    def _handle(self, data: bytes, fds: list[int]) -> Work | None:
        request_id = None
        try:
            request = json.loads(data)
            request_id = request["id"]
            op = request["op"]
            if op == "launch" and len(fds) == 2:
                return self._launch(request, fds)
            if op == "zygote" and len(fds) == 1:
                return self._fork(request, fds, _zygote)
            raise ValueError(f"bad request {op!r} with {len(fds)} descriptor(s)")
        except (ValueError, KeyError, TypeError, OSError) as exc:
            _close_all(fds)
            self.send({"id": request_id, "error": f"{type(exc).__name__}: {exc}"})
            return None

    def _launch(self, request: dict[str, Any], fds: list[int]) -> Work | None:
        """Hand the launch to the spare (else fork its supervisor now); then fork the
        next spare, once the runtime has its answer."""
        self.last_launch = time.monotonic()
        spare, self.spare = self.spare, None
        if spare is None or not spare.hand(request, fds):
            if spare is not None:
                spare.forget(self.selector)
            work = self._fork(request, fds, _supervise)
            return work if work is not None else self._fork_spare()
        _close_all(fds)
        self.children[spare.pid] = spare.pidfd
        self.send({"id": request["id"], "pid": spare.pid}, [spare.pidfd])
        return self._fork_spare()

    def _fork_spare(self) -> Work | None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None  # no spare: the next launch forks its own supervisor
        if pid == 0:
            self.selector.close()
            self.sock.close()
            ours.close()
            return lambda: _wait_as_spare(theirs)
        theirs.close()
        pidfd = os.pidfd_open(pid)
        self.selector.register(pidfd, selectors.EVENT_READ, pid)
        self.spare = Spare(pid, pidfd, ours)
        return None

    def _retire_spare(self) -> None:
        """Tell the spare to exit (EOF on its socket); it is reaped like any child."""
        if self.spare is not None:
            self.spare.sock.close()
            self.retired[self.spare.pid] = self.spare
            self.spare = None

    def _fork(self, request: dict[str, Any], fds: list[int], run: Runner) -> Work | None:
        pid = os.fork()
        if pid == 0:
            # Close our objects before their descriptors are reused by the child.
            self.selector.close()
            self.sock.close()
            return lambda: run(request, fds)
        _close_all(fds)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = pidfd
        self.selector.register(pidfd, selectors.EVENT_READ, pid)
        self.send({"id": request["id"], "pid": pid}, [pidfd])
        return None

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            # A spare ran nothing, whether it died unused or was told to exit: not news.
            if self.spare is not None and pid == self.spare.pid:
                self.spare.forget(self.selector)
                self.spare = None
                continue
            if pid in self.retired:
                self.retired.pop(pid).forget(self.selector)
                continue
            pidfd = self.children.pop(pid, None)
            if pidfd is not None:  # else an adopted orphan: nobody asked about it
                self.selector.unregister(pidfd)
                os.close(pidfd)
                self.send({"exit": pid, "status": status})

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        with contextlib.suppress(OSError):  # the runtime is gone: the next read sees EOF
            socket.send_fds(self.sock, [json.dumps(message).encode()], fds or [])


class Spare:
    """The next supervisor, forked ahead: its pid, our pidfd of it, our end of its socket."""

    def __init__(self, pid: int, pidfd: int, sock: socket.socket) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.sock = sock

    def hand(self, request: dict[str, Any], fds: list[int]) -> bool:
        """Give it the launch; False if it is gone (then nothing was handed)."""
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], fds)
        except OSError:
            return False
        finally:
            self.sock.close()
        return True

    def forget(self, selector: selectors.BaseSelector) -> None:
        """Stop watching a spare that ended (or was never given anything)."""
        self.sock.close()
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(self.pidfd)
        with contextlib.suppress(OSError):
            os.close(self.pidfd)


def _wait_as_spare(sock: socket.socket) -> None:
    """In a spare: leave the server's session now, then wait for a launch and become its
    supervisor; EOF (the server retired us, or died) ends the spare."""
    os.setsid()
    keep = sock.fileno()
    os.closerange(FIRST_FREE_FD, keep)  # the server's other descriptors are not ours
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
    try:
        data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE_BYTES, MAX_FDS)
    except OSError:
        data, fds = b"", []
    sock.close()
    if not data or len(fds) != 2:
        os._exit(0)
    _supervise(json.loads(data), fds)


def _freeze() -> None:
    """Keep what is loaded now out of every later garbage collection.

    A forked child shares its parent's pages until it writes to them, and a
    collection writes to every object it visits: frozen objects are never
    visited, so a child's collections copy only what the child made.
    """
    gc.collect()
    gc.freeze()


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _become(request: dict[str, Any]) -> None:
    """Take the request's directory and variables, with signals as a fresh process has.

    The environment is the server's own (the runtime's, minus its settings, given
    when it started) plus the request's variables: which execution this is.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.update(request["env"])


def _supervise(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the execution's supervisor (never returns normally)."""
    control, log = fds
    if os.getsid(0) != os.getpid():  # a spare has left the server's session already
        os.setsid()
    os.dup2(control, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(FIRST_FREE_FD, os.sysconf("SC_OPEN_MAX"))
    _become(request)
    supervisor.main()


def _zygote(request: dict[str, Any], fds: list[int]) -> Work | None:
    """In the forked child: import the module once, then fork executions from here."""
    (channel,) = fds
    os.setsid()  # out of the runtime's group: only its socket ends it
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # what the module prints while importing belongs to no execution
        os.dup2(devnull, fd)
    os.dup2(channel, FIRST_FREE_FD)
    os.closerange(FIRST_FREE_FD + 1, os.sysconf("SC_OPEN_MAX"))
    sock = socket.socket(fileno=FIRST_FREE_FD)
    _become(request)
    sys.path.insert(0, request["cwd"])
    server = Server(sock)
    try:
        importlib.import_module(request["module"])
    except BaseException as exc:  # SystemExit and KeyboardInterrupt in a module too
        server.send(
            {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": "".join(traceback.format_exception(exc)),
            }
        )
        os._exit(1)
    _freeze()
    server.send({"ready": True})
    return server.serve()


if __name__ == "__main__":
    main()
