"""Which surface a path belongs to, and how that surface answers an error.

The middlewares (authentication, body limits) refuse requests before any
router sees them; they answer in the format of the surface the path belongs
to: RFC 9457 problem details on the native API, the vendor's shape on its
routes.
"""

from __future__ import annotations

from starlette.responses import Response

from runplane.api.compat.mulesoft import mapping as mulesoft
from runplane.api.compat.robocorp import mapping as robocorp
from runplane.api.problems import problem_response
from runplane.domain import errors

VENDOR_SURFACES = (
    ((mulesoft.ROOT + "/",), mulesoft.error_response),
    ((robocorp.LEGACY_PREFIX + "/", robocorp.PROCESS_PREFIX + "/"), robocorp.error_response),
)


def error_response(
    path: str, exc: errors.RunplaneError, headers: dict[str, str] | None = None
) -> Response:
    """The answer to `exc` in the format of the surface `path` belongs to."""
    for prefixes, render in VENDOR_SURFACES:
        if path.startswith(prefixes):
            return render(exc, headers)
    return problem_response(exc, path, headers)
