"""Native API: API tokens (create, list, rotate, delete). Secrets are shown once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.service import catalog
from runplane.service import credentials as svc

router = APIRouter(prefix="/api/v1", tags=["credentials"])


class TokenBody(BaseModel):
    """A new API token: its name (the Basic auth username), scopes, environments, expiry."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    environments: list[str] = Field(
        default_factory=list, description="None named: every environment of the workspace."
    )
    expiresIn: int | None = Field(
        default=None, gt=0, le=10 * 365 * 86400, description="Seconds until it expires."
    )


async def _token(ctx: Ctx, who: Who, cred: dict[str, Any], secret: str | None) -> dict[str, Any]:
    envs = {e.id: e.name for e in await catalog.list_environments(ctx, who)}
    out = {
        "name": cred["name"],
        "username": cred["name"],
        "scopes": cred["scopes"],
        "environments": (
            None
            if cred["environment_ids"] is None
            else sorted(envs.get(e, e) for e in cred["environment_ids"])
        ),
        "expiresAt": render.ts(cred["expires_at"]),
        "createdAt": render.ts(cred["created_at"]),
    }
    if secret is not None:
        out["token"] = secret
    return out


@router.post("/tokens", status_code=201)
async def create_token(body: TokenBody, ctx: Ctx, who: Who) -> Response:
    """Create an API token; the response is the only place its secret appears."""
    secret, cred = await svc.create_token(
        ctx, who, body.name, body.scopes, body.environments, body.expiresIn
    )
    return JSON(await _token(ctx, who, cred, secret), status_code=201, headers=_NO_STORE)


@router.get("/tokens")
async def list_tokens(ctx: Ctx, who: Who) -> Response:
    """Live API tokens (never their secrets)."""
    return JSON(
        {"items": [await _token(ctx, who, c, None) for c in await svc.list_tokens(ctx, who)]}
    )


@router.post("/tokens/{name}/rotate")
async def rotate_token(name: str, ctx: Ctx, who: Who) -> Response:
    """Give a token a new secret; the old one stops working at once."""
    secret, cred = await svc.rotate_token(ctx, who, name)
    return JSON(await _token(ctx, who, cred, secret), headers=_NO_STORE)


@router.delete("/tokens/{name}", status_code=204)
async def delete_token(name: str, ctx: Ctx, who: Who) -> Response:
    """Revoke a token."""
    await svc.delete_token(ctx, who, name)
    return Response(status_code=204)


_NO_STORE = {"Cache-Control": "no-store"}


def _process_secret(cred: dict[str, Any], secret: str | None) -> dict[str, Any]:
    out = {"process": cred["name"], "createdAt": render.ts(cred["created_at"])}
    if secret is not None:
        out["secret"] = secret
    return out


@router.post("/processes/{process}/secret", status_code=201, tags=["credentials"])
async def generate_process_secret(process: str, ctx: Ctx, who: Who) -> Response:
    """Create the process's secret (one per process); the response shows it once.

    The secret starts this process and reads its executions, nothing else; send it
    as the `Runplane-Process-Secret` header or the `process-secret` query parameter.
    """
    secret, cred = await svc.generate_process_secret(ctx, who, process)
    return JSON(_process_secret(cred, secret), status_code=201, headers=_NO_STORE)


@router.post("/processes/{process}/secret/rotate", tags=["credentials"])
async def rotate_process_secret(process: str, ctx: Ctx, who: Who) -> Response:
    """Give the process a new secret; the old one stops working at once."""
    secret, cred = await svc.rotate_process_secret(ctx, who, process)
    return JSON(_process_secret(cred, secret), headers=_NO_STORE)


@router.delete("/processes/{process}/secret", status_code=204, tags=["credentials"])
async def delete_process_secret(process: str, ctx: Ctx, who: Who) -> Response:
    """Revoke the process's secret."""
    await svc.delete_process_secret(ctx, who, process)
    return Response(status_code=204)


@router.get("/secrets", tags=["credentials"])
async def list_process_secrets(ctx: Ctx, who: Who) -> Response:
    """The processes that have a secret (never the secrets)."""
    creds = await svc.list_process_secrets(ctx, who)
    return JSON({"items": [_process_secret(c, None) for c in creds]})
