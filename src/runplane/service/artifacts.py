"""Use cases for execution artifacts: the files a run left in its artifacts folder
(a Robocorp robot's artifactsDir), kept with the execution; runtimes put them
(service/leases.py, under the lease), readers list and download them here."""

from __future__ import annotations

from typing import Any

from runplane.domain import errors
from runplane.domain.auth import Principal
from runplane.domain.model import Execution
from runplane.service import executions
from runplane.service.context import Context
from runplane.store import artifacts as store
from runplane.store import sealing

LINK_TTL_SECONDS = 3600


async def list_artifacts(ctx: Context, who: Principal, execution_id: str) -> list[dict[str, Any]]:
    """An execution's artifacts (every attempt's), without their bytes."""
    # visible to the caller, else 404/403
    return await artifacts_of(ctx, await executions.get(ctx, who, execution_id))


async def artifacts_of(ctx: Context, execution: Execution) -> list[dict[str, Any]]:
    """The artifacts of an execution the caller has already read (so may see)."""
    return await ctx.db.read(lambda c: store.list_of(c, execution.id))


async def get_artifact(
    ctx: Context, who: Principal, execution_id: str, name: str
) -> tuple[str, bytes]:
    """(name, bytes) of the artifact `name` of the execution's latest attempt that has it."""
    found = [a for a in await list_artifacts(ctx, who, execution_id) if a["name"] == name]
    if not found:
        raise errors.NotFound(f"The execution has no artifact {name!r}.")
    got = await ctx.db.read(lambda c: store.content(c, found[-1]["id"]))
    if got is None:
        raise errors.NotFound(f"The execution has no artifact {name!r}.")
    return got[1], got[2]


async def link_token(ctx: Context, who: Principal, execution_id: str, artifact_id: str) -> str:
    """A signed token for a link to one artifact (Robocorp's artifact URLs)."""
    listed = await list_artifacts(ctx, who, execution_id)
    if artifact_id not in {a["id"] for a in listed}:
        raise errors.NotFound("No such artifact.")
    return sealing.sign(f"artifact:{artifact_id}")


async def by_link(ctx: Context, artifact_id: str, token: str) -> tuple[str, bytes]:
    """(name, bytes) of an artifact, for a link token made for it."""
    if sealing.signed(token, LINK_TTL_SECONDS) != f"artifact:{artifact_id}":
        raise errors.Forbidden("The download link is not valid (or has expired).")
    got = await ctx.db.read(lambda c: store.content(c, artifact_id))
    if got is None:
        raise errors.NotFound("No such artifact.")
    return got[1], got[2]
