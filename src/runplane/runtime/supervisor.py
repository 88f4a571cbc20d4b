"""Per-execution supervisor, run as ``python -m runplane.runtime.supervisor``.

One supervisor runs per execution. The executor starts it with
``start_new_session=True``, so it leads a fresh process group, and everything
the execution starts (the child, its shells, their ``sleep 1000 &``) lives in
that group unless it deliberately leaves (``setsid``, a daemon's double fork);
what leaves stays the supervisor's descendant (see below). Killing every
descendant, then the group, is how an execution ends, whatever the path.

Protocol (the executor owns the other end):

- stdin is a pipe from the runtime. The first line is a JSON spec:
  ``{"bundle_dir", "work_dir", "entrypoint": "module:function" | null,
  "command": [...] | null, "input_file", "output_file", "error_file",
  "status_file"}``. The runtime then keeps the pipe open and writes nothing.
  EOF means "end the execution now": the runtime died (a pipe closes exactly
  when the last holder of its write end dies), or the executor closed it on
  purpose (timeout past its grace, cancel). A parent-death signal would not
  do: it fires when the *thread* that forked exits and reaches only the
  direct child, so grandchildren survive.
- stdout and stderr go to one pipe: the execution log.
- The child runs with cwd = bundle_dir and ``RUNPLANE_INPUT``,
  ``RUNPLANE_OUTPUT``, ``RUNPLANE_WORK_DIR``, ``PYTHONUNBUFFERED=1``. A
  Python entrypoint is called in the forked child itself (no second
  interpreter start-up); a command is ``execvpe``-d.
- error_file, written on failure: ``{"code", "message"}``.
- status_file, written when the child ends: ``{"exit_code", "signal"}``.

Processes that leave the group. A group kill misses ``setsid sleep 1000 &``
and a daemon's double fork into a new session. So the supervisor makes
itself a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``): a descendant
whose parent dies is re-parented to the supervisor instead of to init, and
every process the execution started stays a descendant of the supervisor,
whatever its session or group, for as long as the supervisor lives. Orphans
that end while the execution runs are reaped here (every
``REAP_INTERVAL_SECONDS`` at most).

Ending an execution (the child exited, stdin reached EOF, or something
failed here): the supervisor SIGKILLs every descendant it finds in ``/proc``
(``/proc/<pid>/task/<tid>/children``; a scan of every ``/proc/<pid>/stat``
where the kernel lacks those files), reaps, and sweeps again until it has no
child left: a process forked during a sweep is re-parented here when its
killed parent dies, and the next sweep finds it. Then it SIGKILLs its own
group, itself included. The group kill comes last because nothing can make
``killpg`` spare the sender (SIGKILL cannot be ignored, and a session leader
cannot move to another group). So the supervisor never exits with the
child's exit code: it writes it to status_file first, and the executor reads
the real exit status from there (a supervisor that died by SIGKILL *without*
a status file was told to stop, or was killed from outside).

Limits. The sweeps stop after ``SWEEP_SECONDS`` even if a descendant is left
(one it may not signal, e.g. a set-user-ID program, would otherwise hold it
forever); the group kill still follows. A pid is read, then signalled: a
descendant that ends and is reaped by its own (non-supervisor) parent in
between could in theory have its pid reused that instant. Only a living
supervisor sweeps: if the supervisor itself is SIGKILLed by someone else,
its orphans go to the next subreaper or init, and the executor's fallback
``killpg`` reaches its group but not a descendant that left it. Without
``prctl`` (not Linux, or forbidden by a sandbox) the sweep still finds every
descendant whose ancestors live, but not the orphan of a double fork; the
supervisor then says so in the log.

The supervisor ignores SIGTERM and SIGINT (the child does not): the
executor's graceful stop sends SIGTERM to the group, and the supervisor must
outlive the child to record its status and sweep its descendants.

Only the standard library is imported: this starts for every execution.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sys
import time

# typing costs milliseconds at every start; annotations are strings here, so
# only the type checker needs these names (mypy honours a local TYPE_CHECKING).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

MAX_SPEC_BYTES = 1024 * 1024
STDIN_READ_BYTES = 4096
POLL_INTERVAL_SECONDS = 0.05  # only when os.pidfd_open is unavailable
REAP_INTERVAL_SECONDS = 1.0  # the longest an adopted orphan stays a zombie while the child runs
SWEEP_SECONDS = 2.0  # the longest the final sweeps may take
SWEEP_PAUSE_SECONDS = 0.002  # between sweeps, while SIGKILLed descendants die
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
EXIT_BAD_SPEC = 2
EXIT_EXEC_FAILED = 127
EXIT_FORK_FAILED = 1
IGNORED_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # the supervisor's only; the child restores them


def main() -> None:
    """Run one execution and end all of it, descendants and group, when it is done."""
    if os.getpgrp() != os.getpid():
        # Never let the final killpg reach a group we do not own.
        os.setsid()
    for signum in IGNORED_SIGNALS:  # from the first instant: a timeout can come at any time
        signal.signal(signum, signal.SIG_IGN)
    if not _become_subreaper():
        print(
            "runplane supervisor: cannot become a child subreaper;"
            " a process that double-forks may outlive the execution",
            file=sys.stderr,
            flush=True,
        )
    try:
        spec = _read_spec()
    except (ValueError, OSError) as exc:
        print(f"runplane supervisor: {exc}", file=sys.stderr, flush=True)
        sys.exit(EXIT_BAD_SPEC)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()  # before any thread exists: forking a threaded process is unsafe
    except OSError as exc:
        _write_json(spec["error_file"], {"code": "LAUNCH_FAILED", "message": f"fork: {exc}"})
        sys.exit(EXIT_FORK_FAILED)
    if pid == 0:
        # The subreaper attribute is not inherited across fork.
        _finish(_run_child(spec))
    try:
        status = _wait_for_child(pid)
        if status is not None:
            term_signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            exit_code = (
                os.waitstatus_to_exitcode(status) if term_signal is None else 128 + term_signal
            )
            _write_json(spec["status_file"], {"exit_code": exit_code, "signal": term_signal})
    finally:
        _end_execution()  # whatever happened above, nothing of this execution survives


def _become_subreaper() -> bool:
    """Adopt orphaned descendants in place of init, so none leaves our reach."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes  # here, not at the top: only this call needs it

        libc = ctypes.CDLL(None, use_errno=True)
        one, zero = ctypes.c_ulong(1), ctypes.c_ulong(0)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, one, zero, zero, zero)) == 0
    except (ImportError, OSError, AttributeError):
        return False


def _read_spec() -> dict[str, Any]:
    data = b""
    while b"\n" not in data:
        chunk = os.read(0, STDIN_READ_BYTES)
        if not chunk:
            raise ValueError("stdin closed before the spec line arrived")
        data += chunk
        if len(data) > MAX_SPEC_BYTES:
            raise ValueError(f"spec line is longer than {MAX_SPEC_BYTES} bytes")
    spec = json.loads(data.split(b"\n", 1)[0])
    if not isinstance(spec, dict):
        raise ValueError("spec is not a JSON object")
    missing = {
        "bundle_dir",
        "work_dir",
        "input_file",
        "output_file",
        "error_file",
        "status_file",
    } - spec.keys()
    if missing:
        raise ValueError(f"spec lacks {sorted(missing)}")
    if not spec.get("entrypoint") and not spec.get("command"):
        raise ValueError("spec has neither an entrypoint nor a command")
    return spec


def _wait_for_child(pid: int) -> int | None:
    """Return the child's wait status, or None if stdin reached EOF first."""
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    timeout = REAP_INTERVAL_SECONDS  # wake now and then to reap adopted orphans
    try:
        selector.register(os.pidfd_open(pid), selectors.EVENT_READ)
    except (AttributeError, OSError):  # no pidfd_open (old kernel or Python): poll
        timeout = POLL_INTERVAL_SECONDS
    while True:
        for key, _ in selector.select(timeout):
            if key.fd == 0 and not _read_stdin():
                return None  # the runtime is gone, or it asks us to end the execution
        _, status = _reap(pid)
        if status is not None:
            return status


def _read_stdin() -> bytes:
    try:
        return os.read(0, STDIN_READ_BYTES)
    except OSError:
        return b""


def _reap(child: int = 0) -> tuple[bool, int | None]:
    """Reap every child that has ended, adopted orphans included.

    Return whether any child is left and, if ``child`` was among those reaped, its
    wait status.
    """
    status = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False, status
        if pid == 0:
            return True, status
        if pid == child:
            status = wait_status


def _end_execution() -> NoReturn:
    """SIGKILL every descendant, those that left the group too, then the group."""
    try:
        _kill_descendants(time.monotonic() + SWEEP_SECONDS)
    finally:
        _kill_group()


def _kill_descendants(deadline: float) -> None:
    """Sweep until no child is left: a killed parent hands its children to us.

    With no child left there is nothing to sweep: as a subreaper we inherit every
    descendant whose parent ends, so a descendant exists only below a child of ours.
    """
    children_left, _ = _reap()
    if not children_left:
        return  # the usual end: the child exited and started nothing that outlived it
    while True:
        for pid in _descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue  # ended already, or not ours to signal (set-user-ID): see SWEEP_SECONDS
        children_left, _ = _reap()
        if not children_left or time.monotonic() >= deadline:
            return
        time.sleep(SWEEP_PAUSE_SECONDS)  # the SIGKILLed die; their children move here


def _descendants() -> list[int]:
    """This process's descendants, parents first: a snapshot, they may fork or end meanwhile."""
    me = os.getpid()
    # Without the children files (no CONFIG_PROC_CHILDREN), one scan of all /proc.
    table = _scan_children() if _read_children(me) is None else None
    found: list[int] = []
    seen = {me}
    parents = [me]
    while parents:
        parent = parents.pop()
        children = table.get(parent) if table is not None else _read_children(parent)
        for pid in children or ():
            if pid not in seen:  # a snapshot taken while processes move must not loop
                seen.add(pid)
                found.append(pid)
                parents.append(pid)
    return found


def _read_children(pid: int) -> list[int] | None:
    """The children of every thread of ``pid``; None if the kernel has no such files."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # ended meanwhile
    children: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as stream:
                children.extend(int(word) for word in stream.read().split())
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{tid}"):
                return None  # the thread exists, its file does not: no CONFIG_PROC_CHILDREN
        except OSError:
            continue  # the thread or process ended meanwhile
    return children


def _scan_children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from every ``/proc/<pid>/stat``."""
    table: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stream:
                stat = stream.read()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold anything, so split after the last ")".
        fields = stat[stat.rfind(b")") + 1 :].split()
        if len(fields) > 1:
            table.setdefault(int(fields[1]), []).append(int(name))
    return table


def _kill_group() -> NoReturn:
    # Nothing is buffered: the supervisor prints with flush=True.
    os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(128 + signal.SIGKILL)  # unreachable: the signal is delivered before killpg returns


def _run_child(spec: dict[str, Any]) -> int:
    """Run the work in the forked child; return its exit code (commands never return)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the control pipe is the supervisor's, not the process's
    os.close(devnull)
    bundle_dir = str(spec["bundle_dir"])
    os.chdir(bundle_dir)
    os.environ.update(
        {
            "RUNPLANE_INPUT": str(spec["input_file"]),
            "RUNPLANE_OUTPUT": str(spec["output_file"]),
            "RUNPLANE_WORK_DIR": str(spec["work_dir"]),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if spec.get("command"):
        _exec_command(spec, bundle_dir)
    return _call_entrypoint(spec, bundle_dir)


def _finish(code: int) -> NoReturn:
    """End the child as a Python program ends, minus freeing every object.

    What a program can see of its interpreter's exit happens here in the same
    order: non-daemon threads are joined, atexit handlers run, the standard
    streams are flushed. Tearing down every module is skipped (``os._exit``,
    as multiprocessing ends its forked children): in a child forked from a
    warm interpreter, freeing its objects touches, and so copies, every page
    of the parent's heap, about 10 ms for nothing. The one difference: an
    object still referenced by a module at exit is not finalised, so a file a
    module opened and never closed is not flushed.
    """
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()  # what the interpreter calls at exit
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # closed, or a broken pipe: the interpreter would not report it either
    os._exit(code)


def _exec_command(spec: dict[str, Any], bundle_dir: str) -> NoReturn:
    argv = spec["command"]
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        _fail_exec(spec, "command must be a list of strings")
    argv = list(argv)
    if argv[0].startswith("./"):
        argv[0] = os.path.join(bundle_dir, argv[0][2:])
    # Python ignores these at start-up and exec keeps ignored dispositions;
    # a shell pipeline expects the defaults.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execvpe(argv[0], argv, os.environ)  # noqa: S606 - the command is the process
    except OSError as exc:
        _fail_exec(spec, f"cannot run {argv[0]!r}: {exc.strerror or exc}")


def _fail_exec(spec: dict[str, Any], message: str) -> NoReturn:
    print(f"runplane: {message}", file=sys.stderr, flush=True)
    _write_json(spec["error_file"], {"code": "LAUNCH_FAILED", "message": message})
    os._exit(EXIT_EXEC_FAILED)


def _call_entrypoint(spec: dict[str, Any], bundle_dir: str) -> int:
    # Imported here: only the Python-entrypoint child needs them.
    import importlib
    import traceback

    entrypoint = str(spec["entrypoint"])
    sys.argv = [entrypoint]
    sys.path.insert(0, bundle_dir)
    try:
        module_name, _, attribute_path = entrypoint.partition(":")
        if not module_name or not attribute_path:
            raise ValueError(f"entrypoint {entrypoint!r} is not 'module:function'")
        with open(spec["input_file"], encoding="utf-8") as stream:
            inputs = json.load(stream)
        if not isinstance(inputs, dict):
            raise TypeError("inputs are not a JSON object")
        target: Any = importlib.import_module(module_name)
        for name in attribute_path.split("."):
            target = getattr(target, name)
        result = target(**inputs)
    except SystemExit as exc:
        return _exit_code(exc)
    except Exception as exc:
        # KeyboardInterrupt passes through: it ends the child as it would end any
        # Python program, and the exit status tells the story. SystemExit's code is
        # the exit code, above. Start the traceback below this frame: the user's
        # code is the story.
        frames = exc.__traceback__.tb_next if exc.__traceback__ else None
        traceback.print_exception(type(exc), exc, frames)
        sys.stderr.flush()
        message = f"{type(exc).__name__}: {exc}"
        _write_json(spec["error_file"], {"code": "PROCESS_ERROR", "message": message})
        return 1
    try:
        text = json.dumps({} if result is None else result, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        message = f"result is not JSON-serialisable: {type(exc).__name__}: {exc}"
        print(f"runplane: {message}", file=sys.stderr, flush=True)
        _write_json(spec["error_file"], {"code": "INVALID_RESULT", "message": message})
        return 1
    with open(spec["output_file"], "w", encoding="utf-8") as stream:
        stream.write(text)
    return 0


def _exit_code(exc: SystemExit) -> int:
    """The exit code the interpreter would give for an uncaught SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr, flush=True)
    return 1


def _write_json(path: str, value: dict[str, Any]) -> None:
    """Write atomically, so the executor never reads half a file."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as stream:
        json.dump(value, stream)
    os.replace(partial, path)


if __name__ == "__main__":
    main()
