"""Use case: execution reports (the console's Reports page), aggregated by the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runplane.domain import reports
from runplane.domain.auth import Principal, Scope
from runplane.domain.reports import Report
from runplane.service.context import Context
from runplane.store import reports as store


async def report(
    ctx: Context,
    who: Principal,
    *,
    period: str,
    process: str | None = None,
    environment: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Counts by status, success rate and p50/p95 durations per process and environment,
    and executions created per bucket, over `period` (24h, 7d, 30d) ending now; limited
    to what the credential may see, and to `process` / `environment` when given."""
    who.require(Scope.EXECUTIONS_READ)
    chosen = reports.period(period)
    since, until = chosen.window(now or ctx.clock())
    sel = store.Selection(
        workspace_id=who.workspace_id,
        since=since,
        until=until,
        process=process,
        environment=environment,
        visible_environment_ids=who.environment_ids,
        visible_process_id=who.process_id,
    )

    def op(conn: Any) -> Report:
        return reports.assemble(
            chosen,
            since,
            until,
            store.created_counts(conn, sel, chosen.bucket_seconds),
            store.duration_percentiles(conn, sel, reports.PERCENTILES),
        )

    return await ctx.db.read(op)
