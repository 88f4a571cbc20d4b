"""The console's executions list and reports with 100,000 executions stored.

    python bench/executions_list.py [--rows 100000] [--runs 50] [--plans]
                                    [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                    [--no-postgres]

Fills a fresh SQLite database (and, when PostgreSQL answers, a fresh schema of its
own, dropped at the end) with `--rows` executions created over 30 days: four
processes (50 / 30 / 19 / 1 %), three environments (80 / 18 / 2 %), mostly
finished (succeeded, failed, timed out, cancelled), a few queued and running among
the newest. The rows go in by bulk Core inserts, their ids UUIDv7 of their
creation time as the server makes them. PostgreSQL then gets VACUUM ANALYZE,
as its autovacuum would; SQLite gets no ANALYZE, as runplane runs it (its
planner works without statistics). Then it times, through the real service
calls (`service.executions.list_executions`, `service.reports.report`) on the
server's own database gateway, each case `--runs` times after 3 warm-up calls,
and prints p50 / p95 in ms. `--plans` also prints each list query's plan
(`EXPLAIN QUERY PLAN` / `EXPLAIN`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import event

from runplane.domain.reports import PERIODS
from runplane.domain.states import Status
from runplane.manifest import parse_manifest
from runplane.service import executions as svc
from runplane.service import reports
from runplane.service.context import Context
from runplane.settings import Settings
from runplane.store import catalog, sealing
from runplane.store.database import Database, Tx
from runplane.store.listing import encode_cursor
from runplane.store.schema import executions

PROCESSES = {"invoice-bot": 50, "nightly-report": 30, "crm-sync": 19, "audit": 1}
ENVIRONMENTS = {"production": 80, "sandbox": 18, "staging": 2}
OUTCOMES = {
    Status.SUCCEEDED: 88,
    Status.FAILED: 7,
    Status.TIMED_OUT: 1,
    Status.CANCELLED: 4,
}
DAYS = 30
UNFINISHED = 200  # the newest executions are still queued or running
INSERT_CHUNK = 5_000
WARM_UP_RUNS = 3
MANIFEST = '[process]\nname = "{name}"\nentrypoint = "main:main"\n'


def uuid7_at(at: datetime, counter: int, rnd: random.Random) -> str:
    """A UUIDv7 of `at` (as domain.ids makes them): newest-first is id order."""
    millis = int(at.timestamp() * 1000)
    value = (
        (millis & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | (counter & 0xFFF) << 64
        | 0x2 << 62
        | rnd.getrandbits(62)
    )
    return str(uuid.UUID(int=value))


def _pick(rnd: random.Random, weights: dict[Any, int]) -> Any:
    return rnd.choices(list(weights), weights=list(weights.values()))[0]


def seed(db: Database, rows: int, now: datetime) -> tuple[str, list[str]]:
    """The default workspace with the processes deployed everywhere, and `rows`
    executions; returns (workspace id, execution ids newest first)."""
    with db.engine.begin() as conn:
        tx = Tx(conn)
        ws = catalog.bootstrap(tx, now - timedelta(days=DAYS + 1))
        existing = {e.name for e in catalog.list_environments(conn, ws)}
        for name in ENVIRONMENTS:
            if name not in existing:
                catalog.create_environment(tx, ws, name, now)
        envs = {n: catalog.get_environment(conn, ws, n) for n in ENVIRONMENTS}
        deps: dict[tuple[str, str], Any] = {}
        for name in PROCESSES:
            spec = parse_manifest(MANIFEST.format(name=name)).to_dict()
            version, _ = catalog.create_version(
                tx, ws, name, spec, {}, name.ljust(64, "0"), b"zip", now
            )
            proc = catalog.get_process(conn, ws, name)
            for env_name, env in envs.items():
                dep, _ = catalog.put_deployment(tx, proc, env, version, {}, {}, True, None, now)
                deps[name, env_name] = dep
    rnd = random.Random(7)
    start = now - timedelta(days=DAYS)
    times = sorted(start + timedelta(seconds=rnd.uniform(0, DAYS * 86400)) for _ in range(rows))
    batch: list[dict[str, Any]] = []
    ids: list[str] = []
    last_ms, counter = -1, 0
    with db.engine.begin() as conn:
        for i, created in enumerate(times):
            ms = int(created.timestamp() * 1000)
            counter = counter + 1 if ms == last_ms else 0
            last_ms = ms
            eid = uuid7_at(created, counter, rnd)
            ids.append(eid)
            dep = deps[_pick(rnd, PROCESSES), _pick(rnd, ENVIRONMENTS)]
            status = _pick(rnd, OUTCOMES)
            if i >= rows - UNFINISHED:
                status = Status.QUEUED if rnd.random() < 0.5 else Status.RUNNING
            started = (
                created + timedelta(milliseconds=rnd.uniform(5, 2000))
                if status is not Status.QUEUED
                else None
            )
            finished = (
                started + timedelta(milliseconds=rnd.expovariate(1 / 3000))
                if started is not None and status.terminal
                else None
            )
            batch.append(
                {
                    "id": eid,
                    "workspace_id": ws,
                    "process_id": dep.process_id,
                    "version_id": dep.version_id,
                    "deployment_id": dep.id,
                    "environment_id": dep.environment_id,
                    "client_execution_id": eid,
                    "status": status.value,
                    "attempt": 1,
                    "max_attempts": 1,
                    "timeout_seconds": 600.0,
                    "inputs": {"invoice": i},
                    "secret_inputs": {},
                    "input_fingerprint": "f" * 64,
                    "request_fingerprint": None,
                    "result": {"ok": True} if status is Status.SUCCEEDED else None,
                    "error_code": "FAILED" if status is Status.FAILED else None,
                    "error_message": None,
                    "runtime_id": None,
                    "lease_token": 0 if started is None else 1,
                    "claim_id": None,
                    "lease_expires_at": None,
                    "cancel_requested": False,
                    "run_after": created,
                    "created_at": created,
                    "started_at": started,
                    "finished_at": finished,
                    "updated_at": finished or started or created,
                }
            )
            if len(batch) == INSERT_CHUNK:
                conn.execute(executions.insert(), batch)
                batch = []
        if batch:
            conn.execute(executions.insert(), batch)
    if db.dialect == "postgresql":  # statistics and visibility map, as autovacuum leaves them
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE executions")
    ids.reverse()
    return ws, ids


def cases(ids: list[str], now: datetime) -> dict[str, dict[str, Any]]:
    """The console's questions: keyword arguments of list_executions."""
    return {
        "first page": {},
        "process (50%)": {"process": "invoice-bot"},
        "process (1%)": {"process": "audit"},
        "status failed (7%)": {"statuses": [Status.FAILED]},
        "status timed_out (1%)": {"statuses": [Status.TIMED_OUT]},
        "status running (0.1%, newest)": {"statuses": [Status.RUNNING]},
        "environment (18%)": {"environment": "sandbox"},
        "environment (2%)": {"environment": "staging"},
        "last 24 h": {"since": now - timedelta(hours=24)},
        "last 30 days (since, until)": {"since": now - timedelta(days=30), "until": now},
        "last hour + status timed_out (1%)": {
            "since": now - timedelta(hours=1),
            "statuses": [Status.TIMED_OUT],
        },
        "a day 14 days ago": {
            "since": now - timedelta(days=15),
            "until": now - timedelta(days=14),
        },
        "process + status + environment": {
            "process": "crm-sync",
            "statuses": [Status.FAILED],
            "environment": "production",
        },
        "process (1%) + status (7%)": {"process": "audit", "statuses": [Status.FAILED]},
        "status (88%) + environment (80%)": {
            "statuses": [Status.SUCCEEDED],
            "environment": "production",
        },
        "page by cursor (row 50,000)": {"cursor": encode_cursor(ids[len(ids) // 2])},
    }


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float, Any]:
    for _ in range(WARM_UP_RUNS):
        result = await call()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await call()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return statistics.median(samples), p95, result


class PlanPrinter:
    """Captures the last SELECT on the read engine and prints its query plan."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.last: tuple[str, Any] | None = None
        event.listen(db.read_engine, "before_cursor_execute", self._capture)

    def _capture(self, conn: Any, cursor: Any, stmt: str, params: Any, *_: Any) -> None:
        if stmt.lstrip().upper().startswith(("SELECT", "WITH")):
            self.last = (stmt, params)

    def print(self) -> None:
        if self.last is None:
            return
        stmt, params = self.last
        explain = "EXPLAIN QUERY PLAN " if self.db.dialect == "sqlite" else "EXPLAIN "
        with self.db.read_engine.connect() as conn:
            rows = conn.exec_driver_sql(explain + stmt, params).all()
        for row in rows:
            print("      " + (row[-1] if self.db.dialect == "sqlite" else row[0]))


def line(name: str, rows: int, p50: float, p95: float) -> None:
    print(f"  {name:42s} {rows:6d} {p50:8.2f} {p95:8.2f}")


async def measure(label: str, url: str, rows: int, runs: int, plans: bool) -> None:
    db = Database(url)
    db.migrate()
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    ws, ids = seed(db, rows, now)
    print(
        f"\n{label}: {rows:,} executions inserted in {time.perf_counter() - t0:.1f} s"
        f"   (load {os.getloadavg()[0]:.1f})"
    )
    ctx = Context(db=db, settings=Settings(data_dir=Path(tempfile.mkdtemp())), workspace_id=ws)
    who = ctx.system()
    printer = PlanPrinter(db) if plans else None
    print(f"  {'case':42s} {'rows':>6s} {'p50 ms':>8s} {'p95 ms':>8s}")
    try:
        for name, kwargs in cases(ids, now).items():
            list_page = functools.partial(svc.list_executions, ctx, who, limit=50, **kwargs)
            p50, p95, page = await timed(list_page, runs)
            line(f"list: {name}", len(page.items), p50, p95)
            if printer is not None:
                printer.print()
        report_cases: list[tuple[str, dict[str, str]]] = [(p, {}) for p in PERIODS] + [
            ("30d", {"process": "audit"})
        ]
        for period, extra in report_cases:
            one = functools.partial(reports.report, ctx, who, period=period, now=now, **extra)
            p50, p95, rep = await timed(one, runs)
            name = f"report: {period}" + (", process (1%)" if extra else "")
            line(name, sum(r.total for r in rep.rows), p50, p95)
    finally:
        await db.close()


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def postgres_reason(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--plans", action="store_true", help="print each list query's plan")
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    sealing.use_key(Fernet.generate_key())
    print(
        f"cores: {os.cpu_count()}   python: {sys.version.split()[0]}   "
        f"SQLite: {sqlite3.sqlite_version}   load: {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="runplane-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'runplane.db'}"
        asyncio.run(measure("SQLite", url, args.rows, args.runs, args.plans))
    if args.no_postgres:
        return
    reason = postgres_reason(args.postgres)
    if reason:
        print(f"\nPostgreSQL skipped: {reason}")
        return
    with pg_schema(args.postgres) as url:
        asyncio.run(measure("PostgreSQL", url, args.rows, args.runs, args.plans))


if __name__ == "__main__":
    main()
