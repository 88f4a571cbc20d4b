"""Boomi AtomSphere's execution API as a surface (errors in XML when asked)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from runplane.api.compat.boomi import formats, mapping, router
from runplane.api.surface import Surface
from runplane.domain import errors


def _render(scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None) -> Response:
    accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
    return mapping.error_response(exc, headers, xml=formats.wants_xml(accept))


SURFACE = Surface(
    name="boomi",
    prefixes=(mapping.PREFIX,),
    routers=(router.router,),
    render_error=_render,
)
