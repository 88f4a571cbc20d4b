"""The warm launcher's fork server: ``python -P -u -m runplane.runtime.forkserver FD``.

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


def main() -> None:
    """Serve on the socket given as argv[1]; a forked child leaves the loop and runs its work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the runtime's to handle
    supervisor._become_subreaper()
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
                    return None
                work = self._handle(data, fds)
                if work is not None:
                    return work
            self._reap()

    def _handle(self, data: bytes, fds: list[int]) -> Work | None:
        request_id = None
        try:
            request = json.loads(data)
            request_id = request["id"]
            op = request["op"]
            if op == "launch" and len(fds) == 2:
                return self._fork(request, fds, _supervise)
            if op == "zygote" and len(fds) == 1:
                return self._fork(request, fds, _zygote)
            raise ValueError(f"bad request {op!r} with {len(fds)} descriptor(s)")
        except (ValueError, KeyError, TypeError, OSError) as exc:
            _close_all(fds)
            self.send({"id": request_id, "error": f"{type(exc).__name__}: {exc}"})
            return None

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
            pidfd = self.children.pop(pid, None)
            if pidfd is not None:  # else an adopted orphan: nobody asked about it
                self.selector.unregister(pidfd)
                os.close(pidfd)
                self.send({"exit": pid, "status": status})

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        with contextlib.suppress(OSError):  # the runtime is gone: the next read sees EOF
            socket.send_fds(self.sock, [json.dumps(message).encode()], fds or [])


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
