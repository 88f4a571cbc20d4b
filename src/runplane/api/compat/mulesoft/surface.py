"""MuleSoft RPA's trigger API as a surface (also under RUNPLANE_MULESOFT_BASE_PATH)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from runplane.api.compat.mulesoft import mapping, router
from runplane.api.surface import Surface, header_reader
from runplane.domain import errors
from runplane.settings import Settings

API_KEY_HEADER = b"x-apikey"  # MuleSoft RPA v1 callers' API key


def _render(_: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None) -> Response:
    return mapping.error_response(exc, headers)


def _aliases(settings: Settings) -> tuple[tuple[str, str], ...]:
    # e.g. "/rpa/api": callers of RPA Manager change only the host of their URLs
    base = settings.mulesoft_base_path
    return ((base, mapping.ROOT),) if base else ()


SURFACE = Surface(
    name="mulesoft",
    prefixes=(mapping.ROOT,),
    routers=(router.router, router.router_v1),
    render_error=_render,
    readers=(header_reader(API_KEY_HEADER),),
    aliases=_aliases,
)
