"""The surface registry: a surface plugs in its prefixes, errors, credentials and limits,
and the authentication and body-limit layers honour them without knowing it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from runplane.api.auth import AuthMiddleware
from runplane.api.limits import BodyLimitMiddleware
from runplane.api.registry import SURFACES
from runplane.api.surface import (
    BodyLimit,
    CredentialReader,
    Presented,
    Stage,
    Surface,
    Surfaces,
)
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal
from runplane.domain.auth import Scope as Right
from runplane.service.context import Context
from runplane.settings import Settings
from runplane.store.database import Database


def _teapot(scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None) -> Response:
    return PlainTextResponse(f"teapot says {exc.code}", status_code=exc.status, headers=headers)


async def _resolve(ctx: Context, secret: str) -> Principal:
    if secret != "good-cookie":
        raise errors.InvalidCredentials("not a session")
    return Principal(
        workspace_id="w",
        credential_id="c",
        kind=CredentialKind.API_TOKEN,
        name="tea",
        scopes=frozenset({Right.EXECUTIONS_READ}),
    )


def _cookie(scope: Scope, headers: Any) -> Presented | None:
    raw = headers.get(b"cookie", b"").decode()
    if raw.startswith("tea="):
        return Presented(raw[4:], resolve=_resolve)
    return None


TEA = Surface(
    name="tea",
    prefixes=("/tea",),
    render_error=_teapot,
    public_paths=frozenset({"/tea/menu"}),
    readers=(CredentialReader(Stage.COOKIE, _cookie),),
    body_limits=(BodyLimit("POST", lambda p: p.startswith("/tea/big"), 10),),
)


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    who = scope.get("state", {}).get("principal")
    await PlainTextResponse(f"hello {who.name if who else 'anyone'}")(scope, receive, send)


def _serve(
    tmp: Path, surfaces: Surfaces, requests: list[tuple[str, str, dict[str, str], bytes]]
) -> list[Any]:
    """Answers of the authentication and body-limit layers over `surfaces`, on a real
    (SQLite) database for the failure limiter."""

    async def main() -> list[httpx.Response]:
        db = Database(f"sqlite:///{tmp / 'surfaces.db'}")
        db.migrate()
        db.start()
        ctx = Context(db=db, settings=Settings(data_dir=tmp))
        app = AuthMiddleware(BodyLimitMiddleware(_echo, surfaces), lambda: ctx, surfaces)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return [
                    await c.request(m, p, headers=h, content=b or None) for m, p, h, b in requests
                ]
        finally:
            await db.close()

    return asyncio.run(main())


def test_a_registered_surface_brings_its_credentials_errors_and_limits(tmp_path: Path) -> None:
    surfaces = Surfaces([*SURFACES.surfaces, TEA])
    menu, anonymous, bad, good, big = _serve(
        tmp_path,
        surfaces,
        [
            ("GET", "/tea/menu", {}, b""),
            ("GET", "/tea/pot", {}, b""),
            ("GET", "/tea/pot", {"Cookie": "tea=bad"}, b""),
            ("GET", "/tea/pot", {"Cookie": "tea=good-cookie"}, b""),
            ("POST", "/tea/big", {"Cookie": "tea=good-cookie"}, b"x" * 11),
        ],
    )
    assert (menu.status_code, menu.text) == (200, "hello anyone")
    assert (anonymous.status_code, anonymous.text) == (401, "teapot says unauthenticated")
    assert (bad.status_code, bad.text) == (401, "teapot says invalid_credentials")
    assert (good.status_code, good.text) == (200, "hello tea")
    assert (big.status_code, big.text) == (413, "teapot says payload_too_large")


def test_paths_no_surface_owns_are_answered_as_problems(tmp_path: Path) -> None:
    (r,) = _serve(tmp_path, SURFACES, [("GET", "/nowhere", {}, b"")])
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


def test_two_surfaces_cannot_read_the_same_authorization_scheme() -> None:
    twin = Surface(name="twin", schemes={"bearer": lambda v: Presented(v)})
    with pytest.raises(ValueError, match="bearer"):
        Surfaces([*SURFACES.surfaces, twin])


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("/api/v1/executions", "native"),
        ("/oauth2/token", "oauth2"),
        ("/mulesoft/rpa/api/v2/processes", "mulesoft"),
        ("/workspace-v1/workspaces/w", "robocorp"),
        ("/process-v1/workspaces/w", "robocorp"),
        ("/api/rest/v1/acct/ExecutionRecord", "boomi"),
        ("/api/v10/x", None),
    ],
)
def test_each_path_belongs_to_its_surface(path: str, owner: str | None) -> None:
    surface = SURFACES.owner(path)
    assert (surface.name if surface else None) == owner
