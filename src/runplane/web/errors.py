"""How the console answers an error: a page for browsers, a message for htmx requests.

Not signed in (or the session ended) sends the browser to the sign-in page
and back afterwards; anything else is a page (or, for an htmx request, a
message in the page's message area) with the error's title and detail,
never a trace.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Scope

from runplane.api import problems
from runplane.api.routing import surface_route
from runplane.domain import errors
from runplane.web import security
from runplane.web.templating import ENV

log = logging.getLogger("runplane.web")

SIGN_IN_PATH = "/login"


def _is_htmx(scope: Scope) -> bool:
    return any(k == b"hx-request" for k, _ in scope.get("headers", ()))


def sign_in_url(scope: Scope) -> str:
    """The sign-in page, coming back to this page (its path and query) afterwards."""
    target = scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        target += "?" + query
    if scope["method"] != "GET" or target.startswith(SIGN_IN_PATH):
        target = "/"
    return f"{SIGN_IN_PATH}?next={quote(target, safe='/')}"


def render_error(
    scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None
) -> Response:
    """The console's answer to `exc`."""
    extra = {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"}
    response: Response
    if isinstance(exc, errors.Unauthenticated):
        url = sign_in_url(scope)
        if _is_htmx(scope):
            response = Response(status_code=401, headers={"HX-Redirect": url, **extra})
        else:
            response = RedirectResponse(url, status_code=303, headers=extra)
    elif _is_htmx(scope):
        html = ENV.get_template("_message.html").render(
            kind="error", title=exc.title(), detail=exc.detail, problems=exc.problems
        )
        extra.update({"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"})
        response = HTMLResponse(html, status_code=exc.status, headers=extra)
    else:
        html = ENV.get_template("error.html").render(
            title=exc.title(),
            status=exc.status,
            detail=exc.detail,
            code=exc.code,
            problems=exc.problems,
        )
        response = HTMLResponse(html, status_code=exc.status, headers=extra)
    security.add_headers(response.headers)
    return response


def _answer(request: Request, exc: Exception) -> Response:
    err = (
        exc
        if isinstance(exc, errors.RunplaneError)
        else errors.RunplaneError("An unexpected error occurred.")
    )
    return render_error(request.scope, err, problems.response_headers(exc, err))


def console_route() -> type[APIRoute]:
    """A route class whose every failure is answered by `render_error` (never a trace)."""
    return surface_route(_answer, log)
