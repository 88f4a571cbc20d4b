"""runplane's side of bench/compare.py: the server as a `System`, the floor app, and the
scenarios only runplane has (an idle remote runtime, held long polls, replicas).

Every server is a real `runplane serve` on a free loopback port with a fresh data
directory (and, on PostgreSQL, a fresh schema), started with the caller's extra
arguments and stopped by the caller's `with`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import os
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import (
    ADMIN_TOKEN,
    JsonClient,
    Server,
    cpu_seconds,
    deploy_noop,
    free_port,
    runtime_token,
    runtimes,
    spawn,
    stop,
    tree,
    tree_cpu_seconds,
    tree_pss_bytes,
    tree_rss_bytes,
    wait_http,
    wrk,
)

from runplane.runtime.warm import DEFAULT_SPARE_IDLE_SECONDS

HERE = Path(__file__).resolve().parent
WAIT_SECONDS = 60
TRIGGER_THREADS = 8
SETTLE_SECONDS = 2.0
MIN_RUNS = 3
UNFINISHED = "queued,running"
NOT_SUCCEEDED = "failed,timed_out,cancelled"


class Runplane:
    """A `runplane serve` with its embedded runtime, driven over its native API."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.http = JsonClient(srv.base)
        self.ids = itertools.count()
        self.tag = uuid.uuid4().hex[:8]

    def hello(self, i: int) -> None:
        """PUT, then GET ?wait: trigger → result as a client that knows its own id."""
        status, record = self.http.request(
            "PUT",
            "/api/v1/processes/hello/executions",
            {
                "executionId": f"bench-{self.tag}-{next(self.ids)}",
                "inputArguments": {"name": str(i)},
            },
        )
        if status != 201:
            raise SystemExit(f"PUT hello answered {status}: {record}")
        _, doc = self.http.request("GET", f"/api/v1/executions/{record['id']}?wait=30")
        if doc["status"] != "succeeded" or doc["result"] != {"greeting": f"Hello, {i}!"}:
            raise SystemExit(f"hello ended {doc['status']}: {doc.get('error')}")

    def noop(self, i: int) -> None:
        status, doc = self.http.request(
            "POST", "/api/v1/processes/noop/executions?wait=30", {"inputArguments": {}}
        )
        if status != 201 or doc["status"] != "succeeded":
            raise SystemExit(f"noop answered {status}: {doc}")

    def burst(self, n: int, deadline: float) -> int:
        """n POSTs from 8 threads; then wait for the last one and for any still unfinished."""
        ids = trigger(self.srv.base, "noop", n)
        unfinished = [ids[-1]]
        while unfinished and self._wait(unfinished[0], deadline):
            unfinished = self._unfinished()
        page = self._list(f"/api/v1/executions?process=noop&status={NOT_SUCCEEDED}&limit=1")
        if page["items"]:
            raise SystemExit(f"a no-op ended {page['items'][0]['status']}")
        return n - len(self._unfinished()) if unfinished else n

    def _wait(self, execution_id: str, deadline: float) -> bool:
        """Until the execution is terminal (True) or the deadline has passed (False)."""
        while (left := deadline - time.monotonic()) > 0:
            _, doc = self.http.request(
                "GET", f"/api/v1/executions/{execution_id}?wait={min(WAIT_SECONDS, left):.3f}"
            )
            if doc["status"] not in UNFINISHED.split(","):
                return True
        return False

    def _list(self, path: str) -> Any:
        status, page = self.http.request("GET", path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {page}")
        return page

    def _unfinished(self) -> list[str]:
        ids: list[str] = []
        query = f"/api/v1/executions?process=noop&status={UNFINISHED}&limit=500"
        cursor = ""
        while True:
            page = self._list(query + cursor)
            ids += [item["id"] for item in page["items"]]
            if not page["nextCursor"]:
                return ids
            cursor = f"&cursor={page['nextCursor']}"

    def cpu_seconds(self) -> dict[str, float]:
        pid = self.srv.proc.pid
        return {"total": tree_cpu_seconds(pid), "server": cpu_seconds(pid)}

    def close(self) -> None:
        self.http.close()


def trigger(base: str, process: str, n: int) -> list[str]:
    """n executions of `process` started at once (POST, no wait): their ids, in order."""
    local = threading.local()
    clients: list[JsonClient] = []

    def one(_: int) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = JsonClient(base)
            clients.append(client)
        status, doc = client.request(
            "POST", f"/api/v1/processes/{process}/executions", {"inputArguments": {}}
        )
        if status != 201:
            raise SystemExit(f"trigger answered {status}: {doc}")
        return str(doc["id"])

    try:
        with concurrent.futures.ThreadPoolExecutor(TRIGGER_THREADS) as pool:
            return list(pool.map(one, range(n)))
    finally:
        for client in clients:
            client.close()


def floor_latencies(runs: int, warmups: int, budget: float) -> list[float]:
    """bench/limit_e2e.py (durable insert, fork, durable update): trigger → result, ms."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    proc = spawn(
        [sys.executable, str(HERE / "limit_e2e.py"), str(port), str(folder / "floor.db")],
        log=folder / "floor.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=proc)
        with contextlib.closing(JsonClient(f"http://127.0.0.1:{port}", headers={})) as client:

            def call(i: int) -> None:
                status, doc = client.request("POST", "/run", {"name": str(i)})
                if status != 200 or doc["status"] != "succeeded":
                    raise SystemExit(f"the floor app answered {status}: {doc}")

            for i in range(warmups):
                call(i)
            return timed(call, runs, budget)
    finally:
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def timed(call: Callable[[int], None], runs: int, budget: float = float("inf")) -> list[float]:
    """Milliseconds per call, one after the other; fewer runs (3 at least) when the
    budget of seconds runs out first."""
    samples: list[float] = []
    end = time.monotonic() + budget
    for i in range(runs):
        if len(samples) >= MIN_RUNS and time.monotonic() > end:
            break
        t0 = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def runtime_rss(srv: Server, runtime_args: list[str]) -> dict[str, Any]:
    """RSS of an idle `runplane runtime` and every process under it, after 3 executions
    and once its fork server has let its spare supervisor go; and right after the work."""
    deploy_noop(srv.base)
    slots = os.cpu_count() or 2
    with (
        runtimes(srv.base, runtime_token(srv.base), 1, *runtime_args, slots=slots) as [proc],
        contextlib.closing(JsonClient(srv.base)) as client,
    ):
        for _ in range(3):  # bundle download and extraction, first imports, a warm launcher
            status, doc = client.request(
                "POST", f"/api/v1/processes/noop/executions?wait={WAIT_SECONDS}", {}
            )
            if status != 201 or doc["status"] != "succeeded":
                raise SystemExit(f"the remote runtime's no-op answered {status}: {doc}")
        time.sleep(SETTLE_SECONDS)
        busy = {
            "rss_mb": tree_rss_bytes(proc.pid) / 2**20,
            "pss_mb": tree_pss_bytes(proc.pid) / 2**20,
            "processes": len(tree(proc.pid)),
        }
        # The fork server keeps a spare supervisor while launches come (runtime/forkserver.py)
        # and lets it go after DEFAULT_SPARE_IDLE_SECONDS without one: then it is idle.
        deadline = time.monotonic() + DEFAULT_SPARE_IDLE_SECONDS + 5
        while len(tree(proc.pid)) > 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        return {
            "rss_mb": tree_rss_bytes(proc.pid) / 2**20,
            "pss_mb": tree_pss_bytes(proc.pid) / 2**20,
            "processes": len(tree(proc.pid)),
            "slots": slots,
            "just_after_work": busy,
        }


def held_waits(srv: Server, clients: int, seconds: float) -> dict[str, Any]:
    """Server CPU while `clients` connections each hold GET ?wait=60 on a queued execution.

    The server runs no executions (--slots 0), so each stays queued; the same span with
    no client is measured first.
    """
    pid = srv.proc.pid
    before = tree_cpu_seconds(pid)
    time.sleep(seconds)
    idle = (tree_cpu_seconds(pid) - before) / seconds
    ids = trigger(srv.base, "hello", clients)
    url = urlsplit(srv.base)
    address = (url.hostname or "127.0.0.1", url.port or 80)
    selector = selectors.DefaultSelector()
    socks = []
    try:
        for execution_id in ids:
            sock = socket.create_connection(address)
            sock.sendall(
                f"GET /api/v1/executions/{execution_id}?wait={WAIT_SECONDS} HTTP/1.1\r\n"
                f"Host: {address[0]}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
            )
            socks.append(sock)
            selector.register(sock, selectors.EVENT_READ)
        time.sleep(SETTLE_SECONDS)  # every request parsed and parked
        before = tree_cpu_seconds(pid)
        time.sleep(seconds)
        held = (tree_cpu_seconds(pid) - before) / seconds
        answered = len(selector.select(timeout=0))
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    if answered:
        raise SystemExit(f"{answered} of {clients} held waits were answered early")
    return {"core_fraction": held, "idle_core_fraction": idle, "clients": clients}


def replicas_accept(a: Server, b: Server, seconds: int, connections: int) -> dict[str, Any]:
    """wrk against two replicas of one PostgreSQL at once, half the connections each."""
    deploy_noop(a.base)
    path = "/api/v1/processes/noop/executions"
    half = max(1, connections // 2)

    def both(span: int) -> list[float]:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            return list(pool.map(lambda s: wrk(s.base + path, span, half)[0], (a, b)))

    both(2)  # warm-up
    rates = both(seconds)
    return {"per_second": sum(rates), "replicas": rates, "connections": connections}
