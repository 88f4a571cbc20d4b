"""Schedules: when a cron expression in a time zone is due, and which due times to run.

A schedule's cron expression has five fields (minute, hour, day of month, month,
day of week; or one of cron's nicknames, ``@hourly`` to ``@yearly``), read by
``cronsim`` in the schedule's IANA time zone, so that 08:00 stays 08:00 across
daylight saving changes:

- a wall-clock time that does not exist (02:30 on the day clocks go forward) runs
  once, at the first instant after the gap (03:00);
- a wall-clock time that happens twice (02:30 on the day clocks go back) runs
  once, at its first occurrence; expressions that name every hour or minute
  run in both of the repeated hour's real hours, as they are that many apart.

Due times are instants (UTC). The scheduler keeps the next one for each
schedule. When it looks, a due time at most ``ON_TIME_SECONDS`` old is on time
and runs; older ones were missed (everything was down): ``missed = "skip"``
(the default) runs none of them, ``missed = "last"`` runs the latest one, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

ON_TIME_SECONDS = 60.0
MAX_RUNS_PER_LOOK = 10  # on-time due times run at one look (a scheduler that was late)
MAX_LOOKAHEAD = 10_000  # due times walked through at once, at most (every minute: a week)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_CRON_CHARS = 200


class Missed(StrEnum):
    """What to do about due times that passed while no scheduler ran."""

    SKIP = "skip"
    LAST = "last"


# cron's nicknames, as the five fields they stand for
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _fields(expression: str) -> str:
    return NICKNAMES.get(expression.strip().lower(), expression)


def check_cron(expression: str) -> str | None:
    """Why the expression is not a cron expression runplane runs, or None."""
    if len(expression) > MAX_CRON_CHARS:
        return f"at most {MAX_CRON_CHARS} characters"
    if len(_fields(expression).split()) != 5:
        return (
            "five fields (minute hour day-of-month month day-of-week), e.g. '0 8 * * 1-5', "
            "or @hourly, @daily, @weekly, @monthly, @yearly"
        )
    try:
        CronSim(_fields(expression), datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return str(exc) or "not a cron expression"
    return None


def check_timezone(name: str) -> str | None:
    """Why the name is not an IANA time zone, or None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "an IANA time zone name, e.g. 'Europe/Berlin' or 'UTC'"
    return None


def _times(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Due instants strictly after `after`, in UTC."""
    zone = ZoneInfo(timezone)
    for local in CronSim(_fields(expression), after.astimezone(zone)):
        instant = local.astimezone(UTC)
        if instant > after:
            yield instant


def next_times(expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next `count` due instants strictly after `after` (UTC)."""
    times: list[datetime] = []
    for instant in _times(expression, timezone, after):
        times.append(instant)
        if len(times) == count:
            break
    return times


def first_due(expression: str, timezone: str, now: datetime) -> datetime | None:
    """A new (or resumed, or changed) schedule's first due instant: the next after now."""
    found = next_times(expression, timezone, now, 1)
    return found[0] if found else None


@dataclass(frozen=True)
class Look:
    """What one look at a due schedule decided."""

    run: list[datetime]  # due instants to start an execution for, oldest first
    skipped: int  # missed due instants not run
    next_due: datetime | None  # the next due instant after now (None: never again)


def look(expression: str, timezone: str, next_due: datetime, now: datetime, missed: Missed) -> Look:
    """The due instants from `next_due` up to `now`: which to run, and what is next."""
    due: list[datetime] = [next_due]
    upcoming: datetime | None = None
    for instant in _times(expression, timezone, next_due):
        if instant > now:
            upcoming = instant
            break
        due.append(instant)
        if len(due) >= MAX_LOOKAHEAD:
            upcoming = first_due(expression, timezone, now)
            break
    cutoff = now - timedelta(seconds=ON_TIME_SECONDS)
    on_time = [d for d in due if d >= cutoff]
    late = [d for d in due if d < cutoff]
    run = on_time[-MAX_RUNS_PER_LOOK:]
    if not on_time and late and missed is Missed.LAST:
        run = [late[-1]]
    return Look(run=run, skipped=len(due) - len(run), next_due=upcoming)


def execution_id(schedule_id: str, due: datetime) -> str:
    """The client execution id of a schedule's run at `due`: the same for every replica
    that starts it, so a second start is the first one's repeat."""
    return f"schedule-{schedule_id}-{due.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


@dataclass(frozen=True)
class Schedule:
    """A deployment's timetable: a cron expression in a time zone, with fixed inputs."""

    id: str
    workspace_id: str
    process_id: str
    process_name: str
    environment_id: str
    environment_name: str
    name: str
    cron: str
    timezone: str
    input_arguments: dict[str, Any]  # secret ones masked
    missed: Missed
    enabled: bool
    source: str  # "api" | "manifest"
    next_due_at: datetime | None
    last_due_at: datetime | None
    last_execution_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
