"""Native API: workspaces and environments."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.service import workspaces as svc

router = APIRouter(prefix="/api/v1", tags=["workspaces"])


class NameBody(BaseModel):
    """A name."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)


@router.post("/workspaces", status_code=201)
async def create_workspace(body: NameBody, ctx: Ctx, who: Who) -> Response:
    """Create a workspace (admin of `default` only); answers its admin token, once."""
    ws, token = await svc.create_workspace(ctx, who, body.name)
    return JSON(
        {
            "id": ws["id"],
            "name": ws["name"],
            "environments": ws["environments"],
            "createdAt": render.ts(ws["createdAt"]),
            "adminToken": token,
        },
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/workspaces")
async def list_workspaces(ctx: Ctx, who: Who) -> Response:
    """Workspaces the caller may see: every one for the installation admin."""
    rows = await svc.list_workspaces(ctx, who)
    return JSON({"items": [{"id": i, "name": n, "createdAt": render.ts(t)} for i, n, t in rows]})


@router.post("/environments", status_code=201)
async def create_environment(body: NameBody, ctx: Ctx, who: Who) -> Response:
    """Create an environment in the caller's workspace."""
    return JSON(
        render.environment(await svc.create_environment(ctx, who, body.name)), status_code=201
    )
