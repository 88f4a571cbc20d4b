"""Sign in and sign out."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runplane.domain import errors
from runplane.service import users
from runplane.web import session
from runplane.web.common import ctx_of, form_of, text
from runplane.web.errors import console_route
from runplane.web.templating import render

router = APIRouter(route_class=console_route(), include_in_schema=False)

WRONG = "Wrong user name or password."


def safe_next(target: str) -> str:
    """A local page to return to after signing in (never another site)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form(request: Request, status: int, name: str, error: str, target: str) -> Response:
    token = session.sign_in_token(request)
    response = render(
        request,
        "login.html",
        status,
        title="Sign in",
        name=name,
        error=error,
        next=target,
        form_token=token,
    )
    session.remember_sign_in_token(response, request, token)
    return response


@router.get("/login")
async def sign_in_page(request: Request, next: str = "/") -> Response:
    """The sign-in form."""
    return _form(request, 200, "", "", safe_next(next))


@router.post("/login")
async def sign_in(request: Request) -> Response:
    """Check the name and password; on success the session cookie, then the page asked for."""
    form = await form_of(request)
    name, target = text(form, "name"), safe_next(text(form, "next") or "/")
    presented = form.get("password")
    password = presented if isinstance(presented, str) else ""
    if not session.sign_in_token_valid(request, text(form, "csrf_token")):
        return _form(request, 403, name, "The sign-in form expired: please sign in again.", target)
    client = request.client.host if request.client else "unknown"
    try:
        signed_in = await users.sign_in(ctx_of(request), name, password, client)
    except errors.TooManyRequests as exc:
        wait = exc.extra.get("retry_after", 60)
        return _form(
            request, 429, name, f"Too many failed sign-ins: try again in {wait} s.", target
        )
    except errors.Unauthenticated:
        return _form(request, 401, name, WRONG, target)
    response = RedirectResponse(target, status_code=303)
    session.set_session(response, request, signed_in.token)
    return response


@router.post("/logout")
async def sign_out(request: Request) -> Response:
    """End the session and forget its cookie."""
    token = request.cookies.get(session.SESSION_COOKIE)
    if token:
        await users.sign_out(ctx_of(request), token)
    response = Response(status_code=204, headers={"HX-Redirect": "/login"})
    session.clear_session(response, request)
    return response
