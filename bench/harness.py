"""What the benchmarks share: servers and runtimes started as users start them, wrk,
fresh PostgreSQL schemas, and CPU and memory read from /proc over a process tree.

Every process started here is recorded until it is stopped, and whatever is left
is stopped when the interpreter exits (an error, Ctrl-C), so a benchmark never
leaves a server or a worker behind.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

from runplane.bundle import pack_folder

BODY = '{"inputArguments":{"name":"x"}}'
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NOOP = "def main(name):\n    return {}\n"
RUNTIME_SLOTS = 4
STOP_TIMEOUT_SECONDS = 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

_started: set[subprocess.Popen[bytes]] = set()
_folders: list[Path] = []  # servers' data directories, removed at exit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 40, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def spawn(
    cmd: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own (so its whole group can be stopped), recorded."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    _started.add(proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, then SIGKILL if it has not exited in time."""
    _started.discard(proc)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_all() -> None:
    for proc in list(_started):
        stop(proc)


@atexit.register
def _clean_up() -> None:
    stop_all()
    for folder in _folders:
        shutil.rmtree(folder, ignore_errors=True)


def tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def serve(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`runplane serve` on a free loopback port with a fresh data directory."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="runplane-bench-"))
    _folders.append(data)
    runplane = Path(sys.executable).with_name("runplane")
    proc = spawn(
        [str(runplane), "serve", "--port", str(port), "--data-dir", str(data), *args],
        log=data / "server.log",
        env={**os.environ, **(env or {}), "RUNPLANE_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/api/v1/health", proc=proc)
    except SystemExit:
        stop(proc)
        print(tail(data / "server.log"), file=sys.stderr)
        raise
    return proc, base, data


@dataclass(frozen=True)
class Server:
    """A running `runplane serve`: its process, base URL and data directory."""

    proc: subprocess.Popen[bytes]
    base: str
    data: Path


@contextlib.contextmanager
def server(*args: str) -> Iterator[Server]:
    """`serve`, stopped and its data directory removed on the way out."""
    proc, base, data = serve(*args)
    try:
        yield Server(proc, base, data)
    finally:
        stop(proc)
        shutil.rmtree(data, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [0] state, [1] ppid, [11..14] CPU ticks."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def tree(root: int) -> list[int]:
    """The process and all its live descendants (a supervisor's own session included)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def tree_cpu_seconds(root: int) -> float:
    """CPU used so far by a process tree: utime + stime + cutime + cstime of every live member.

    A child that ended and was reaped is in its parent's cutime/cstime, a live one in its
    own utime/stime, so each CPU second is counted once at any moment.
    """
    ticks = 0
    for pid in tree(root):
        fields = _stat(pid)
        if fields:
            ticks += sum(int(f) for f in fields[11:15])
    return ticks / CLOCK_TICKS


def tree_rss_bytes(root: int) -> int:
    """Resident memory of a process tree, summed (pages shared after a fork count per process)."""
    total = 0
    for pid in tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    return total


def tree_pss_bytes(root: int) -> int:
    """Proportional memory of a process tree: each shared page split among its sharers,
    so a forked child's untouched pages are not counted twice."""
    total = 0
    for pid in tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
    return total


def wrk(url: str, seconds: int, connections: int) -> tuple[float, str]:
    """Accepted triggers/s (every response 2xx) and wrk's average latency for POSTs of BODY."""
    folder = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    script = folder / "post.lua"
    script.write_text(
        f"wrk.method='POST'\nwrk.body='{BODY}'\nwrk.headers['Content-Type']='application/json'\n"
        f"wrk.headers['Authorization']='Bearer {ADMIN_TOKEN}'\n"
    )
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None:
        raise SystemExit("wrk printed no rate:\n" + out)
    if bad:
        raise SystemExit(f"{bad.group(1)} non-2xx responses from {url}")
    latency = re.search(r"Latency\s+(\S+)", out)
    return float(rate.group(1)), latency.group(1) if latency else "?"


def deploy_noop(base: str) -> None:
    """Upload and deploy `noop` (returns {} at once) to production."""
    folder = Path(tempfile.mkdtemp(prefix="noop-"))
    (folder / "runplane.toml").write_text(
        textwrap.dedent(
            """
            [process]
            name = "noop"
            entrypoint = "main:main"
            [parameters.name]
            type = "string"
            default = ""
            """
        )
    )
    (folder / "main.py").write_text(NOOP)
    try:
        bundle = pack_folder(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as c:
        v = c.post(
            "/api/v1/processes/noop/versions",
            content=bundle,
            headers={"Content-Type": "application/zip"},
        )
        v.raise_for_status()
        c.put(
            "/api/v1/processes/noop/deployments/production", json={"version": v.json()["version"]}
        ).raise_for_status()


def runtime_token(base: str) -> str:
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as c:
        r = c.post(
            "/api/v1/tokens",
            json={
                "name": f"bench-{uuid.uuid4().hex[:6]}",
                "scopes": ["runtime"],
                "environments": ["production"],
            },
        )
        r.raise_for_status()
        return str(r.json()["token"])


@contextlib.contextmanager
def runtimes(
    base: str, token: str, count: int, *args: str, slots: int = RUNTIME_SLOTS
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` remote `runplane runtime`s serving production, stopped on the way out."""
    runplane = Path(sys.executable).with_name("runplane")
    procs, folders = [], []
    try:
        for i in range(count):
            data = Path(tempfile.mkdtemp(prefix="runplane-bench-rt-"))
            folders.append(data)
            procs.append(
                spawn(
                    [
                        str(runplane),
                        "runtime",
                        "--server",
                        base,
                        "--token",
                        token,
                        "--environment",
                        "production",
                        "--slots",
                        str(slots),
                        "--name",
                        f"bench-{i}-{uuid.uuid4().hex[:4]}",
                        "--data-dir",
                        str(data),
                        *args,
                    ],
                    log=data / "runtime.log",
                    env={k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")},
                )
            )
        yield procs
    finally:
        for p in procs:
            stop(p)
        for data in folders:
            shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh schema in the database at `url`, dropped on the way out: its URL."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class JsonClient:
    """One keep-alive HTTP/1.1 connection speaking JSON: far cheaper on the client than
    httpx, which matters when the client shares two cores with what it measures."""

    def __init__(self, base: str, headers: dict[str, str] | None = None, timeout: float = 90):
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port, timeout=timeout
        )
        self.headers = {
            "Content-Type": "application/json",
            **(AUTH if headers is None else headers),
        }

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body)
        self.conn.request(method, path, body=payload, headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p99(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
