"""What every console route needs: the service context, the signed-in principal, forms."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from runplane.domain import errors
from runplane.domain.auth import Principal
from runplane.service.context import Context

MAX_FORM_FIELDS = 500


def ctx_of(request: Request) -> Context:
    """The server's service context."""
    ctx: Context = request.app.state.ctx
    return ctx


def who_of(request: Request) -> Principal:
    """The signed-in principal (the authentication middleware resolved the session)."""
    who: Principal | None = request.scope.get("state", {}).get("principal")
    if who is None:
        raise errors.Unauthenticated("Sign in to use the console.")
    return who


def is_htmx(request: Request) -> bool:
    """True for a request htmx made (it swaps a fragment instead of loading a page)."""
    return request.headers.get("hx-request") == "true"


async def form_of(request: Request) -> FormData:
    """The submitted form (urlencoded or multipart), bounded in fields."""
    try:
        return await request.form(max_fields=MAX_FORM_FIELDS)
    except Exception as exc:  # malformed multipart, too many fields
        raise errors.BadRequest("The form could not be read.") from exc


def text(form: FormData, name: str) -> str:
    """A text field of the form ('' when absent; never a file)."""
    value: Any = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def go(request: Request, url: str) -> Response:
    """Open `url`: htmx follows HX-Location without a full reload; a plain form, a 303."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Location": url})
    return Response(status_code=303, headers={"Location": url})
