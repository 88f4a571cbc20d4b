"""Use cases for workspaces and environments.

Workspaces are the tenant boundary: a credential never sees another workspace's
objects. The admin of workspace `default` (the installation's admin) creates
workspaces; each comes with environments `sandbox` and `production` and an
admin token of its own, shown once. A workspace's admin creates environments.
"""

from __future__ import annotations

import re
from typing import Any

from runplane.auth import secrets as rsecrets
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal, Scope
from runplane.domain.model import Environment
from runplane.service.context import Context
from runplane.store import catalog as store
from runplane.store import credentials as credential_store
from runplane.store.database import Tx

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
WORKSPACE_ADMIN = "workspace-admin"


def _check_name(kind: str, name: str) -> None:
    if not NAME_RE.match(name):
        raise errors.InvalidRequest(
            f"Invalid {kind} name {name!r}.",
            problems=[
                {
                    "name": "name",
                    "code": "invalid_name",
                    "detail": "1-100 lower-case letters, digits, '.', '_' or '-'.",
                }
            ],
        )


def _require_installation_admin(ctx: Context, who: Principal) -> None:
    who.require_full_admin()
    if who.workspace_id != ctx.workspace_id:
        raise errors.Forbidden("Only an admin of workspace 'default' manages workspaces.")


async def create_workspace(ctx: Context, who: Principal, name: str) -> tuple[dict[str, Any], str]:
    """A new workspace and its admin token (shown once)."""
    _require_installation_admin(ctx, who)
    _check_name("workspace", name)
    secret = rsecrets.new_secret(CredentialKind.API_TOKEN)
    now = ctx.clock()

    def op(tx: Tx) -> dict[str, Any]:
        ws_id = store.create_workspace(tx, name, now)
        credential_store.create_credential(
            tx,
            ws_id=ws_id,
            kind=CredentialKind.API_TOKEN,
            name=WORKSPACE_ADMIN,
            token_hash=rsecrets.digest(secret),
            scopes=[Scope.ADMIN.value],
            environment_ids=None,
            process_id=None,
            expires_at=None,
            now=now,
        )
        return {
            "id": ws_id,
            "name": name,
            "createdAt": now,
            "environments": list(store.DEFAULT_ENVIRONMENTS),
        }

    return await ctx.db.write(op), secret


async def list_workspaces(ctx: Context, who: Principal) -> list[tuple[str, str, Any]]:
    """Every workspace for the installation admin; one's own for everyone else."""
    rows = await ctx.db.read(store.list_workspaces)
    full_admin = who.has(Scope.ADMIN) and who.environment_ids is None and who.process_id is None
    if full_admin and who.workspace_id == ctx.workspace_id:
        return rows
    return [r for r in rows if r[0] == who.workspace_id]


async def create_environment(ctx: Context, who: Principal, name: str) -> Environment:
    """A new environment in the caller's workspace."""
    who.require_full_admin()
    _check_name("environment", name)
    now = ctx.clock()
    return await ctx.db.write(lambda tx: store.create_environment(tx, who.workspace_id, name, now))
