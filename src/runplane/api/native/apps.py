"""Native API: OAuth2 client-credentials apps (create, list, rotate, delete).

A client secret appears once, in the answer that created or rotated it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.domain.auth import OAuthApp
from runplane.service import catalog
from runplane.service import oauth as svc

router = APIRouter(prefix="/api/v1", tags=["apps"])

_NO_STORE = {"Cache-Control": "no-store"}


class AppBody(BaseModel):
    """A new app: its name, the scopes its tokens may have, its environments."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    environments: list[str] = Field(
        default_factory=list, description="None named: every environment of the workspace."
    )


async def _environment_names(ctx: Ctx, who: Who) -> dict[str, str]:
    return {e.id: e.name for e in await catalog.list_environments(ctx, who)}


def _app(app: OAuthApp, envs: dict[str, str], secret: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": app.name,
        "clientId": app.client_id,
        "scopes": sorted(s.value for s in app.scopes),
        "environments": (
            None
            if app.environment_ids is None
            else sorted(envs.get(e, e) for e in app.environment_ids)
        ),
        "createdAt": render.ts(app.created_at),
    }
    if secret is not None:
        out["clientSecret"] = secret
    return out


@router.post("/apps", status_code=201)
async def create_app(body: AppBody, ctx: Ctx, who: Who) -> Response:
    """Create an app; the response is the only place its client secret appears."""
    secret, app = await svc.create_app(ctx, who, body.name, body.scopes, body.environments)
    envs = await _environment_names(ctx, who)
    return JSON(_app(app, envs, secret), status_code=201, headers=_NO_STORE)


@router.get("/apps")
async def list_apps(ctx: Ctx, who: Who) -> Response:
    """Live apps (never their secrets)."""
    apps = await svc.list_apps(ctx, who)
    envs = await _environment_names(ctx, who)
    return JSON({"items": [_app(a, envs, None) for a in apps]})


@router.post("/apps/{name}/rotate")
async def rotate_app(name: str, ctx: Ctx, who: Who) -> Response:
    """Give an app a new client secret; its access tokens are revoked at once."""
    secret, app = await svc.rotate_app_secret(ctx, who, name)
    envs = await _environment_names(ctx, who)
    return JSON(_app(app, envs, secret), headers=_NO_STORE)


@router.delete("/apps/{name}", status_code=204)
async def delete_app(name: str, ctx: Ctx, who: Who) -> Response:
    """Delete an app; its access tokens are revoked at once."""
    await svc.delete_app(ctx, who, name)
    return Response(status_code=204)
