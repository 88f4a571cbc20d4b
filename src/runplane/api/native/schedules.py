"""Native API: schedules, a deployment's executions on a timetable (docs/schedules.md)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native.render import JSON, ts
from runplane.domain.schedules import MAX_CRON_CHARS, Schedule, next_times
from runplane.service import schedules as svc

router = APIRouter(prefix="/api/v1", tags=["schedules"])

NEXT_DUE_TIMES = 5


class ScheduleBody(BaseModel):
    """A new schedule of a deployment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    cron: str = Field(
        min_length=1,
        max_length=MAX_CRON_CHARS,
        description="Five fields (minute hour day-of-month month day-of-week), or @daily etc.",
    )
    timezone: str = Field(default="UTC", max_length=64, description="An IANA time zone.")
    inputArguments: dict[str, Any] = Field(default_factory=dict)
    missed: str = Field(
        default="skip", description="Due times missed while down: skip, or run the last."
    )
    enabled: bool = True


class SchedulePatch(BaseModel):
    """What to change in a schedule; what is left out stays."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    cron: str | None = Field(default=None, min_length=1, max_length=MAX_CRON_CHARS)
    timezone: str | None = Field(default=None, max_length=64)
    inputArguments: dict[str, Any] | None = None
    missed: str | None = None
    enabled: bool | None = None


def render(schedule: Schedule) -> dict[str, Any]:
    """A schedule with its next due times (in its time zone, with their offsets)."""
    zone = ZoneInfo(schedule.timezone)
    upcoming: list[str] = []
    if schedule.enabled and schedule.next_due_at is not None:
        first = schedule.next_due_at
        later = next_times(schedule.cron, schedule.timezone, first, NEXT_DUE_TIMES - 1)
        upcoming = [t.astimezone(zone).isoformat() for t in [first, *later]]
    return {
        "id": schedule.id,
        "name": schedule.name,
        "process": schedule.process_name,
        "environment": schedule.environment_name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "inputArguments": schedule.input_arguments,
        "missed": schedule.missed.value,
        "enabled": schedule.enabled,
        "source": schedule.source,
        "nextDueAt": ts(schedule.next_due_at) if schedule.enabled else None,
        "nextDueTimes": upcoming,
        "lastDueAt": ts(schedule.last_due_at),
        "lastExecutionId": schedule.last_execution_id,
        "lastError": schedule.last_error,
        "createdAt": ts(schedule.created_at),
        "updatedAt": ts(schedule.updated_at),
    }


def _input(body: ScheduleBody | SchedulePatch) -> svc.ScheduleInput:
    return svc.ScheduleInput(
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        input_arguments=body.inputArguments,
        missed=body.missed,
        enabled=body.enabled,
    )


@router.post("/processes/{process}/deployments/{environment}/schedules", status_code=201)
async def create_schedule(
    process: str, environment: str, body: ScheduleBody, ctx: Ctx, who: Who
) -> Response:
    """A new schedule of the deployment (201); 409 `conflict` if the name is taken."""
    schedule = await svc.create(ctx, who, process, environment, _input(body))
    return JSON(render(schedule), status_code=201)


@router.get("/schedules")
async def list_schedules(ctx: Ctx, who: Who, process: str | None = None) -> Response:
    """Every schedule (of one process), with its next due times."""
    items = await svc.list_schedules(ctx, who, process)
    return JSON({"items": [render(s) for s in items]})


@router.get("/schedules/{schedule_id}")
async def get_schedule(schedule_id: str, ctx: Ctx, who: Who) -> Response:
    """One schedule."""
    return JSON(render(await svc.get(ctx, who, schedule_id)))


@router.patch("/schedules/{schedule_id}")
async def update_schedule(schedule_id: str, body: SchedulePatch, ctx: Ctx, who: Who) -> Response:
    """Change a schedule; a new timetable, or `enabled` back to true, counts from now."""
    return JSON(render(await svc.update(ctx, who, schedule_id, _input(body))))


@router.delete("/schedules/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: str, ctx: Ctx, who: Who) -> Response:
    """Delete a schedule (executions it started stay)."""
    await svc.delete(ctx, who, schedule_id)
    return Response(status_code=204)
