"""Fault tests with a history checker, on SQLite (one node) and PostgreSQL (two API
replicas on a private cluster), each with three remote runtimes.

Triggers flow from several client threads (some client execution ids from 8 senders
at once) while the test SIGKILLs runtimes, the API server(s) and, on PostgreSQL,
restarts the database with `pg_ctl restart -m immediate`. The process under test
appends a start and a stop marker (execution id, attempt, runtime, pid, monotonic
and wall time) to one file, and at its start checks that no earlier attempt of its
execution is still alive. At the end the checker asserts, for every execution
accepted with a 2xx:

- it reached exactly one terminal state, which no longer changes;
- no attempt ran twice, or on two runtimes, and no two attempts overlapped;
- one client execution id maps to one execution, even with 8 concurrent senders;
- nothing stayed `running` longer than timeout + lease TTL + sweep interval
  (docs/reliability.md), plus the time no server could sweep (server or database
  down) and a polling slack.

Figures (executions, kills, retries, the longest `running`, wall time) are printed;
docs/reliability.md records them.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    ADMIN,
    Server,
    ServerFactory,
    deploy,
    free_port,
    make_process,
)

EXECUTIONS = 2000
RUNTIME_KILLS = 20
RUNTIMES = 3
SLOTS = 4  # per runtime
RETRIES = 3
TIMEOUT_SECONDS = 5.0  # the process's timeout
LEASE_TTL_SECONDS = 3.0  # ServerFactory's
SWEEP_SECONDS = 0.5  # ServerFactory's
BOUND_SECONDS = TIMEOUT_SECONDS + LEASE_TTL_SECONDS + SWEEP_SECONDS  # docs/reliability.md
SLACK_SECONDS = 1.5  # poll interval, millisecond timestamps, a request's latency
ORPHAN_SECONDS = 1.0  # how long after its runtime's SIGKILL a forked child may still start
MAX_SLEEP_MS = 400  # each attempt sleeps 0-400 ms, so kills land mid-execution
SENDERS = 4
STORM_EVERY = 25  # every 25th client execution id comes from 8 concurrent senders
STORM_SENDERS = 8
MAX_BACKLOG = 2 * RUNTIMES * SLOTS  # accepted but not yet stopped: triggers keep flowing
TRIGGER_GIVE_UP_SECONDS = 90.0  # one trigger retried this long without a 2xx: not accepted
DRAIN_SECONDS = 120.0
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled"}
PROCESS = "probe"

PROBE = """
import os, random, time

def _started(pid):
    # starttime of a live (not zombie) process, so a reused pid is not taken for it
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in (b"Z", b"X") else fields[19].decode()

def main(marks, max_sleep_ms):
    me = os.environ["RUNPLANE_EXECUTION_ID"]
    attempt = int(os.environ["RUNPLANE_ATTEMPT"])
    runtime = os.environ["RUNPLANE_RUNTIME"]
    pid = os.getpid()
    pidfile = os.path.join(marks, "pids", me)
    alive = []
    try:
        with open(pidfile) as f:
            for line in f:
                other, other_pid, started = line.split()
                if int(other) != attempt and _started(int(other_pid)) == started:
                    alive.append(f"{other}:{other_pid}")
    except FileNotFoundError:
        pass
    with open(pidfile, "a") as f:
        f.write(f"{attempt} {pid} {_started(pid)}\\n")
    fd = os.open(os.path.join(marks, "markers"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def mark(kind, extra):
        now = f"{time.monotonic():.6f} {time.time():.6f}"
        os.write(fd, f"{kind} {me} {attempt} {runtime} {pid} {now} {extra}\\n".encode())

    mark("start", ",".join(alive) or "-")
    time.sleep(random.random() * max_sleep_ms / 1000)
    mark("stop", "-")
    return {"attempt": attempt, "runtime": runtime}
"""

MANIFEST = f"""
entrypoint = "main:main"
timeout = "{int(TIMEOUT_SECONDS)}s"
retries = {RETRIES}
[parameters.marks]
type = "string"
required = true
[parameters.max_sleep_ms]
type = "integer"
required = true
"""


# --- the system under test ---------------------------------------------------------


class Runtime:
    """A `runplane runtime` subprocess that can be SIGKILLed and started again."""

    def __init__(self, name: str, server: Server, token: str, data_dir: Path) -> None:
        self.name = name
        self.server = server
        self.token = token
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
        env["RUNPLANE_CONFIG"] = str(self.data_dir / "no-config.toml")
        cmd = [
            sys.executable, "-m", "runplane.cli.main", "runtime",
            "--server", self.server.base, "--token", self.token,
            "--data-dir", str(self.data_dir), "--environment", "production",
            "--slots", str(SLOTS), "--name", self.name,
        ]  # fmt: skip
        with open(self.data_dir / "runtime.log", "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@dataclass
class Kill:
    what: str  # a runtime's name, "server:<port>" or "postgres"
    monotonic: float
    wall: float


@dataclass
class History:
    """Everything the clients and the fault injector saw, for the checker."""

    accepted: dict[str, str | None] = field(default_factory=dict)  # client id → server id
    statuses: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, str] = field(default_factory=dict)  # client id → why (not accepted)
    storms: list[str] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)  # wall: nobody sweeps
    outage_since: float | None = None
    running_max: float = 0.0  # longest `running` seen (now - startedAt), seconds
    running_over: list[dict[str, Any]] = field(default_factory=list)
    unexpected_runtime_exits: int = 0
    transport_retries: int = 0
    # 5xx that are not a 503 problem (a database outage must not be a bare 500)
    server_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outage_overlap(self, since: float, until: float) -> float:
        spans = [*self.outages]
        if self.outage_since is not None:
            spans.append((self.outage_since, until))
        return sum(max(0.0, min(b, until) - max(a, since)) for a, b in spans)


class Cluster:
    """API servers and runtimes; the faults go through here."""

    def __init__(self, servers: list[Server], runtimes: list[Runtime], history: History) -> None:
        self.servers = servers
        self.runtimes = runtimes
        self.history = history
        self.marks: Path | None = None

    def live_servers(self) -> list[Server]:
        return [s for s in self.servers if s.proc is not None and s.proc.poll() is None]

    def kill_runtime(self, rt: Runtime) -> None:
        rt.kill()
        self._record(rt.name)

    def kill_server(self, srv: Server) -> None:
        srv.kill()
        self._record(f"server:{srv.port}")

    def _record(self, what: str) -> None:
        with self.history.lock:
            self.history.kills.append(Kill(what, time.monotonic(), time.time()))

    def outage(self, down: bool) -> None:
        with self.history.lock:
            if down:
                self.history.outage_since = time.time()
            elif self.history.outage_since is not None:
                self.history.outages.append((self.history.outage_since, time.time()))
                self.history.outage_since = None

    def keep_runtimes_up(self) -> None:
        """A runtime that exited by itself (it could not register) is counted and restarted."""
        for rt in self.runtimes:
            if not rt.alive():
                with self.history.lock:
                    self.history.unexpected_runtime_exits += 1
                rt.start()


# --- clients ------------------------------------------------------------------------


def body(client_id: str, marks: Path) -> dict[str, Any]:
    return {
        "executionId": client_id,
        "environment": "production",
        "inputArguments": {"marks": str(marks), "max_sleep_ms": MAX_SLEEP_MS},
    }


def send(cluster: Cluster, client_id: str, marks: Path) -> tuple[int, str | None] | None:
    """PUT one trigger until some server answers 2xx (retrying connection errors and 5xx,
    as a client should: that is what the client execution id is for)."""
    deadline = time.monotonic() + TRIGGER_GIVE_UP_SECONDS
    why = ""
    while time.monotonic() < deadline:
        servers = cluster.live_servers() or cluster.servers
        srv = random.choice(servers)
        try:
            r = httpx.put(
                f"{srv.base}/api/v1/processes/{PROCESS}/executions",
                json=body(client_id, marks),
                headers=ADMIN,
                timeout=10,
            )
        except httpx.TransportError as exc:
            why = type(exc).__name__
        else:
            if r.status_code in (200, 201, 204):
                return r.status_code, (r.json()["id"] if r.status_code != 204 else None)
            if r.status_code < 500:
                raise AssertionError(f"{client_id}: {r.status_code} {r.text}")
            why = f"{r.status_code} {r.text[:200]}"
            problem = r.headers.get("content-type", "").startswith("application/problem+json")
            if r.status_code != 503 or not problem or "retry-after" not in r.headers:
                with cluster.history.lock:
                    cluster.history.server_errors.append(why)
        with cluster.history.lock:
            cluster.history.transport_retries += 1
        time.sleep(0.1)
    with cluster.history.lock:
        cluster.history.refused[client_id] = why
    return None


def accept(cluster: Cluster, client_id: str, answer: tuple[int, str | None] | None) -> None:
    h = cluster.history
    with h.lock:
        if answer is None:
            return
        status, server_id = answer
        h.statuses[client_id].append(status)
        known = h.accepted.get(client_id)
        if server_id is not None and known is not None:
            assert known == server_id, f"{client_id} answered as {known} and {server_id}"
        h.accepted[client_id] = known or server_id
        h.refused.pop(client_id, None)


class StopCounter:
    """Stop markers so far, read incrementally (the file only grows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
                whole = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits
                self.offset += len(whole)
                self.count += sum(1 for line in whole.splitlines() if line.startswith(b"stop "))
            return self.count


def trigger_all(cluster: Cluster, marks: Path, progress: Callable[[int], None]) -> None:
    """Send EXECUTIONS client ids from SENDERS threads; every STORM_EVERY-th id is sent by
    STORM_SENDERS threads at once. Keeps at most MAX_BACKLOG accepted-but-unstopped."""
    ids = iter(range(EXECUTIONS))
    ids_lock = threading.Lock()
    stopped = [0]
    count_stops = StopCounter(marks / "markers")
    storm_pool = ThreadPoolExecutor(STORM_SENDERS)

    def backlog_ok() -> bool:
        with cluster.history.lock:
            accepted = len(cluster.history.accepted)
        if accepted - stopped[0] < MAX_BACKLOG:
            return True
        stopped[0] = count_stops()
        return accepted - stopped[0] < MAX_BACKLOG

    def sender() -> None:
        while True:
            with ids_lock:
                n = next(ids, None)
            if n is None:
                return
            deadline = time.monotonic() + DRAIN_SECONDS
            while not backlog_ok() and time.monotonic() < deadline:
                time.sleep(0.05)
            client_id = f"fault-{n:05d}"
            if n % STORM_EVERY == 0:
                with cluster.history.lock:
                    cluster.history.storms.append(client_id)
                barrier = threading.Barrier(STORM_SENDERS)

                def storm_one(cid: str = client_id, b: threading.Barrier = barrier) -> None:
                    b.wait()
                    accept(cluster, cid, send(cluster, cid, marks))

                for f in [storm_pool.submit(storm_one) for _ in range(STORM_SENDERS)]:
                    f.result()
            else:
                accept(cluster, client_id, send(cluster, client_id, marks))
            progress(n)

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    storm_pool.shutdown()


def poll_running(cluster: Cluster, stop: threading.Event) -> None:
    """Watch `running` executions: how long since their startedAt, against the bound."""
    h = cluster.history
    while not stop.wait(0.3):
        for srv in cluster.live_servers():
            try:
                r = httpx.get(
                    f"{srv.base}/api/v1/executions",
                    params={"process": PROCESS, "status": "running", "limit": 500},
                    headers=ADMIN,
                    timeout=5,
                )
            except httpx.TransportError:
                continue
            if r.status_code != 200:
                continue
            now = time.time()
            for item in r.json()["items"]:
                started = _wall(item["startedAt"])
                ran = now - started
                with h.lock:
                    h.running_max = max(h.running_max, ran)
                    allowed = BOUND_SECONDS + SLACK_SECONDS + h.outage_overlap(started, now)
                    if ran > allowed:
                        h.running_over.append({**item, "ran": ran, "allowed": allowed})
            break


def _wall(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --- the checker ----------------------------------------------------------------------


@dataclass
class Attempt:
    execution: str
    attempt: int
    runtime: str
    pid: int
    start: float  # CLOCK_MONOTONIC: one clock for every process on this machine
    alive_at_start: str  # earlier attempts of the execution found alive ("-": none)
    stop: float | None = None


def read_markers(path: Path) -> tuple[dict[str, dict[int, Attempt]], list[str]]:
    """Attempts by execution and attempt number; and what is wrong with the file."""
    attempts: dict[str, dict[int, Attempt]] = defaultdict(dict)
    problems: list[str] = []
    for line in path.read_text().splitlines():
        kind, execution, attempt_s, runtime, pid_s, mono, _wall_s, extra = line.split()
        attempt, pid = int(attempt_s), int(pid_s)
        known = attempts[execution].get(attempt)
        if kind == "start":
            if known is not None:
                problems.append(f"{execution} attempt {attempt} started twice: {line}")
                continue
            attempts[execution][attempt] = Attempt(
                execution, attempt, runtime, pid, float(mono), extra
            )
        elif known is None or known.pid != pid or known.stop is not None:
            problems.append(f"stop without its start: {line}")
        else:
            known.stop = float(mono)
    return attempts, problems


def check_attempts(attempts: dict[str, dict[int, Attempt]], kills: list[Kill]) -> list[str]:
    """No attempt overlapped another attempt of its execution."""
    problems: list[str] = []
    kill_times: dict[str, list[float]] = defaultdict(list)
    for k in kills:
        kill_times[k.what].append(k.monotonic)
    for execution, by_number in attempts.items():
        ordered = [by_number[n] for n in sorted(by_number)]
        for a in ordered:
            if a.alive_at_start != "-":
                problems.append(
                    f"{execution} attempt {a.attempt} started while {a.alive_at_start} lived"
                )
        for prev, nxt in itertools.pairwise(ordered):
            end = prev.stop
            if end is None:  # killed: its runtime's SIGKILL ends it (or self-fencing did)
                # A kill recorded just before the start mark counts too: the supervisor
                # ends its child when it sees the control pipe close, and a child forked
                # as its runtime died can write its start mark in that moment.
                end = min(
                    (
                        max(t, prev.start)
                        for t in kill_times[prev.runtime]
                        if t >= prev.start - ORPHAN_SECONDS
                    ),
                    default=None,
                )
                if nxt.runtime == prev.runtime and (end is None or end > nxt.start):
                    # Its own runtime, still alive, ended it (self-fencing while the
                    # server was away, or a lost lease) and then took the retry: no kill
                    # dates that end, and the next attempt found it dead (checked above).
                    end = None
            if nxt.start <= prev.start or (end is not None and nxt.start < end):
                problems.append(
                    f"{execution}: attempt {nxt.attempt} on {nxt.runtime} started at "
                    f"{nxt.start:.3f}, attempt {prev.attempt} on {prev.runtime} ran "
                    f"{prev.start:.3f}-{end}; {prev.runtime} killed at "
                    f"{[round(t, 3) for t in kill_times[prev.runtime] if abs(t - prev.start) < 30]}"
                )
    return problems


def read_all(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every execution of the probe, by server id, through the keyset-paginated list."""
    records: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"process": PROCESS, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/executions", params=params)
        assert page.status_code == 200, page.text
        doc = page.json()
        for item in doc["items"]:
            assert item["id"] not in records, f"listed twice: {item['id']}"
            records[item["id"]] = item
        cursor = doc["nextCursor"]
        if not cursor:
            return records


def check_history(cluster: Cluster, marks: Path) -> dict[str, Any]:
    """Wait for the end, then assert the guarantees; returns the figures."""
    h = cluster.history
    srv = cluster.live_servers()[0]
    with srv.client() as c:
        deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            busy = c.get(
                "/api/v1/executions",
                params={"process": PROCESS, "status": "queued,running", "limit": 1},
            ).json()["items"]
            if not busy:
                break
            assert time.monotonic() < deadline, f"still not terminal: {busy}"
            time.sleep(0.5)

        # One client execution id, one execution; every accepted one is there.
        assert not h.refused, f"triggers never accepted: {h.refused}"
        assert not h.server_errors, f"5xx other than 503 problems: {h.server_errors[:5]}"
        listed = read_all(c)
        by_client = Counter(r["executionId"] for r in listed.values())
        assert [cid for cid, n in by_client.items() if n > 1] == []
        assert set(by_client) == set(h.accepted), "executions nobody was told about, or lost"
        for cid in h.storms:
            codes = h.statuses[cid]
            assert len(codes) == STORM_SENDERS and codes.count(201) <= 1, (cid, codes)

        # Each accepted execution, through the native API: one terminal state.
        def first_read(cid: str) -> dict[str, Any]:
            r = c.get(f"/api/v1/processes/{PROCESS}/executions/{cid}")
            assert r.status_code == 200, r.text
            doc: dict[str, Any] = r.json()
            again = c.get(f"/api/v1/executions/{doc['id']}")
            assert again.status_code == 200, again.text
            assert again.json() == doc
            return doc

        with ThreadPoolExecutor(4) as pool:
            first = dict(zip(h.accepted, pool.map(first_read, h.accepted), strict=True))
        for cid, doc in first.items():
            assert doc["status"] in TERMINAL, doc
            assert h.accepted[cid] in (None, doc["id"]), (cid, h.accepted[cid], doc["id"])
        time.sleep(LEASE_TTL_SECONDS + 2 * SWEEP_SECONDS)  # a late sweep or report would show
        second = {r["executionId"]: r for r in read_all(c).values()}
        changed = [cid for cid, doc in first.items() if second[cid] != doc]
        assert changed == [], f"terminal records changed: {changed[:5]}"

    # The markers: no attempt twice, none overlapping, none after the end.
    attempts, problems = read_markers(marks / "markers")
    problems += check_attempts(attempts, h.kills)
    ids = {doc["id"]: doc for doc in first.values()}
    assert set(attempts) <= set(ids), "a process ran for an execution nobody accepted"
    outcomes: Counter[str] = Counter()
    for doc in ids.values():
        ran = attempts.get(doc["id"], {})
        if ran and max(ran) > doc["attempt"]:
            problems.append(f"{doc['id']}: attempt {max(ran)} ran, record ends at {doc['attempt']}")
        if doc["status"] == "succeeded":
            last = ran.get(doc["attempt"])
            if (
                last is None
                or last.stop is None
                or doc["result"]
                != {
                    "attempt": doc["attempt"],
                    "runtime": last.runtime,
                }
            ):
                problems.append(f"{doc['id']}: succeeded without its attempt's run: {doc}")
            outcomes["succeeded"] += 1
        elif doc["status"] == "failed" and doc["error"]["code"] == "RUNTIME_LOST":
            if doc["attempt"] != RETRIES + 1:
                problems.append(f"{doc['id']}: RUNTIME_LOST with retries left: {doc}")
            outcomes["failed RUNTIME_LOST"] += 1
        else:
            problems.append(f"unexpected end: {doc}")
    assert problems == [], "\n".join(problems[:20])
    assert h.running_over == [], h.running_over[:5]

    attempts_run = sum(len(v) for v in attempts.values())
    return {
        "executions": len(ids),
        "outcomes": dict(outcomes),
        "attempts": attempts_run,
        "retried executions": sum(1 for d in ids.values() if d["attempt"] > 1),
        "attempts killed mid-run": sum(
            1 for v in attempts.values() for a in v.values() if a.stop is None
        ),
        "runtime kills": sum(1 for k in h.kills if k.what.startswith("rt-")),
        "server kills": sum(1 for k in h.kills if k.what.startswith("server:")),
        "postgres restarts": sum(1 for k in h.kills if k.what == "postgres"),
        "storms (8 senders, one id)": len(h.storms),
        "client retries": h.transport_retries,
        "longest running (s)": round(h.running_max, 2),
        "bound (s)": BOUND_SECONDS,
        "runtimes that exited by themselves": h.unexpected_runtime_exits,
    }


# --- the scenario ---------------------------------------------------------------------


def run_scenario(
    cluster: Cluster,
    marks: Path,
    faults: list[Callable[[], None]],
) -> dict[str, Any]:
    """Trigger EXECUTIONS while `faults` fire, spread evenly over the triggers."""
    started = time.monotonic()
    (marks / "pids").mkdir(parents=True)
    fired = threading.Semaphore(0)
    due = [(i + 1) * EXECUTIONS // (len(faults) + 1) for i in range(len(faults))]
    stop = threading.Event()

    def progress(n: int) -> None:
        if due and n >= due[0]:
            due.pop(0)
            fired.release()

    failed: list[BaseException] = []

    def injector() -> None:
        try:
            for fault in faults:
                while not fired.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                    cluster.keep_runtimes_up()
                fault()
                cluster.keep_runtimes_up()
        except BaseException as exc:
            failed.append(exc)

    poller = threading.Thread(target=poll_running, args=(cluster, stop))
    chaos = threading.Thread(target=injector)
    poller.start()
    chaos.start()
    try:
        trigger_all(cluster, marks, progress)
        for _ in due:
            fired.release()
        chaos.join()
        if failed:
            raise failed[0]
        cluster.keep_runtimes_up()
        figures = check_history(cluster, marks)
    finally:
        stop.set()
        poller.join()
        chaos.join()
    figures["wall time (s)"] = round(time.monotonic() - started, 1)
    print(f"\nfault test figures: {figures}")
    return figures


def busy_runtimes(marks: Path) -> set[str]:
    """Runtimes with an attempt started and not stopped, by the markers."""
    try:
        attempts, _ = read_markers(marks / "markers")
    except FileNotFoundError:
        return set()
    return {a.runtime for v in attempts.values() for a in v.values() if a.stop is None}


def runtime_faults(cluster: Cluster, marks: Path, kills: int) -> list[Callable[[], None]]:
    def kill_one() -> None:
        # A runtime in the middle of an execution, when one is found within a second.
        deadline = time.monotonic() + 1.0
        busy: set[str] = set()
        while not busy and time.monotonic() < deadline:
            busy = busy_runtimes(marks) & {rt.name for rt in cluster.runtimes if rt.alive()}
            time.sleep(0.05)
        rt = random.choice([rt for rt in cluster.runtimes if rt.name in busy] or cluster.runtimes)
        cluster.kill_runtime(rt)
        time.sleep(random.uniform(0.2, 1.0))
        rt.start()

    return [kill_one] * kills


def setup(servers: list[Server], tmp_path: Path, history: History) -> tuple[Cluster, Path]:
    marks = tmp_path / "marks"
    with servers[0].client() as admin:
        deploy(
            admin,
            make_process(tmp_path, PROCESS, manifest=MANIFEST, code=PROBE),
            concurrencyLimit=1000,
        )
        r = admin.post(
            "/api/v1/tokens",
            json={"name": "faults", "scopes": ["runtime"], "environments": ["production"]},
        )
        assert r.status_code == 201, r.text
        token = r.json()["token"]
    runtimes = [
        Runtime(f"rt-{i}", servers[i % len(servers)], token, tmp_path / f"rt-{i}")
        for i in range(RUNTIMES)
    ]
    cluster = Cluster(servers, runtimes, history)
    for rt in runtimes:
        rt.start()
    return cluster, marks


@contextlib.contextmanager
def stopped_at_end(cluster: Cluster) -> Iterator[None]:
    try:
        yield
    finally:
        for rt in cluster.runtimes:
            rt.kill()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_faults_on_sqlite(start_server: ServerFactory, tmp_path: Path) -> None:
    """One node on SQLite (API only) + 3 remote runtimes: 20 runtime SIGKILLs and two
    SIGKILLs of the server while triggers flow."""
    srv = start_server.start("--slots", "0", "--no-demo")
    history = History()
    cluster, marks = setup([srv], tmp_path, history)

    def kill_server() -> None:
        cluster.kill_server(srv)
        cluster.outage(True)
        time.sleep(random.uniform(0.5, 1.5))
        srv.start()
        cluster.outage(False)

    faults = runtime_faults(cluster, marks, RUNTIME_KILLS)
    faults[RUNTIME_KILLS // 3 : RUNTIME_KILLS // 3] = [kill_server]
    faults[2 * len(faults) // 3 : 2 * len(faults) // 3] = [kill_server]
    with stopped_at_end(cluster):
        figures = run_scenario(cluster, marks, faults)
    assert figures["executions"] >= EXECUTIONS
    assert figures["runtime kills"] == RUNTIME_KILLS and figures["server kills"] == 2


# --- PostgreSQL: a private cluster this test may restart -----------------------------


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb in a temporary directory), so it
    can be restarted with `pg_ctl restart -m immediate`; never the shared server."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="runplane-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root: the cluster belongs to the postgres OS user.
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            self.as_owner = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self.as_owner, *args], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"

    def pg_ctl(self, *args: str) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), *args
        )

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off"  # a process crash, not a power cut
        )
        self.pg_ctl("-o", options, "-w", "start")

    def restart_immediate(self) -> None:
        """Abort every backend without a checkpoint (crash recovery at start), start again."""
        self.pg_ctl("-m", "immediate", "-w", "restart")

    def destroy(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self.pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    bin_dir = postgres_bin()
    reason = None
    if bin_dir is None:
        reason = "initdb not found"
    elif os.geteuid() == 0 and not shutil.which("runuser"):
        reason = "running as root without runuser"
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"a private PostgreSQL cluster is required under CI=true: {reason}")
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    assert bin_dir is not None
    cluster = PrivateCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_faults_on_postgres(
    start_server: ServerFactory, private_postgres: PrivateCluster, tmp_path: Path
) -> None:
    """Two API replicas on one PostgreSQL + 3 remote runtimes spread over them: 20 runtime
    SIGKILLs, two replica SIGKILLs and one `pg_ctl restart -m immediate` while triggers
    flow."""
    url = private_postgres.url
    first = start_server.start("--slots", "0", "--no-demo", "--database-url", url)
    second = start_server.start("--slots", "0", "--no-demo", "--database-url", url)
    history = History()
    cluster, marks = setup([first, second], tmp_path, history)

    def kill_replica() -> None:
        srv = random.choice(cluster.servers)
        cluster.kill_server(srv)
        time.sleep(random.uniform(0.5, 1.5))
        srv.start()

    def restart_postgres() -> None:
        cluster.outage(True)
        with history.lock:
            history.kills.append(Kill("postgres", time.monotonic(), time.time()))
        private_postgres.restart_immediate()
        for srv in cluster.servers:  # both replicas answer again, on the database
            assert srv.proc is not None and srv.proc.poll() is None, srv.log()[-3000:]
        cluster.outage(False)

    faults = runtime_faults(cluster, marks, RUNTIME_KILLS)
    for i, fault in enumerate([kill_replica, restart_postgres, kill_replica], start=1):
        at = i * len(faults) // 4
        faults[at:at] = [fault]
    with stopped_at_end(cluster):
        figures = run_scenario(cluster, marks, faults)
    assert figures["executions"] >= EXECUTIONS
    assert figures["runtime kills"] == RUNTIME_KILLS and figures["server kills"] == 2
    assert figures["postgres restarts"] == 1


# --- the checker checks --------------------------------------------------------------


def test_the_checker_finds_overlaps_double_starts_and_orphan_stops(tmp_path: Path) -> None:
    """The history checker is only worth its failures: feed it bad histories."""
    lines = [
        "start e1 1 rt-0 10 100.0 0 -",  # killed with rt-0 at 100.5
        "start e1 2 rt-1 11 100.2 0 -",  # ...but attempt 2 started before that
        "start e2 1 rt-0 12 101.0 0 -",
        "stop e2 1 rt-0 12 102.0 0 -",
        "start e2 2 rt-1 13 101.5 0 -",  # before attempt 1 stopped
        "start e3 1 rt-2 14 103.0 0 -",
        "start e3 1 rt-1 15 103.1 0 -",  # the same attempt twice
        "stop e4 1 rt-2 16 104.0 0 -",  # a stop without a start
        "start e5 2 rt-2 17 105.0 0 1:9",  # found attempt 1 alive
        "start e6 1 rt-0 18 106.0 0 -",  # killed at 106.5, no kill
        "start e6 2 rt-1 19 110.0 0 -",  # after the kill and the lease: fine
        "start e7 1 rt-0 20 107.0 0 -",  # fenced by rt-0 itself (rt-0 killed at 112.0)
        "start e7 2 rt-0 21 110.5 0 -",  # retried by rt-0, which found attempt 1 dead: fine
        "start e8 1 rt-0 22 107.5 0 -",  # fenced by rt-0 itself
        "start e8 2 rt-0 23 110.6 0 1:22",  # ...but attempt 1 was alive: found
        "start e9 1 rt-2 24 120.3 0 -",  # started as rt-2 died at 120.0 (killed again at 140)
        "start e9 2 rt-1 25 127.0 0 -",  # after the lease, found attempt 1 dead: fine
        "start e10 1 rt-2 26 123.0 0 -",  # long after rt-2's kill at 120.0: not its end
        "start e10 2 rt-1 27 127.5 0 -",  # ...and rt-2 was next killed at 140.0: found
    ]
    (tmp_path / "markers").write_text("\n".join(lines) + "\n")
    attempts, problems = read_markers(tmp_path / "markers")
    kills = [Kill("rt-0", 100.5, 0), Kill("rt-0", 106.5, 0), Kill("rt-0", 112.0, 0)]
    kills += [Kill("rt-2", 120.0, 0), Kill("rt-2", 140.0, 0)]
    problems += check_attempts(attempts, kills)
    found = sorted(p.split(":")[0].split()[0] for p in problems)
    assert found == ["e1", "e10", "e2", "e3", "e5", "e8", "stop"], problems
