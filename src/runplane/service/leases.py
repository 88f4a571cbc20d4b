"""The runtime protocol: register, claim (long poll), heartbeat, log, report; and the sweeper.

The embedded runtime calls these in-process; remote runtimes will call the same
functions through HTTP routes. No path bypasses the lease: every heartbeat, log
chunk and report carries the fencing token of the claim, and a stale one is
refused (409) without changing anything.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from runplane import __version__
from runplane.domain.auth import Principal, Scope
from runplane.domain.model import Claim, Runtime
from runplane.domain.states import Status
from runplane.service.context import Context
from runplane.service.hub import wait_for
from runplane.store import catalog as catalog_store
from runplane.store import executions as store
from runplane.store import runtimes as runtime_store
from runplane.store.database import Tx

CLAIM_POLL_SECONDS = 1.0  # how often an idle claimer re-checks (retry backoffs come due)


async def register(
    ctx: Context,
    name: str,
    environment: str | None,
    slots: int,
    labels: dict[str, str] | None = None,
    version: str = __version__,
) -> Runtime:
    """Register a runtime serving `environment` (None: every environment, when embedded)."""
    now = ctx.clock()

    def op(tx: Tx) -> Runtime:
        env_id = (
            catalog_store.get_environment(tx.conn, ctx.workspace_id, environment).id
            if environment
            else None
        )
        return runtime_store.register_runtime(
            tx, ctx.workspace_id, name, env_id, slots, labels or {}, version, now
        )

    return await ctx.db.write(op)


async def list_runtimes(ctx: Context, who: Principal) -> list[Runtime]:
    """Every runtime registered in the caller's workspace."""
    who.require_any(Scope.EXECUTIONS_READ, Scope.PROCESSES_WRITE, Scope.RUNTIME)
    return await ctx.db.read(lambda c: runtime_store.list_runtimes(c, who.workspace_id))


async def claim(ctx: Context, runtime: Runtime, wait_seconds: float) -> Claim | None:
    """Lease the next claimable execution, waiting up to `wait_seconds` for one."""
    env_ids = None if runtime.environment_id is None else [runtime.environment_id]
    deadline = time.monotonic() + wait_seconds
    async with ctx.hub.work() as work:
        while True:
            now = ctx.clock()
            ttl = ctx.settings.lease_ttl_seconds

            def op(tx: Tx, now: datetime = now, ttl: float = ttl) -> Claim | None:
                return store.claim_next(tx, runtime.id, env_ids, now, ttl)

            got = await ctx.db.write(op)
            remaining = deadline - time.monotonic()
            if got is not None or remaining <= 0:
                return got
            await wait_for(work, min(remaining, CLAIM_POLL_SECONDS))


async def heartbeat(ctx: Context, execution_id: str, lease_token: int) -> tuple[datetime, bool]:
    """Extend a lease; returns (new expiry, whether a cancel was requested)."""
    now, ttl = ctx.clock(), ctx.settings.lease_ttl_seconds
    return await ctx.db.write(lambda tx: store.renew_lease(tx, execution_id, lease_token, now, ttl))


async def append_log(
    ctx: Context, execution_id: str, lease_token: int, attempt: int, text: str
) -> None:
    """Append a (masked) log chunk under a held lease."""
    now = ctx.clock()
    await ctx.db.write(
        lambda tx: store.append_log(tx, execution_id, lease_token, attempt, text, now)
    )


async def report(
    ctx: Context,
    execution_id: str,
    lease_token: int,
    outcome: Status,
    *,
    result: dict[str, Any] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Status:
    """Report how an attempt ended; returns the new status (queued when it will be retried)."""
    now = ctx.clock()
    return await ctx.db.write(
        lambda tx: store.finish(
            tx,
            execution_id,
            lease_token,
            outcome,
            now,
            result=result,
            error_code=error_code,
            error_message=error_message,
        )
    )


async def touch_runtime(ctx: Context, runtime_id: str, state: str = "online") -> None:
    """Record that a runtime is alive (or draining, or offline)."""
    now = ctx.clock()
    await ctx.db.write(lambda tx: runtime_store.touch_runtime(tx, runtime_id, now, state))


async def fetch_bundle(ctx: Context, version_id: str) -> tuple[str, bytes]:
    """(content hash, zip bytes) of a version, for a runtime that has not cached it."""
    return await ctx.db.read(lambda c: catalog_store.get_bundle(c, version_id))


async def sweep(ctx: Context) -> list[tuple[str, Status]]:
    """End expired leases: retry, cancel or fail with RUNTIME_LOST. Returns what changed."""
    now = ctx.clock()
    return await ctx.db.write(lambda tx: store.reclaim_expired(tx, now))
