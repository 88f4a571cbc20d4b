"""Native API: users of the web console (create, list, disable, set a password).

Full admins only, like tokens; another workspace's users are 404. A generated
password appears once, in the answer that creates the user.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from runplane.api.deps import Ctx, Who
from runplane.api.native import render
from runplane.api.native.render import JSON
from runplane.domain.users import User
from runplane.service import users as svc

router = APIRouter(prefix="/api/v1", tags=["users"])

_NO_STORE = {"Cache-Control": "no-store"}


class UserBody(BaseModel):
    """A new user, or a role in a workspace for an existing one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Lower-case letters, digits, '.', '_' or '-' (1-100).")
    role: str = Field(description="admin, operator or viewer.")
    workspace: str | None = Field(
        default=None,
        description="By name; default the caller's. Another one: the admin of 'default' only.",
    )
    password: str | None = Field(
        default=None, description="12 or more characters; none: one is generated, shown once."
    )


class PasswordBody(BaseModel):
    """A user's new password."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(description="12 or more characters.")


def _user(user: User, password: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": user.name,
        "role": user.role.value,
        "workspace": user.workspace,
        "createdAt": render.ts(user.created_at),
        "disabled": user.disabled,
        "lastSignInAt": render.ts(user.last_sign_in_at),
    }
    if password is not None:
        out["password"] = password
    return out


@router.post("/users", status_code=201)
async def create_user(body: UserBody, ctx: Ctx, who: Who) -> Response:
    """Create a user with a role in a workspace; an existing user gets the role instead.

    Without `password` one is generated and answered here, once.
    """
    user, generated = await svc.create_user(
        ctx, who, body.name, body.role, body.workspace, body.password
    )
    return JSON(_user(user, generated), status_code=201, headers=_NO_STORE)


@router.get("/users")
async def list_users(ctx: Ctx, who: Who) -> Response:
    """Users holding a role in the caller's workspace (never their passwords)."""
    return JSON({"items": [_user(u) for u in await svc.list_users(ctx, who)]})


@router.post("/users/{name}/disable")
async def disable_user(name: str, ctx: Ctx, who: Who) -> Response:
    """Disable a user: it cannot sign in, and its sessions end at once."""
    return JSON(_user(await svc.disable_user(ctx, who, name)))


@router.put("/users/{name}/password", status_code=204)
async def set_password(name: str, body: PasswordBody, ctx: Ctx, who: Who) -> Response:
    """Set a user's password; its other sessions end."""
    await svc.set_password(ctx, who, name, body.password)
    return Response(status_code=204)
