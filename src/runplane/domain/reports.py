"""Execution reports: periods, their time buckets, and the report assembled from
figures the database aggregated (counts, percentiles, counts per bucket).

A period ends with the bucket that holds `now`: buckets are aligned to whole
multiples of their length since the Unix epoch (hours, 00/06/12/18 UTC, UTC
midnights), so `until` is the end of the current bucket and `since` is exactly
one period earlier. Every bucket of the period is in the series, oldest first.

Percentiles are nearest-rank: the p-th percentile of n durations sorted
ascending is the one at rank ceil(p * n / 100) (1-based), an actual duration,
never an interpolation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from runplane.domain.errors import InvalidRequest
from runplane.domain.states import TERMINAL, Status

HOUR_SECONDS = 3600
DAY_SECONDS = 24 * HOUR_SECONDS
PERCENTILES = (50, 95)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """A report period: its length and the length of its chart buckets."""

    name: str
    seconds: int
    bucket_seconds: int

    @property
    def buckets(self) -> int:
        """How many buckets the series has."""
        return self.seconds // self.bucket_seconds

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """(since, until): `until` is the end of the bucket holding `now`."""
        bucket = timedelta(seconds=self.bucket_seconds)
        until = EPOCH + ((now - EPOCH) // bucket + 1) * bucket
        return until - timedelta(seconds=self.seconds), until


PERIODS = {
    p.name: p
    for p in (
        Period("24h", DAY_SECONDS, HOUR_SECONDS),
        Period("7d", 7 * DAY_SECONDS, 6 * HOUR_SECONDS),
        Period("30d", 30 * DAY_SECONDS, DAY_SECONDS),
    )
}


def period(name: str) -> Period:
    """The period called `name`; InvalidRequest naming `period` when there is none."""
    found = PERIODS.get(name)
    if found is None:
        allowed = ", ".join(PERIODS)
        raise InvalidRequest(
            f"Unknown period {name!r}: one of {allowed}.",
            problems=[
                {"name": "period", "in": "query", "code": "invalid_period", "detail": allowed}
            ],
        )
    return found


def nearest_rank(percentile: int, n: int) -> int:
    """The 1-based rank of the `percentile`-th of n sorted values: ceil(p * n / 100)."""
    return (percentile * n + 99) // 100


@dataclass(frozen=True)
class ReportRow:
    """One process in one environment over the period."""

    process: str
    environment: str
    counts: dict[str, int]  # every status, zero when none
    total: int
    success_rate: float | None  # succeeded / terminal; None without terminal executions
    p50_ms: int | None  # of finished executions (started and ended), nearest-rank
    p95_ms: int | None


@dataclass(frozen=True)
class SeriesPoint:
    """Executions created in one bucket, by status."""

    start: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class Report:
    """Counts, success rates and durations per process and environment, and the chart."""

    period: str
    since: datetime
    until: datetime
    bucket_seconds: int
    rows: list[ReportRow]
    series: list[SeriesPoint]


@dataclass(frozen=True)
class CreatedCount:
    """How many executions of a process in an environment were created in one bucket
    with a status (an aggregate the database computed)."""

    process_id: str
    process: str
    environment_id: str
    environment: str
    status: str
    bucket: int  # index of the bucket from `since`
    count: int


def _zero() -> dict[str, int]:
    return {s.value: 0 for s in Status}


def success_rate(counts: dict[str, int]) -> float | None:
    """Succeeded over terminal executions; None when none is terminal."""
    terminal = sum(counts.get(s.value, 0) for s in TERMINAL)
    return counts.get(Status.SUCCEEDED.value, 0) / terminal if terminal else None


def assemble(
    p: Period,
    since: datetime,
    until: datetime,
    counts: Iterable[CreatedCount],
    percentiles: dict[tuple[str, str], tuple[int | None, int | None]],
) -> Report:
    """The report from the database's aggregates: counts per process, environment,
    status and bucket; `percentiles` (p50, p95) by (process id, environment id)."""
    groups: dict[tuple[str, str], tuple[str, str, dict[str, int]]] = {}
    points = [
        SeriesPoint(since + timedelta(seconds=i * p.bucket_seconds), _zero())
        for i in range(p.buckets)
    ]
    for c in counts:
        key = (c.process_id, c.environment_id)
        if key not in groups:
            groups[key] = (c.process, c.environment, _zero())
        _add(groups[key][2], c.status, c.count)
        if 0 <= c.bucket < len(points):
            _add(points[c.bucket].counts, c.status, c.count)
    rows = []
    for key, (process, environment, tally) in groups.items():
        p50, p95 = percentiles.get(key, (None, None))
        rows.append(
            ReportRow(
                process=process,
                environment=environment,
                counts=tally,
                total=sum(tally.values()),
                success_rate=success_rate(tally),
                p50_ms=p50,
                p95_ms=p95,
            )
        )
    rows.sort(key=lambda r: (r.process, r.environment))
    return Report(
        period=p.name,
        since=since,
        until=until,
        bucket_seconds=p.bucket_seconds,
        rows=rows,
        series=points,
    )


def _add(tally: dict[str, int], status: str, n: int) -> None:
    tally[status] = tally.get(status, 0) + n
