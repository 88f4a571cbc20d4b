"""The console's session cookie, its CSRF token, and the sign-in form's token.

A signed-in browser holds the session token in an HttpOnly, SameSite=Lax
cookie (Secure when the request came over HTTPS or RUNPLANE_COOKIE_SECURE is
set). Any route may be read with it; a state-changing request (anything but
GET, HEAD, OPTIONS) must also carry the session's CSRF token in the
`X-CSRF-Token` header, which every page puts in `hx-headers` so htmx sends it.
The sign-in form, which has no session yet, carries a token of its own that
must equal a cookie set with the form (double submit).
"""

from __future__ import annotations

import secrets
from http.cookies import CookieError, SimpleCookie

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from runplane.api.surface import CredentialReader, Headers, Presented, Stage
from runplane.domain import errors
from runplane.service import users
from runplane.settings import Settings

SESSION_COOKIE = "runplane_session"
SIGN_IN_COOKIE = "runplane_signin"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cookies(headers: Headers) -> dict[str, str]:
    """The request's cookies (an unparsable Cookie header counts as none)."""
    raw = headers.get(b"cookie")
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def read_session(scope: Scope, headers: Headers) -> Presented | None:
    """The session cookie as a credential; a state-changing request needs its CSRF token."""
    token = cookies(headers).get(SESSION_COOKIE)
    if not token:
        return None
    if scope["method"] not in SAFE_METHODS:
        presented = headers.get(CSRF_HEADER, b"").decode("latin-1")
        if not users.csrf_valid(token, presented):
            raise errors.CsrfFailed(
                "This form expired or did not come from this console: reload the page and try "
                "again."
            )
    return Presented(token, resolve=users.session_principal)


SESSION_READER = CredentialReader(Stage.COOKIE, read_session)


def csrf_of(request: Request) -> str:
    """The CSRF token of the request's session ('' without one)."""
    token = request.cookies.get(SESSION_COOKIE)
    return users.csrf_token(token) if token else ""


def secure(request: Request) -> bool:
    """True when cookies must be Secure: HTTPS, or the setting says so."""
    settings: Settings = request.app.state.ctx.settings
    return request.url.scheme == "https" or settings.cookie_secure


def set_session(response: Response, request: Request, token: str) -> None:
    """Give the browser its session cookie (no Max-Age: it ends with the browser, and the
    server ends it after the idle timeout whatever the browser keeps)."""
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure(request), path="/"
    )


def clear_session(response: Response, request: Request) -> None:
    """Take the session cookie back."""
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=secure(request), path="/"
    )


def sign_in_token(request: Request) -> str:
    """The sign-in form's token: the one its cookie holds, or a new one."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)


def remember_sign_in_token(response: Response, request: Request, token: str) -> None:
    """Set the sign-in form's token as a cookie (the form carries the same value)."""
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/login",
    )


def sign_in_token_valid(request: Request, presented: str) -> bool:
    """True when the sign-in form's token equals its cookie (constant time)."""
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    return bool(expected) and secrets.compare_digest(expected, presented)
