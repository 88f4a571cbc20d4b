"""Credentials (admins): OAuth apps, process secrets, API tokens, users.

A secret is rendered only in the answer to the request that created or
rotated it (with Cache-Control: no-store); every later page shows it masked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from runplane.domain import errors
from runplane.domain.auth import Principal, Scope
from runplane.service import catalog, oauth, users
from runplane.service import credentials as creds
from runplane.web.common import ctx_of, form_of, text, who_of
from runplane.web.errors import console_route
from runplane.web.templating import render

router = APIRouter(route_class=console_route(), include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
SECONDS_PER_DAY = 86_400
ROLES = ("admin", "operator", "viewer")


def _admin(request: Request) -> Principal:
    who = who_of(request)
    who.require_full_admin()
    return who


async def _values(request: Request, who: Principal) -> dict[str, Any]:
    ctx = ctx_of(request)
    environments = await catalog.list_environments(ctx, who)
    env_names = {e.id: e.name for e in environments}
    processes = [p for p, _ in await catalog.list_processes(ctx, who)]
    secrets = {s["process_id"]: s for s in await creds.list_process_secrets(ctx, who)}
    return {
        "apps": await oauth.list_apps(ctx, who),
        "tokens": await creds.list_tokens(ctx, who),
        "users": await users.list_users(ctx, who),
        "process_rows": [(p, secrets.get(p.id)) for p in processes],
        "environments": environments,
        "env_names": env_names,
        "scopes": [s.value for s in Scope],
        "roles": ROLES,
    }


async def _page(request: Request, who: Principal, **once: Any) -> Response:
    values = await _values(request, who)
    return render(
        request,
        "credentials.html",
        headers=NO_STORE,
        title="Credentials",
        nav="credentials",
        once=once or None,
        **values,
    )


@router.get("/credentials")
async def credentials_page(request: Request) -> Response:
    """Every credential of the workspace, none of their secrets."""
    return await _page(request, _admin(request))


def _expiry_seconds(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise errors.InvalidRequest(
            "The expiry is not valid.",
            problems=[{"name": "expiresInDays", "code": "invalid", "detail": "Whole days, 1+."}],
        )
    return int(raw) * SECONDS_PER_DAY


@router.post("/credentials/apps")
async def create_app(request: Request) -> Response:
    """Create an OAuth app; its client secret is shown once."""
    who = _admin(request)
    form = await form_of(request)
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    envs = [e for e in form.getlist("environments") if isinstance(e, str) and e]
    secret, app = await oauth.create_app(ctx_of(request), who, text(form, "name"), scopes, envs)
    return await _page(
        request, who, kind="OAuth app", name=app.name, client_id=app.client_id, secret=secret
    )


@router.post("/credentials/apps/{name}/rotate")
async def rotate_app(request: Request, name: str) -> Response:
    """A new client secret (shown once); the old one and its tokens stop working."""
    who = _admin(request)
    secret, app = await oauth.rotate_app_secret(ctx_of(request), who, name)
    return await _page(
        request, who, kind="OAuth app", name=app.name, client_id=app.client_id, secret=secret
    )


@router.post("/credentials/apps/{name}/delete")
async def delete_app(request: Request, name: str) -> Response:
    """Delete an app and revoke its access tokens."""
    who = _admin(request)
    await oauth.delete_app(ctx_of(request), who, name)
    return await _page(request, who)


@router.post("/credentials/process-secrets/{process}")
async def generate_process_secret(request: Request, process: str) -> Response:
    """Generate a process's secret (Robocorp's "API access"); shown once."""
    who = _admin(request)
    secret, _ = await creds.generate_process_secret(ctx_of(request), who, process)
    return await _page(request, who, kind="Process secret", name=process, secret=secret)


@router.post("/credentials/process-secrets/{process}/rotate")
async def rotate_process_secret(request: Request, process: str) -> Response:
    """A new secret for the process (shown once); the old one stops working."""
    who = _admin(request)
    secret, _ = await creds.rotate_process_secret(ctx_of(request), who, process)
    return await _page(request, who, kind="Process secret", name=process, secret=secret)


@router.post("/credentials/process-secrets/{process}/delete")
async def delete_process_secret(request: Request, process: str) -> Response:
    """Revoke the process's secret."""
    who = _admin(request)
    await creds.delete_process_secret(ctx_of(request), who, process)
    return await _page(request, who)


@router.post("/credentials/tokens")
async def create_token(request: Request) -> Response:
    """Create an API token (scopes, environment, expiry); shown once."""
    who = _admin(request)
    form = await form_of(request)
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    environment = text(form, "environment")
    secret, _ = await creds.create_token(
        ctx_of(request),
        who,
        text(form, "name"),
        scopes,
        [environment] if environment else [],
        _expiry_seconds(text(form, "expiresInDays")),
    )
    return await _page(request, who, kind="API token", name=text(form, "name"), secret=secret)


@router.post("/credentials/tokens/{name}/rotate")
async def rotate_token(request: Request, name: str) -> Response:
    """A new secret for the token (shown once); the old one stops working."""
    who = _admin(request)
    secret, _ = await creds.rotate_token(ctx_of(request), who, name)
    return await _page(request, who, kind="API token", name=name, secret=secret)


@router.post("/credentials/tokens/{name}/delete")
async def delete_token(request: Request, name: str) -> Response:
    """Revoke an API token."""
    who = _admin(request)
    await creds.delete_token(ctx_of(request), who, name)
    return await _page(request, who)


@router.post("/credentials/users")
async def create_user(request: Request) -> Response:
    """Create a user (or give one a role here); a generated password is shown once."""
    who = _admin(request)
    form = await form_of(request)
    raw = form.get("password")
    password = raw if isinstance(raw, str) and raw else None
    user, generated = await users.create_user(
        ctx_of(request), who, text(form, "name"), text(form, "role"), password=password
    )
    if generated is None:
        return await _page(request, who)
    return await _page(request, who, kind="User password", name=user.name, secret=generated)


@router.post("/credentials/users/{name}/disable")
async def disable_user(request: Request, name: str) -> Response:
    """Disable a user: their sessions end at once."""
    who = _admin(request)
    await users.disable_user(ctx_of(request), who, name)
    return await _page(request, who)
