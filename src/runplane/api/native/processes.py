"""Native API: process versions (bundle upload), deployments, processes, environments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.domain import errors
from runplane.service import catalog as svc

router = APIRouter(prefix="/api/v1", tags=["processes"])

MAX_VERSION = 2**31 - 1
ZIP_MEDIA_TYPES = ("application/zip", "application/octet-stream", "application/x-zip-compressed")


class DeployBody(BaseModel):
    """Deploy a version to an environment with a run configuration."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="Default: the newest version."
    )
    inputArguments: dict[str, Any] = Field(
        default_factory=dict, description="Default input arguments of every execution."
    )
    invokable: bool = True
    concurrencyLimit: int | None = Field(default=None, ge=1, le=1_000_000)


@router.get("/processes")
async def list_processes(ctx: Ctx, who: Who) -> Response:
    """Every process with its newest version."""
    rows = await svc.list_processes(ctx, who)
    return JSON(
        {
            "items": [
                {
                    "id": p.id,
                    "name": p.name,
                    "latestVersion": latest,
                    "createdAt": render.ts(p.created_at),
                }
                for p, latest in rows
            ]
        }
    )


@router.get("/processes/{process}")
async def get_process(process: str, ctx: Ctx, who: Who) -> Response:
    """A process with its versions and deployments."""
    proc, versions, deployments = await svc.get_process(ctx, who, process)
    return JSON(
        {
            "id": proc.id,
            "name": proc.name,
            "createdAt": render.ts(proc.created_at),
            "versions": [render.version(v) for v in versions],
            "deployments": [render.deployment(d) for d in deployments],
        }
    )


@router.post(
    "/processes/{process}/versions",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_version(
    process: str,
    request: Request,
    ctx: Ctx,
    who: Who,
    task: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Upload a bundle (zip of a folder with runplane.toml, or a Robocorp robot's robot.yaml
    run as task `task`): 201 new version, 200 same content."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ZIP_MEDIA_TYPES:
        raise errors.UnsupportedMediaType(
            f"Upload the bundle as application/zip, not {media or 'no content type'}."
        )
    data = await request.body()
    version, created = await svc.upload_version(ctx, who, process, data, task)
    return JSON(render.version(version), status_code=201 if created else 200)


@router.get("/processes/{process}/versions")
async def list_versions(process: str, ctx: Ctx, who: Who) -> Response:
    """Every version of a process, newest first."""
    versions = await svc.list_versions(ctx, who, process)
    return JSON({"items": [render.version(v) for v in versions]})


@router.get("/processes/{process}/versions/{version}")
async def get_version(
    process: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], ctx: Ctx, who: Who
) -> Response:
    """One version of a process."""
    return JSON(render.version(await svc.get_version(ctx, who, process, version)))


@router.put("/processes/{process}/deployments/{environment}", status_code=201)
async def deploy(process: str, environment: str, body: DeployBody, ctx: Ctx, who: Who) -> Response:
    """Deploy (201) or redeploy (200) a process version to an environment."""
    dep, created = await svc.deploy(
        ctx,
        who,
        process,
        environment,
        version=body.version,
        input_arguments=body.inputArguments,
        invokable=body.invokable,
        concurrency_limit=body.concurrencyLimit,
    )
    return JSON(render.deployment(dep), status_code=201 if created else 200)


@router.delete("/processes/{process}/deployments/{environment}", status_code=204)
async def undeploy(process: str, environment: str, ctx: Ctx, who: Who) -> Response:
    """Stop new executions of a process in an environment (it becomes not invokable)."""
    await svc.undeploy(ctx, who, process, environment)
    return Response(status_code=204)


@router.get("/deployments")
async def list_deployments(
    ctx: Ctx, who: Who, process: str | None = None, environment: str | None = None
) -> Response:
    """Deployments, optionally of one process or environment."""
    deps = await svc.list_deployments(ctx, who, process, environment)
    return JSON({"items": [render.deployment(d) for d in deps]})


@router.get("/environments", tags=["system"])
async def list_environments(ctx: Ctx, who: Who) -> Response:
    """Every environment of the workspace."""
    envs = await svc.list_environments(ctx, who)
    return JSON({"items": [render.environment(e) for e in envs]})
