"""The execution listing's named filters at their edges, on SQLite and PostgreSQL: a
time range by its exact id bounds, names looked up first, plans that walk the id order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from runplane.domain.states import Status
from runplane.store import listing
from tests.conftest import isolated_engine
from tests.integration.rows import Rows

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def listed(engine: Engine, ws: str, **kwargs: Any) -> list[str]:
    """Every id the listing gives, page by page (3 a page)."""
    out: list[str] = []
    cursor = None
    while True:
        with engine.connect() as conn:
            page = listing.list_executions(conn, ws, cursor=cursor, limit=3, **kwargs)
        out += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return out


@pytest.mark.parametrize("probe_rows", [listing.RANGE_PROBE_ROWS, 2])
def test_a_time_range_lists_exactly_its_executions_whatever_the_ids_say(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, probe_rows: int
) -> None:
    # Creation times out of id order (a clock set back, replicas' skewed clocks): the
    # id bounds of a range hold rows outside it, which must not be listed.
    monkeypatch.setattr(listing, "RANGE_PROBE_ROWS", probe_rows)  # 2: the wide path
    w = Rows(engine, T0)
    hours = [5, 1, 6, 2, 7, 3, 8, 4, 9, 0]
    ids = [w.add(T0 + timedelta(hours=h)) for h in hours]
    in_range = listed(
        engine, w.ws, since=T0 + timedelta(hours=3), until=T0 + timedelta(hours=6, minutes=1)
    )
    assert in_range == [ids[7], ids[5], ids[2], ids[0]]  # hours 4, 3, 6, 5: newest id first
    assert listed(engine, w.ws, since=T0 + timedelta(hours=8)) == [ids[8], ids[6]]
    oldest_first = listed(
        engine,
        w.ws,
        until=T0 + timedelta(hours=2, minutes=1),
        newest_first=False,
        statuses=[Status.SUCCEEDED],
    )
    assert oldest_first == [ids[1], ids[3], ids[9]]
    assert listed(engine, w.ws, since=T0 + timedelta(days=1)) == []


def test_names_that_do_not_exist_list_nothing(engine: Engine) -> None:
    w = Rows(engine, T0)
    w.add(T0)
    assert listed(engine, w.ws, process_name="nope") == []
    assert listed(engine, w.ws, environment_name="nope") == []
    other = Rows(engine, T0, workspace="other")
    assert listed(engine, other.ws, process_name="bot") == []


def test_process_environment_and_status_filter_together(engine: Engine) -> None:
    w = Rows(engine, T0)
    made: dict[tuple[str, str, Status], list[str]] = {}
    for i in range(24):
        key = (("bot", "etl")[i % 2], ("production", "sandbox")[i // 2 % 2], Status.SUCCEEDED)
        if i % 3 == 0:
            key = (key[0], key[1], Status.FAILED)
        made.setdefault(key, []).append(
            w.add(T0 + timedelta(minutes=i), key[2], process=key[0], environment=key[1])
        )
    for (process, environment, status), ids in made.items():
        got = listed(
            engine, w.ws, process_name=process, environment_name=environment, statuses=[status]
        )
        assert got == list(reversed(ids)), (process, environment, status)
    bot_ids = [i for (p, _, _), ids in made.items() if p == "bot" for i in ids]
    assert listed(engine, w.ws, process_name="bot") == sorted(bot_ids, reverse=True)


def test_on_sqlite_filtered_pages_walk_the_id_order_without_sorting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's planner runs without statistics here, as in a runplane installation.
    monkeypatch.setattr(listing, "RANGE_PROBE_ROWS", 10)  # 30 days: wide; 5 minutes: bounded
    with isolated_engine("sqlite", tmp_path) as engine:
        plans = _plans(engine)
    assert len(plans) == 4
    for plan in plans:
        assert "TEMP B-TREE" not in plan, plan
    assert "ix_executions_process_id_id" in plans[3], plans[3]


def _plans(engine: Engine) -> list[str]:
    w = Rows(engine, T0)
    for i in range(30):
        w.add(T0 + timedelta(minutes=i), (Status.SUCCEEDED, Status.FAILED)[i % 2])
    plans: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "ORDER BY executions.id" in statement:
            rows = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, params)
            plans.append(" | ".join(r[-1] for r in rows))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        for kwargs in (
            {"statuses": [Status.SUCCEEDED], "environment_name": "production"},
            {"since": T0, "until": T0 + timedelta(days=30)},
            {"since": T0, "until": T0 + timedelta(minutes=5)},
            {"process_name": "bot", "statuses": [Status.FAILED]},
        ):
            with engine.connect() as conn:
                listing.list_executions(conn, w.ws, limit=5, **kwargs)  # type: ignore[arg-type]
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return plans
