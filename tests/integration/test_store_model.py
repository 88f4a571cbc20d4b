"""The execution store and its state machine, checked against a model.

A Hypothesis rule-based state machine creates executions and drives them the
way runtimes, clients and the sweeper do: claim, heartbeat, log, report
(succeeded / failed / timed out / cancelled), cancel, let time pass and sweep
expired leases. Heartbeats, log chunks and reports carry the current fencing
token or a stale one. A plain Python model, written from DESIGN.md and not
from `domain.states`, predicts every answer; after each step the stored rows
must equal the model and a few invariants must hold:

- a stale fencing token is refused (StaleLease) and changes nothing;
- a lease token only grows, and a running execution is held by one runtime;
- terminal rows never change again, and a cancel request is never retried;
- a claim never hands out work whose retry backoff is still running, or work
  of a deployment at its concurrency limit.

The store takes `now` explicitly, so the clock is the model's own. One
database per backend (a SQLite file, a PostgreSQL schema) serves every
example; each example starts from an empty executions table.

The default run is short. More examples (derandomized, no example database),
e.g. in CI or after touching the store:

    HYPOTHESIS_PROFILE=ci pytest tests/integration/test_store_model.py
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, delete, func, select

from runplane.domain import errors
from runplane.domain.ids import new_id
from runplane.domain.model import Deployment, Version
from runplane.domain.states import Status
from runplane.manifest import parse_manifest
from runplane.store import catalog, executions, leases, logs, runtimes
from runplane.store.database import Tx
from runplane.store.schema import execution_logs
from runplane.store.schema import executions as executions_table
from tests.conftest import isolated_engine

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE_TTL_SECONDS = 30.0
MAX_CLOCK_STEP_MS = 40_000
MAX_RETRIES = 3

# Every step is a database round trip: no deadline, and slow data generation is fine.
_BASE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILES = {
    "default": settings(_BASE, max_examples=50, stateful_step_count=50),
    "ci": settings(
        _BASE, max_examples=300, stateful_step_count=60, derandomize=True, database=None
    ),
}


def _profile() -> settings:
    name = os.environ.get("HYPOTHESIS_PROFILE", "default")
    if name not in PROFILES:
        pytest.fail(f"HYPOTHESIS_PROFILE={name!r}: choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def _write(conn: Connection, fn: Callable[[Tx], T]) -> T:
    """One write transaction, committed, or rolled back when `fn` raises."""
    with conn.begin():
        return fn(Tx(conn))


def _read(conn: Connection, fn: Callable[[Connection], T]) -> T:
    with conn.begin():
        return fn(conn)


# ---------------------------------------------------------------- the world


MANIFEST = '[process]\nname = "{name}"\nentrypoint = "{name}:main"\n'

# deployment key -> (process, environment); `bot@production` gets the drawn limit
DEPLOYMENTS = {
    "bot@production": ("bot", "production"),
    "job@production": ("job", "production"),
    "bot@sandbox": ("bot", "sandbox"),
}
LIMITED = "bot@production"
# runtime name -> the environment it serves (None: every environment, as embedded)
RUNTIMES = {"rt-production": "production", "rt-sandbox": "sandbox", "rt-any": None}


@dataclass
class World:
    """One workspace, two processes deployed to three targets, three runtimes."""

    conn: Connection  # one connection for the whole run: no pool check-out per step
    ws: str
    env_ids: dict[str, str]
    versions: dict[str, Version]
    deployments: dict[str, Deployment]
    runtime_ids: dict[str, str]

    @classmethod
    def install(cls, conn: Connection) -> World:
        """Create the rows every example shares."""
        with conn.begin():
            tx = Tx(conn)
            ws = catalog.create_workspace(tx, "model", T0)
            env_ids = {env.name: env.id for env in catalog.list_environments(conn, ws)}
            versions = {}
            for name in ("bot", "job"):
                spec = parse_manifest(MANIFEST.format(name=name)).to_dict()
                versions[name], _ = catalog.create_version(
                    tx, ws, name, spec, {}, name[0] * 64, b"zip", T0
                )
            runtime_ids = {
                name: runtimes.register_runtime(
                    tx, ws, name, None if env is None else env_ids[env], 4, {}, "test", T0
                ).id
                for name, env in RUNTIMES.items()
            }
        world = cls(conn, ws, env_ids, versions, {}, runtime_ids)
        for key in DEPLOYMENTS:
            world.deploy(key, None)
        return world

    def deploy(self, key: str, limit: int | None) -> None:
        """(Re)deploy one target with a concurrency limit."""
        process_name, env_name = DEPLOYMENTS[key]
        proc = _read(self.conn, lambda c: catalog.get_process(c, self.ws, process_name))
        env = _read(self.conn, lambda c: catalog.get_environment(c, self.ws, env_name))
        version = self.versions[process_name]
        self.deployments[key], _ = _write(
            self.conn,
            lambda tx: catalog.put_deployment(tx, proc, env, version, {}, {}, True, limit, T0),
        )

    def new_execution(self, key: str, max_attempts: int) -> executions.NewExecution:
        """A trigger of one deployment."""
        process_name, env_name = DEPLOYMENTS[key]
        dep = self.deployments[key]
        eid = new_id()
        return executions.NewExecution(
            id=eid,
            workspace_id=self.ws,
            process_id=dep.process_id,
            version_id=dep.version_id,
            deployment_id=dep.id,
            environment_id=self.env_ids[env_name],
            client_execution_id=eid,
            max_attempts=max_attempts,
            timeout_seconds=60,
            inputs={},
            secret_inputs={},
            input_fingerprint=eid,
            request_fingerprint=None,
            process_name=process_name,
            version_number=self.versions[process_name].number,
            environment_name=env_name,
        )

    def forget_executions(self) -> None:
        """Empty the executions (the claim and the sweep span every workspace)."""
        with self.conn.begin():
            self.conn.execute(delete(execution_logs))
            self.conn.execute(delete(executions_table))


# ---------------------------------------------------------------- the model


def backoff_seconds(attempt: int) -> float:
    """DESIGN.md: retried after backoff; 1 s after attempt 1, doubling, capped at 5 min."""
    return float(min(300, 2 ** (attempt - 1)))


@dataclass
class Expected:
    """What one execution should look like, by the model."""

    id: str
    deployment: str
    environment: str
    max_attempts: int
    run_after: datetime
    status: Status = Status.QUEUED
    attempt: int = 1
    lease_token: int = 0
    runtime: str | None = None  # runtime name of the current lease (the last, once ended)
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str | None = None
    result: dict[str, Any] | None = None
    logs: int = 0

    @property
    def running(self) -> bool:
        """Held under a lease right now."""
        return self.status is Status.RUNNING

    def end_attempt(
        self, ended: Status, now: datetime, error_code: str, *, reported: bool = True
    ) -> None:
        """An attempt failed, timed out (`ended`) or lost its runtime (not `reported`).

        Retried while attempts remain, unless a cancel was asked for. The queued
        retry keeps the error its runtime reported; a lost attempt reported none.
        """
        if self.cancel_requested:
            self.finish(Status.CANCELLED, now, "CANCELLED")
        elif self.attempt < self.max_attempts:
            self.status = Status.QUEUED
            self.run_after = now + timedelta(seconds=backoff_seconds(self.attempt))
            self.attempt += 1
            self.runtime = None
            self.lease_expires_at = None
            self.error_code = error_code if reported else None
            self.result = None
        else:
            self.finish(ended, now, error_code)

    def finish(self, status: Status, now: datetime, error_code: str | None) -> None:
        """Reach a terminal status."""
        self.status = status
        self.finished_at = now
        self.lease_expires_at = None
        self.error_code = error_code


OUTCOME_CODES = {
    Status.SUCCEEDED: None,
    Status.FAILED: "PROCESS_ERROR",
    Status.TIMED_OUT: "TIMEOUT",
    Status.CANCELLED: "CANCELLED",
}
RESULT = {"ok": True}

# Which fencing token a call carries, relative to the execution's latest lease:
# that one, the one before it, or one never handed out yet.
TOKEN_OFFSETS = {"latest": 0, "previous": -1, "unissued": 1}
LEASE_CALLS = ("heartbeat", "log", "report")


# ---------------------------------------------------------------- the machine


@dataclass
class Snapshot:
    """The stored rows of the example's executions, with log counts."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, int] = field(default_factory=dict)


class StoreModel(RuleBasedStateMachine):
    """Drives the store and compares it with `Expected` after every step."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.conn = world.conn
        self.now = T0
        self.limit: int | None = None
        self.model: dict[str, Expected] = {}
        self.highest_token: dict[str, int] = {}
        self.terminal_rows: dict[str, dict[str, Any]] = {}  # as first seen
        self.attempt_at_cancel: dict[str, int] = {}
        world.forget_executions()

    def teardown(self) -> None:
        self.world.forget_executions()

    # -- helpers

    def snapshot(self) -> Snapshot:
        """The stored executions of this example, each with its number of log chunks."""
        log_chunks = (
            select(func.count())
            .where(execution_logs.c.execution_id == executions_table.c.id)
            .scalar_subquery()
            .label("log_chunks")
        )
        rows = _read(
            self.conn,
            lambda c: c.execute(
                select(executions_table, log_chunks).where(
                    executions_table.c.workspace_id == self.world.ws
                )
            ).all(),
        )
        out = Snapshot()
        for r in rows:
            row = dict(r._mapping)
            out.logs[r.id] = row.pop("log_chunks")
            out.rows[r.id] = row
        return out

    def pick(self, data: st.DataObject, which: Callable[[Expected], bool]) -> Expected:
        """One of the executions `which` accepts."""
        pool = sorted((e for e in self.model.values() if which(e)), key=lambda e: e.id)
        return data.draw(st.sampled_from(pool), label="execution")

    def queued(self) -> bool:
        return any(e.status is Status.QUEUED for e in self.model.values())

    def leased(self) -> bool:
        return any(e.running for e in self.model.values())

    def live(self) -> bool:
        return any(not e.status.terminal for e in self.model.values())

    def ended(self) -> bool:
        return any(e.status.terminal for e in self.model.values())

    def lease_call(
        self, call: str, e: Expected, token: int, outcome: Status = Status.SUCCEEDED
    ) -> Callable[[Tx], object]:
        """What a runtime sends under a lease: a heartbeat, a log chunk or a report."""
        if call == "heartbeat":
            return lambda tx: leases.renew_lease(tx, e.id, token, self.now, LEASE_TTL_SECONDS)
        if call == "log":
            return lambda tx: logs.append_log(tx, e.id, token, e.attempt, "x\n", self.now)
        code = OUTCOME_CODES[outcome]
        return lambda tx: leases.finish(
            tx,
            e.id,
            token,
            outcome,
            self.now,
            result=RESULT if outcome is Status.SUCCEEDED else None,
            error_code=code,
            error_message=None if code is None else "it ended",
        )

    def running_in(self, deployment: str) -> int:
        return sum(1 for e in self.model.values() if e.running and e.deployment == deployment)

    def limit_of(self, deployment: str) -> int | None:
        return self.limit if deployment == LIMITED else None

    def next_claim(self, runtime: str) -> Expected | None:
        """The model's claim: the oldest due queued execution the runtime serves whose
        deployment has room."""
        env = RUNTIMES[runtime]
        for e in sorted(self.model.values(), key=lambda e: e.id):  # ids are time-ordered
            if e.status is not Status.QUEUED or e.run_after > self.now:
                continue
            if env is not None and e.environment != env:
                continue
            limit = self.limit_of(e.deployment)
            if limit is not None and self.running_in(e.deployment) >= limit:
                continue
            return e
        return None

    # -- rules

    @initialize(limit=st.sampled_from([None, 1, 2]))
    def deploy(self, limit: int | None) -> None:
        """Draw the concurrency limit of the limited deployment for this example."""
        self.limit = limit
        self.world.deploy(LIMITED, limit)

    @rule(
        triggers=st.lists(
            st.tuples(st.sampled_from(sorted(DEPLOYMENTS)), st.integers(0, MAX_RETRIES)),
            min_size=1,
            max_size=3,
        )
    )
    def create(self, triggers: list[tuple[str, int]]) -> None:
        """Queue executions of deployments, each with its own number of retries."""
        for deployment, retries in triggers:
            new = self.world.new_execution(deployment, retries + 1)
            with self.conn.begin():
                got, created = executions.create_execution(Tx(self.conn), new, self.now)
            assert created and got.status is Status.QUEUED and got.attempt == 1
            self.model[new.id] = Expected(
                id=new.id,
                deployment=deployment,
                environment=DEPLOYMENTS[deployment][1],
                max_attempts=retries + 1,
                run_after=self.now,
            )

    @precondition(queued)
    @rule(runtime=st.sampled_from(sorted(RUNTIMES)))
    def claim(self, runtime: str) -> None:
        """A runtime asks for work: it gets the model's pick, or nothing when there is none."""
        expected = self.next_claim(runtime)
        before = self.snapshot().rows
        env = RUNTIMES[runtime]
        env_ids = None if env is None else [self.world.env_ids[env]]
        rt_id = self.world.runtime_ids[runtime]
        got = _write(
            self.conn,
            lambda tx: leases.claim_next(tx, rt_id, env_ids, self.now, LEASE_TTL_SECONDS),
        )
        if got is None:
            assert expected is None, f"nothing claimed, but {expected} was claimable"
            return
        # What the claim handed out was claimable by the rows themselves, whatever the model says.
        was = before[got.execution_id]
        assert was["status"] == Status.QUEUED.value, "claimed an execution someone holds"
        assert was["run_after"] <= self.now, "claimed before the retry backoff ran out"
        limit = self.limit_of(self.model[got.execution_id].deployment)
        if limit is not None:
            busy = sum(
                1
                for r in before.values()
                if r["deployment_id"] == was["deployment_id"]
                and r["status"] == Status.RUNNING.value
            )
            assert busy < limit, "claimed from a deployment at its concurrency limit"
        assert expected is not None and got.execution_id == expected.id
        assert got.attempt == expected.attempt
        assert got.lease_token == expected.lease_token + 1
        assert got.lease_expires_at == self.now + timedelta(seconds=LEASE_TTL_SECONDS)
        expected.status = Status.RUNNING
        expected.lease_token = got.lease_token
        expected.runtime = runtime
        expected.lease_expires_at = got.lease_expires_at
        expected.started_at = self.now
        expected.finished_at = None
        expected.error_code = None

    @precondition(leased)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        """The holder extends its lease and learns whether a cancel was asked for."""
        e = self.pick(data, lambda e: e.running)
        expires, cancel = _write(
            self.conn,
            lambda tx: leases.renew_lease(tx, e.id, e.lease_token, self.now, LEASE_TTL_SECONDS),
        )
        assert expires == self.now + timedelta(seconds=LEASE_TTL_SECONDS)
        assert cancel == e.cancel_requested
        e.lease_expires_at = expires

    @precondition(leased)
    @rule(data=st.data())
    def append_log(self, data: st.DataObject) -> None:
        """The holder streams a log chunk."""
        e = self.pick(data, lambda e: e.running)
        _write(self.conn, self.lease_call("log", e, e.lease_token))
        e.logs += 1

    @precondition(leased)
    @rule(data=st.data(), outcome=st.sampled_from(sorted(OUTCOME_CODES)))
    def report(self, data: st.DataObject, outcome: Status) -> None:
        """The holder reports how the attempt ended; failures may be retried."""
        e = self.pick(data, lambda e: e.running)
        got = _write(self.conn, self.lease_call("report", e, e.lease_token, outcome))
        code = OUTCOME_CODES[outcome]
        if outcome is Status.SUCCEEDED:
            e.finish(Status.SUCCEEDED, self.now, None)
            e.result = RESULT
        elif outcome is Status.CANCELLED:
            e.finish(Status.CANCELLED, self.now, "CANCELLED")
        else:
            assert code is not None
            e.end_attempt(outcome, self.now, code)
        assert got is e.status

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        call=st.sampled_from(LEASE_CALLS),
        outcome=st.sampled_from(sorted(OUTCOME_CODES)),
    )
    def stale_lease_is_refused(self, data: st.DataObject, call: str, outcome: Status) -> None:
        """A heartbeat, log chunk or report under a lease the caller no longer holds (or
        never held) is refused with StaleLease and changes nothing."""
        e = self.pick(data, lambda e: True)
        stale = [k for k in TOKEN_OFFSETS if k != "latest" or not e.running]
        token = e.lease_token + TOKEN_OFFSETS[data.draw(st.sampled_from(stale), label="token")]
        op = self.lease_call(call, e, token, outcome)
        before = self.snapshot()
        with pytest.raises(errors.StaleLease):
            _write(self.conn, op)
        assert self.snapshot() == before

    @precondition(live)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """A client asks to cancel: a queued execution ends now, a running one is asked to."""
        e = self.pick(data, lambda e: not e.status.terminal)
        _write(self.conn, lambda tx: executions.request_cancel(tx, self.world.ws, e.id, self.now))
        if e.status is Status.QUEUED:
            e.finish(Status.CANCELLED, self.now, "CANCELLED")
        else:
            e.cancel_requested = True

    @precondition(ended)
    @rule(data=st.data())
    def cancel_after_the_end_is_refused(self, data: st.DataObject) -> None:
        """Cancelling a terminal execution is refused and changes nothing."""
        e = self.pick(data, lambda e: e.status.terminal)
        before = self.snapshot()
        with pytest.raises(errors.ExecutionFinished):
            _write(
                self.conn, lambda tx: executions.request_cancel(tx, self.world.ws, e.id, self.now)
            )
        assert self.snapshot() == before

    @precondition(live)
    @rule(ms=st.integers(0, MAX_CLOCK_STEP_MS))
    def wait(self, ms: int) -> None:
        """Time passes."""
        self.now += timedelta(milliseconds=ms)

    @precondition(live)
    @rule(data=st.data(), nudge_ms=st.sampled_from([-1, 0, 1]))
    def wait_until_deadline(self, data: st.DataObject, nudge_ms: int) -> None:
        """Jump to just before, at or just after a lease expiry or a retry's due time."""
        deadlines = sorted(
            {e.lease_expires_at for e in self.model.values() if e.lease_expires_at}
            | {e.run_after for e in self.model.values() if e.status is Status.QUEUED}
        )
        at = data.draw(st.sampled_from(deadlines), label="deadline")
        self.now = max(self.now, at + timedelta(milliseconds=nudge_ms))

    @precondition(leased)
    @rule(data=st.data(), nudge_ms=st.sampled_from([-1, 0, 1, 5_000]))
    def runtime_vanishes(self, data: st.DataObject, nudge_ms: int) -> None:
        """A runtime stops heartbeating: time runs to about its lease's expiry, then the
        sweeper runs (an instant early or right at the expiry, it must not reclaim)."""
        e = self.pick(data, lambda e: e.running)
        assert e.lease_expires_at is not None
        self.now = max(self.now, e.lease_expires_at + timedelta(milliseconds=nudge_ms))
        self.sweep()

    @precondition(leased)
    @rule()
    def sweep(self) -> None:
        """The sweeper ends every lease that expired before now."""
        lost = [
            e
            for e in self.model.values()
            if e.running and e.lease_expires_at is not None and e.lease_expires_at < self.now
        ]
        swept = _write(self.conn, lambda tx: leases.reclaim_expired(tx, self.now))
        for e in lost:
            e.end_attempt(Status.FAILED, self.now, "RUNTIME_LOST", reported=False)
        assert dict(swept) == {e.id: e.status for e in lost}
        assert len(swept) == len(lost)

    # -- invariants

    @invariant()
    def store_matches_model(self) -> None:
        """Every stored execution is as the model says, and the invariants hold."""
        snap = self.snapshot()
        assert set(snap.rows) == set(self.model)
        for eid, row in snap.rows.items():
            e = self.model[eid]
            runtime_id = None if e.runtime is None else self.world.runtime_ids[e.runtime]
            assert row["status"] == e.status.value, eid
            assert row["attempt"] == e.attempt, eid
            assert row["lease_token"] == e.lease_token, eid
            assert row["runtime_id"] == runtime_id, eid
            assert row["lease_expires_at"] == e.lease_expires_at, eid
            assert row["cancel_requested"] == e.cancel_requested, eid
            assert row["started_at"] == e.started_at, eid
            assert row["finished_at"] == e.finished_at, eid
            assert row["error_code"] == e.error_code, eid
            assert row["result"] == e.result, eid
            assert snap.logs.get(eid, 0) == e.logs, eid
            if e.status is Status.QUEUED:
                assert row["run_after"] == e.run_after, eid
        self.check_leases(snap)
        self.check_endings(snap)

    def check_leases(self, snap: Snapshot) -> None:
        """Tokens only grow; a running execution has one holder; limits hold.

        One holder: the row names the runtime of the latest claim, a claim never
        hands out a running execution (`claim`), and only the latest token is
        accepted (`stale_lease_is_refused`).
        """
        for eid, row in snap.rows.items():
            assert row["lease_token"] >= self.highest_token.get(eid, 0), "a lease token went back"
            self.highest_token[eid] = row["lease_token"]
            if row["status"] == Status.RUNNING.value:
                assert row["runtime_id"] is not None and row["lease_expires_at"] is not None
        if self.limit is not None:
            limited = self.world.deployments[LIMITED].id
            running = [
                r
                for r in snap.rows.values()
                if r["deployment_id"] == limited and r["status"] == Status.RUNNING.value
            ]
            assert len(running) <= self.limit

    def check_endings(self, snap: Snapshot) -> None:
        """Terminal rows never change; an execution asked to cancel is never retried."""
        for eid, row in snap.rows.items():
            if eid in self.terminal_rows:
                assert row == self.terminal_rows[eid], f"terminal execution {eid} changed"
            elif Status(row["status"]).terminal:
                self.terminal_rows[eid] = row
            if row["cancel_requested"]:
                attempt = self.attempt_at_cancel.setdefault(eid, row["attempt"])
                assert row["attempt"] == attempt, "retried after a cancel request"
                assert row["status"] != Status.QUEUED.value


@pytest.fixture
def world(backend: str, tmp_path: Path) -> Iterator[World]:
    """The shared rows of every example, on the parametrized backend."""
    with isolated_engine(backend, tmp_path) as engine, engine.connect() as conn:
        # Durability is not on trial here: commits skip the fsync, for more steps per second.
        if backend == "sqlite":  # outside a transaction, so on the driver's connection
            conn.connection.driver_connection.execute("PRAGMA synchronous=OFF")  # type: ignore[union-attr]
        else:
            with conn.begin():
                conn.exec_driver_sql("SET synchronous_commit = off")
        yield World.install(conn)


def test_store_follows_the_execution_model(world: World) -> None:
    class OnThisBackend(StoreModel):
        def __init__(self) -> None:
            super().__init__(world)

    run_state_machine_as_test(OnThisBackend, settings=_profile())
