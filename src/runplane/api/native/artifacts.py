"""Native API: an execution's artifacts (files its run left in its artifacts folder) and
a robot run's work items (its input and outputs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native.render import JSON, attachment, ts
from runplane.service import artifacts as svc
from runplane.service import robot_runs

router = APIRouter(prefix="/api/v1", tags=["executions"])


def _artifact(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": a["name"],
        "attempt": a["attempt"],
        "sizeBytes": a["size"],
        "createdAt": ts(a["created_at"]),
    }


@router.get("/executions/{execution_id}/artifacts")
async def list_artifacts(execution_id: str, ctx: Ctx, who: Who) -> Response:
    """The files the execution's run left in its artifacts folder, by attempt and name."""
    items = await svc.list_artifacts(ctx, who, execution_id)
    return JSON({"items": [_artifact(a) for a in items]})


@router.get("/executions/{execution_id}/artifacts/{name:path}")
async def get_artifact(execution_id: str, name: str, ctx: Ctx, who: Who) -> Response:
    """An artifact's bytes (of the latest attempt that left one of that name)."""
    file_name, content = await svc.get_artifact(ctx, who, execution_id, name)
    return attachment(content, file_name)


@router.get("/executions/{execution_id}/work-items")
async def list_work_items(execution_id: str, ctx: Ctx, who: Who) -> Response:
    """A robot run's work items: its input, then its outputs, with payloads (secret
    parameters masked), states, exceptions and files."""
    items = await robot_runs.list_items(ctx, who, execution_id)
    return JSON({"items": [{**i, "createdAt": ts(i["createdAt"])} for i in items]})
