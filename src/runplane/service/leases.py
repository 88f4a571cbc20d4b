"""The runtime protocol: register, claim (long poll), heartbeat, log, report; and the sweeper.

Leases are measured by the database's clock (`store.database.database_now`):
a claim's expiry, each heartbeat's extension and the sweeper's "expired" all
read PostgreSQL's clock, so replicas and runtimes whose clocks disagree still
agree on when a lease ends. With SQLite, the one node's clock is that clock.

The embedded runtime calls these in-process with no principal; remote runtimes
call the same functions through the HTTP routes of `api/native/runtimes.py`,
passing the caller (`who`): then the caller needs the `runtime` scope, acts in
its own workspace only (another workspace's runtimes, leases and bundles are
404) and in the environments it may see (403). No path bypasses the lease:
every heartbeat, log chunk and report carries the fencing token of the claim,
and a stale one is refused (409) without changing anything.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from runplane import __version__
from runplane.domain import errors
from runplane.domain.auth import Principal, Scope
from runplane.domain.model import Claim, Runtime
from runplane.domain.states import Status
from runplane.service import robot_runs
from runplane.service.context import Context
from runplane.service.hub import wait_for
from runplane.store import artifacts as artifact_store
from runplane.store import catalog as catalog_store
from runplane.store import executions as execution_store
from runplane.store import leases as store
from runplane.store import logs as log_store
from runplane.store import runtimes as runtime_store
from runplane.store.database import Tx, database_now

CLAIM_POLL_SECONDS = 1.0  # how often an idle claimer re-checks (retry backoffs come due)
RUNTIME_STATES = frozenset({"online", "draining", "offline"})


def _check_lease(tx: Tx, who: Principal | None, execution_id: str) -> None:
    """404 unless the execution is the caller's workspace's; 403 outside its environments."""
    if who is None:
        return
    execution = execution_store.get_execution(tx.conn, who.workspace_id, execution_id)
    if not who.sees_environment(execution.environment_id):
        raise errors.Forbidden("This credential cannot act in this execution's environment.")


async def _remote_runtime(ctx: Context, who: Principal, runtime_id: str) -> Runtime:
    """The caller's runtime `runtime_id`: 404 in another workspace, 403 outside its environment."""
    ws_id = who.workspace_id
    runtime = await ctx.db.read(lambda c: runtime_store.get_runtime(c, ws_id, runtime_id))
    if runtime.environment_id is None:
        raise errors.Forbidden("This runtime serves every environment: it runs embedded only.")
    if not who.sees_environment(runtime.environment_id):
        raise errors.Forbidden("This credential cannot act in this runtime's environment.")
    return runtime


async def register(
    ctx: Context,
    name: str,
    environment: str | None,
    slots: int,
    labels: dict[str, str] | None = None,
    version: str = __version__,
    who: Principal | None = None,
) -> Runtime:
    """Register a runtime serving `environment` (None: every environment, when embedded).

    A runtime registering again under its name takes over its registration.
    """
    now = ctx.clock()
    ws_id = ctx.workspace_id if who is None else who.workspace_id
    if who is not None:
        who.require(Scope.RUNTIME)
        if not environment:
            raise errors.InvalidRequest("A remote runtime serves one environment: name it.")

    def op(tx: Tx) -> Runtime:
        env_id = None
        if environment:
            env_id = catalog_store.get_environment(tx.conn, ws_id, environment).id
            if who is not None and not who.sees_environment(env_id):
                raise errors.Forbidden(f"This credential cannot serve environment {environment!r}.")
        if who is not None:
            # Taking over a registration is for the same runtime restarted, not for
            # moving another environment's (or the embedded) runtime away from it.
            taken = runtime_store.find_runtime(tx.conn, ws_id, name)
            if taken is not None and (
                taken.environment_id is None or not who.sees_environment(taken.environment_id)
            ):
                raise errors.RuntimeNameTaken(
                    f"The name {name!r} belongs to a runtime this credential cannot take over."
                )
        return runtime_store.register_runtime(
            tx, ws_id, name, env_id, slots, labels or {}, version, now
        )

    return await ctx.db.write(op)


async def list_runtimes(ctx: Context, who: Principal) -> list[Runtime]:
    """Every runtime registered in the caller's workspace."""
    who.require_any(Scope.EXECUTIONS_READ, Scope.PROCESSES_WRITE, Scope.RUNTIME)
    return await ctx.db.read(lambda c: runtime_store.list_runtimes(c, who.workspace_id))


async def claim(
    ctx: Context,
    runtime: Runtime,
    wait_seconds: float,
    *,
    remote: bool = False,
    claim_id: str | None = None,
) -> Claim | None:
    """Lease the next claimable execution, waiting up to `wait_seconds` for one.

    A remote runtime's long poll also ends (empty) once the runtime says it is
    draining, so a runtime shutting down is not held by its own claim, and once
    this server shuts down, so the server is not held by it either (the embedded
    runtime's claim is no request: its drain ends it). A claim
    sent again with the same `claim_id` (its answer was lost on the way) gets
    the lease it already took, while it is held, instead of a second one.
    """
    env_ids = None if runtime.environment_id is None else [runtime.environment_id]
    deadline = time.monotonic() + wait_seconds
    hub = ctx.hub
    async with hub.work() as work:
        while True:
            ttl = ctx.settings.lease_ttl_seconds
            # Nothing new since this runtime's last look found nothing left: wait for news
            # rather than look again (a claim sent again must look: it may hold a lease).
            quiet = 0.0 if claim_id is not None else hub.drained_for(runtime.id, CLAIM_POLL_SECONDS)
            got = None
            if quiet <= 0:
                news = hub.work_news
                left: list[bool] = []  # whether the committed look left nothing claimable

                def op(tx: Tx, ttl: float = ttl, left: list[bool] = left) -> Claim | None:
                    left.clear()  # a batch that failed runs its writes again
                    now = database_now(tx.conn, ctx.clock)
                    got = None
                    if claim_id is not None:  # this claim, sent again, may hold a lease
                        got = store.find_claim(tx.conn, runtime.id, claim_id)
                    if got is None:
                        got = store.claim_next(
                            tx,
                            runtime.id,
                            env_ids,
                            now,
                            ttl,
                            claim_id,
                            on_drained=lambda: left.append(True),
                        )
                    if got is not None and got.spec.get("robot"):
                        got = robot_runs.begin(tx, got, now)  # its run's ids and token
                    return got

                got = await ctx.db.write(op)
                if left:
                    hub.note_drained(runtime.id, news)
            remaining = deadline - time.monotonic()
            if got is not None or remaining <= 0:
                return got
            if remote and hub.closed:
                return None
            await wait_for(work, min(remaining, quiet if quiet > 0 else CLAIM_POLL_SECONDS))
            if remote:
                if ctx.hub.closed:
                    return None
                state = await ctx.db.read(lambda c: runtime_store.runtime_state(c, runtime.id))
                if state != "online":
                    return None


async def claim_for(
    ctx: Context,
    who: Principal,
    runtime_id: str,
    wait_seconds: float,
    claim_id: str | None = None,
) -> Claim | None:
    """A remote runtime's claim: its own runtime, in its environment (long poll)."""
    who.require(Scope.RUNTIME)
    runtime = await _remote_runtime(ctx, who, runtime_id)
    if runtime.state != "online":
        return None  # draining or offline: no new work
    wait = max(0.0, min(wait_seconds, ctx.settings.max_wait_seconds))
    return await claim(ctx, runtime, wait, remote=True, claim_id=claim_id)


async def heartbeat(
    ctx: Context, execution_id: str, lease_token: int, who: Principal | None = None
) -> tuple[datetime, bool]:
    """Extend a lease; returns (new expiry, whether a cancel was requested)."""
    if who is not None:
        who.require(Scope.RUNTIME)
    ttl = ctx.settings.lease_ttl_seconds

    def op(tx: Tx) -> tuple[datetime, bool]:
        _check_lease(tx, who, execution_id)
        now = database_now(tx.conn, ctx.clock)
        return store.renew_lease(tx, execution_id, lease_token, now, ttl)

    return await ctx.db.write(op)


async def append_log(
    ctx: Context,
    execution_id: str,
    lease_token: int,
    attempt: int,
    text: str,
    who: Principal | None = None,
) -> None:
    """Append a (masked) log chunk under a held lease."""
    if who is not None:
        who.require(Scope.RUNTIME)
    now = ctx.clock()

    def op(tx: Tx) -> None:
        _check_lease(tx, who, execution_id)
        log_store.append_log(tx, execution_id, lease_token, attempt, text, now)

    await ctx.db.write(op)


MAX_ARTIFACT_NAME_CHARS = 500


async def put_artifact(
    ctx: Context,
    execution_id: str,
    lease_token: int,
    attempt: int,
    name: str,
    content: bytes,
    who: Principal | None = None,
) -> None:
    """Keep a file the attempt left in its artifacts folder, under a held lease."""
    if who is not None:
        who.require(Scope.RUNTIME)
    parts = name.split("/")
    if not (0 < len(name) <= MAX_ARTIFACT_NAME_CHARS) or any(
        p in ("", ".", "..") or "\x00" in p or "\\" in p for p in parts
    ):
        raise errors.InvalidRequest(
            "An artifact's name is a relative path inside its folder.",
            problems=[{"name": "name", "code": "invalid", "detail": "a relative path"}],
        )
    now = ctx.clock()

    def op(tx: Tx) -> None:
        _check_lease(tx, who, execution_id)
        store.leased_row(tx.conn, execution_id, lease_token)
        artifact_store.put(tx, execution_id, attempt, name, content, now)

    await ctx.db.write(op)


async def report(
    ctx: Context,
    execution_id: str,
    lease_token: int,
    outcome: Status,
    *,
    result: dict[str, Any] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    log: tuple[int, str] | None = None,
    who: Principal | None = None,
    robot_run: bool = False,
) -> Status:
    """Report how an attempt ended; returns the new status (queued when it will be retried).

    `robot_run`: the attempt was a robot's run, whose work items decide the end too
    (service/robot_runs.py).

    `log` (attempt, text) is the output not yet appended: stored in the same
    transaction, so an attempt's end costs one write, and the log is whole when
    the execution is seen to end.
    """
    if who is not None:
        who.require(Scope.RUNTIME)
    now = ctx.clock()

    def op(tx: Tx) -> Status:
        _check_lease(tx, who, execution_id)
        if log is not None and log[1]:
            log_store.append_log(tx, execution_id, lease_token, log[0], log[1], now)
        end, value, code, message = outcome, result, error_code, error_message
        if robot_run:
            end, value, code, message = robot_runs.settle(
                tx, execution_id, outcome, result, error_code, error_message, now
            )
        return store.finish(
            tx,
            execution_id,
            lease_token,
            end,
            database_now(tx.conn, ctx.clock),
            result=value,
            error_code=code,
            error_message=message,
        )

    return await ctx.db.write(op)


async def release(
    ctx: Context, execution_id: str, lease_token: int, who: Principal | None = None
) -> Status:
    """A runtime hands a lease back after killing the attempt (its drain timeout passed):
    re-queued as the next attempt when retries remain, else failed with RUNTIME_LOST, as
    when a lease expires, but at once."""
    if who is not None:
        who.require(Scope.RUNTIME)

    def op(tx: Tx) -> Status:
        _check_lease(tx, who, execution_id)
        return store.release(tx, execution_id, lease_token, database_now(tx.conn, ctx.clock))

    return await ctx.db.write(op)


async def touch_runtime(
    ctx: Context, runtime_id: str, state: str = "online", who: Principal | None = None
) -> None:
    """Record that a runtime is alive (or draining, or offline)."""
    if state not in RUNTIME_STATES:
        raise errors.InvalidRequest(f"A runtime's state is one of {sorted(RUNTIME_STATES)}.")
    if who is not None:
        who.require(Scope.RUNTIME)
        await _remote_runtime(ctx, who, runtime_id)
    now = ctx.clock()
    await ctx.db.write(lambda tx: runtime_store.touch_runtime(tx, runtime_id, now, state))
    if state != "online":
        ctx.hub.wake_claimers()  # its open claim here ends now, not at its next re-check


async def fetch_bundle(
    ctx: Context, version_id: str, who: Principal | None = None
) -> tuple[str, bytes]:
    """(content hash, zip bytes) of a version, for a runtime that has not cached it."""
    if who is None:
        return await ctx.db.read(lambda c: catalog_store.get_bundle(c, version_id))
    who.require(Scope.RUNTIME)
    ws_id = who.workspace_id
    return await ctx.db.read(lambda c: catalog_store.get_bundle(c, version_id, ws_id))


async def deployed_dependencies(
    ctx: Context, runtime_id: str, names: list[str] | None, who: Principal | None = None
) -> list[dict[str, Any]]:
    """The dependencies of the versions of `names` (None: of every process) deployed where
    the runtime runs work (``runplane runtime --prepare``); NotFound names each process
    not deployed there."""
    if who is not None:
        who.require(Scope.RUNTIME)
        runtime = await _remote_runtime(ctx, who, runtime_id)
    else:
        runtime = await ctx.db.read(
            lambda c: runtime_store.get_runtime(c, ctx.workspace_id, runtime_id)
        )
    ws_id = runtime.workspace_id

    env_id = runtime.environment_id  # None: the embedded runtime, every environment
    found, missing = await ctx.db.read(
        lambda c: catalog_store.deployed_specs(c, ws_id, env_id, names)
    )
    if missing:
        raise errors.NotFound(
            f"Not deployed to this runtime's environment: {', '.join(missing)}.",
            problems=[
                {"name": name, "code": "not_deployed", "detail": "no deployment here"}
                for name in missing
            ],
        )
    return [
        {"process": name, "version": number, "dependencies": spec.get("dependencies")}
        for name, number, spec in found
    ]


async def sweep(ctx: Context) -> list[tuple[str, Status]]:
    """End expired leases: retry, cancel or fail with RUNTIME_LOST. Returns what changed."""
    return await ctx.db.write(
        lambda tx: store.reclaim_expired(tx, database_now(tx.conn, ctx.clock))
    )
