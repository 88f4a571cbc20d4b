"""A stacked bar chart of executions over time by status, drawn as SVG on the server (no
script, nothing to load), with a table of the same figures for screen readers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 1000
HEIGHT = 240
TOP = 10  # room for the highest tick's label
LEFT = 36  # room for the axis labels
BOTTOM = 20
ORDER = ("succeeded", "failed", "timed_out", "cancelled", "expired", "running", "queued")


@dataclass(frozen=True)
class Bar:
    """One coloured piece of one bucket's bar."""

    x: float
    y: float
    width: float
    height: float
    status: str
    count: int
    label: str


@dataclass(frozen=True)
class Chart:
    """What the template draws."""

    width: int
    height: int
    plot_height: int
    left: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, value) of the horizontal grid lines
    labels: list[tuple[float, str]]  # (x, text) under some buckets
    statuses: list[str]  # in the legend: those that occur
    peak: int


def _nice(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if peak / step <= 5:
            return step
    return max(1, peak // 5)


def stacked_bars(report: Any) -> Chart:
    """The chart of `report.series` (buckets oldest first, counts by status)."""
    series = report.series
    plot_height = HEIGHT - BOTTOM - TOP
    peak = max((sum(p.counts.values()) for p in series), default=0)
    step = _nice(peak)
    top = max(step, ((peak + step - 1) // step) * step)
    slot = (WIDTH - LEFT) / max(1, len(series))
    width = max(1.0, slot * 0.8)
    bars: list[Bar] = []
    seen: set[str] = set()
    hour_buckets = report.bucket_seconds < 86_400
    labels: list[tuple[float, str]] = []
    every = max(1, len(series) // 6)
    for i, point in enumerate(series):
        x = LEFT + i * slot + (slot - width) / 2
        y = float(TOP + plot_height)
        when = point.start.strftime("%m-%d %H:%M" if hour_buckets else "%m-%d")
        for status in ORDER:
            n = point.counts.get(status, 0)
            if not n:
                continue
            seen.add(status)
            h = plot_height * n / top
            y -= h
            bars.append(Bar(x, y, width, h, status, n, f"{when}: {n} {status}"))
        if i % every == 0:
            labels.append((x + width / 2, when))
    ticks = [(TOP + plot_height - plot_height * v / top, v) for v in range(0, top + 1, step)]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_height=plot_height,
        left=LEFT,
        bars=bars,
        ticks=ticks,
        labels=labels,
        statuses=[s for s in ORDER if s in seen],
        peak=peak,
    )
