"""The execution listing: keyset pages over the time-ordered id, and its named filters
as conditions its indexes can serve.

The listing walks executions in id order (UUIDv7: newest first) and stops after
one page, so a filter is cheap when the walk meets its rows early and costly
when it must pass many rows that do not match. What keeps each filter cheap
with 100,000 executions (bench/executions_list.py, docs/benchmarks.md):

- process and environment names are looked up first and compared as ids, so
  each planner sees a value: the (process_id, id) index walks one process's
  executions in order (SQLite, which runs without statistics, is kept off the
  equally shaped (workspace_id, id) index), and PostgreSQL weighs a rare one
  by its statistics;
- a time range is turned into the exact lowest and highest id it holds, when
  it holds at most RANGE_PROBE_ROWS (one bounded look in the
  (workspace_id, created_at, id) index), so an old range is walked from its
  newest row instead of past every newer one; a wider range is walked as is;
- status and created_at conditions never pick an index on SQLite (`unindexed`):
  its planner would take the claim index (status, environment_id, …) or the
  created_at index and then sort every matching row, hundreds of ms for
  `status=succeeded&environment=production` or a 30-day range.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Table, func, select

from runplane.domain import errors
from runplane.domain.filters import Filter
from runplane.domain.model import Page
from runplane.domain.states import Status
from runplane.store.executions import SELECT_EXECUTIONS, execution_from_row
from runplane.store.filters import where
from runplane.store.schema import environments, executions, processes
from runplane.store.sql import unindexed

RANGE_PROBE_ROWS = 5000
MAX_LIST_LIMIT = 500


def named_id(conn: Connection, table: Table, ws_id: str, name: str) -> str | None:
    """The id of the process or environment (`table`) with this name in the workspace."""
    found = conn.scalar(
        select(table.c.id).where(table.c.workspace_id == ws_id, table.c.name == name)
    )
    return None if found is None else str(found)


def created_between(
    conn: Connection, ws_id: str, since: datetime | None, until: datetime | None
) -> tuple[str, str] | tuple[()] | None:
    """The lowest and highest id of the executions created in [since, until) when there
    are at most RANGE_PROBE_ROWS (`()` when there are none); None when there are more."""
    probe = select(executions.c.id).where(executions.c.workspace_id == ws_id)
    if since is not None:
        probe = probe.where(executions.c.created_at >= since)
    if until is not None:
        probe = probe.where(executions.c.created_at < until)
    found = probe.limit(RANGE_PROBE_ROWS + 1).subquery()
    n, low, high = conn.execute(
        select(func.count(), func.min(found.c.id), func.max(found.c.id))
    ).one()
    if n > RANGE_PROBE_ROWS:
        return None
    return () if n == 0 else (low, high)


def conditions(
    conn: Connection,
    ws_id: str,
    *,
    process_name: str | None = None,
    statuses: list[Status] | None = None,
    environment_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ColumnElement[bool]] | None:
    """Conditions on `executions` for the workspace and the listing's named filters;
    None when no execution can match (an unknown process or environment, an empty
    time range)."""
    workspace: ColumnElement[Any] = executions.c.workspace_id
    out: list[ColumnElement[bool]] = []
    if process_name is not None:
        process_id = named_id(conn, processes, ws_id, process_name)
        if process_id is None:
            return None
        out.append(executions.c.process_id == process_id)
        workspace = unindexed(workspace)  # walk (process_id, id), not (workspace_id, id)
    out.append(workspace == ws_id)
    if environment_name is not None:
        environment_id = named_id(conn, environments, ws_id, environment_name)
        if environment_id is None:
            return None
        out.append(executions.c.environment_id == environment_id)
    if statuses:
        out.append(unindexed(executions.c.status).in_([s.value for s in statuses]))
    if since is not None or until is not None:
        bounds = created_between(conn, ws_id, since, until)
        if bounds == ():
            return None
        if bounds is not None:
            out.append(executions.c.id.between(*bounds))
        created: ColumnElement[Any] = unindexed(executions.c.created_at)
        if since is not None:
            out.append(created >= since)
        if until is not None:
            out.append(created < until)
    return out


def encode_cursor(execution_id: str) -> str:
    """A URL-safe cursor that resumes a listing after `execution_id`."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": execution_id})).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The execution id a cursor resumes after; InvalidRequest when it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = orjson.loads(raw)["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (ValueError, TypeError, KeyError) as exc:
        raise errors.InvalidRequest(
            "The cursor is not valid.",
            problems=[{"name": "cursor", "code": "invalid_cursor", "detail": "Not a cursor."}],
        ) from exc


def list_executions(
    conn: Connection,
    ws_id: str,
    *,
    process_name: str | None = None,
    statuses: list[Status] | None = None,
    environment_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    matching: Filter | None = None,
    cursor: str | None = None,
    limit: int = 50,
    newest_first: bool = True,
    visible_environment_ids: frozenset[str] | None = None,
    visible_process_id: str | None = None,
) -> Page:
    """Executions, newest (or oldest) first, keyset-paginated on the time-ordered id;
    limited to the given environments and process when a credential is limited to them.
    `matching` is a filter on top of the named ones (this module's docstring: how those
    stay fast)."""
    limit = max(1, min(limit, MAX_LIST_LIMIT))
    named = conditions(
        conn,
        ws_id,
        process_name=process_name,
        statuses=statuses,
        environment_name=environment_name,
        since=since,
        until=until,
    )
    if named is None:
        return Page(items=[], next_cursor=None)
    q = SELECT_EXECUTIONS.where(*named)
    if visible_environment_ids is not None:
        q = q.where(executions.c.environment_id.in_(sorted(visible_environment_ids)))
    if visible_process_id is not None:
        q = q.where(executions.c.process_id == visible_process_id)
    if matching is not None:
        q = q.where(where(matching))
    if cursor is not None:
        after = decode_cursor(cursor)
        q = q.where(executions.c.id < after if newest_first else executions.c.id > after)
    order = executions.c.id.desc() if newest_first else executions.c.id.asc()
    rows = conn.execute(q.order_by(order).limit(limit + 1)).all()
    items = [execution_from_row(r) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)
