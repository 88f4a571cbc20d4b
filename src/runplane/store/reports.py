"""Named store operations for reports: aggregates over the executions of a period,
computed by the database (GROUP BY, window functions), never row by row in Python.

The statements are the same Core code on SQLite and PostgreSQL. Timestamps become
exact integer microseconds on both (`store.sql.epoch_us`), so durations (truncated
to ms, as `Execution.duration_ms`) and buckets agree between backends. Both
statements filter on (workspace_id, created_at), the leading columns of the
index `ix_executions_workspace_id_created_at_id`: a period costs the executions
created in it, whatever the size of the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, select

from runplane.domain.reports import EPOCH, CreatedCount
from runplane.store.listing import named_id
from runplane.store.schema import environments, executions, processes
from runplane.store.sql import MICROS, epoch_us


@dataclass(frozen=True)
class Selection:
    """Which executions a report covers: a period of a workspace, optionally one process
    and one environment (by name), within what the credential may see."""

    workspace_id: str
    since: datetime
    until: datetime
    process: str | None = None
    environment: str | None = None
    visible_environment_ids: frozenset[str] | None = None
    visible_process_id: str | None = None


def _where(conn: Connection, sel: Selection) -> list[ColumnElement[bool]] | None:
    """The selection as conditions on `executions`; None when nothing can match."""
    ex = executions.c
    conds = [
        ex.workspace_id == sel.workspace_id,
        ex.created_at >= sel.since,
        ex.created_at < sel.until,
    ]
    if sel.visible_environment_ids is not None:
        conds.append(ex.environment_id.in_(sorted(sel.visible_environment_ids)))
    if sel.visible_process_id is not None:
        conds.append(ex.process_id == sel.visible_process_id)
    # names looked up first: each planner then sees the id (and its statistics)
    if sel.process is not None:
        process_id = named_id(conn, processes, sel.workspace_id, sel.process)
        if process_id is None:
            return None
        conds.append(ex.process_id == process_id)
    if sel.environment is not None:
        environment_id = named_id(conn, environments, sel.workspace_id, sel.environment)
        if environment_id is None:
            return None
        conds.append(ex.environment_id == environment_id)
    return conds


def created_counts(conn: Connection, sel: Selection, bucket_seconds: int) -> list[CreatedCount]:
    """Executions created in the period, counted per process, environment, status and
    bucket (its index from `since`): the rows and the chart of a report in one scan."""
    where = _where(conn, sel)
    if where is None:
        return []
    ex = executions.c
    since_us = (sel.since - EPOCH) // timedelta(microseconds=1)
    bucket = (epoch_us(ex.created_at) - since_us) // (bucket_seconds * MICROS)
    per_row = (
        select(ex.process_id, ex.environment_id, ex.status, bucket.label("bucket"))
        .where(*where)
        .subquery()
    )
    key = (per_row.c.process_id, per_row.c.environment_id, per_row.c.status, per_row.c.bucket)
    grouped = select(*key, func.count().label("n")).group_by(*key).subquery()
    rows = conn.execute(
        select(grouped, processes.c.name.label("process"), environments.c.name.label("env"))
        .join(processes, processes.c.id == grouped.c.process_id)
        .join(environments, environments.c.id == grouped.c.environment_id)
    )
    return [
        CreatedCount(
            process_id=r.process_id,
            process=r.process,
            environment_id=r.environment_id,
            environment=r.env,
            status=r.status,
            bucket=int(r.bucket),
            count=int(r.n),
        )
        for r in rows
    ]


def duration_percentiles(
    conn: Connection, sel: Selection, percentiles: tuple[int, int]
) -> dict[tuple[str, str], tuple[int | None, int | None]]:
    """Nearest-rank percentiles of the duration (ms, last attempt) of the period's
    finished executions, per (process id, environment id)."""
    where = _where(conn, sel)
    if where is None:
        return {}
    ex = executions.c
    durations = (
        select(
            ex.process_id,
            ex.environment_id,
            ((epoch_us(ex.finished_at) - epoch_us(ex.started_at)) // 1000).label("ms"),
        )
        .where(*where, ex.finished_at.is_not(None), ex.started_at.is_not(None))
        .subquery()
    )
    # The duration is computed once per row, in the subquery. Both window functions
    # share one window (the count spans the whole partition), so the rows are sorted once.
    group = (durations.c.process_id, durations.c.environment_id)
    ranked = select(
        *group,
        durations.c.ms,
        func.row_number().over(partition_by=group, order_by=durations.c.ms).label("rn"),
        func.count()
        .over(partition_by=group, order_by=durations.c.ms, rows=(None, None))
        .label("n"),
    ).subquery()
    low, high = percentiles

    def at(p: int) -> ColumnElement[Any]:
        rank = (ranked.c.n * p + 99) // 100  # domain.reports.nearest_rank, in SQL
        return func.max(case((ranked.c.rn == rank, ranked.c.ms)))

    rows = conn.execute(
        select(ranked.c.process_id, ranked.c.environment_id, at(low), at(high)).group_by(
            ranked.c.process_id, ranked.c.environment_id
        )
    )
    return {
        (r[0], r[1]): (None if r[2] is None else int(r[2]), None if r[3] is None else int(r[3]))
        for r in rows
    }
