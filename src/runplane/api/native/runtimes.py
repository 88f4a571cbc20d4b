"""Native API: the runtime protocol for remote runtimes (`runplane runtime`).

Register, claim (long poll), heartbeat the runtime; heartbeat, log and report
under a lease's fencing token; fetch a version's bundle. Every route needs the
`runtime` scope (an admin credential also serves) and acts in the caller's
workspace and environment only. A stale fencing token is 409 `stale_lease`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runplane import __version__
from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.domain.states import Status
from runplane.service import leases

router = APIRouter(prefix="/api/v1", tags=["runtime protocol"])

CLAIM_WAIT_DEFAULT_SECONDS = 30.0
CONTENT_HASH_HEADER = "Runplane-Content-Hash"
_NO_STORE = {"Cache-Control": "no-store"}


class RegisterBody(BaseModel):
    """A runtime announcing itself: its name (unique per workspace), environment, slots."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")
    environment: str = Field(min_length=1, max_length=200)
    slots: int = Field(ge=1, le=1024)
    labels: dict[str, str] = Field(default_factory=dict)
    version: str = Field(default=__version__, max_length=50)


class RuntimeStateBody(BaseModel):
    """A runtime's own heartbeat: it is alive, and whether it takes new work."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["online", "draining", "offline"] = "online"


class LeaseBody(BaseModel):
    """A lease's fencing token, as handed out by the claim."""

    model_config = ConfigDict(extra="forbid")

    leaseToken: int = Field(ge=0)


class LogBody(LeaseBody):
    """A (masked) chunk of an attempt's output."""

    attempt: int = Field(ge=1)
    text: str = Field(max_length=1024 * 1024)


class ErrorBody(BaseModel):
    """Why an attempt did not succeed."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=100)
    message: str | None = Field(default=None, max_length=64 * 1024)


class LogTail(BaseModel):
    """The last of an attempt's output, stored with its report (one write, not two)."""

    model_config = ConfigDict(extra="forbid")

    attempt: int = Field(ge=1)
    text: str = Field(max_length=64 * 1024)


class ReportBody(LeaseBody):
    """How an attempt ended."""

    status: Literal["succeeded", "failed", "timed_out", "cancelled"]
    result: dict[str, Any] | None = None
    error: ErrorBody | None = None
    log: LogTail | None = None
    robotRun: bool = False  # a Robocorp robot's run: its work items decide the end too


@router.post("/runtimes", status_code=201)
async def register_runtime(body: RegisterBody, ctx: Ctx, who: Who) -> Response:
    """Register a runtime for one environment; the same name again takes over the record."""
    rt = await leases.register(
        ctx, body.name, body.environment, body.slots, body.labels, body.version, who=who
    )
    doc = render.runtime(rt, {rt.environment_id or "": body.environment})
    doc["heartbeatIntervalSeconds"] = ctx.settings.heartbeat_interval_seconds
    doc["leaseTtlSeconds"] = ctx.settings.lease_ttl_seconds
    return JSON(doc, status_code=201)


@router.post("/runtimes/{runtime_id}/heartbeat", status_code=204)
async def runtime_heartbeat(
    runtime_id: str, body: RuntimeStateBody, ctx: Ctx, who: Who
) -> Response:
    """The runtime is alive (`online`), shutting down (`draining`) or gone (`offline`)."""
    await leases.touch_runtime(ctx, runtime_id, body.state, who=who)
    return Response(status_code=204)


@router.post(
    "/runtimes/{runtime_id}/claims",
    responses={200: {"description": "A lease"}, 204: {"description": "No work in time"}},
)
async def claim(
    runtime_id: str,
    ctx: Ctx,
    who: Who,
    wait: float = Query(default=CLAIM_WAIT_DEFAULT_SECONDS, ge=0, le=300),
    claim_id: str | None = Query(
        default=None,
        alias="claimId",
        min_length=1,
        max_length=64,
        description="The runtime's id for this claim: sent again (its answer was lost), "
        "it gets the lease it already took instead of a second one.",
    ),
) -> Response:
    """Lease the next execution of the runtime's environment; holds up to `wait` seconds."""
    got = await leases.claim_for(ctx, who, runtime_id, wait, claim_id)
    if got is None:
        return Response(status_code=204)
    return JSON(render.claim(got), headers=_NO_STORE)


@router.post("/leases/{execution_id}/heartbeat")
async def lease_heartbeat(execution_id: str, body: LeaseBody, ctx: Ctx, who: Who) -> Response:
    """Extend a lease; tells whether a cancel was requested."""
    expires, cancel = await leases.heartbeat(ctx, execution_id, body.leaseToken, who=who)
    return JSON({"leaseExpiresAt": render.ts(expires), "cancelRequested": cancel})


@router.post("/leases/{execution_id}/logs", status_code=204)
async def lease_logs(execution_id: str, body: LogBody, ctx: Ctx, who: Who) -> Response:
    """Append a chunk of output under the lease."""
    await leases.append_log(ctx, execution_id, body.leaseToken, body.attempt, body.text, who=who)
    return Response(status_code=204)


@router.post("/leases/{execution_id}/report")
async def lease_report(execution_id: str, body: ReportBody, ctx: Ctx, who: Who) -> Response:
    """Report how the attempt ended; answers the execution's new status."""
    status = await leases.report(
        ctx,
        execution_id,
        body.leaseToken,
        Status(body.status),
        result=body.result,
        error_code=body.error.code if body.error else None,
        error_message=body.error.message if body.error else None,
        log=(body.log.attempt, body.log.text) if body.log else None,
        who=who,
        robot_run=body.robotRun,
    )
    return JSON({"status": status.value})


@router.put("/leases/{execution_id}/artifacts", status_code=204)
async def lease_artifact(
    execution_id: str,
    request: Request,
    ctx: Ctx,
    who: Who,
    leaseToken: Annotated[int, Query(ge=0)],
    attempt: Annotated[int, Query(ge=1)],
    name: Annotated[str, Query(min_length=1, max_length=500)],
) -> Response:
    """Keep a file the attempt left in its artifacts folder (the body, its bytes)."""
    content = await request.body()
    await leases.put_artifact(ctx, execution_id, leaseToken, attempt, name, content, who=who)
    return Response(status_code=204)


@router.post("/leases/{execution_id}/release")
async def lease_release(execution_id: str, body: LeaseBody, ctx: Ctx, who: Who) -> Response:
    """Hand the lease back once the attempt was killed (a drain timed out): retried at
    once when retries remain, else failed with RUNTIME_LOST; answers the new status."""
    status = await leases.release(ctx, execution_id, body.leaseToken, who=who)
    return JSON({"status": status.value})


@router.get("/runtimes/{runtime_id}/dependencies")
async def runtime_dependencies(
    runtime_id: str,
    ctx: Ctx,
    who: Who,
    process: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> Response:
    """The declared dependencies of these processes' versions (no `process`: every one)
    deployed to the runtime's environment, so it can build their environments ahead
    (`runplane runtime --prepare`)."""
    items = await leases.deployed_dependencies(ctx, runtime_id, process, who=who)
    return JSON({"items": items})


@router.get(
    "/versions/{version_id}/bundle",
    responses={200: {"content": {"application/zip": {}}, "description": "The bundle"}},
)
async def version_bundle(version_id: str, ctx: Ctx, who: Who) -> Response:
    """A version's bundle (zip); its content hash in the `Runplane-Content-Hash` header."""
    digest, data = await leases.fetch_bundle(ctx, version_id, who=who)
    return Response(data, media_type="application/zip", headers={CONTENT_HASH_HEADER: digest})
