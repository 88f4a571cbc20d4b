"""The peers bench/compare.py measures runplane against, each started and stopped here.

Every system answers the same four questions (`System`): one trigger → result of
`hello`, one of `noop`, `n` no-ops triggered at once until all have finished, and
the CPU time its processes have used so far. A peer whose package or service is
missing raises `Unavailable` with the reason, and the comparison skips it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from harness import free_port, spawn, stop, tail, tree_cpu_seconds, wait_http

HERE = Path(__file__).resolve().parent
CELERY_CONCURRENCY = 2
RESULT_TIMEOUT_SECONDS = 120
PREFECT_START_SECONDS = 120


class Unavailable(Exception):
    """This peer cannot be measured here (not installed, its service not answering)."""


class System(Protocol):
    def hello(self, i: int) -> None:
        """One trigger → result of hello; raises unless it succeeded."""

    def noop(self, i: int) -> None:
        """One trigger → result of the no-op; raises unless it succeeded."""

    def burst(self, n: int, deadline: float) -> int:
        """n no-ops triggered at once; returns when every one has succeeded, or at the
        deadline (time.monotonic()): how many have succeeded."""

    def cpu_seconds(self) -> dict[str, float]:
        """CPU used so far: "total", and parts worth naming."""


def _ok(doc: Any, expected: Any) -> None:
    if doc != expected:
        raise SystemExit(f"unexpected result {doc!r}, expected {expected!r}")


# --- Celery 5 with Redis ----------------------------------------------------------------


class CeleryWorker:
    """A Celery prefork worker (concurrency 2) and a client, sharing one Redis database."""

    def __init__(self, proc: Any, redis_pid: int | None) -> None:
        import celery_noop

        self.proc = proc
        self.redis_pid = redis_pid
        self.app = celery_noop.app
        self._hello = celery_noop.hello
        self._noop = celery_noop.noop

    def hello(self, i: int) -> None:
        name = str(i)
        result = self._hello.apply_async(kwargs={"name": name}).get(timeout=RESULT_TIMEOUT_SECONDS)
        _ok(result, {"greeting": f"Hello, {name}!"})

    def noop(self, i: int) -> None:
        _ok(self._noop.apply_async().get(timeout=RESULT_TIMEOUT_SECONDS), {})

    def burst(self, n: int, deadline: float) -> int:
        from celery.exceptions import TimeoutError as ResultTimeout

        pending = [self._noop.apply_async() for _ in range(n)]
        try:
            for result in pending:
                _ok(result.get(timeout=max(0.001, deadline - time.monotonic())), {})
        except ResultTimeout:
            done = sum(1 for result in pending if result.successful())
            for result in pending:
                if not result.ready():  # or it unsubscribes when collected, at exit
                    result.backend.remove_pending_result(result)
            return done
        return n

    def cpu_seconds(self) -> dict[str, float]:
        worker = tree_cpu_seconds(self.proc.pid)
        redis = tree_cpu_seconds(self.redis_pid) if self.redis_pid else 0.0
        return {"total": worker + redis, "worker": worker, "redis": redis}


@contextlib.contextmanager
def celery_worker(redis_url: str, fresh: bool) -> Iterator[CeleryWorker]:
    """A worker with a warm pool, or a fresh child per task (worker_max_tasks_per_child=1).

    Only the given Redis database is flushed, before and after.
    """
    if importlib.util.find_spec("celery") is None or importlib.util.find_spec("redis") is None:
        raise Unavailable("celery[redis] is not installed (pip install -e '.[bench]')")
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
        server_pid = int(client.info("server")["process_id"])
    except redis.RedisError as exc:
        raise Unavailable(f"Redis at {redis_url} does not answer: {exc}") from exc
    redis_pid = server_pid if Path(f"/proc/{server_pid}/stat").exists() else None
    os.environ["BENCH_CELERY_REDIS_URL"] = redis_url  # read by celery_noop, here and in the worker
    folder = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    log = folder / "worker.log"
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "celery_noop",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(CELERY_CONCURRENCY),
        "--loglevel",
        "WARNING",
        "--hostname",
        f"bench-{os.getpid()}@%h",
        # cluster events only: no effect on running a task
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if fresh:
        cmd += ["--max-tasks-per-child", "1"]
    proc = spawn(cmd, log=log, env={**os.environ, "PYTHONPATH": str(HERE)}, cwd=HERE)
    try:
        worker = CeleryWorker(proc, redis_pid)
        worker.app.conf.update(broker_url=redis_url, result_backend=redis_url)
        try:
            worker.noop(0)  # waits until the worker consumes
        except Exception as exc:
            raise SystemExit(f"the Celery worker did not answer: {exc}\n{tail(log)}") from exc
        yield worker
    finally:
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(redis.RedisError):
            client.flushdb()
        client.close()


# --- Prefect 3 (flow.serve) -------------------------------------------------------------


class PrefectServe:
    """A Prefect API server and a `flow.serve` process with the same two flows."""

    def __init__(self, server: Any, served: Any) -> None:
        self.server = server
        self.served = served

    def _run(self, deployment: str, parameters: dict[str, str]) -> None:
        from prefect.deployments import run_deployment

        run = run_deployment(
            deployment, parameters=parameters, timeout=RESULT_TIMEOUT_SECONDS, poll_interval=0.05
        )
        if run.state is None or not run.state.is_completed():
            raise SystemExit(f"Prefect flow run ended {run.state}")

    def hello(self, i: int) -> None:
        self._run("hello/bench", {"name": str(i)})

    def noop(self, i: int) -> None:
        self._run("noop/bench", {})

    def wait_deployed(self, timeout: float) -> None:
        """Until the runner has registered both deployments."""
        from prefect import get_client
        from prefect.exceptions import ObjectNotFound

        deadline = time.monotonic() + timeout
        with get_client(sync_client=True) as client:
            while True:
                try:
                    client.read_deployment_by_name("hello/bench")
                    client.read_deployment_by_name("noop/bench")
                    return
                except ObjectNotFound:
                    if time.monotonic() > deadline or self.served.poll() is not None:
                        raise
                    time.sleep(0.2)

    def burst(self, n: int, deadline: float) -> int:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("noop/bench")
            ids = [client.create_flow_run_from_deployment(deployment.id).id for _ in range(n)]
            while True:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=n
                )
                done = [r for r in runs if r.state and r.state.is_final()]
                if len(done) == n or time.monotonic() > deadline:
                    failed = [r for r in done if not (r.state and r.state.is_completed())]
                    if failed:
                        raise SystemExit(f"{len(failed)} Prefect flow runs did not complete")
                    return len(done)
                time.sleep(0.1)

    def cpu_seconds(self) -> dict[str, float]:
        server = tree_cpu_seconds(self.server.pid)
        served = tree_cpu_seconds(self.served.pid)
        return {"total": server + served, "api server": server, "serve": served}


@contextlib.contextmanager
def prefect_serve() -> Iterator[PrefectServe]:
    """`prefect server start` (SQLite in a temporary home) and `hello.serve(limit=2)`.

    The runner polls for work every second (Prefect's default is 10 s).
    """
    if importlib.util.find_spec("prefect") is None:
        raise Unavailable("prefect is not installed (pip install 'prefect>=3,<4')")
    home = Path(tempfile.mkdtemp(prefix="bench-prefect-"))
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    prefect = Path(sys.executable).with_name("prefect")
    server = spawn(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        log=home / "server.log",
        env=env,
    )
    served = None
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_API_URL")}
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", PREFECT_START_SECONDS, server)
        served = spawn(
            [sys.executable, str(HERE / "prefect_flows.py"), str(CELERY_CONCURRENCY)],
            log=home / "serve.log",
            env=env,
        )
        os.environ.update({k: env[k] for k in saved})
        system = PrefectServe(server, served)
        try:
            system.wait_deployed(PREFECT_START_SECONDS)
            system.noop(0)
        except Exception as exc:
            raise SystemExit(
                f"Prefect did not run a flow: {exc}\n{tail(home / 'serve.log')}"
            ) from exc
        yield system
    finally:
        if served is not None:
            stop(served)
        stop(server)
        shutil.rmtree(home, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
