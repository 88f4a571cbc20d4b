"""Reports, computed by the database, on real SQLite and real PostgreSQL: counts,
success rates, nearest-rank percentiles, zero-filled buckets, filters, visibility."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal, Scope
from runplane.domain.reports import Report, nearest_rank
from runplane.domain.states import Status
from runplane.service import reports
from runplane.service.context import Context
from runplane.settings import Settings
from runplane.store.database import Database
from tests.integration.rows import Rows

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
SINCE_24H = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # the 24 h period ends with 12:00-13:00
UNTIL_24H = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
ms = lambda n: timedelta(milliseconds=n)  # noqa: E731


def reader(ws: str, **limits: Any) -> Principal:
    """A credential of the workspace with executions:read (and `limits`)."""
    return Principal(
        workspace_id=ws,
        credential_id="c",
        kind=CredentialKind.API_TOKEN,
        name="reader",
        scopes=frozenset({Scope.EXECUTIONS_READ}),
        **limits,
    )


def report(engine: Engine, tmp_path: Path, who: Principal, **kwargs: Any) -> Report:
    """service.reports.report on a Database that uses the test's engine."""

    async def go() -> Report:
        db = Database(engine.url.render_as_string(hide_password=False))
        db.engine.dispose()
        db.engine = db.read_engine = engine
        ctx = Context(db=db, settings=Settings(data_dir=tmp_path), clock=lambda: NOW)
        try:
            return await reports.report(ctx, who, **kwargs)
        finally:
            await db.close()

    return asyncio.run(go())


def row_of(rep: Report, process: str, environment: str) -> Any:
    (found,) = [r for r in rep.rows if (r.process, r.environment) == (process, environment)]
    return found


@pytest.fixture
def world(engine: Engine) -> Rows:
    """bot/production: every status, ten durations 100..1000 ms; bot/sandbox: one failure
    of 50 ms; etl/production: two queued; etl/sandbox: nothing. Around them, executions
    just outside the period and in another workspace."""
    w = Rows(engine, SINCE_24H - timedelta(days=40))
    at = iter(SINCE_24H + timedelta(minutes=7 * i) for i in range(100))
    for d in (100, 200, 300, 400, 500, 600):
        w.add(next(at), Status.SUCCEEDED, duration=ms(d))
    w.add(next(at), Status.FAILED, duration=ms(700))
    w.add(next(at), Status.FAILED, duration=ms(800))
    w.add(next(at), Status.TIMED_OUT, duration=ms(900))
    w.add(next(at), Status.CANCELLED, duration=ms(1000))  # cancelled while running
    w.add(next(at), Status.CANCELLED)  # cancelled while queued: no duration
    w.add(next(at), Status.QUEUED)
    w.add(next(at), Status.RUNNING)
    w.add(next(at), Status.FAILED, environment="sandbox", duration=ms(50))
    w.add(next(at), Status.QUEUED, process="etl")
    w.add(NOW, Status.QUEUED, process="etl")
    w.add(SINCE_24H - timedelta(microseconds=1), Status.SUCCEEDED, duration=ms(1))
    w.add(UNTIL_24H, Status.SUCCEEDED, duration=ms(1))
    other = Rows(engine, SINCE_24H, workspace="other")
    other.add(NOW, Status.SUCCEEDED, duration=ms(5))
    return w


def test_a_report_counts_rates_and_durations_per_process_and_environment(
    world: Rows, engine: Engine, tmp_path: Path
) -> None:
    rep = report(engine, tmp_path, reader(world.ws), period="24h")
    assert (rep.period, rep.since, rep.until, rep.bucket_seconds) == (
        "24h",
        SINCE_24H,
        UNTIL_24H,
        3600,
    )
    assert [(r.process, r.environment) for r in rep.rows] == [
        ("bot", "production"),
        ("bot", "sandbox"),
        ("etl", "production"),
    ]
    bot = row_of(rep, "bot", "production")
    assert bot.counts == {
        "queued": 1,
        "running": 1,
        "succeeded": 6,
        "failed": 2,
        "timed_out": 1,
        "cancelled": 2,
    }
    assert bot.total == 13
    assert bot.success_rate == pytest.approx(6 / 11)
    assert (bot.p50_ms, bot.p95_ms) == (500, 1000)  # ranks 5 and 10 of ten durations
    sandbox = row_of(rep, "bot", "sandbox")
    assert (sandbox.total, sandbox.success_rate, sandbox.p50_ms, sandbox.p95_ms) == (
        1,
        0.0,
        50,
        50,
    )
    etl = row_of(rep, "etl", "production")
    assert (etl.counts["queued"], etl.total, etl.success_rate, etl.p50_ms) == (2, 2, None, None)


def test_the_series_has_every_bucket_in_order_zero_filled(
    world: Rows, engine: Engine, tmp_path: Path
) -> None:
    rep = report(engine, tmp_path, reader(world.ws), period="24h")
    assert [p.start for p in rep.series] == [SINCE_24H + timedelta(hours=i) for i in range(24)]
    assert sum(sum(p.counts.values()) for p in rep.series) == sum(r.total for r in rep.rows)
    # every 7 minutes from SINCE: nine in the first hour, six in the second, then
    # nothing until NOW's hour
    assert rep.series[0].counts == {
        "queued": 0,
        "running": 0,
        "succeeded": 6,
        "failed": 2,
        "timed_out": 1,
        "cancelled": 0,
    }
    assert rep.series[1].counts == {
        "queued": 2,
        "running": 1,
        "succeeded": 0,
        "failed": 1,
        "timed_out": 0,
        "cancelled": 2,
    }
    assert all(sum(p.counts.values()) == 0 for p in rep.series[2:23])
    assert rep.series[23].counts["queued"] == 1  # created at NOW, 12:30


def test_buckets_split_exactly_at_their_edges(engine: Engine, tmp_path: Path) -> None:
    w = Rows(engine, SINCE_24H)
    hour = timedelta(hours=1)
    for at in (SINCE_24H, SINCE_24H + hour - timedelta(microseconds=1)):
        w.add(at, Status.SUCCEEDED)
    w.add(SINCE_24H + hour, Status.FAILED)
    w.add(UNTIL_24H - timedelta(microseconds=1), Status.QUEUED)
    rep = report(engine, tmp_path, reader(w.ws), period="24h")
    assert rep.series[0].counts["succeeded"] == 2
    assert rep.series[1].counts["failed"] == 1
    assert rep.series[23].counts["queued"] == 1
    assert sum(sum(p.counts.values()) for p in rep.series) == 4


@pytest.mark.parametrize(
    ("period", "since", "until", "bucket_hours", "buckets"),
    [
        ("7d", datetime(2026, 3, 3, 18, tzinfo=UTC), datetime(2026, 3, 10, 18, tzinfo=UTC), 6, 28),
        ("30d", datetime(2026, 2, 9, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC), 24, 30),
    ],
)
def test_longer_periods_end_with_the_bucket_holding_now(
    world: Rows,
    engine: Engine,
    tmp_path: Path,
    period: str,
    since: datetime,
    until: datetime,
    bucket_hours: int,
    buckets: int,
) -> None:
    rep = report(engine, tmp_path, reader(world.ws), period=period)
    assert (rep.since, rep.until, rep.bucket_seconds) == (since, until, bucket_hours * 3600)
    step = timedelta(hours=bucket_hours)
    assert [p.start for p in rep.series] == [since + i * step for i in range(buckets)]
    # both neighbours of the 24 h period are inside these longer ones
    assert row_of(rep, "bot", "production").total == 15
    assert sum(sum(p.counts.values()) for p in rep.series) == 18


def test_durations_are_exact_to_the_millisecond_on_both_backends(
    engine: Engine, tmp_path: Path
) -> None:
    w = Rows(engine, SINCE_24H)
    # started at .999999 s: the end crosses into the next seconds
    created = SINCE_24H + timedelta(minutes=5, microseconds=999_999)
    w.add(created, Status.SUCCEEDED, duration=timedelta(microseconds=1_234_567))
    w.add(created, Status.SUCCEEDED, duration=timedelta(microseconds=999))
    bot = row_of(report(engine, tmp_path, reader(w.ws), period="24h"), "bot", "production")
    assert (bot.p50_ms, bot.p95_ms) == (0, 1234)  # truncated, as an execution's durationMs


def test_percentiles_are_nearest_rank_of_the_durations(engine: Engine, tmp_path: Path) -> None:
    w = Rows(engine, SINCE_24H)
    rnd = random.Random(3)
    durations = [rnd.randint(0, 100_000) for _ in range(41)]
    for i, d in enumerate(durations):
        w.add(SINCE_24H + timedelta(seconds=i), Status.SUCCEEDED, duration=ms(d))
    ordered = sorted(durations)
    bot = row_of(report(engine, tmp_path, reader(w.ws), period="24h"), "bot", "production")
    assert bot.p50_ms == ordered[nearest_rank(50, 41) - 1]
    assert bot.p95_ms == ordered[nearest_rank(95, 41) - 1]


def test_a_report_narrows_to_a_process_and_an_environment(
    world: Rows, engine: Engine, tmp_path: Path
) -> None:
    who = reader(world.ws)
    etl = report(engine, tmp_path, who, period="24h", process="etl")
    assert [(r.process, r.environment) for r in etl.rows] == [("etl", "production")]
    assert sum(sum(p.counts.values()) for p in etl.series) == 2
    sandbox = report(engine, tmp_path, who, period="24h", environment="sandbox")
    assert [(r.process, r.environment) for r in sandbox.rows] == [("bot", "sandbox")]
    assert sum(sum(p.counts.values()) for p in sandbox.series) == 1
    both = report(engine, tmp_path, who, period="24h", process="bot", environment="production")
    assert [r.total for r in both.rows] == [13]
    for unknown in ({"process": "nope"}, {"environment": "nope"}):
        empty = report(engine, tmp_path, who, period="24h", **unknown)
        assert empty.rows == [] and len(empty.series) == 24
        assert all(sum(p.counts.values()) == 0 for p in empty.series)


def test_a_report_shows_only_what_the_credential_may_see(
    world: Rows, engine: Engine, tmp_path: Path
) -> None:
    etl_id, sandbox_id = world.id_of("etl", "sandbox")
    in_sandbox = report(
        engine, tmp_path, reader(world.ws, environment_ids=frozenset({sandbox_id})), period="24h"
    )
    assert [(r.process, r.environment) for r in in_sandbox.rows] == [("bot", "sandbox")]
    assert sum(sum(p.counts.values()) for p in in_sandbox.series) == 1
    etl_only = reader(world.ws, process_id=etl_id)
    rep = report(engine, tmp_path, etl_only, period="24h")
    assert [r.process for r in rep.rows] == ["etl"]
    assert report(engine, tmp_path, etl_only, period="24h", process="bot").rows == []
    other_ws = report(engine, tmp_path, reader("another-workspace"), period="24h")
    assert other_ws.rows == []


def test_a_report_needs_executions_read_and_a_known_period(
    world: Rows, engine: Engine, tmp_path: Path
) -> None:
    starter = Principal(
        workspace_id=world.ws,
        credential_id="s",
        kind=CredentialKind.PROCESS_SECRET,
        name="starter",
        scopes=frozenset({Scope.EXECUTIONS_START}),
    )
    with pytest.raises(errors.Forbidden):
        report(engine, tmp_path, starter, period="24h")
    with pytest.raises(errors.InvalidRequest) as bad:
        report(engine, tmp_path, reader(world.ws), period="1w")
    assert [(p["name"], p["code"]) for p in bad.value.problems] == [("period", "invalid_period")]


def test_report_queries_are_served_by_the_workspace_created_at_index(
    world: Rows, engine: Engine, tmp_path: Path
) -> None:
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "executions" in statement:
            statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        report(engine, tmp_path, reader(world.ws), period="30d")
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    report_statements = [s for s in statements if "created_at" in s[0]]
    assert len(report_statements) == 2  # counts (with buckets) and percentiles
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))  # a tiny table: ask for an index
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        for statement, params in report_statements:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(explain + statement, params))
            assert "ix_executions_workspace_id_created_at_id" in plan, plan
