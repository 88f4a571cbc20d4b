"""The reports chart: stacked bars in proportion, ticks that cover the peak, a legend of
the statuses that occur."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runplane.domain.reports import Report, SeriesPoint
from runplane.web.chart import BOTTOM, HEIGHT, TOP, stacked_bars

START = datetime(2026, 12, 1, tzinfo=UTC)


def _report(counts: list[dict[str, int]]) -> Report:
    series = [SeriesPoint(START + timedelta(hours=i), c) for i, c in enumerate(counts)]
    return Report("24h", START, START + timedelta(days=1), 3600, [], series)


def test_bars_stack_in_proportion_to_their_counts() -> None:
    chart = stacked_bars(_report([{"succeeded": 6, "failed": 2}, {}, {"queued": 3}]))
    plot = HEIGHT - BOTTOM - TOP
    by_status = {(b.status, round(b.x)): b for b in chart.bars}
    ok = next(b for b in chart.bars if b.status == "succeeded")
    failed = next(b for b in chart.bars if b.status == "failed")
    assert ok.height == 3 * failed.height
    assert ok.y + ok.height == TOP + plot  # stands on the axis
    assert failed.y + failed.height == ok.y  # stacked on top
    assert chart.peak == 8 and chart.ticks[-1][1] >= 8
    assert chart.statuses == ["succeeded", "failed", "queued"]
    assert len(by_status) == 3 and ok.label.endswith("6 succeeded")


def test_an_empty_period_draws_no_bars() -> None:
    chart = stacked_bars(_report([{}, {}]))
    assert chart.bars == [] and chart.statuses == [] and chart.peak == 0
