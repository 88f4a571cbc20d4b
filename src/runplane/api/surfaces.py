"""Which surface a path belongs to, and how that surface answers an error.

The middlewares (authentication, body limits) refuse requests before any
router sees them; they answer in the format of the surface the path belongs
to: RFC 9457 problem details on the native API, the vendor's shape on its
routes (Boomi's in XML when the request's `Accept` asks for it).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from runplane.api import problems
from runplane.api.compat.boomi import formats as boomi_formats
from runplane.api.compat.boomi import mapping as boomi
from runplane.api.compat.mulesoft import mapping as mulesoft
from runplane.api.compat.robocorp import mapping as robocorp
from runplane.api.problems import problem_response
from runplane.domain import errors

Render = Callable[[Scope, errors.RunplaneError, "dict[str, str] | None"], Response]


def _boomi(scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None) -> Response:
    accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
    return boomi.error_response(exc, headers, xml=boomi_formats.wants_xml(accept))


VENDOR_SURFACES: tuple[tuple[tuple[str, ...], Render], ...] = (
    ((mulesoft.ROOT + "/",), lambda _, exc, headers: mulesoft.error_response(exc, headers)),
    (
        (robocorp.LEGACY_PREFIX + "/", robocorp.PROCESS_PREFIX + "/"),
        lambda _, exc, headers: robocorp.error_response(exc, headers),
    ),
    ((boomi.PREFIX + "/",), _boomi),
)


def error_response(
    scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None = None
) -> Response:
    """The answer to `exc` in the format of the surface the request's path belongs to."""
    path = scope["path"]
    for prefixes, render in VENDOR_SURFACES:
        if path.startswith(prefixes):
            return render(scope, exc, headers)
    return problem_response(exc, path, headers)


def exception_response(request: Request, exc: Exception) -> Response:
    """Any exception a route raised, in the format of the surface it belongs to (unknown
    paths and methods under a vendor prefix included)."""
    headers = dict(exc.headers) if isinstance(exc, StarletteHTTPException) and exc.headers else None
    return error_response(request.scope, problems.to_error(request, exc), headers)
