"""`runplane ARGS...` as a process of its own, forked from a parent that imported the CLI.

A `python -m runplane.cli.main` process spends about 0.5 s of CPU importing the CLI
(typer, rich, httpx, pydantic) before it does anything, and the end-to-end CLI tests
run over a hundred of them. Here one parent, the zygote (`python -m tests.cli_runner`,
one per test process), imports the CLI once and forks a child per command: a real
process with the environment, working directory, standard input and output the test
gives it and its own exit status, running the same `app` as the `runplane` command.
The CLI reads nothing from the environment when it is imported, only when it runs.
(A sign-in on a terminal still execs `python -m runplane.cli.main` itself:
tests/e2e/test_cli_credentials.py.)
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

PROG_NAME = "python -m runplane.cli.main"  # what click names the program when run so
# What a command imports only once it runs (typer's parameter coercion, httpx's transport):
# imported by the zygote too, or every child would import it again.
LOADED_WHILE_RUNNING = ("typer._adapters", "pydantic", "httpcore", "h11", "anyio", "certifi")
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Finished:
    """One finished `runplane` invocation."""

    exit_code: int
    stdout: str
    stderr: str


class _Zygote:
    """The parent process that forks one child per command; started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="runplane-cli-"))

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.cli_runner"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            atexit.register(self.close)
        return self._proc

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def run(self, args: list[str], env: dict[str, str], input: str, timeout: float) -> Finished:
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            files = {name: self._dir / name for name in ("stdin", "stdout", "stderr")}
            files["stdin"].write_text(input, encoding="utf-8")
            request = {
                "args": args,
                "env": env,
                "cwd": os.getcwd(),
                **{name: str(path) for name, path in files.items()},
            }
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            pid = json.loads(proc.stdout.readline())["pid"]
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                proc.stdout.readline()
                raise subprocess.TimeoutExpired(args, timeout)
            status = json.loads(proc.stdout.readline())["status"]
            return Finished(
                os.waitstatus_to_exitcode(status),
                files["stdout"].read_text(encoding="utf-8"),
                files["stderr"].read_text(encoding="utf-8", errors="backslashreplace"),
            )


_zygote = _Zygote()


def run_cli(
    args: list[str] | tuple[str, ...],
    *,
    env: dict[str, str],
    input: str = "",
    timeout: float = 60.0,
) -> Finished:
    """Run `runplane ARGS` with exactly `env`; its exit code, stdout and stderr."""
    return _zygote.run(list(args), env, input, timeout)


def _child(request: dict[str, object]) -> None:
    """In the forked child: become the command, run it, exit with its status."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(str(request["cwd"]))
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    for fd, name, flags in (
        (0, "stdin", os.O_RDONLY),
        (1, "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(str(request[name]), flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    args = request["args"]
    assert isinstance(args, list)
    sys.argv = [PROG_NAME, *args]
    code = 0
    try:
        from runplane.cli.main import app

        app(args=args, prog_name=PROG_NAME)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        sys.excepthook(*sys.exc_info())  # as an uncaught exception would be shown
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _serve() -> None:
    """The zygote: import the CLI once, then fork a child per request on stdin."""
    import runplane.cli.main  # noqa: F401 - what every child would import

    for name in LOADED_WHILE_RUNNING:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                _child(request)
            finally:
                os._exit(70)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()
        _, status = os.waitpid(pid, 0)
        sys.stdout.write(json.dumps({"status": status}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the test run's Ctrl-C is for pytest
    _serve()
