"""When a schedule is due: cron in a time zone, on-time and missed due times, daylight
saving changes that neither double-fire nor skip."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from runplane.domain.schedules import (
    Missed,
    check_cron,
    check_timezone,
    execution_id,
    first_due,
    look,
    next_times,
)

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)  # type: ignore[misc]


def test_checks_name_what_is_wrong() -> None:
    assert check_cron("0 8 * * 1-5") is None and check_cron("@daily") is None
    assert check_cron("0 8 * *") is not None
    assert check_cron("61 * * * *") is not None
    assert check_cron("* * * * * *") is not None  # no seconds field
    assert check_timezone("Europe/Berlin") is None and check_timezone("UTC") is None
    assert check_timezone("Mars/Olympus") is not None and check_timezone("../etc") is not None


def test_next_times_follow_the_wall_clock_of_the_time_zone() -> None:
    after = berlin(2026, 3, 27, 12, 0)
    times = next_times("0 8 * * *", "Europe/Berlin", after, 3)
    assert [t.astimezone(BERLIN).hour for t in times] == [8, 8, 8]
    # 08:00 is 07:00 UTC before the spring change (28 March) and 06:00 UTC after it
    assert [t.hour for t in times] == [7, 6, 6]


def test_spring_forward_runs_a_time_that_does_not_exist_once_after_the_gap() -> None:
    # 29 March 2026: 02:00 → 03:00 in Berlin; 02:30 does not exist that day
    times = next_times("30 2 * * *", "Europe/Berlin", berlin(2026, 3, 28, 12, 0), 3)
    assert times == [
        berlin(2026, 3, 29, 3, 0),
        berlin(2026, 3, 30, 2, 30),
        berlin(2026, 3, 31, 2, 30),
    ]
    # ...and a look over the change runs each due time once
    seen: list[datetime] = []
    due = first_due("30 2 * * *", "Europe/Berlin", berlin(2026, 3, 28, 12, 0))
    now = berlin(2026, 3, 28, 12, 0)
    while due is not None and due < berlin(2026, 4, 1, 0, 0):
        now = max(now, due) + timedelta(seconds=5)
        decided = look("30 2 * * *", "Europe/Berlin", due, now, Missed.SKIP)
        seen += decided.run
        due = decided.next_due
    assert seen == times


def test_fall_back_runs_a_repeated_time_once() -> None:
    # 25 October 2026: 03:00 → 02:00 in Berlin; 02:30 happens twice
    start = berlin(2026, 10, 24, 12, 0)
    daily = next_times("30 2 * * *", "Europe/Berlin", start, 3)
    assert len(daily) == len(set(d.astimezone(BERLIN).date() for d in daily)) == 3
    assert daily[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first
    # every half hour runs in both real hours of the repeated hour: they are an hour apart
    half_hourly = next_times("*/30 * * * *", "Europe/Berlin", berlin(2026, 10, 25, 1, 50), 6)
    gaps = {b - a for a, b in itertools.pairwise(half_hourly)}
    assert gaps == {timedelta(minutes=30)} and len(set(half_hourly)) == 6


def test_an_on_time_due_time_runs_and_the_next_one_follows_now() -> None:
    due = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    decided = look("0 * * * *", "UTC", due, due + timedelta(seconds=3), Missed.SKIP)
    assert decided.run == [due] and decided.skipped == 0
    assert decided.next_due == due + timedelta(hours=1)


def test_missed_due_times_are_skipped_or_the_last_one_run() -> None:
    due = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    now = due + timedelta(hours=3, minutes=10)  # 08:00-11:00 passed while down
    skipped = look("0 * * * *", "UTC", due, now, Missed.SKIP)
    assert skipped.run == [] and skipped.skipped == 4
    assert skipped.next_due == datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    last = look("0 * * * *", "UTC", due, now, Missed.LAST)
    assert last.run == [datetime(2026, 5, 4, 11, 0, tzinfo=UTC)] and last.skipped == 3
    assert last.next_due == skipped.next_due
    # a scheduler a little late (within the minute) still runs on time
    late = look("0 * * * *", "UTC", due, due + timedelta(seconds=50), Missed.SKIP)
    assert late.run == [due]


def test_a_long_outage_does_not_walk_every_missed_minute() -> None:
    due = datetime(2026, 1, 1, tzinfo=UTC)
    now = due + timedelta(days=30)
    decided = look("* * * * *", "UTC", due, now, Missed.LAST)
    assert len(decided.run) == 1 and decided.next_due == now.replace(second=0) + timedelta(
        minutes=1
    )


def test_execution_ids_are_the_schedule_and_the_due_time() -> None:
    due = berlin(2026, 3, 29, 3, 0)
    assert execution_id("s1", due) == "schedule-s1-20260329T010000Z"
    assert execution_id("s1", due) == execution_id("s1", due.astimezone(BERLIN))
