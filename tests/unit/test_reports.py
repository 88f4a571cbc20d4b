"""Report periods, their buckets, nearest ranks and the assembly of aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from runplane.domain import errors
from runplane.domain.reports import (
    PERIODS,
    CreatedCount,
    assemble,
    nearest_rank,
    period,
    success_rate,
)


@pytest.mark.parametrize(
    ("name", "now", "since", "until"),
    [
        ("24h", datetime(2026, 3, 10, 12, 30), datetime(2026, 3, 9, 13), datetime(2026, 3, 10, 13)),
        ("24h", datetime(2026, 3, 10, 13), datetime(2026, 3, 9, 14), datetime(2026, 3, 10, 14)),
        ("7d", datetime(2026, 3, 10, 5, 59), datetime(2026, 3, 3, 6), datetime(2026, 3, 10, 6)),
        ("30d", datetime(2026, 3, 10, 23, 59), datetime(2026, 2, 9), datetime(2026, 3, 11)),
    ],
)
def test_a_period_ends_with_the_utc_aligned_bucket_holding_now(
    name: str, now: datetime, since: datetime, until: datetime
) -> None:
    utc = lambda d: d.replace(tzinfo=UTC)  # noqa: E731
    assert period(name).window(utc(now)) == (utc(since), utc(until))


def test_buckets_are_aligned_in_utc_whatever_the_zone_of_now() -> None:
    paris = timezone(timedelta(hours=1))
    now = datetime(2026, 3, 10, 13, 30, tzinfo=paris)  # 12:30 UTC
    assert PERIODS["24h"].window(now)[1] == datetime(2026, 3, 10, 13, tzinfo=UTC)


def test_periods_have_whole_buckets() -> None:
    assert {n: (p.bucket_seconds, p.buckets) for n, p in PERIODS.items()} == {
        "24h": (3600, 24),
        "7d": (6 * 3600, 28),
        "30d": (86400, 30),
    }


def test_an_unknown_period_is_a_problem_naming_period() -> None:
    with pytest.raises(errors.InvalidRequest) as bad:
        period("2h")
    assert bad.value.status == 422
    assert bad.value.problems == [
        {"name": "period", "in": "query", "code": "invalid_period", "detail": "24h, 7d, 30d"}
    ]


@pytest.mark.parametrize(
    ("p", "n", "rank"),
    [(50, 1, 1), (95, 1, 1), (50, 10, 5), (95, 10, 10), (95, 20, 19), (50, 3, 2)],
)
def test_nearest_rank_is_the_ceiling_of_p_n_over_100(p: int, n: int, rank: int) -> None:
    assert nearest_rank(p, n) == rank


def test_success_rate_is_over_terminal_executions_only() -> None:
    assert success_rate({"succeeded": 3, "failed": 1, "queued": 5}) == 0.75
    assert success_rate({"queued": 2, "running": 1}) is None


def test_assembly_zero_fills_every_status_and_bucket() -> None:
    p = PERIODS["24h"]
    since, until = p.window(datetime(2026, 3, 10, 12, 30, tzinfo=UTC))
    counts = [
        CreatedCount("p", "bot", "e", "production", "succeeded", 0, 2),
        CreatedCount("p", "bot", "e", "production", "failed", 23, 1),
        CreatedCount("p", "bot", "e", "production", "succeeded", 23, 1),
    ]
    rep = assemble(p, since, until, counts, {("p", "e"): (10, 20)})
    (row,) = rep.rows
    assert row.counts == {
        "queued": 0,
        "running": 0,
        "succeeded": 3,
        "failed": 1,
        "timed_out": 0,
        "cancelled": 0,
    }
    assert (row.total, row.success_rate, row.p50_ms, row.p95_ms) == (4, 0.75, 10, 20)
    assert len(rep.series) == 24 and rep.series[0].start == since
    assert rep.series[0].counts["succeeded"] == 2
    assert rep.series[23].counts == {**rep.series[1].counts, "succeeded": 1, "failed": 1}
    assert all(sum(s.counts.values()) == 0 for s in rep.series[1:23])
