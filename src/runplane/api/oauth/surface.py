"""The token endpoints as a surface: public paths that answer RFC 6749 errors."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from runplane.api.oauth import router
from runplane.api.surface import Surface
from runplane.domain import errors


def _render(scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None) -> Response:
    response = router.error_body(exc)
    response.headers.update(headers or {})
    return response


SURFACE = Surface(
    name="oauth2",
    prefixes=("/oauth2", router.MULESOFT_TOKEN_PATH),
    routers=(router.router,),
    render_error=_render,
    # they authenticate the client themselves
    public_paths=frozenset({router.TOKEN_PATH, router.MULESOFT_TOKEN_PATH, router.REVOKE_PATH}),
    redacted_params=frozenset({"token", "access_token", "client_secret"}),
)
